#include "mempool.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/types.h"

namespace consortia::mempool {
namespace {

// Runs fn(0) .. fn(chunks - 1), spreading them over `pool` and the calling
// thread, and returns when all have finished. The caller takes any chunk no
// worker has started, so this never deadlocks even when every worker of the
// pool is itself blocked in a ParallelFor.
void ParallelFor(ThreadPool* pool, size_t chunks,
                 const std::function<void(size_t)>& fn) {
  if (pool == nullptr || chunks <= 1) {
    for (size_t i = 0; i < chunks; ++i) fn(i);
    return;
  }
  struct Shared {
    explicit Shared(size_t n) : total(n) {}
    const size_t total;
    std::atomic<size_t> next{0};
    absl::Mutex mu;
    size_t done ABSL_GUARDED_BY(mu) = 0;
  };
  auto shared = std::make_shared<Shared>(chunks);
  // A helper that starts after every chunk was claimed touches only
  // `shared`, never `fn` (which lives on the caller's stack).
  auto drain = [shared, fn_ptr = &fn]() {
    size_t ran = 0;
    for (size_t i = shared->next.fetch_add(1); i < shared->total;
         i = shared->next.fetch_add(1)) {
      (*fn_ptr)(i);
      ++ran;
    }
    if (ran > 0) {
      absl::MutexLock lock(&shared->mu);
      shared->done += ran;
    }
  };
  for (size_t i = 1; i < chunks; ++i) pool->Run(drain);
  drain();
  absl::MutexLock lock(&shared->mu);
  Shared* s = shared.get();
  auto all_done = [s]() { return s->done == s->total; };
  shared->mu.Await(absl::Condition(&all_done));
}

}  // namespace

Mempool::Mempool(const MempoolOptions& options, std::string chain_id,
                 const CryptoSuite& suite, ThreadPool* verify_pool,
                 MempoolMetrics metrics)
    : options_(options),
      chain_id_(std::move(chain_id)),
      suite_(suite),
      verify_pool_(verify_pool),
      metrics_(std::move(metrics)) {}

void Mempool::Reject(SubmitResult& r, Admission code, std::string detail) {
  r.code = code;
  r.detail = std::move(detail);
  metrics_.rejected[static_cast<size_t>(code)].Inc();
}

std::optional<std::pair<Admission, std::string>> Mempool::CheckState(
    const Candidate& c) const {
  const uint64_t next_height = applied_height_ + 1;
  if (c.tx.valid_until < next_height) {
    return std::make_pair(
        Admission::kExpired,
        absl::StrCat("valid_until ", c.tx.valid_until,
                     " is below the next height ", next_height));
  }
  if (c.tx.valid_until - next_height > options_.replay_window) {
    return std::make_pair(
        Admission::kTooFarAhead,
        absl::StrCat("valid_until ", c.tx.valid_until, " is beyond height ",
                     next_height + options_.replay_window,
                     " (next height + replay window)"));
  }
  if (seq_by_hash_.contains(c.hash)) {
    return std::make_pair(Admission::kAlreadyPending,
                          std::string("the same transaction is pending"));
  }
  if (committed_.contains(c.hash)) {
    return std::make_pair(
        Admission::kAlreadyCommitted,
        std::string("the same transaction was committed within its "
                    "validity window"));
  }
  return std::nullopt;
}

void Mempool::VerifySignatures(std::vector<Candidate>& candidates) {
  if (candidates.empty()) return;
  const size_t workers =
      verify_pool_ == nullptr ? 1 : std::max<size_t>(1, verify_pool_->size());
  const size_t chunks = std::min(workers, candidates.size());
  const size_t per_chunk = (candidates.size() + chunks - 1) / chunks;
  const absl::Time start = absl::Now();
  ParallelFor(verify_pool_, chunks, [&](size_t chunk) {
    const size_t begin = chunk * per_chunk;
    const size_t end = std::min(candidates.size(), begin + per_chunk);
    for (size_t i = begin; i < end; ++i) {
      Candidate& c = candidates[i];
      c.signature_ok =
          suite_.Verify(c.tx.sender, TxSignBytes(c.tx), c.tx.signature);
    }
  });
  metrics_.verify_duration.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  metrics_.verify_batch_size.Observe(static_cast<double>(candidates.size()));
}

absl::StatusOr<std::vector<SubmitResult>> Mempool::Submit(
    const std::vector<Bytes>& raw_txs) {
  std::vector<SubmitResult> results(raw_txs.size());

  // Stateless checks: size, decoding, chain id.
  std::vector<Candidate> candidates;
  candidates.reserve(raw_txs.size());
  for (size_t i = 0; i < raw_txs.size(); ++i) {
    const Bytes& raw = raw_txs[i];
    SubmitResult& r = results[i];
    if (raw.size() > options_.max_tx_bytes) {
      Reject(r, Admission::kTooLarge,
             absl::StrCat("transaction is ", raw.size(),
                          " bytes; the limit is ", options_.max_tx_bytes));
      continue;
    }
    absl::StatusOr<Transaction> tx = DecodeTx(raw);
    if (!tx.ok()) {
      Reject(r, Admission::kMalformed, std::string(tx.status().message()));
      continue;
    }
    r.tx_hash = TxHash(suite_, *tx);
    if (tx->chain_id != chain_id_) {
      Reject(r, Admission::kWrongChain,
             absl::StrCat("chain_id \"", tx->chain_id,
                          "\" is not this chain's (\"", chain_id_, "\")"));
      continue;
    }
    candidates.push_back(Candidate{i, *std::move(tx), r.tx_hash, false});
  }

  // Validity window and duplicates, before spending time on signatures.
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!ready_) {
      return absl::UnavailableError(
          "mempool is rebuilding its replay window from storage");
    }
    std::erase_if(candidates, [&](const Candidate& c) {
      auto rejection = CheckState(c);
      if (!rejection) return false;
      Reject(results[c.index], rejection->first, std::move(rejection->second));
      return true;
    });
  }

  VerifySignatures(candidates);

  // Admit in arrival order. The pool may have changed while signatures were
  // checked, and a batch may hold the same tx twice, so check again.
  absl::MutexLock lock(&mu_);
  for (Candidate& c : candidates) {
    SubmitResult& r = results[c.index];
    if (!c.signature_ok) {
      Reject(r, Admission::kBadSignature,
             "signature does not verify against the sender key");
      continue;
    }
    if (auto rejection = CheckState(c)) {
      Reject(r, rejection->first, std::move(rejection->second));
      continue;
    }
    const Bytes& raw = raw_txs[c.index];
    if (pending_.size() >= options_.max_txs ||
        pending_bytes_ + raw.size() > options_.max_bytes) {
      Reject(r, Admission::kPoolFull,
             absl::StrCat("mempool is full (", pending_.size(), " txs, ",
                          pending_bytes_, " bytes); retry later"));
      continue;
    }
    std::string sender(AsString(c.tx.sender));
    uint64_t& sender_count = per_sender_[sender];
    if (sender_count >= options_.max_per_sender) {
      Reject(r, Admission::kSenderLimit,
             absl::StrCat("sender has ", options_.max_per_sender,
                          " transactions pending; retry later"));
      continue;
    }
    ++sender_count;
    const uint64_t seq = next_seq_++;
    pending_expiry_.emplace(c.tx.valid_until, seq);
    seq_by_hash_.emplace(c.hash, seq);
    pending_bytes_ += raw.size();
    pending_.emplace(seq,
                     Entry{raw, c.hash, std::move(sender), c.tx.valid_until});
    r.code = Admission::kAccepted;
    metrics_.admitted.Inc();
  }
  UpdateGauges();
  return results;
}

