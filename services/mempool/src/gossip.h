// Transaction gossip between the mempools of the nodes, over PeerNet.
//
// Protocol. A node forwards every tx it admits to every other node's mempool
// once: the txs admitted from its api (Submit on the bus), and the txs a peer
// sent it that its own admission pipeline newly admitted. A tx received from
// peer P is forwarded to every peer except P. A received tx that is already
// pending or was recently committed (kAlreadyPending, kAlreadyCommitted) is a
// duplicate: counted, never forwarded again, so a tx crosses each link at
// most once in each direction and the flood stops after one round. A
// received tx that fails admission (bad signature, wrong chain, expired,
// pool full, ...) is counted as rejected and not forwarded.
//
// Wire. One PeerNet message of type MsgType::kMempoolGossipTxs per batch; its
// payload is a varint count followed by each raw tx, length-prefixed
// (EncodeGossipBatch). Each peer has its own outgoing queue; a flusher thread
// sends a queue's txs as batches of at most max_batch_txs txs and
// max_batch_bytes bytes (a single larger tx goes alone) every
// flush_interval, or at once when a queue holds a full batch.
//
// Bounds. A peer's outgoing queue holds at most queue_txs txs: beyond it new
// txs for that peer are dropped and counted (a slow or absent peer never
// makes the node grow). Once batched, the PeerNet's own per-peer queue
// (send_hwm batches) applies; a batch it refuses is dropped and counted too.
// Received batches wait for admission in one queue of at most queue_txs txs;
// a batch that does not fit is dropped and counted. Dropped txs are not lost
// for the network: they stay pending on the node that had them and reach a
// block through it.
//
// Threads. PeerNet's I/O thread only decodes a received batch and queues it.
// One worker thread admits the queued batches (several at once, up to
// kMaxAdmitTxs txs) through MempoolApi::Submit, which verifies the
// signatures of the whole batch on the mempool's verify pool. One flusher
// thread sends the outgoing batches.
#ifndef CONSORTIA_MEMPOOL_SRC_GOSSIP_H_
#define CONSORTIA_MEMPOOL_SRC_GOSSIP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "consortia/bytes.h"
#include "consortia/metrics.h"
#include "consortia/peer_net.h"
#include "consortia/service_api.h"

namespace consortia::mempool {

// Largest number of txs in one received batch; a larger count is malformed.
inline constexpr size_t kMaxGossipBatchTxs = 10000;
// Most bytes of one gossip message a node accepts (PeerNet closes a
// connection that sends a larger one). Batches are cut well below it.
inline constexpr int64_t kMaxGossipMessageBytes = 16 << 20;

// The payload of a kMempoolGossipTxs message.
Bytes EncodeGossipBatch(const std::vector<std::shared_ptr<const Bytes>>& txs);
// InvalidArgument for truncated input, trailing bytes, more than
// kMaxGossipBatchTxs txs or a tx over kMaxTxBytes.
absl::StatusOr<std::vector<Bytes>> DecodeGossipBatch(ByteView payload);

struct GossipOptions {
  // How long txs may wait in a peer's queue before they are sent.
  absl::Duration flush_interval = absl::Milliseconds(20);
  size_t max_batch_txs = 256;
  size_t max_batch_bytes = 256 << 10;
  // Most txs waiting for one peer, and most received txs waiting for
  // admission.
  size_t queue_txs = 10000;
};

// The gossip metrics; default-constructed handles are no-ops (tests).
struct GossipMetrics {
  Counter txs_sent;  // tx copies handed to PeerNet, over all peers
  Counter batches_sent;
  Counter txs_received;  // txs in well-formed received batches
  Counter batches_received;
  Counter txs_admitted;           // received and newly admitted
  Counter txs_duplicate;          // received, already pending or committed
  Counter txs_rejected;           // received, refused by admission
  Counter dropped_send_queue;     // a peer's queue (or PeerNet's) was full
  Counter dropped_receive_queue;  // the admission queue was full
  Counter dropped_not_ready;      // received before the mempool was ready
  Counter dropped_malformed;      // txs of batches that did not decode
                                  // (counted as 1 per batch)
  Gauge peers_connected;

