#include "mempool.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/types.h"
#include "spdlog/spdlog.h"

namespace consortia::mempool {
namespace {

// Items per chunk of ParallelFor: at most 4, so that the threads finish a
// batch together (the last chunk to finish is at most 4 signature checks
// long), and fewer when the batch is small, so that each thread still gets
// about 8 chunks.
size_t GrainFor(size_t n, const ThreadPool* pool) {
  const size_t threads = (pool == nullptr ? 0 : pool->size()) + 1;
  return std::clamp<size_t>(n / (threads * 8), 1, 4);
}

absl::Status NotReady() {
  return absl::UnavailableError(
      "mempool is rebuilding its replay window from storage");
}

}  // namespace

struct Mempool::Work {
  SubmitResult result;
  // Passed every check so far; for Submit, ready for the pool bounds.
  bool candidate = false;
  Transaction tx;
  Bytes sign_bytes;
  // What joins the pool (entry.hash is set as soon as the tx decodes).
  Entry entry;
};

struct Mempool::BatchStats {
  std::atomic<size_t> cache_hits{0};
  std::atomic<size_t> cache_misses{0};
};

Mempool::Mempool(const MempoolOptions& options, std::string chain_id,
                 const CryptoSuite& suite, ThreadPool* verify_pool,
                 MempoolMetrics metrics)
    : options_(options),
      chain_id_(std::move(chain_id)),
      suite_(suite),
      verify_pool_(verify_pool),
      metrics_(std::move(metrics)),
      sig_cache_(options.sig_cache_size),
      members_(metrics_.members, metrics_.permissioned),
      replay_window_(options.replay_window) {
  metrics_.max_txs.Set(static_cast<double>(options.max_txs));
  metrics_.max_bytes.Set(static_cast<double>(options.max_bytes));
}

std::optional<std::string> Mempool::DecodeChecked(ByteView raw, Work& w) const {
  absl::StatusOr<Transaction> tx = DecodeTx(raw);
  if (!tx.ok()) return std::string(tx.status().message());
  w.tx = *std::move(tx);
  // One encoding of the signed bytes serves both the hash and the
  // signature check.
  w.sign_bytes = TxSignBytes(w.tx);
  w.entry.hash = suite_.Hash(w.sign_bytes);
  return TxFieldProblem(suite_, w.tx);
}

std::optional<std::pair<Admission, std::string>> Mempool::CheckState(
    uint64_t valid_until, const Hash32& hash) const {
  const uint64_t next_height = applied_height_ + 1;
  if (valid_until < next_height) {
    return std::make_pair(
        Admission::kExpired,
        absl::StrCat("valid_until ", valid_until, " is below the next height ",
                     next_height));
  }
  if (valid_until - next_height > replay_window_) {
    return std::make_pair(
        Admission::kTooFarAhead,
        absl::StrCat("valid_until ", valid_until, " is beyond height ",
                     next_height + replay_window_,
                     " (next height + replay window)"));
  }
  if (seq_by_hash_.contains(hash)) {
    return std::make_pair(Admission::kAlreadyPending,
                          std::string("the same transaction is pending"));
  }
  if (committed_.contains(hash)) {
    return std::make_pair(
        Admission::kAlreadyCommitted,
        std::string("the same transaction was committed within its "
                    "validity window"));
  }
  return std::nullopt;
}

bool Mempool::SignatureOk(const Work& w, BatchStats& stats) const {
  if (sig_cache_.capacity() == 0) {
    stats.cache_misses.fetch_add(1, std::memory_order_relaxed);
    return suite_.Verify(w.tx.sender, w.sign_bytes, w.tx.signature);
  }
  // The sender key has the suite's fixed size (DecodeChecked), so the
  // concatenation is unambiguous.
  const Hash32 auth = suite_.Hash({w.tx.sender, w.tx.signature});
  if (sig_cache_.Contains(w.entry.hash, auth)) {
    stats.cache_hits.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  stats.cache_misses.fetch_add(1, std::memory_order_relaxed);
  if (!suite_.Verify(w.tx.sender, w.sign_bytes, w.tx.signature)) return false;
  sig_cache_.Insert(w.entry.hash, auth);
  return true;
}

void Mempool::CheckSubmitChunk(const std::vector<Bytes>& raw_txs, size_t begin,
                               size_t end, std::vector<Work>& work,
                               BatchStats& stats) const {
  // Stateless checks: size, decoding and fields, chain id.
  for (size_t i = begin; i < end; ++i) {
    Work& w = work[i];
    SubmitResult& r = w.result;
    const Bytes& raw = raw_txs[i];
    if (raw.size() > options_.max_tx_bytes) {
      r.code = Admission::kTooLarge;
      r.detail = absl::StrCat("transaction is ", raw.size(),
                              " bytes; the limit is ", options_.max_tx_bytes);
      continue;
    }
    std::optional<std::string> malformed = DecodeChecked(raw, w);
    r.tx_hash = w.entry.hash;
    if (malformed) {
      r.code = Admission::kMalformed;
      r.detail = *std::move(malformed);
      continue;
    }
    if (w.tx.chain_id != chain_id_) {
      r.code = Admission::kWrongChain;
      r.detail = absl::StrCat("chain_id \"", w.tx.chain_id,
                              "\" is not this chain's (\"", chain_id_, "\")");
      continue;
    }
    if (!members_.Admits(w.tx.sender)) {
      r.code = Admission::kUnregisteredSender;
      r.detail = absl::StrCat("sender key ", ToHex(w.tx.sender),
                              " is not a registered member of this consortium");
      continue;
    }
    w.candidate = true;
  }
  // Validity window and duplicates, before spending time on signatures:
  // one shared lock for the chunk.
  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = begin; i < end; ++i) {
      Work& w = work[i];
      if (!w.candidate) continue;
      if (auto rejection = CheckState(w.tx.valid_until, w.entry.hash)) {
        w.result.code = rejection->first;
        w.result.detail = std::move(rejection->second);
        w.candidate = false;
      }
    }
  }
  // Signatures, then the entry that joins the pool, prepared here so that
  // the serial admission only moves it. The decoded tx is freed here, by the
  // thread that allocated it.
  for (size_t i = begin; i < end; ++i) {
    Work& w = work[i];
    if (w.candidate && !SignatureOk(w, stats)) {
      w.result.code = Admission::kBadSignature;
      w.result.detail = "signature does not verify against the sender key";
      w.candidate = false;
    }
    if (w.candidate) {
      w.entry.raw = raw_txs[i];
      w.entry.sender = std::string(AsString(w.tx.sender));
      w.entry.valid_until = w.tx.valid_until;
    }
    w.tx = Transaction();
    w.sign_bytes = Bytes();
  }
}

