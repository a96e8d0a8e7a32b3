// A redis-server of a test's own: Debian's /usr/bin/redis-server (package
// redis-server, installed by scripts/install-deps.sh) on a free 127.0.0.1
// port, its data in a directory of the test, configured as Consortia needs
// it in production (appendonly yes, appendfsync always, no RDB snapshots).
// Tests stop, kill and restart it by its pid to check what survives.
#ifndef CONSORTIA_SERVICES_STORAGE_TESTS_REDIS_HARNESS_H_
#define CONSORTIA_SERVICES_STORAGE_TESTS_REDIS_HARNESS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/process.h"
#include "redis_store.h"

namespace consortia::storage::testing {

// One redis-server process. Not thread-safe. The destructor stops it
// (SIGTERM, then SIGKILL), so no test leaves a server behind.
class RedisServer {
 public:
  static constexpr char kBinary[] = "/usr/bin/redis-server";

  // Whether Debian's redis-server is installed.
  static bool Installed();

  // Starts redis-server with its data and log (redis.log) in `dir` and
  // waits (up to 30 s) until it answers PING. `extra_args` come after the
  // defaults and override them (e.g. {"--appendfsync", "everysec"}).
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const std::string& dir, std::vector<std::string> extra_args = {});

  ~RedisServer();

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return process_.has_value() ? process_->pid() : -1; }

  // Store options that reach this server with `key_prefix` and short
  // timeouts and backoff, so that tests see outages quickly.
  RedisStoreOptions StoreOptions(const std::string& key_prefix) const;

  // SIGKILL by pid, then waits for the exit: an abrupt crash.
  absl::Status Kill();
  // SIGTERM by pid, then waits for the exit: a clean shutdown.
  absl::Status Stop();
  // Starts it again on the same port and directory (it reloads its AOF)
  // and waits until it answers PING.
  absl::Status Restart();

 private:
  RedisServer(std::string dir, std::vector<std::string> extra_args)
      : dir_(std::move(dir)), extra_args_(std::move(extra_args)) {}
  // Starts the process on port_ and waits for PING.
  absl::Status Launch();

  std::string dir_;
  std::vector<std::string> extra_args_;
  uint16_t port_ = 0;
  std::optional<ChildProcess> process_;
};

}  // namespace consortia::storage::testing

// Skips the test, with the reason, when redis-server is not installed.
#define CONSORTIA_REQUIRE_REDIS_SERVER()                                  \
  do {                                                                    \
    if (!::consortia::storage::testing::RedisServer::Installed()) {       \
      GTEST_SKIP() << ::consortia::storage::testing::RedisServer::kBinary \
                   << " is not installed (Debian package redis-server; "  \
                      "scripts/install-deps.sh installs it)";             \
    }                                                                     \
  } while (0)

#endif  // CONSORTIA_SERVICES_STORAGE_TESTS_REDIS_HARNESS_H_
