// The consensus service: decides the next block and has storage commit it.
//
// This build runs one validator (the genesis must name exactly one, and it
// must be this node's key): it proposes, signs the only precommit and commits.
// The Tendermint algorithm for 3f+1 validators replaces the proposer loop in
// a later version; the block builder and the signer stay as they are.
//
// This header is the service's whole public surface; everything else lives
// in services/consensus/src/.
#ifndef CONSORTIA_CONSENSUS_CONSENSUS_SERVICE_H_
#define CONSORTIA_CONSENSUS_CONSENSUS_SERVICE_H_

#include <cstdint>
#include <memory>

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

  // Reads the consensus_* flags.
  static ConsensusOptions FromFlags();
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
  // FailedPrecondition when the genesis does not name exactly this node's
  // key as its one validator. It does not wait for storage: the service is
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