absl::StatusOr<std::vector<Bytes>> Mempool::Reap(const ReapRequest& req) {
  absl::MutexLock lock(&mu_);
  wanted_height_ = std::max(wanted_height_, req.committed_height);
  if (!ready_) {
    return absl::UnavailableError(
        "mempool is rebuilding its replay window from storage");
  }
  auto caught_up = [this, &req]() {
    return applied_height_ >= req.committed_height;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&caught_up), options_.reap_wait)) {
    return absl::UnavailableError(
        absl::StrCat("mempool has applied commits up to height ",
                     applied_height_, ", not yet ", req.committed_height));
  }
  std::vector<Bytes> out;
  uint64_t bytes = 0;
  for (const auto& [seq, entry] : pending_) {
    if (out.size() >= req.max_txs || bytes + entry.raw.size() > req.max_bytes) {
      break;
    }
    bytes += entry.raw.size();
    out.push_back(entry.raw);
  }
  metrics_.reaped_txs.Inc(static_cast<double>(out.size()));
  return out;
}

void Mempool::RemovePending(uint64_t seq) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  Entry& e = it->second;
  seq_by_hash_.erase(e.hash);
  pending_expiry_.erase({e.valid_until, seq});
  auto s = per_sender_.find(e.sender);
  if (s != per_sender_.end() && --s->second == 0) per_sender_.erase(s);
  pending_bytes_ -= e.raw.size();
  pending_.erase(it);
}

