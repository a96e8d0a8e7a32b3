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
// (EncodeGossipBatch). Each peer has its own outgoing queue, a lane of one
// Batcher (consortia/batcher.h) whose flusher thread sends a queue's txs as
// batches of at most max_batch_txs txs and max_batch_bytes bytes (a single
// larger tx goes alone) when its oldest tx has waited flush_interval, or at
// once when the queue holds a full batch.
//
// Outgoing bounds. A peer's outgoing queue holds at most queue_txs txs:
// beyond it new txs for that peer are dropped and counted (a slow or absent
// peer never makes the node grow). Once batched, the PeerNet's own per-peer
// queue (send_hwm batches) applies; a batch it refuses is dropped and
// counted too. Dropped txs are not lost for the network: they stay pending
// on the node that had them and reach a block through it.
//
// Fair admission. Each peer has its own admission queue of received
// batches, bounded by peer_queue_batches batches and peer_queue_bytes bytes
// (tx bytes plus kQueuedTxOverhead per tx; one batch always fits an empty
// queue); a batch over either bound is dropped and counted against that
// peer only. The admission thread serves the peers round-robin, one turn
// per admission call: a turn is the oldest txs of one peer's queue, at most
// kTurnTxs (small batches go together, a larger one takes several turns). So
// a peer's batch waits for at most one turn of each other waiting peer,
// however long their backlogs.
//
// The api first. Submits from this node's api (GossipingMempool) never wait
// in these queues: they run on the caller's thread. Before each admission
// call the admission thread waits until the api Submits that were already
// running have returned, so a gossip call never starts while the api has
// work on the verify pool, and the api's Submit waits for at most one
// admission call already running. The api cannot starve gossip either: the
// admission thread waits only for the calls that were running when it
// looked, never for later ones.
//
// Failing peers. A received tx that no honest peer would send (bad
// signature, malformed, wrong chain: an honest peer forwards only txs its
// own admission accepted) makes its turn a failed one; so does a batch that
// does not decode. A peer with fail_threshold failed turns within
// fail_window is throttled: its queued batches are discarded and every
// batch it sends is dropped (and counted) for a back-off that starts at
// throttle and doubles each time it is throttled again, up to max_throttle;
// once it has neither failed nor been throttled for max_throttle, the next
// back-off starts at throttle again. Duplicates, expired, too-far-ahead,
// too-large, pool-full and sender-limit verdicts are not failures, so a
// peer that relays good txs is never throttled.
//
// Threads. PeerNet's I/O thread only decodes a received batch and queues it.
// One admission thread admits the queued turns through MempoolApi::Submit,
// which verifies the signatures of the turn on the mempool's verify pool.
// The Batcher's flusher thread sends the outgoing batches.
#ifndef CONSORTIA_MEMPOOL_SRC_GOSSIP_H_
#define CONSORTIA_MEMPOOL_SRC_GOSSIP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "consortia/batcher.h"
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
// Most txs of one peer admitted in one turn of the round-robin (one Submit
// call).
inline constexpr size_t kTurnTxs = 256;
// What a queued received tx costs beyond its bytes (its buffer and queue
// entry), charged against peer_queue_bytes.
inline constexpr size_t kQueuedTxOverhead = 64;

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
  // Most txs waiting to be sent to one peer.
  size_t queue_txs = 10000;
  // Most batches, and bytes (tx bytes plus kQueuedTxOverhead per tx),
  // received from one peer and waiting for admission.
  size_t peer_queue_batches = 64;
  size_t peer_queue_bytes = 8 << 20;
  // A peer with fail_threshold failed turns within fail_window is throttled
  // for `throttle`, doubling on each new throttle up to max_throttle.
  size_t fail_threshold = 3;
  absl::Duration fail_window = absl::Seconds(10);
  absl::Duration throttle = absl::Seconds(1);
  absl::Duration max_throttle = absl::Seconds(60);
  // Test hook: the clock of the failure accounting (nullptr = absl::Now).
  std::function<absl::Time()> test_only_clock;
};