absl::StatusOr<std::vector<SubmitResult>> Mempool::Submit(
    const std::vector<Bytes>& raw_txs) {
  if (!ready()) return NotReady();
  const size_t n = raw_txs.size();
  std::vector<Work> work(n);
  BatchStats stats;

  const absl::Time start = absl::Now();
  ParallelFor(verify_pool_, n, GrainFor(n, verify_pool_),
              [&](size_t begin, size_t end) {
                CheckSubmitChunk(raw_txs, begin, end, work, stats);
              });
  metrics_.verify_duration.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  const size_t misses = stats.cache_misses.load();
  if (misses > 0) metrics_.verify_batch_size.Observe(misses);
  metrics_.sig_cache_misses_submit.Inc(misses);
  metrics_.sig_cache_hits_submit.Inc(stats.cache_hits.load());
  metrics_.sig_cache_entries.Set(sig_cache_.size());

  // Admit in arrival order. The pool may have changed while signatures were
  // checked, and a batch may hold the same tx twice, so check again.
  size_t full_txs = 0;
  uint64_t full_bytes = 0;
  {
    absl::MutexLock lock(&mu_);
    for (Work& w : work) {
      if (!w.candidate) continue;
      SubmitResult& r = w.result;
      Entry& e = w.entry;
      if (auto rejection = CheckState(e.valid_until, e.hash)) {
        r.code = rejection->first;
        r.detail = std::move(rejection->second);
        continue;
      }
      if (pending_.size() >= options_.max_txs ||
          pending_bytes_ + e.raw.size() > options_.max_bytes) {
        r.code = Admission::kPoolFull;  // detail below, outside the lock
        continue;
      }
      uint64_t& sender_count = per_sender_[e.sender];
      if (sender_count >= options_.max_per_sender) {
        r.code = Admission::kSenderLimit;
        r.detail = absl::StrCat("sender has ", options_.max_per_sender,
                                " transactions pending; retry later");
        continue;
      }
      ++sender_count;
      const uint64_t seq = next_seq_++;
      pending_expiry_.emplace(e.valid_until, seq);
      seq_by_hash_.emplace(e.hash, seq);
      pending_bytes_ += e.raw.size();
      pending_.emplace(seq, std::move(e));
      r.code = Admission::kAccepted;
    }
    full_txs = pending_.size();
    full_bytes = pending_bytes_;
    UpdateGauges();
  }

  std::vector<SubmitResult> results;
  results.reserve(n);
  std::array<size_t, kAdmissionCount> counts{};
  for (Work& w : work) {
    SubmitResult& r = w.result;
    if (r.code == Admission::kPoolFull) {
      r.detail = absl::StrCat("mempool is full (", full_txs, " of ",
                              options_.max_txs, " txs, ", full_bytes, " of ",
                              options_.max_bytes, " bytes); retry later");
    }
    ++counts[static_cast<size_t>(r.code)];
    results.push_back(std::move(r));
  }
  metrics_.admitted.Inc(counts[0]);
  for (size_t i = 1; i < kAdmissionCount; ++i) {
    if (counts[i] > 0) metrics_.rejected[i].Inc(counts[i]);
  }
  return results;
}