  // Registers consortia_mempool_gossip_* in `registry`.
  static GossipMetrics Create(MetricsRegistry& registry);
};

// Counters since start, for tests and logs.
struct GossipStats {
  uint64_t txs_sent = 0;
  uint64_t batches_sent = 0;
  uint64_t txs_received = 0;
  uint64_t batches_received = 0;
  uint64_t txs_admitted = 0;
  uint64_t txs_duplicate = 0;
  uint64_t txs_rejected = 0;
  uint64_t dropped_send_queue = 0;
  uint64_t dropped_receive_queue = 0;
  uint64_t dropped_not_ready = 0;
  uint64_t dropped_malformed = 0;
  // Txs queued and not yet sent or dropped, and received txs not yet judged.
  uint64_t backlog = 0;
};

// Gossip of one node. Lifecycle: construct, give Handlers() and
// net_metrics() to the PeerNet, Start(net), ..., Stop() (or destroy), then
// destroy the PeerNet. Thread-safe.
class Gossip {
 public:
  // `pool` (where received txs are admitted) must outlive the Gossip.
  Gossip(const GossipOptions& options, MempoolApi* pool,
         GossipMetrics metrics = {});
  ~Gossip();

  Gossip(const Gossip&) = delete;
  Gossip& operator=(const Gossip&) = delete;

  // The PeerNet handlers (kMempoolGossipTxs). Batches that arrive before
  // Start wait in the admission queue.
  std::map<uint16_t, PeerHandler> Handlers();
  // Keeps the peers-connected gauge; lives as long as the Gossip.
  PeerNetMetrics* net_metrics() { return &net_metrics_; }

  // Starts the worker and flusher threads; `net` (whose Peers() are the
  // peers gossip sends to) must stay alive until Stop returns.
  void Start(PeerNet* net);
  // Stops and joins the threads; queued txs are discarded. Idempotent.
  void Stop();

  // The results of a Submit of `raw_txs` from this node's api: queues the
  // accepted ones for every peer.
  void OnLocalSubmit(const std::vector<Bytes>& raw_txs,
                     const std::vector<SubmitResult>& results);

  GossipStats Stats() const;

 private:
  struct Received {
    std::string from;
    std::vector<Bytes> txs;
  };
  struct PeerQueue {
    std::string id;
    std::deque<std::shared_ptr<const Bytes>> txs;
    size_t bytes = 0;
  };
  class NetMetrics final : public PeerNetMetrics {
   public:
    explicit NetMetrics(Gauge gauge) : gauge_(gauge) {}
    void PeersConnected(size_t connected) override {
      gauge_.Set(static_cast<double>(connected));
    }

   private:
    Gauge gauge_;
  };

  void OnBatch(const std::string& peer_id, Bytes payload);
  // Queues txs for every peer but `from` ("" = none).
  void Forward(std::vector<std::shared_ptr<const Bytes>> txs,
               std::string_view from);
  void WorkerLoop();
  void FlusherLoop();
  // Sends every peer's queued txs, in batches.
  void Flush();
  bool FullBatchLocked(const PeerQueue& q) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(out_mu_);

  const GossipOptions options_;
  MempoolApi* const pool_;
  GossipMetrics metrics_;
  NetMetrics net_metrics_;
  PeerNet* net_ = nullptr;  // set by Start, before the threads

  mutable absl::Mutex in_mu_;
  std::deque<Received> in_ ABSL_GUARDED_BY(in_mu_);
  size_t in_txs_ ABSL_GUARDED_BY(in_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(in_mu_) = false;

  mutable absl::Mutex out_mu_;
  std::vector<PeerQueue> out_ ABSL_GUARDED_BY(out_mu_);
  bool full_batch_ready_ ABSL_GUARDED_BY(out_mu_) = false;
  bool out_stopping_ ABSL_GUARDED_BY(out_mu_) = false;

  std::thread worker_;
  std::thread flusher_;

  struct Counters {
    std::atomic<uint64_t> txs_sent{0}, batches_sent{0}, txs_received{0},
        batches_received{0}, txs_admitted{0}, txs_duplicate{0}, txs_rejected{0},
        dropped_send_queue{0}, dropped_receive_queue{0}, dropped_not_ready{0},
        dropped_malformed{0}, backlog{0};
  };
  Counters counters_;
};

// MempoolApi that hands the accepted txs of every Submit to the gossip:
// what the bus server serves when gossip is on.
class GossipingMempool final : public MempoolApi {
 public:
  // Both must outlive it.
  GossipingMempool(MempoolApi* inner, Gossip* gossip)
      : inner_(inner), gossip_(gossip) {}

  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override;
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override {
    return inner_->Reap(req);
  }
  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height) override {
    return inner_->CheckProposal(raw_txs, height);
  }

 private:
  MempoolApi* const inner_;
  Gossip* const gossip_;
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_SRC_GOSSIP_H_
