#include "consortia/testing/fake_mempool.h"

#include <string>
#include <utility>

#include "absl/time/time.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"

namespace consortia::testing {
namespace {

// TxHash when the tx decodes, else the hash of its bytes (tests often pass
// bytes that are no tx; they still need telling apart).
Hash32 FakeTxHash(const Bytes& raw) {
  const CryptoSuite& suite = Ed25519Sha256();
  absl::StatusOr<Transaction> tx = DecodeTx(raw);
  return tx.ok() ? TxHash(suite, *tx) : suite.Hash(raw);
}

absl::Status Down() { return absl::UnavailableError("fake mempool is down"); }

}  // namespace

void FakeMempool::SetDown(bool down) {
  absl::MutexLock l(&mu_);
  down_ = down;
}

void FakeMempool::SetSubmitCode(Admission code) {
  absl::MutexLock l(&mu_);
  submit_code_ = code;
}

void FakeMempool::FailSubmits(absl::Status status) {
  absl::MutexLock l(&mu_);
  submit_failure_ = std::move(status);
}

void FakeMempool::HoldFirstBatch() {
  absl::MutexLock l(&mu_);
  hold_first_ = true;
}

void FakeMempool::Release() {
  absl::MutexLock l(&mu_);
  released_ = true;
}

void FakeMempool::AnswerOneResultShort() {
  absl::MutexLock l(&mu_);
  short_answer_ = true;
}

void FakeMempool::SetCaughtUpTo(uint64_t h) {
  absl::MutexLock l(&mu_);
  caught_up_to_ = h;
}

void FakeMempool::FailChecks(absl::Status status) {
  absl::MutexLock l(&mu_);
  check_failure_ = std::move(status);
}

void FakeMempool::Add(std::vector<Bytes> txs) {
  absl::MutexLock l(&mu_);
  for (Bytes& t : txs) pending_.push_back(std::move(t));
}

void FakeMempool::Remove(const std::vector<Bytes>& txs) {
  absl::MutexLock l(&mu_);
  for (const Bytes& t : txs) std::erase(pending_, t);
}

std::vector<std::vector<Bytes>> FakeMempool::batches() const {
  absl::MutexLock l(&mu_);
  return batches_;
}

bool FakeMempool::WaitForBatches(size_t n) {
  absl::MutexLock l(&mu_);
  auto arrived = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return batches_.size() >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(30));
}

int FakeMempool::reaps() const {
  absl::MutexLock l(&mu_);
  return reaps_;
}

int FakeMempool::checks() const {
  absl::MutexLock l(&mu_);
  return checks_;
}

absl::StatusOr<std::vector<SubmitResult>> FakeMempool::Submit(
    const std::vector<Bytes>& raw_txs) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  if (raw_txs.empty()) return std::vector<SubmitResult>{};  // a probe
  batches_.push_back(raw_txs);
  if (hold_first_ && batches_.size() == 1) {
    mu_.Await(absl::Condition(&released_));
  }
  if (!submit_failure_.ok()) return submit_failure_;
  std::vector<SubmitResult> out;
  out.reserve(raw_txs.size());
  for (const Bytes& raw : raw_txs) {
    if (raw.empty()) {
      out.push_back({Hash32{}, Admission::kMalformed, "empty tx"});
      continue;
    }
    out.push_back({FakeTxHash(raw), submit_code_,
                   "fake: " + std::string(AdmissionName(submit_code_))});
    if (submit_code_ == Admission::kAccepted) pending_.push_back(raw);
  }
  if (short_answer_) out.pop_back();
  return out;
}

absl::StatusOr<std::vector<Bytes>> FakeMempool::Reap(const ReapRequest& req) {
  absl::MutexLock l(&mu_);
  ++reaps_;
  if (down_) return Down();
  if (req.committed_height > caught_up_to_) {
    return absl::UnavailableError("commit events not caught up");
  }
  std::vector<Bytes> out;
  uint64_t bytes = 0;
  for (const Bytes& t : pending_) {
    if (out.size() >= req.max_txs || bytes + t.size() > req.max_bytes) break;
    bytes += t.size();
    out.push_back(t);
  }
  return out;
}

absl::StatusOr<std::vector<ProposalTxCheck>> FakeMempool::CheckProposal(
    const std::vector<Bytes>& raw_txs, uint64_t) {
  absl::MutexLock l(&mu_);
  ++checks_;
  if (down_) return Down();
  if (!check_failure_.ok()) return check_failure_;
  std::vector<ProposalTxCheck> out;
  out.reserve(raw_txs.size());
  for (const Bytes& raw : raw_txs) {
    if (raw.empty()) {
      out.push_back({Hash32{}, Admission::kMalformed});
    } else {
      out.push_back({FakeTxHash(raw), Admission::kAccepted});
    }
  }
  return out;
}

}  // namespace consortia::testing
