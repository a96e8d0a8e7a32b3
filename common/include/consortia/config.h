// Configuration. Each option is declared once, with CONSORTIA_OPTION
// (consortia/options.h: owner, type, name, default, bounds, help) in the
// config.cc of the module that owns it; its Validate() checks the declared
// bounds. Every flag can also be set from the environment:
// CONSORTIA_<FLAG NAME IN UPPER CASE> (for example CONSORTIA_API_PORT=8080);
// a command-line flag wins over the environment. Helm values map onto the
// same names.
#ifndef CONSORTIA_COMMON_CONFIG_H_
#define CONSORTIA_COMMON_CONFIG_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/bytes.h"

namespace consortia {

// Applies CONSORTIA_* environment variables to the flags they name, then parses
// argv (flags there override). Exits with a usage message on an unknown flag
// or a bad value. With --help (or -h) prints `usage` and the declared options
// (OptionsHelpText), with --dump_options their JSON (DumpOptionsJson), and
// exits 0. Returns the positional arguments.
std::vector<char*> ParseFlagsAndEnv(int argc, char** argv, const char* usage);

// Runtime settings of a server process (a service or the whole node), set
// before its services start: absl::Mutex's deadlock detection off. Debian's
// abseil is built with it on, and it updates a lock graph on every
// acquisition (about 1% of a loaded node's CPU in the profile of
// docs/BENCHMARKS.md). Tests and tools keep it on.
void ConfigureServerRuntime();

// Options every service of a node shares.
struct NodeConfig {
  std::string node_name;         // --node_name
  std::string genesis_path;      // --genesis
  std::string node_key_path;     // --node_key
  std::string data_dir;          // --data_dir
  std::string mempool_endpoint;  // --mempool_endpoint
  std::string storage_endpoint;  // --storage_endpoint
  std::string storage_events;    // --storage_events
  std::string metrics_host;      // --metrics_host (ops endpoint address)
  int metrics_port = 0;          // --metrics_port (0 = none)
  std::string log_level;         // --log_level
  absl::Duration bus_timeout;    // --bus_timeout_ms

  // Reads the flags above.
  static NodeConfig FromFlags();
  // InvalidArgument naming the option that is out of bounds.
  absl::Status Validate() const;
};

// Blocks until SIGINT or SIGTERM arrives (call after starting services; the
// signals are blocked in every thread started afterwards, so call
// BlockTerminationSignals() first thing in main()). With `hangup`, SIGHUP is
// blocked too, and WaitForTerminationSignal calls `on_hangup` for each
// SIGHUP and goes on waiting (a process that does not ask for SIGHUP keeps
// its default action: it ends).
void BlockTerminationSignals(bool hangup = false);
void WaitForTerminationSignal(const std::function<void()>& on_hangup = nullptr);

// Reads a whole file. NotFound / PermissionDenied / Internal with the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes atomically (temporary file, fsync, rename); the file gets `mode`
// (0600 unless given).
absl::Status WriteFileAtomic(const std::string& path, std::string_view data,
                             int mode = 0600);

// The node's signing key file: {"crypto_suite":..., "public_key": hex,
// "secret_key": hex}.
struct NodeKey {
  std::string crypto_suite;
  Bytes public_key;
  Bytes secret_key;
};
// Parses a key file strictly: InvalidArgument naming the file and the field
// for malformed JSON or bytes after it, a repeated or unknown field, a
// missing or non-string field, bad hex, an unknown suite, a key of the wrong
// length for its suite, or a secret key that does not sign for the public
// key. NotFound / PermissionDenied when the file cannot be read.
absl::StatusOr<NodeKey> LoadNodeKey(const std::string& path);
std::string NodeKeyToJson(const NodeKey& k);
// OK when only the owner may access the key file at `path`;
// FailedPrecondition (naming the mode and the fix) when its group or others
// have any permission on it. Callers warn rather than refuse (a key on a
// read-only mount may be shared on purpose). NotFound etc. from stat.
absl::Status CheckKeyFileMode(const std::string& path);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_CONFIG_H_