void Mempool::RememberCommitted(const Hash32& hash, uint64_t valid_until) {
  auto [it, inserted] = committed_.try_emplace(hash, valid_until);
  if (!inserted) {
    if (it->second >= valid_until) return;
    committed_expiry_.erase({it->second, hash});
    it->second = valid_until;
  }
  committed_expiry_.emplace(valid_until, hash);
}

void Mempool::OnCommitted(const CommittedEvent& event) {
  absl::MutexLock lock(&mu_);
  if (event.height <= applied_height_) return;
  for (const CommittedTx& tx : event.txs) {
    auto it = seq_by_hash_.find(tx.hash);
    if (it != seq_by_hash_.end()) {
      RemovePending(it->second);
      metrics_.evicted_committed.Inc();
    }
    RememberCommitted(tx.hash, tx.valid_until);
  }
  // A committed hash matters only while a tx with it could still be
  // admitted: until its valid_until passes.
  while (!committed_expiry_.empty() &&
         committed_expiry_.begin()->first < event.height) {
    committed_.erase(committed_expiry_.begin()->second);
    committed_expiry_.erase(committed_expiry_.begin());
  }
  // Pending txs whose valid_until is below the next height can never be
  // committed.
  while (!pending_expiry_.empty() &&
         pending_expiry_.begin()->first <= event.height) {
    RemovePending(pending_expiry_.begin()->second);
    metrics_.evicted_expired.Inc();
  }
  applied_height_ = event.height;
  metrics_.applied_height.Set(static_cast<double>(applied_height_));
  UpdateGauges();
}

void Mempool::UpdateGauges() {
  metrics_.pool_txs.Set(static_cast<double>(pending_.size()));
  metrics_.pool_bytes.Set(static_cast<double>(pending_bytes_));
}

void Mempool::SetReady() {
  absl::MutexLock lock(&mu_);
  ready_ = true;
}

bool Mempool::ready() const {
  absl::ReaderMutexLock lock(&mu_);
  return ready_;
}

uint64_t Mempool::applied_height() const {
  absl::ReaderMutexLock lock(&mu_);
  return applied_height_;
}

uint64_t Mempool::wanted_height() const {
  absl::ReaderMutexLock lock(&mu_);
  return wanted_height_;
}

size_t Mempool::pending_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return pending_.size();
}

uint64_t Mempool::pending_bytes() const {
  absl::ReaderMutexLock lock(&mu_);
  return pending_bytes_;
}

}  // namespace consortia::mempool
