#include "gossip.h"

#include <algorithm>
#include <utility>

#include "consortia/codec.h"
#include "consortia/log.h"
#include "consortia/types.h"

namespace consortia::mempool {
namespace {

// Most received txs admitted in one Submit: several small batches are
// admitted together so that the verify pool has enough work to share, but a
// call stays short enough not to hold up the next batches.
constexpr size_t kMaxAdmitTxs = 1024;

void Add(std::atomic<uint64_t>& counter, Counter& metric, uint64_t n) {
  if (n == 0) return;
  counter.fetch_add(n, std::memory_order_relaxed);
  metric.Inc(static_cast<double>(n));
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
      "admission queue was full, the mempool was not ready, or the batch "
      "did not decode (counted once per batch).";
  const char* const dropped_name = "consortia_mempool_gossip_dropped_total";
  m.dropped_send_queue = registry.GetCounter(dropped_name, dropped_help,
                                             {{"reason", "send_queue_full"}});
  m.dropped_receive_queue = registry.GetCounter(
      dropped_name, dropped_help, {{"reason", "receive_queue_full"}});
  m.dropped_not_ready = registry.GetCounter(dropped_name, dropped_help,
                                            {{"reason", "not_ready"}});
  m.dropped_malformed = registry.GetCounter(dropped_name, dropped_help,
                                            {{"reason", "malformed"}});
  m.peers_connected =
      registry.GetGauge("consortia_mempool_gossip_peers_connected",
                        "Peers' mempools this node's gossip is connected to.");
  return m;
}

Gossip::Gossip(const GossipOptions& options, MempoolApi* pool,
               GossipMetrics metrics)
    : options_(options),
      pool_(pool),
      metrics_(std::move(metrics)),
      net_metrics_(metrics_.peers_connected) {}

Gossip::~Gossip() { Stop(); }

std::map<uint16_t, PeerHandler> Gossip::Handlers() {
  return {{static_cast<uint16_t>(MsgType::kMempoolGossipTxs),
           [this](const std::string& peer_id, const Envelope&, Bytes payload) {
             OnBatch(peer_id, std::move(payload));
           }}};
}

void Gossip::Start(PeerNet* net) {
  net_ = net;
  {
    absl::MutexLock lock(&out_mu_);
    for (const PeerStatus& p : net->Peers()) {
      PeerQueue q;
      q.id = p.id;
      out_.push_back(std::move(q));
    }
  }
  worker_ = std::thread([this] { WorkerLoop(); });
  flusher_ = std::thread([this] { FlusherLoop(); });
}

void Gossip::Stop() {
  {
    absl::MutexLock lock(&in_mu_);
    stopping_ = true;
  }
  {
    absl::MutexLock lock(&out_mu_);
    out_stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  if (flusher_.joinable()) flusher_.join();
}

void Gossip::OnBatch(const std::string& peer_id, Bytes payload) {
  absl::StatusOr<std::vector<Bytes>> txs = DecodeGossipBatch(payload);
  if (!txs.ok()) {
    Add(counters_.dropped_malformed, metrics_.dropped_malformed, 1);
    spdlog::warn("gossip: dropped a malformed batch from {}: {}", peer_id,
                 txs.status().ToString());
    return;
  }
  const size_t n = txs->size();
  Add(counters_.batches_received, metrics_.batches_received, 1);
  Add(counters_.txs_received, metrics_.txs_received, n);
  if (n == 0) return;
  {
    absl::MutexLock lock(&in_mu_);
    if (stopping_) return;
    // One batch always fits an empty queue, whatever its size, so that a
    // peer configured with larger batches is not starved.
    if (in_.empty() || in_txs_ + n <= options_.queue_txs) {
      in_txs_ += n;
      counters_.backlog.fetch_add(n, std::memory_order_relaxed);
      in_.push_back(Received{peer_id, *std::move(txs)});
      return;
    }
  }
  Add(counters_.dropped_receive_queue, metrics_.dropped_receive_queue, n);
}

void Gossip::WorkerLoop() {
  while (true) {
    std::vector<Received> batches;
    size_t total = 0;
    {
      absl::MutexLock lock(&in_mu_);
      auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(in_mu_) {
        return stopping_ || !in_.empty();
      };
      in_mu_.Await(absl::Condition(&has_work));
      if (stopping_) return;
      while (!in_.empty() && (batches.empty() ||
                              total + in_.front().txs.size() <= kMaxAdmitTxs)) {
        total += in_.front().txs.size();
        batches.push_back(std::move(in_.front()));
        in_.pop_front();
      }
      in_txs_ -= total;
    }
    std::vector<Bytes> raw;
    raw.reserve(total);
    for (Received& b : batches) {
      for (Bytes& tx : b.txs) raw.push_back(std::move(tx));
    }
    absl::StatusOr<std::vector<SubmitResult>> results = pool_->Submit(raw);
    if (!results.ok() || results->size() != total) {
      Add(counters_.dropped_not_ready, metrics_.dropped_not_ready, total);
      counters_.backlog.fetch_sub(total, std::memory_order_relaxed);
      continue;
    }
    size_t admitted = 0, duplicate = 0, rejected = 0;
    size_t i = 0;
    for (const Received& b : batches) {
      std::vector<std::shared_ptr<const Bytes>> forward;
      for (size_t k = 0; k < b.txs.size(); ++k, ++i) {
        switch ((*results)[i].code) {
          case Admission::kAccepted:
            ++admitted;
            forward.push_back(std::make_shared<const Bytes>(std::move(raw[i])));
            break;
          case Admission::kAlreadyPending:
          case Admission::kAlreadyCommitted:
            ++duplicate;
            break;
          default:
            ++rejected;
            break;
        }
      }
      if (!forward.empty()) Forward(std::move(forward), b.from);
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

bool Gossip::FullBatchLocked(const PeerQueue& q) const {
  return q.txs.size() >= options_.max_batch_txs ||
         q.bytes >= options_.max_batch_bytes;
}

void Gossip::Forward(std::vector<std::shared_ptr<const Bytes>> txs,
                     std::string_view from) {
  size_t dropped = 0;
  size_t queued = 0;
  {
    absl::MutexLock lock(&out_mu_);
    for (PeerQueue& q : out_) {
      if (q.id == from) continue;
      for (const auto& tx : txs) {
        if (q.txs.size() >= options_.queue_txs) {
          ++dropped;
          continue;
        }
        q.bytes += tx->size();
        q.txs.push_back(tx);
        ++queued;
      }
      if (FullBatchLocked(q)) full_batch_ready_ = true;
    }
    // Under the lock, so that a Flush never subtracts before this adds.
    counters_.backlog.fetch_add(queued, std::memory_order_relaxed);
  }
  Add(counters_.dropped_send_queue, metrics_.dropped_send_queue, dropped);
}

void Gossip::FlusherLoop() {
  while (true) {
    {
      absl::MutexLock lock(&out_mu_);
      auto has_txs = [this]() ABSL_SHARED_LOCKS_REQUIRED(out_mu_) {
        if (out_stopping_) return true;
        for (const PeerQueue& q : out_) {
          if (!q.txs.empty()) return true;
        }
        return false;
      };
      out_mu_.Await(absl::Condition(&has_txs));
      if (out_stopping_) return;
      // The first queued tx starts the clock: it waits at most
      // flush_interval, less when a full batch is ready sooner.
      auto flush_now = [this]() ABSL_SHARED_LOCKS_REQUIRED(out_mu_) {
        return out_stopping_ || full_batch_ready_;
      };
      out_mu_.AwaitWithTimeout(absl::Condition(&flush_now),
                               options_.flush_interval);
      if (out_stopping_) return;
    }
    Flush();
  }
}

void Gossip::Flush() {
  std::vector<std::pair<std::string, std::deque<std::shared_ptr<const Bytes>>>>
      work;
  {
    absl::MutexLock lock(&out_mu_);
    for (PeerQueue& q : out_) {
      if (q.txs.empty()) continue;
      work.emplace_back(q.id, std::move(q.txs));
      q.txs.clear();
      q.bytes = 0;
    }
    full_batch_ready_ = false;
  }
  for (auto& [peer, txs] : work) {
    while (!txs.empty()) {
      std::vector<std::shared_ptr<const Bytes>> batch;
      size_t bytes = 0;
      while (!txs.empty() && batch.size() < options_.max_batch_txs &&
             (batch.empty() ||
              bytes + txs.front()->size() <= options_.max_batch_bytes)) {
        bytes += txs.front()->size();
        batch.push_back(std::move(txs.front()));
        txs.pop_front();
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
  }
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
  s.txs_admitted = get(c.txs_admitted);
  s.txs_duplicate = get(c.txs_duplicate);
  s.txs_rejected = get(c.txs_rejected);
  s.dropped_send_queue = get(c.dropped_send_queue);
  s.dropped_receive_queue = get(c.dropped_receive_queue);
  s.dropped_not_ready = get(c.dropped_not_ready);
  s.dropped_malformed = get(c.dropped_malformed);
  s.backlog = get(c.backlog);
  return s;
}

absl::StatusOr<std::vector<SubmitResult>> GossipingMempool::Submit(
    const std::vector<Bytes>& raw_txs) {
  absl::StatusOr<std::vector<SubmitResult>> results = inner_->Submit(raw_txs);
  if (results.ok()) gossip_->OnLocalSubmit(raw_txs, *results);
  return results;
}

}  // namespace consortia::mempool