void Mempool::CheckProposalChunk(const std::vector<Bytes>& raw_txs,
                                 uint64_t height, uint64_t window, size_t begin,
                                 size_t end, std::vector<ProposalTxCheck>& out,
                                 BatchStats& stats) const {
  std::vector<Work> work(end - begin);
  for (size_t i = begin; i < end; ++i) {
    Work& w = work[i - begin];
    ProposalTxCheck& c = out[i];
    const bool malformed = DecodeChecked(raw_txs[i], w).has_value();
    c.tx_hash = w.entry.hash;
    if (malformed) {
      c.code = Admission::kMalformed;
    } else if (w.tx.chain_id != chain_id_) {
      c.code = Admission::kWrongChain;
    } else if (!members_.Admits(w.tx.sender)) {
      // The members after height - 1, as on every node: execution would
      // refuse the tx, so a block that carries it is a proposer's flood.
      c.code = Admission::kUnregisteredSender;
    } else if (w.tx.valid_until < height) {
      c.code = Admission::kExpired;
    } else if (w.tx.valid_until - height > window) {
      c.code = Admission::kTooFarAhead;
    } else {
      w.candidate = true;
    }
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = begin; i < end; ++i) {
      Work& w = work[i - begin];
      if (w.candidate && committed_.contains(w.entry.hash)) {
        out[i].code = Admission::kAlreadyCommitted;
        w.candidate = false;
      }
    }
  }
  for (size_t i = begin; i < end; ++i) {
    Work& w = work[i - begin];
    if (w.candidate && !SignatureOk(w, stats)) {
      out[i].code = Admission::kBadSignature;
    }
  }
}