// The metrics of one peer, labelled peer="<node id>" (the peers are the
// configured nodes, so the label set is bounded). Default handles are no-ops.
struct GossipPeerMetrics {
  Counter batches_queued;
  Counter dropped_queue_full;  // txs
  Counter dropped_throttled;   // txs
  Counter failed_batches;      // failed turns and undecodable batches
  Counter bad_txs;             // bad signature, malformed, wrong chain
  Counter throttles;
  Gauge queue_batches;
  Gauge queue_bytes;
};

// The gossip metrics; default-constructed handles are no-ops (tests).
struct GossipMetrics {
  Counter txs_sent;  // tx copies handed to PeerNet, over all peers
  Counter batches_sent;
  Counter txs_received;  // txs in well-formed received batches
  Counter batches_received;
  Counter batches_queued;         // received batches queued for admission
  Counter txs_admitted;           // received and newly admitted
  Counter txs_duplicate;          // received, already pending or committed
  Counter txs_rejected;           // received, refused by admission
  Counter dropped_send_queue;     // a peer's queue (or PeerNet's) was full
  Counter dropped_receive_queue;  // the sender's admission queue was full
  Counter dropped_throttled;      // the sender was throttled
  Counter dropped_not_ready;      // received before the mempool was ready
  Counter dropped_malformed;      // txs of batches that did not decode
                                  // (counted as 1 per batch)
  Counter throttles;              // times a peer was throttled
  Gauge peers_connected;
  // The metrics of one peer; nullptr = no-ops.
  std::function<GossipPeerMetrics(const std::string& peer)> for_peer;

  // Registers consortia_mempool_gossip_* in `registry`, which must outlive
  // the returned handles and for_peer.
  static GossipMetrics Create(MetricsRegistry& registry);
};

// Counters since start, for tests and logs.
struct GossipStats {
  uint64_t txs_sent = 0;
  uint64_t batches_sent = 0;
  uint64_t txs_received = 0;
  uint64_t batches_received = 0;
  uint64_t batches_queued = 0;
  uint64_t txs_admitted = 0;
  uint64_t txs_duplicate = 0;
  uint64_t txs_rejected = 0;
  uint64_t dropped_send_queue = 0;
  uint64_t dropped_receive_queue = 0;
  uint64_t dropped_throttled = 0;
  uint64_t dropped_not_ready = 0;
  uint64_t dropped_malformed = 0;
  uint64_t throttles = 0;
  // Txs queued and not yet sent or dropped, and received txs not yet judged.
  uint64_t backlog = 0;
};

// What one peer's gossip did since start, for tests and diagnostics.
struct GossipPeerStats {
  uint64_t batches_queued = 0;
  uint64_t dropped_queue_full = 0;  // txs
  uint64_t dropped_throttled = 0;   // txs
  uint64_t failed_batches = 0;
  uint64_t bad_txs = 0;
  uint64_t throttles = 0;
  uint64_t txs_admitted = 0;
  // Its admission queue now, and the most it ever held.
  uint64_t queue_batches = 0;
  uint64_t queue_bytes = 0;
  uint64_t max_queue_batches = 0;
  uint64_t max_queue_bytes = 0;
  // The current (or last) throttle ends here; InfinitePast if never.
  absl::Time throttled_until = absl::InfinitePast();
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
  // Start wait in their peer's admission queue.
  std::map<uint16_t, PeerHandler> Handlers();
  // Keeps the peers-connected gauge; lives as long as the Gossip.
  PeerNetMetrics* net_metrics() { return &net_metrics_; }

  // Starts the admission thread and the outgoing batcher; `net` (whose
  // Peers() are the peers gossip sends to) must stay alive until Stop
  // returns.
  void Start(PeerNet* net);
  // Stops and joins the threads; queued txs are discarded. Idempotent.
  void Stop();

  // The results of a Submit of `raw_txs` from this node's api: queues the
  // accepted ones for every peer.
  void OnLocalSubmit(const std::vector<Bytes>& raw_txs,
                     const std::vector<SubmitResult>& results);
  // Bracket a Submit from this node's api (GossipingMempool does): the
  // admission thread lets the api calls already running finish before it
  // starts its next call.
  void ApiSubmitBegin();
  void ApiSubmitEnd();

  GossipStats Stats() const;
  // One peer's counters; all zero for a peer that never sent anything.
  GossipPeerStats PeerStats(const std::string& peer) const;

