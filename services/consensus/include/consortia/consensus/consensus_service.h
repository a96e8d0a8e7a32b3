// The consensus service: decides the next block and has storage commit it.
//
// With one validator in the genesis (this node's key) a proposer loop
// proposes, signs the only precommit and commits. With several, the service
// runs the Tendermint algorithm among them over PeerNet (CurveZMQ, with a ZAP
// allow-list of the peers file's keys), signing through a write-ahead log in
// <data_dir>/consensus/wal so that a restarted validator never double-signs.
//
// This header is the service's whole public surface; everything else lives
// in services/consensus/src/.
#ifndef CONSORTIA_CONSENSUS_CONSENSUS_SERVICE_H_
#define CONSORTIA_CONSENSUS_CONSENSUS_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/config.h"
#include "consortia/metrics.h"

namespace zmq {
class context_t;
}

namespace consortia::consensus {

// Block production settings. Each field is one flag of
// services/consensus/src/config.cc ("consensus_" prefix; CONSORTIA_CONSENSUS_*
// in the environment).
struct ConsensusOptions {
  // How often the proposer asks the mempool for txs
  // (--consensus_block_poll_interval_ms).
  absl::Duration block_poll_interval = absl::Milliseconds(20);
  // The longest time without a block: an empty block is made when no tx
  // came for this long (--consensus_empty_block_interval_ms).
  absl::Duration empty_block_interval = absl::Seconds(1);
  // Most txs per block (--consensus_max_block_txs).
  uint32_t max_block_txs = 5000;
  // Most encoded tx bytes per block (--consensus_max_block_bytes).
  uint64_t max_block_bytes = uint64_t{8} << 20;

  // Several validators (Tendermint over PeerNet; used when the genesis names
  // more than one validator).
  // This service's p2p endpoint (--consensus_p2p_endpoint).
  std::string p2p_endpoint = "tcp://127.0.0.1:26604";
  // Path of this node's CurveZMQ key file (--consensus_p2p_key; see
  // consortia/peer_net.h).
  std::string p2p_key_path;
  // Path of the peers file (--consensus_peers): a JSON array of
  // {"id", "endpoint", "public_key" (Z85)} for every validator's consensus
  // service, this node's included (found by its transport key).
  std::string peers_path;
  // Round timeouts: base for round 0, plus delta per round
  // (--consensus_timeout_{propose,prevote,precommit,delta}_ms).
  absl::Duration timeout_propose = absl::Seconds(3);
  absl::Duration timeout_prevote = absl::Seconds(1);
  absl::Duration timeout_precommit = absl::Seconds(1);
  absl::Duration timeout_delta = absl::Milliseconds(500);
  // Pause after a decision before the next height
  // (--consensus_timeout_commit_ms).
  absl::Duration timeout_commit = absl::Milliseconds(100);
  // Status and re-broadcast period (--consensus_gossip_interval_ms).
  absl::Duration gossip_interval = absl::Milliseconds(500);

  // Reads the consensus_* flags.
  static ConsensusOptions FromFlags();
  // Field by field (a test checks that ConsensusOptions{} is FromFlags() with
  // every flag at its declared default).
  bool operator==(const ConsensusOptions&) const = default;
  // InvalidArgument naming the first option out of bounds.
  absl::Status Validate() const;
};

// A running validator. Destruction stops the proposer loop (it finishes or
// abandons the block in flight; storage's commit is atomic either way).
//
// Thread-safe: Ready() may be called from any thread.
class ConsensusService {
 public:
  // Loads the genesis (node.genesis_path) and the node key
  // (node.node_key_path), connects to storage (node.storage_endpoint) and the
  // mempool (node.mempool_endpoint) and starts the proposer loop.
  // NotFound / InvalidArgument for a missing or bad genesis or key;
  // FailedPrecondition when the genesis has one validator that is not this
  // node's key. With several validators: the p2p key, the peers file and
  // the WAL must load (their errors), and the p2p endpoint must bind
  // (Unavailable); a node whose key is not a validator follows as an
  // observer. It does not wait for storage: the service is
  // Ready() once it has read the chain state. `ctx` and `metrics` must
  // outlive the service.
  static absl::StatusOr<std::unique_ptr<ConsensusService>> Start(
      const NodeConfig& node, const ConsensusOptions& opts, zmq::context_t& ctx,
      MetricsRegistry& metrics);

  virtual ~ConsensusService();

  // True once the chain state was read from storage.
  virtual bool Ready() const = 0;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_CONSENSUS_SERVICE_H_
