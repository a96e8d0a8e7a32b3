#include "redis_harness.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace consortia::storage::testing {
namespace {

// True once a PING on 127.0.0.1:port gets PONG (not LOADING).
bool Pong(uint16_t port) {
  timeval tv{0, 500000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr) return false;
  bool ok = false;
  if (c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r != nullptr && r->type == REDIS_REPLY_STATUS &&
         std::string_view(r->str, r->len) == "PONG";
    if (r != nullptr) freeReplyObject(r);
  }
  redisFree(c);
  return ok;
}

}  // namespace

bool RedisServer::Installed() { return ::access(kBinary, X_OK) == 0; }

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    const std::string& dir, std::vector<std::string> extra_args) {
  std::unique_ptr<RedisServer> server(
      new RedisServer(dir, std::move(extra_args)));
  absl::Status last;
  // A port picked free may be taken before redis binds it: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    absl::StatusOr<uint16_t> port = PickFreePort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;
}

RedisServer::~RedisServer() {
  if (process_.has_value()) process_->Stop(absl::Seconds(10));
}

absl::Status RedisServer::Launch() {
  std::vector<std::string> argv = {kBinary,
                                   "--port",
                                   absl::StrCat(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_,
                                   "--appendonly",
                                   "yes",
                                   "--appendfsync",
                                   "always",
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   ""};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Start(argv, dir_ + "/redis.log");
  if (!child.ok()) return child.status();
  process_.emplace(*std::move(child));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (Pong(port_)) return absl::OkStatus();
    if (!process_->running()) {
      process_.reset();
      return absl::UnavailableError(absl::StrCat(
          "redis-server on port ", port_, " exited; see ", dir_, "/redis.log"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  process_.reset();
  return absl::DeadlineExceededError(absl::StrCat(
      "redis-server on port ", port_, " did not answer PING within 30 s"));
}

RedisStoreOptions RedisServer::StoreOptions(
    const std::string& key_prefix) const {
  RedisStoreOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.key_prefix = key_prefix;
  o.timeout = absl::Seconds(5);
  o.backoff_initial = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(200);
  o.ambiguous_write_wait = absl::Seconds(1);
  return o;
}

absl::Status RedisServer::Kill() {
  if (!process_.has_value())
    return absl::FailedPreconditionError("not running");
  process_->Signal(SIGKILL);
  absl::StatusOr<int> st = process_->Wait(absl::Seconds(30));
  if (!st.ok()) return st.status();
  process_.reset();
  return absl::OkStatus();
}

absl::Status RedisServer::Stop() {
  if (!process_.has_value())
    return absl::FailedPreconditionError("not running");
  process_->Signal(SIGTERM);
  absl::StatusOr<int> st = process_->Wait(absl::Seconds(30));
  if (!st.ok()) return st.status();
  process_.reset();
  return absl::OkStatus();
}

absl::Status RedisServer::Restart() {
  if (process_.has_value()) {
    return absl::FailedPreconditionError("redis-server is still running");
  }
  return Launch();
}

}  // namespace consortia::storage::testing
