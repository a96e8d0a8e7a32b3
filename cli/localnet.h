// The local network of `consortia localnet` as a library, for the commands
// that start one (`localnet` itself and `bench`): validator nodes on
// 127.0.0.1 from the binaries next to this one (ports, keys, files and the
// development API key as described in localnet.cc).
#ifndef CONSORTIA_CLI_LOCALNET_H_
#define CONSORTIA_CLI_LOCALNET_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/types.h"

namespace consortia::cli {

struct LocalnetOptions {
  std::string dir;  // absolute
  uint64_t api_port = 26657;
  uint64_t base_port = 26600;
  uint64_t validators = 4;
  // More nodes, after the validators, whose keys are not in the genesis
  // (NetworkLayout::candidates).
  uint64_t candidates = 0;
  bool single_process = false;  // one consortia-node process (1 validator)
  bool verbose = true;          // a line per started process on stdout
  // The replay window (heights) of a new genesis; 0: ChainRules' default.
  // An existing genesis keeps its own.
  uint64_t replay_window = 0;
  // The crypto suite of a new network; an existing genesis keeps its own.
  std::string crypto_suite = "ed25519-sha256";
  // Set: the consortium of a new network's genesis (a permissioned chain);
  // an existing genesis must have the same one.
  std::optional<Consortium> consortium;
  // More flags for node i's storage (consortia-storage, or consortia-node
  // with single_process): storage_flags[i], when there is one (the bench's
  // --backend redis passes --storage_backend=redis --storage_redis_port=P).
  std::vector<std::vector<std::string>> storage_flags;
};

// One started service process: its binary name ("consortia-api", or
// "consortia-node" for --single-process), its validator's index, and the
// command that started it (StartNode starts it again with it).
struct LocalnetProcess {
  std::string binary;
  uint64_t node = 0;
  std::string log;
  ChildProcess process;
  std::vector<std::string> argv;
  bool stopped = false;  // by StopNode, on purpose
};

// A running local network; the destructor stops it (Stop).
class Localnet {
 public:
  Localnet(const Localnet&) = delete;
  Localnet& operator=(const Localnet&) = delete;
  ~Localnet();

  // Node i's api.
  const std::vector<HttpTarget>& apis() const { return apis_; }
  std::vector<LocalnetProcess>& processes() { return procs_; }
  const std::string& dir() const { return dir_; }
  const std::string& keys_file() const { return keys_file_; }
  const std::string& dev_key_file() const { return dev_key_file_; }
  const std::string& bin_dir() const { return bin_dir_; }
  // The first process that is no longer running (and was not stopped by
  // StopNode), or nullptr.
  const LocalnetProcess* FirstDead();
  // Stops every process of node i (the last started first), on purpose: the
  // bench's --down and --catch-up. Its data stays.
  void StopNode(uint64_t i);
  // Starts again every process of node i that StopNode stopped, with the
  // same command and log (appended to), in the start order. It does not
  // wait for the node to be ready.
  absl::Status StartNode(uint64_t i);
  // Stops every process (the last started first) and removes the pid file.
  void Stop();

 private:
  friend absl::StatusOr<std::unique_ptr<Localnet>> StartLocalnet(
      const LocalnetOptions& opt, const std::string& self);
  Localnet() = default;

  std::string dir_, keys_file_, dev_key_file_, pid_file_, bin_dir_;
  bool owns_pid_file_ = false;
  std::vector<HttpTarget> apis_;
  std::vector<LocalnetProcess> procs_;
};

// Creates the network's files in opt.dir on first use (reused after), writes
// the pid file (FailedPrecondition when another launcher runs from the same
// dir), starts every process and waits until each api is ready and the chain
// has its first block. `self` is argv[0] (the binaries are found next to
// /proc/self/exe, else next to it).
absl::StatusOr<std::unique_ptr<Localnet>> StartLocalnet(
    const LocalnetOptions& opt, const std::string& self);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_LOCALNET_H_
