#include "gossip.h"

#include <algorithm>
#include <map>
#include <utility>

#include "consortia/codec.h"
#include "consortia/log.h"
#include "consortia/types.h"

namespace consortia::mempool {
namespace {

// A received tx that no honest peer would send: an honest peer forwards
// only txs that its own admission accepted, with the same chain and rules
// (limits that are local options, and the timing of expiry, differ from node
// to node and are not faults).
bool IsFault(Admission code) {
  return code == Admission::kBadSignature || code == Admission::kMalformed ||
         code == Admission::kWrongChain;
}

size_t Charge(const Bytes& tx) { return tx.size() + kQueuedTxOverhead; }

void Add(std::atomic<uint64_t>& counter, Counter& metric, uint64_t n) {
  if (n == 0) return;
  counter.fetch_add(n, std::memory_order_relaxed);
  metric.Inc(static_cast<double>(n));
}

// The outgoing batches: one Batcher lane per peer, sends on its flusher
// thread (PeerNet::Send does not block).
BatcherOptions OutgoingOptions(const GossipOptions& o) {
  BatcherOptions b;
  b.max_items = o.max_batch_txs;
  b.max_bytes = o.max_batch_bytes;
  b.linger = o.flush_interval;
  b.max_queued = o.queue_txs;
  b.flush_threads = 0;
  return b;
}

}  // namespace

Bytes EncodeGossipBatch(const std::vector<std::shared_ptr<const Bytes>>& txs) {
  Encoder enc;
  enc.PutVarint(txs.size());
  for (const auto& tx : txs) enc.PutBytes(*tx);
  return enc.Take();
}

absl::StatusOr<std::vector<Bytes>> DecodeGossipBatch(ByteView payload) {
  Decoder dec(payload);
  uint64_t n = 0;
  if (absl::Status s = dec.GetCount(&n, kMaxGossipBatchTxs); !s.ok()) {
    return s;
  }
  std::vector<Bytes> txs(n);
  for (Bytes& tx : txs) {
    if (absl::Status s = dec.GetBytes(&tx, kMaxTxBytes); !s.ok()) return s;
  }
  if (absl::Status s = dec.ExpectEnd(); !s.ok()) return s;
  return txs;
}

GossipMetrics GossipMetrics::Create(MetricsRegistry& registry) {
  GossipMetrics m;
  m.txs_sent = registry.GetCounter(
      "consortia_mempool_gossip_txs_sent_total",
      "Transactions sent to peers' mempools (one per tx and peer).");
  m.batches_sent =
      registry.GetCounter("consortia_mempool_gossip_batches_sent_total",
                          "Gossip batches sent to peers.");
  m.txs_received =
      registry.GetCounter("consortia_mempool_gossip_txs_received_total",
                          "Transactions received from peers' mempools.");
  m.batches_received =
      registry.GetCounter("consortia_mempool_gossip_batches_received_total",
                          "Gossip batches received from peers.");
  m.batches_queued = registry.GetCounter(
      "consortia_mempool_gossip_batches_queued_total",
      "Gossip batches received and queued for admission in their peer's "
      "queue.");
  m.txs_admitted = registry.GetCounter(
      "consortia_mempool_gossip_txs_admitted_total",
      "Transactions received from peers and newly admitted (then forwarded "
      "to the other peers).");
  m.txs_duplicate = registry.GetCounter(
      "consortia_mempool_gossip_txs_duplicate_total",
      "Transactions received from peers that were already pending or "
      "recently committed (not forwarded).");
  m.txs_rejected = registry.GetCounter(
      "consortia_mempool_gossip_txs_rejected_total",
      "Transactions received from peers that admission refused (bad "
      "signature, expired, pool full, ...; not forwarded).");
  const char* const dropped_help =
      "Gossiped transactions dropped, by reason: a peer's send queue or the "
      "sender's admission queue was full, the sender was throttled, the "
      "mempool was not ready, or the batch did not decode (counted once per "
      "batch).";
  const char* const dropped_name = "consortia_mempool_gossip_dropped_total";
  m.dropped_send_queue = registry.GetCounter(dropped_name, dropped_help,
                                             {{"reason", "send_queue_full"}});
  m.dropped_receive_queue = registry.GetCounter(
      dropped_name, dropped_help, {{"reason", "receive_queue_full"}});
  m.dropped_throttled = registry.GetCounter(dropped_name, dropped_help,
                                            {{"reason", "throttled"}});
  m.dropped_not_ready = registry.GetCounter(dropped_name, dropped_help,
                                            {{"reason", "not_ready"}});
  m.dropped_malformed = registry.GetCounter(dropped_name, dropped_help,
                                            {{"reason", "malformed"}});
  m.throttles = registry.GetCounter(
      "consortia_mempool_gossip_throttles_total",
      "Times a peer was throttled for sending failing gossip (bad "
      "signatures, malformed or wrong-chain txs, undecodable batches).");
  m.peers_connected =
      registry.GetGauge("consortia_mempool_gossip_peers_connected",
                        "Peers' mempools this node's gossip is connected to.");
  MetricsRegistry* r = &registry;
  m.for_peer = [r](const std::string& peer) {
    const std::map<std::string, std::string> label = {{"peer", peer}};
    GossipPeerMetrics p;
    p.batches_queued = r->GetCounter(
        "consortia_mempool_gossip_peer_batches_queued_total",
        "Gossip batches from this peer queued for admission.", label);
    const char* const dropped_help =
        "Transactions from this peer dropped before admission: its "
        "admission queue was full, or it was throttled.";
    p.dropped_queue_full = r->GetCounter(
        "consortia_mempool_gossip_peer_dropped_total", dropped_help,
        {{"peer", peer}, {"reason", "receive_queue_full"}});
    p.dropped_throttled =
        r->GetCounter("consortia_mempool_gossip_peer_dropped_total",
                      dropped_help, {{"peer", peer}, {"reason", "throttled"}});
    p.failed_batches = r->GetCounter(
        "consortia_mempool_gossip_peer_failed_batches_total",
        "Turns of this peer's batches that held a bad-signature, malformed "
        "or wrong-chain tx, and its batches that did not decode.",
        label);
    p.bad_txs = r->GetCounter(
        "consortia_mempool_gossip_peer_bad_txs_total",
        "Transactions from this peer with a bad signature, malformed or of "
        "another chain.",
        label);
    p.throttles = r->GetCounter(
        "consortia_mempool_gossip_peer_throttles_total",
        "Times this peer was throttled for failing gossip.", label);
    p.queue_batches =
        r->GetGauge("consortia_mempool_gossip_peer_queue_batches",
                    "Batches from this peer waiting for admission.", label);
    p.queue_bytes = r->GetGauge(
        "consortia_mempool_gossip_peer_queue_bytes",
        "Bytes from this peer waiting for admission (tx bytes plus a fixed "
        "overhead per tx).",
        label);
    return p;
  };
  return m;
}

Gossip::Gossip(const GossipOptions& options, MempoolApi* pool,
               GossipMetrics metrics)
    : options_(options),
      pool_(pool),
      metrics_(std::move(metrics)),
      net_metrics_(metrics_.peers_connected),
      out_(OutgoingOptions(options), OutgoingHandlers()) {}

Batcher<std::shared_ptr<const Bytes>>::Handlers Gossip::OutgoingHandlers() {
  Batcher<std::shared_ptr<const Bytes>>::Handlers h;
  h.flush = [this](size_t lane,
                   std::vector<std::shared_ptr<const Bytes>> batch) {
    Send(lane, std::move(batch));
  };
  h.bytes = [](const std::shared_ptr<const Bytes>& tx) { return tx->size(); };
  // Stop discards what is still queued (h.drop unset).
  return h;
}

Gossip::~Gossip() { Stop(); }

std::map<uint16_t, PeerHandler> Gossip::Handlers() {
  return {{static_cast<uint16_t>(MsgType::kMempoolGossipTxs),
           [this](const std::string& peer_id, const Envelope&, Bytes payload) {
             OnBatch(peer_id, std::move(payload));
           }}};
}

absl::Time Gossip::Now() const {
  return options_.test_only_clock ? options_.test_only_clock() : absl::Now();
}

void Gossip::Start(PeerNet* net) {
  net_ = net;
  {
    // Every configured peer has its queue and metrics from the start.
    absl::MutexLock lock(&in_mu_);
    for (const PeerStatus& p : net->Peers()) InPeerLocked(p.id);
  }
  {
    absl::MutexLock lock(&out_mu_);
    for (const PeerStatus& p : net->Peers()) out_peers_.push_back(p.id);
  }
  worker_ = std::thread([this] { WorkerLoop(); });
  out_.Start();
}

void Gossip::Stop() {
  {
    absl::MutexLock lock(&in_mu_);
    stopping_ = true;
  }
  // The txs still queued for the peers are discarded.
  out_.Stop();
  if (worker_.joinable()) worker_.join();
}

Gossip::InPeer& Gossip::InPeerLocked(const std::string& id) {
  auto it = in_by_id_.find(id);
  if (it != in_by_id_.end()) return *it->second;
  auto peer = std::make_unique<InPeer>();
  peer->id = id;
  if (metrics_.for_peer) peer->metrics = metrics_.for_peer(id);
  InPeer* p = peer.get();
  in_peers_.push_back(std::move(peer));
  in_by_id_.emplace(id, p);
  return *p;
}

void Gossip::UpdateQueueGaugesLocked(InPeer& p) {
  p.metrics.queue_batches.Set(static_cast<double>(p.batches.size()));
  p.metrics.queue_bytes.Set(static_cast<double>(p.bytes));
}

void Gossip::OnBatch(const std::string& peer_id, Bytes payload) {
  const absl::Time now = Now();
  {
    // A throttled peer's batches are dropped before any work is spent on
    // them (the count is read without decoding the txs).
    absl::MutexLock lock(&in_mu_);
    InPeer& p = InPeerLocked(peer_id);
    if (now < p.throttled_until) {
      Decoder dec(payload);
      uint64_t n = 0;
      if (!dec.GetCount(&n, kMaxGossipBatchTxs).ok()) n = 1;
      DropThrottledLocked(p, n);
      return;
    }
  }
  absl::StatusOr<std::vector<Bytes>> txs = DecodeGossipBatch(payload);
  if (!txs.ok()) {
    Add(counters_.dropped_malformed, metrics_.dropped_malformed, 1);
    spdlog::warn("gossip: dropped a malformed batch from {}: {}", peer_id,
                 txs.status().ToString());
    absl::MutexLock lock(&in_mu_);
    RecordFailureLocked(InPeerLocked(peer_id), 0, now);
    return;
  }
  const size_t n = txs->size();
  Add(counters_.batches_received, metrics_.batches_received, 1);
  Add(counters_.txs_received, metrics_.txs_received, n);
  if (n == 0) return;
  size_t charge = 0;
  for (const Bytes& tx : *txs) charge += Charge(tx);
  absl::MutexLock lock(&in_mu_);
  if (stopping_) return;
  InPeer& p = InPeerLocked(peer_id);
  // The peer may have been throttled while this batch was decoded: its
  // queue was discarded then, and the batch goes the same way.
  if (now < p.throttled_until) {
    DropThrottledLocked(p, n);
    return;
  }
  // One batch always fits an empty queue, whatever its size, so that a peer
  // configured with larger batches is not starved.
  if (!p.batches.empty() && (p.batches.size() >= options_.peer_queue_batches ||
                             p.bytes + charge > options_.peer_queue_bytes)) {
    p.stats.dropped_queue_full += n;
    p.metrics.dropped_queue_full.Inc(static_cast<double>(n));
    Add(counters_.dropped_receive_queue, metrics_.dropped_receive_queue, n);
    return;
  }
  p.batches.push_back(Received{*std::move(txs), 0});
  p.bytes += charge;
  ++in_batches_;
  ++p.stats.batches_queued;
  p.stats.max_queue_batches =
      std::max<uint64_t>(p.stats.max_queue_batches, p.batches.size());
  p.stats.max_queue_bytes =
      std::max<uint64_t>(p.stats.max_queue_bytes, p.bytes);
  p.metrics.batches_queued.Inc();
  UpdateQueueGaugesLocked(p);
  Add(counters_.batches_queued, metrics_.batches_queued, 1);
  counters_.backlog.fetch_add(n, std::memory_order_relaxed);
}

void Gossip::DropThrottledLocked(InPeer& p, uint64_t n) {
  p.stats.dropped_throttled += n;
  p.metrics.dropped_throttled.Inc(static_cast<double>(n));
  Add(counters_.dropped_throttled, metrics_.dropped_throttled, n);
}

Gossip::Turn Gossip::TakeTurnLocked(InPeer& p) {
  Turn turn{&p, {}};
  // Small batches are taken together, so the verify pool has work to share.
  while (!p.batches.empty() && turn.txs.size() < kTurnTxs) {
    Received& b = p.batches.front();
    const size_t end =
        std::min(b.txs.size(), b.next + (kTurnTxs - turn.txs.size()));
    for (; b.next < end; ++b.next) {
      p.bytes -= Charge(b.txs[b.next]);
      turn.txs.push_back(std::move(b.txs[b.next]));
    }
    if (b.next == b.txs.size()) {
      p.batches.pop_front();
      --in_batches_;
    }
  }
  UpdateQueueGaugesLocked(p);
  return turn;
}

void Gossip::RecordFailureLocked(InPeer& p, uint64_t bad_txs, absl::Time now) {
  ++p.stats.failed_batches;
  p.stats.bad_txs += bad_txs;
  p.metrics.failed_batches.Inc();
  p.metrics.bad_txs.Inc(static_cast<double>(bad_txs));
  if (now < p.throttled_until) return;  // a turn taken before the throttle
  // A peer quiet (no failure, no throttle) for max_throttle starts again at
  // the first back-off.
  if (now - std::max(p.last_failure, p.throttled_until) >=
      options_.max_throttle) {
    p.level = 0;
  }
  if (p.failures == 0 || now - p.window_start > options_.fail_window) {
    p.window_start = now;
    p.failures = 0;
  }
  ++p.failures;
  p.last_failure = now;
  if (p.failures < options_.fail_threshold) return;

  absl::Duration backoff = options_.throttle;
  for (int i = 0; i < p.level && backoff < options_.max_throttle; ++i) {
    backoff *= 2;
  }
  backoff = std::min(backoff, options_.max_throttle);
  ++p.level;
  p.failures = 0;
  p.throttled_until = now + backoff;
  // What it queued is dropped too: it would be served at the honest peers'
  // expense.
  size_t discarded = 0;
  for (Received& b : p.batches) discarded += b.txs.size() - b.next;
  in_batches_ -= p.batches.size();
  p.batches.clear();
  p.bytes = 0;
  UpdateQueueGaugesLocked(p);
  counters_.backlog.fetch_sub(discarded, std::memory_order_relaxed);
  DropThrottledLocked(p, discarded);
  ++p.stats.throttles;
  p.metrics.throttles.Inc();
  Add(counters_.throttles, metrics_.throttles, 1);
  // At most one line per throttle of a peer.
  spdlog::warn(
      "gossip: peer {} sent {} failing batches within {} ({} bad txs so "
      "far); dropping its gossip for {}",
      p.id, options_.fail_threshold, absl::FormatDuration(options_.fail_window),
      p.stats.bad_txs, absl::FormatDuration(backoff));
}

void Gossip::ApiSubmitBegin() {
  absl::MutexLock lock(&in_mu_);
  ++api_started_;
}

void Gossip::ApiSubmitEnd() {
  absl::MutexLock lock(&in_mu_);
  ++api_finished_;
}

void Gossip::WorkerLoop() {
  while (true) {
    Turn turn{nullptr, {}};
    {
      absl::MutexLock lock(&in_mu_);
      auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(in_mu_) {
        return stopping_ || in_batches_ > 0;
      };
      in_mu_.Await(absl::Condition(&has_work));
      if (stopping_) return;
      // The api first: let the Submits already running finish (not the ones
      // that start meanwhile, so the api cannot starve the peers).
      const uint64_t api_running = api_started_;
      auto api_done = [this, api_running]() ABSL_SHARED_LOCKS_REQUIRED(in_mu_) {
        return stopping_ || api_finished_ >= api_running;
      };
      in_mu_.Await(absl::Condition(&api_done));
      if (stopping_) return;
      // The turn of the next peer with work, after the last one served.
      const size_t peers = in_peers_.size();
      for (size_t k = 0; k < peers; ++k) {
        const size_t i = (cursor_ + k) % peers;
        if (in_peers_[i]->batches.empty()) continue;
        turn = TakeTurnLocked(*in_peers_[i]);
        cursor_ = (i + 1) % peers;
        break;
      }
    }
    if (turn.peer == nullptr) continue;  // discarded by a throttle meanwhile
    const size_t total = turn.txs.size();
    std::vector<Bytes>& raw = turn.txs;
    absl::StatusOr<std::vector<SubmitResult>> results = pool_->Submit(raw);
    if (!results.ok() || results->size() != total) {
      Add(counters_.dropped_not_ready, metrics_.dropped_not_ready, total);
      counters_.backlog.fetch_sub(total, std::memory_order_relaxed);
      continue;
    }
    size_t duplicate = 0, rejected = 0, faults = 0;
    std::vector<std::shared_ptr<const Bytes>> forward;
    for (size_t i = 0; i < total; ++i) {
      const Admission code = (*results)[i].code;
      switch (code) {
        case Admission::kAccepted:
          forward.push_back(std::make_shared<const Bytes>(std::move(raw[i])));
          break;
        case Admission::kAlreadyPending:
        case Admission::kAlreadyCommitted:
          ++duplicate;
          break;
        default:
          ++rejected;
          if (IsFault(code)) ++faults;
          break;
      }
    }
    const size_t admitted = forward.size();
    if (!forward.empty()) Forward(std::move(forward), turn.peer->id);
    {
      const absl::Time now = Now();
      absl::MutexLock lock(&in_mu_);
      turn.peer->stats.txs_admitted += admitted;
      if (faults > 0) RecordFailureLocked(*turn.peer, faults, now);
    }
    Add(counters_.txs_admitted, metrics_.txs_admitted, admitted);
    Add(counters_.txs_duplicate, metrics_.txs_duplicate, duplicate);
    Add(counters_.txs_rejected, metrics_.txs_rejected, rejected);
    counters_.backlog.fetch_sub(total, std::memory_order_relaxed);
  }
}

void Gossip::OnLocalSubmit(const std::vector<Bytes>& raw_txs,
                           const std::vector<SubmitResult>& results) {
  std::vector<std::shared_ptr<const Bytes>> forward;
  for (size_t i = 0; i < raw_txs.size() && i < results.size(); ++i) {
    if (results[i].code == Admission::kAccepted) {
      forward.push_back(std::make_shared<const Bytes>(raw_txs[i]));
    }
  }
  if (!forward.empty()) Forward(std::move(forward), "");
}

void Gossip::Forward(std::vector<std::shared_ptr<const Bytes>> txs,
                     std::string_view from) {
  size_t dropped = 0;
  absl::MutexLock lock(&out_mu_);
  for (size_t lane = 0; lane < out_peers_.size(); ++lane) {
    if (out_peers_[lane] == from) continue;
    for (const auto& tx : txs) {
      // Counted before it is queued, so that a Send never subtracts first.
      counters_.backlog.fetch_add(1, std::memory_order_relaxed);
      std::shared_ptr<const Bytes> copy = tx;
      absl::Status s = out_.Add(lane, std::move(copy));
      if (!s.ok()) {
        counters_.backlog.fetch_sub(1, std::memory_order_relaxed);
        // A full queue drops and counts; once stopping, txs are discarded.
        if (absl::IsResourceExhausted(s)) ++dropped;
      }
    }
  }
  Add(counters_.dropped_send_queue, metrics_.dropped_send_queue, dropped);
}

void Gossip::Send(size_t lane,
                  std::vector<std::shared_ptr<const Bytes>> batch) {
  std::string peer;
  {
    absl::MutexLock lock(&out_mu_);
    peer = out_peers_[lane];
  }
  const Bytes payload = EncodeGossipBatch(batch);
  absl::Status s = net_->Send(
      peer, static_cast<uint16_t>(MsgType::kMempoolGossipTxs), payload);
  if (s.ok()) {
    Add(counters_.txs_sent, metrics_.txs_sent, batch.size());
    Add(counters_.batches_sent, metrics_.batches_sent, 1);
  } else {
    Add(counters_.dropped_send_queue, metrics_.dropped_send_queue,
        batch.size());
  }
  counters_.backlog.fetch_sub(batch.size(), std::memory_order_relaxed);
}

GossipStats Gossip::Stats() const {
  auto get = [](const std::atomic<uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
  };
  const Counters& c = counters_;
  GossipStats s;
  s.txs_sent = get(c.txs_sent);
  s.batches_sent = get(c.batches_sent);
  s.txs_received = get(c.txs_received);
  s.batches_received = get(c.batches_received);
  s.batches_queued = get(c.batches_queued);
  s.txs_admitted = get(c.txs_admitted);
  s.txs_duplicate = get(c.txs_duplicate);
  s.txs_rejected = get(c.txs_rejected);
  s.dropped_send_queue = get(c.dropped_send_queue);
  s.dropped_receive_queue = get(c.dropped_receive_queue);
  s.dropped_throttled = get(c.dropped_throttled);
  s.dropped_not_ready = get(c.dropped_not_ready);
  s.dropped_malformed = get(c.dropped_malformed);
  s.throttles = get(c.throttles);
  s.backlog = get(c.backlog);
  return s;
}

GossipPeerStats Gossip::PeerStats(const std::string& peer) const {
  absl::MutexLock lock(&in_mu_);
  auto it = in_by_id_.find(peer);
  if (it == in_by_id_.end()) return {};
  GossipPeerStats s = it->second->stats;
  s.queue_batches = it->second->batches.size();
  s.queue_bytes = it->second->bytes;
  s.throttled_until = it->second->throttled_until;
  return s;
}

absl::StatusOr<std::vector<SubmitResult>> GossipingMempool::Submit(
    const std::vector<Bytes>& raw_txs) {
  gossip_->ApiSubmitBegin();
  absl::StatusOr<std::vector<SubmitResult>> results = inner_->Submit(raw_txs);
  gossip_->ApiSubmitEnd();
  if (results.ok()) gossip_->OnLocalSubmit(raw_txs, *results);
  return results;
}

}  // namespace consortia::mempool
