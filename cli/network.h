// The files of a network of N validators: each node's signing key and
// CurveZMQ transport key, a client key, the genesis and the peers file.
// `consortia localnet` (keys kept and reused across runs, peers on
// 127.0.0.1) and `consortia k8s-secrets` (new files only, peers at the
// chart's pod DNS names) both make them here.
#ifndef CONSORTIA_CLI_NETWORK_H_
#define CONSORTIA_CLI_NETWORK_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "consortia/types.h"

namespace consortia::cli {

struct NetworkLayout {
  uint64_t validators = 4;
  // Nodes after the validators whose keys are not in the genesis but which
  // the peers file lists as validators' nodes: a governance vote may add
  // them to the validator set (docs/tutorials/validator.md).
  uint64_t candidates = 0;
  std::string chain_id = "localnet";
  std::string crypto_suite = "ed25519-sha256";
  // The replay window (heights) of a new genesis; 0: ChainRules' default.
  uint64_t replay_window = 0;
  // Set: a new genesis makes a permissioned chain of this consortium, and an
  // existing genesis must have the same one.
  std::optional<Consortium> consortium;
  // Paths of node i's signing key and transport key (the transport key and
  // the peers file only exist when validators + candidates > 1).
  std::function<std::string(uint64_t)> node_key_path;
  std::function<std::string(uint64_t)> p2p_key_path;
  std::string client_key_path;
  std::string genesis_path;
  std::string peers_path;
  // Node i's name in the genesis and its id in the peers file.
  std::function<std::string(uint64_t)> validator_name;
  std::function<std::string(uint64_t)> peer_id;
  // Node i's consensus p2p and mempool gossip endpoints, as peers dial them.
  std::function<std::string(uint64_t)> consensus_endpoint;
  std::function<std::string(uint64_t)> mempool_endpoint;
  // false: an existing key or genesis is loaded and checked (the genesis
  // must have `validators` validators), the peers file rewritten. true:
  // every file is new; AlreadyExists, before anything is written, when any
  // of them exists (nothing is ever overwritten).
  bool new_files_only = false;
};

// Creates (or with new_files_only == false, completes and checks) the
// files of `layout`, each mode 0600. The caller creates the directories.
absl::Status MakeNetworkFiles(const NetworkLayout& layout);

// Every path MakeNetworkFiles writes for `layout`.
std::vector<std::string> NetworkFilePaths(const NetworkLayout& layout);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_NETWORK_H_
