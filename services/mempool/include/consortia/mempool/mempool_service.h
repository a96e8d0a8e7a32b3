// The mempool service: admits client transactions (decode, limits, replay
// window, signature check), holds them in arrival order until consensus reaps
// them into a block, and forgets them when storage reports them committed.
//
// This header is the service's whole public surface: node/ (the
// single-process form), main.cc and the tests build the service through
// MempoolService::Start. Everything else lives in services/mempool/src/.
#ifndef CONSORTIA_MEMPOOL_MEMPOOL_SERVICE_H_
#define CONSORTIA_MEMPOOL_MEMPOOL_SERVICE_H_

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

namespace consortia::mempool {

// Admission limits and worker counts. Each field is one flag of
// services/mempool/src/config.cc (same name with the "mempool_" prefix), and
// CONSORTIA_MEMPOOL_<NAME> in the environment.
struct MempoolOptions {
  // Largest encoded tx admitted (--mempool_max_tx_bytes). At most kMaxTxBytes.
  uint64_t max_tx_bytes = 64 * 1024;
  // Most txs pending at once (--mempool_max_txs).
  uint64_t max_txs = 100000;
  // Most encoded bytes pending at once (--mempool_max_bytes).
  uint64_t max_bytes = uint64_t{256} << 20;
  // Most txs pending from one sender key (--mempool_max_per_sender).
  uint64_t max_per_sender = 10000;
  // How far ahead of the next height a tx's valid_until may be, and so how
  // many recent heights of committed hashes the mempool remembers to refuse
  // replays. A chain rule, not a node option: the service takes it from the
  // genesis (ChainRules::replay_window), so that every mempool judges a
  // proposal's txs alike; there is no flag.
  uint64_t replay_window = 1000;
  // Signature-verification threads; 0 = one per core
  // (--mempool_verify_threads).
  uint32_t verify_threads = 0;
  // Entries of the verified-signature cache, which spares a second check of
  // a signature already verified (a tx that comes back in a proposal, or is
  // resubmitted); 0 disables it (--mempool_sig_cache_size).
  uint64_t sig_cache_size = 100000;
  // How long a Reap or CheckProposal waits for the mempool to apply the
  // commit events up to the height consensus builds on before answering
  // Unavailable. Not a flag:
  // it must stay below the bus timeout; tests shorten it.
  absl::Duration reap_wait = absl::Seconds(2);

  // Gossip of txs with the other nodes' mempools (docs/mempool.md, "Gossip").
  // Off when p2p_endpoint is empty (one validator, tests).
  //
  // Endpoint this mempool binds for the other nodes' mempools
  // (--mempool_p2p_endpoint), "tcp://0.0.0.0:26605"; empty = no gossip.
  std::string p2p_endpoint;
  // This node's CurveZMQ key file (--mempool_p2p_key) and the network's
  // peers file (--mempool_peers): the same files as consensus's
  // --consensus_p2p_key and --consensus_peers, so both admit the same keys.
  // Peers reach this mempool at its entry's "mempool_endpoint".
  std::string p2p_key_path;
  std::string peers_path;
  // Longest time an admitted tx waits before it is sent to the peers
  // (--mempool_gossip_interval_ms).
  absl::Duration gossip_interval = absl::Milliseconds(20);
  // Most txs and bytes per gossip message (--mempool_gossip_batch_txs,
  // --mempool_gossip_batch_bytes); a batch is sent as soon as it is full.
  uint64_t gossip_batch_txs = 256;
  uint64_t gossip_batch_bytes = 256 * 1024;
  // Most txs waiting to be sent to one peer; beyond it txs for that peer
  // are dropped and counted (--mempool_gossip_queue_txs).
  uint64_t gossip_queue_txs = 10000;
  // Each peer's admission queue of received batches: at most this many
  // batches and bytes (tx bytes plus 64 per tx), one batch always fitting an
  // empty queue; beyond them the peer's batches are dropped and counted
  // against it alone (--mempool_gossip_peer_queue_batches,
  // --mempool_gossip_peer_queue_bytes). The queues are served round-robin.
  uint64_t gossip_peer_queue_batches = 64;
  uint64_t gossip_peer_queue_bytes = uint64_t{8} << 20;
  // A peer whose gossip keeps failing (bad signatures, malformed or
  // wrong-chain txs, undecodable batches) is throttled: after
  // gossip_fail_threshold failed batches within gossip_fail_window its
  // gossip is dropped for gossip_throttle, doubling each time it is
  // throttled again, up to gossip_max_throttle
  // (--mempool_gossip_fail_threshold, --mempool_gossip_fail_window_ms,
  // --mempool_gossip_throttle_ms, --mempool_gossip_max_throttle_ms).
  uint64_t gossip_fail_threshold = 3;
  absl::Duration gossip_fail_window = absl::Seconds(10);
  absl::Duration gossip_throttle = absl::Seconds(1);
  absl::Duration gossip_max_throttle = absl::Seconds(60);

  // Reads the mempool_* flags.
  static MempoolOptions FromFlags();
  // Field by field (a test checks that MempoolOptions{} is FromFlags() with
  // every flag at its declared default).
  bool operator==(const MempoolOptions&) const = default;
  // InvalidArgument naming the first option out of bounds.
  absl::Status Validate() const;
};

// A running mempool: serves MempoolApi (Submit, Reap, CheckProposal) on
// node.mempool_endpoint, follows storage's block.committed events on
// node.storage_events, and (with a p2p_endpoint) gossips admitted txs with
// the other nodes' mempools. Destruction stops it (the bus server first, then
// the event follower and the worker threads).
//
// Thread-safe: Ready() may be called from any thread.
class MempoolService {
 public:
  // Loads the genesis (node.genesis_path), connects to storage
  // (node.storage_endpoint, for the commit events it missed and the replay
  // window), subscribes to node.storage_events and binds
  // node.mempool_endpoint (and the gossip endpoint). Returns NotFound /
  // InvalidArgument for a missing or bad genesis, key or peers file (or a
  // key that is not in the peers file), Unavailable if an endpoint cannot be
  // bound. It does not
  // wait for storage: the service becomes Ready() once it has rebuilt its
  // replay window from storage, and answers Unavailable until then.
  // `ctx` and `metrics` must outlive the service.
  static absl::StatusOr<std::unique_ptr<MempoolService>> Start(
      const NodeConfig& node, const MempoolOptions& opts, zmq::context_t& ctx,
      MetricsRegistry& metrics);

  virtual ~MempoolService();

  // True once the replay window has been rebuilt from storage.
  virtual bool Ready() const = 0;
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_MEMPOOL_SERVICE_H_