 private:
  // One received batch; txs[next..] still wait.
  struct Received {
    std::vector<Bytes> txs;
    size_t next = 0;
  };
  // A peer's admission queue and failure record.
  struct InPeer {
    std::string id;
    GossipPeerMetrics metrics;
    std::deque<Received> batches;
    size_t bytes = 0;  // charged bytes of the txs still waiting
    // Failure accounting (see the top of this file).
    size_t failures = 0;  // failed turns since window_start
    absl::Time window_start = absl::InfinitePast();
    absl::Time last_failure = absl::InfinitePast();
    absl::Time throttled_until = absl::InfinitePast();
    int level = 0;  // throttles in a row: the next lasts throttle * 2^level
    GossipPeerStats stats;
  };
  // The txs of one peer's turn.
  struct Turn {
    InPeer* peer;
    std::vector<Bytes> txs;
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

  absl::Time Now() const;
  void OnBatch(const std::string& peer_id, Bytes payload);
  InPeer& InPeerLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(in_mu_);
  // Takes one turn of `p`: its oldest queued txs, at most kTurnTxs.
  Turn TakeTurnLocked(InPeer& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(in_mu_);
  // Counts n txs of a throttled peer as dropped.
  void DropThrottledLocked(InPeer& p, uint64_t n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(in_mu_);
  // Counts a failed turn or batch of `p`, and throttles it at the threshold.
  void RecordFailureLocked(InPeer& p, uint64_t bad_txs, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(in_mu_);
  void UpdateQueueGaugesLocked(InPeer& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(in_mu_);
  // Queues txs for every peer but `from` ("" = none).
  void Forward(std::vector<std::shared_ptr<const Bytes>> txs,
               std::string_view from);
  void WorkerLoop();
  Batcher<std::shared_ptr<const Bytes>>::Handlers OutgoingHandlers();
  // Sends one batch to the peer of outgoing lane `lane`.
  void Send(size_t lane, std::vector<std::shared_ptr<const Bytes>> batch);

  const GossipOptions options_;
  MempoolApi* const pool_;
  GossipMetrics metrics_;
  NetMetrics net_metrics_;
  PeerNet* net_ = nullptr;  // set by Start, before the threads

  mutable absl::Mutex in_mu_;
  // Every peer that sent a batch (or that Start found), in order of first
  // appearance; never shrinks, so an InPeer* stays valid. Bounded by the
  // peers file: PeerNet delivers only authenticated, configured peers.
  std::vector<std::unique_ptr<InPeer>> in_peers_ ABSL_GUARDED_BY(in_mu_);
  absl::flat_hash_map<std::string, InPeer*> in_by_id_ ABSL_GUARDED_BY(in_mu_);
  size_t in_batches_ ABSL_GUARDED_BY(in_mu_) = 0;  // over all peers
  size_t cursor_ ABSL_GUARDED_BY(in_mu_) = 0;      // the next peer's turn
  uint64_t api_started_ ABSL_GUARDED_BY(in_mu_) = 0;
  uint64_t api_finished_ ABSL_GUARDED_BY(in_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(in_mu_) = false;

  // The peers gossip sends to (set by Start); out_peers_[i] is the peer of
  // the outgoing lane i.
  mutable absl::Mutex out_mu_;
  std::vector<std::string> out_peers_ ABSL_GUARDED_BY(out_mu_);

  std::thread worker_;

  struct Counters {
    std::atomic<uint64_t> txs_sent{0}, batches_sent{0}, txs_received{0},
        batches_received{0}, batches_queued{0}, txs_admitted{0},
        txs_duplicate{0}, txs_rejected{0}, dropped_send_queue{0},
        dropped_receive_queue{0}, dropped_throttled{0}, dropped_not_ready{0},
        dropped_malformed{0}, throttles{0}, backlog{0};
  };
  Counters counters_;
  // The outgoing queues, one lane per peer. Last: its flusher thread uses
  // the members above.
  Batcher<std::shared_ptr<const Bytes>> out_;
};

// MempoolApi that hands the accepted txs of every Submit to the gossip:
// what the bus server serves when gossip is on. Its Submits go first: the
// gossip's admission thread waits for the ones already running before it
// starts a call (Gossip::ApiSubmitBegin).
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