absl::StatusOr<std::vector<ProposalTxCheck>> Mempool::CheckProposal(
    const std::vector<Bytes>& raw_txs, uint64_t height) {
  if (height == 0) {
    return absl::InvalidArgumentError("a proposal's height is at least 1");
  }
  uint64_t window = 0;
  {
    absl::MutexLock lock(&mu_);
    wanted_height_ = std::max(wanted_height_, height - 1);
    if (!ready_) return NotReady();
    if (absl::Status s = AwaitHeight(height - 1); !s.ok()) return s;
    if (applied_height_ >= height) {
      return absl::FailedPreconditionError(
          absl::StrCat("height ", height, " is already committed (applied ",
                       applied_height_, ")"));
    }
    // The window of `height`: the events up to height - 1 are applied.
    window = replay_window_;
  }
  const size_t n = raw_txs.size();
  std::vector<ProposalTxCheck> out(n);
  BatchStats stats;
  const absl::Time start = absl::Now();
  ParallelFor(verify_pool_, n, GrainFor(n, verify_pool_),
              [&](size_t begin, size_t end) {
                CheckProposalChunk(raw_txs, height, window, begin, end, out,
                                   stats);
              });
  // The same tx twice in one block would be a replay.
  absl::flat_hash_set<Hash32> seen;
  seen.reserve(n);
  size_t valid = 0;
  for (ProposalTxCheck& c : out) {
    if (c.code != Admission::kAccepted) continue;
    if (!seen.insert(c.tx_hash).second) {
      c.code = Admission::kAlreadyCommitted;
      continue;
    }
    ++valid;
  }
  metrics_.proposal_check_duration.Observe(
      absl::ToDoubleSeconds(absl::Now() - start));
  metrics_.proposal_valid.Inc(valid);
  metrics_.proposal_invalid.Inc(n - valid);
  metrics_.sig_cache_hits_proposal.Inc(stats.cache_hits.load());
  metrics_.sig_cache_misses_proposal.Inc(stats.cache_misses.load());
  metrics_.sig_cache_entries.Set(sig_cache_.size());
  return out;
}

absl::Status Mempool::AwaitHeight(uint64_t height) {
  auto caught_up = [this, height]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return applied_height_ >= height;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&caught_up), options_.reap_wait)) {
    return absl::UnavailableError(
        absl::StrCat("mempool has applied commits up to height ",
                     applied_height_, ", not yet ", height));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Bytes>> Mempool::Reap(const ReapRequest& req) {
  absl::MutexLock lock(&mu_);
  wanted_height_ = std::max(wanted_height_, req.committed_height);
  if (!ready_) return NotReady();
  if (absl::Status s = AwaitHeight(req.committed_height); !s.ok()) return s;
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
  // On a permissioned chain, a sender the block unregistered (or that the
  // block's new consortium did not register) can no longer send: its pending
  // txs would be refused at execution. A rare event, so a scan of the pool.
  if (event.permissioned) {
    bool removed = !permissioned_;
    for (const MemberChange& c : event.member_changes) {
      removed = removed || !c.registered;
    }
    if (removed) {
      std::vector<uint64_t> gone;
      for (const auto& [seq, entry] : pending_) {
        if (!members_.Admits(AsBytes(entry.sender))) gone.push_back(seq);
      }
      for (uint64_t seq : gone) RemovePending(seq);
      metrics_.evicted_unregistered.Inc(static_cast<double>(gone.size()));
    }
  }
  permissioned_ = event.permissioned;
  if (event.rules.has_value() && event.rules->replay_window != replay_window_) {
    spdlog::info("replay window from height {}: {} heights (was {})",
                 event.height + 1, event.rules->replay_window, replay_window_);
    replay_window_ = event.rules->replay_window;
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

uint64_t Mempool::replay_window() const {
  absl::ReaderMutexLock lock(&mu_);
  return replay_window_;
}

void Mempool::SetReplayWindow(uint64_t window) {
  absl::MutexLock lock(&mu_);
  replay_window_ = window;
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
