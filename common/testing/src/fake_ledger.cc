#include "consortia/testing/fake_ledger.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"

namespace consortia::testing {

FakeLedger::FakeLedger(const Genesis& genesis, FakeMempool* mempool)
    : genesis_(genesis),
      mempool_(mempool),
      epochs_{ValidatorEpoch{1, genesis.validators}} {}

void FakeLedger::FailNextCommits(int n) {
  absl::MutexLock lock(&mu_);
  fail_commits_ = n;
}

void FakeLedger::LoseNextReplies(int n) {
  absl::MutexLock lock(&mu_);
  lose_replies_ = n;
}

void FakeLedger::SetDown(bool down) {
  absl::MutexLock lock(&mu_);
  down_ = down;
}

uint64_t FakeLedger::height() const {
  absl::MutexLock lock(&mu_);
  return state_.height;
}

ChainState FakeLedger::chain_state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

std::vector<Block> FakeLedger::blocks() const {
  absl::MutexLock lock(&mu_);
  return blocks_;
}

std::vector<CommitCertificate> FakeLedger::certs() const {
  absl::MutexLock lock(&mu_);
  return certs_;
}

std::vector<std::string> FakeLedger::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

std::vector<EvidenceRecord> FakeLedger::evidence() const {
  absl::MutexLock lock(&mu_);
  return evidence_;
}

int FakeLedger::commit_calls() const {
  absl::MutexLock lock(&mu_);
  return commit_calls_;
}

int FakeLedger::state_calls() const {
  absl::MutexLock lock(&mu_);
  return state_calls_;
}

absl::StatusOr<ChainState> FakeLedger::GetChainState() {
  absl::MutexLock lock(&mu_);
  ++state_calls_;
  if (down_) return absl::UnavailableError("storage is down");
  ChainState out = state_;
  out.next_validators = ValidatorsAt(epochs_, state_.height + 1);
  out.next_rules = RulesAt(state_.height + 1);
  return out;
}

void FakeLedger::SetRulesFrom(uint64_t height, const ChainRules& rules) {
  absl::MutexLock lock(&mu_);
  rules_.emplace_back(height, rules);
}

std::optional<ChainRules> FakeLedger::RulesAt(uint64_t height) const {
  std::optional<ChainRules> out;
  for (const auto& [from, rules] : rules_) {
    if (from <= height) out = rules;
  }
  return out;
}

void FakeLedger::SetValidatorEpochs(std::vector<ValidatorEpoch> epochs) {
  absl::MutexLock lock(&mu_);
  epochs_ = std::move(epochs);
}

absl::StatusOr<CommitResult> FakeLedger::CommitBlock(
    ByteView block_bytes, const CommitCertificate& cert) {
  absl::StatusOr<Block> decoded = DecodeBlock(block_bytes);
  if (!decoded.ok()) return decoded.status();
  const Block& block = *decoded;
  const CryptoSuite& suite = Ed25519Sha256();
  std::vector<Bytes> committed;
  CommitResult result;
  {
    absl::MutexLock lock(&mu_);
    ++commit_calls_;
    if (down_) return absl::UnavailableError("storage is down");
    if (fail_commits_ > 0) {
      --fail_commits_;
      return absl::InternalError("disk hiccup");
    }
    const BlockHeader& h = block.header;
    if (h.height != state_.height + 1) {
      return Violation(
          absl::StrCat("height ", h.height, " after ", state_.height));
    }
    if (h.prev_hash != state_.last_block_hash) {
      return Violation("prev_hash does not link");
    }
    if (h.state_root != state_.state_root ||
        h.receipts_root != state_.receipts_root) {
      return Violation("roots differ from the ones returned last");
    }
    if (h.chain_id != genesis_.chain_id) return Violation("chain id");
    if (h.time_ms <= state_.last_time_ms) return Violation("time");
    if (h.tx_root != MerkleRoot(suite, block.txs)) {
      return Violation("tx_root");
    }
    if (absl::Status s = VerifyCertificate(
            suite, genesis_, ValidatorsAt(epochs_, h.height), h, cert);
        !s.ok()) {
      return Violation(absl::StrCat("certificate: ", s.message()));
    }
    const Hash32 hash = BlockHash(suite, h);
    result.state_root = suite.Hash(ToBytes(absl::StrCat("state", h.height)));
    result.receipts_root =
        suite.Hash(ToBytes(absl::StrCat("receipts", h.height)));
    result.next_validators = ValidatorsAt(epochs_, h.height + 1);
    result.next_rules = RulesAt(h.height + 1);
    state_ = ChainState{h.height,
                        hash,
                        h.time_ms,
                        result.state_root,
                        result.receipts_root,
                        result.next_validators,
                        result.next_rules};
    blocks_.push_back(block);
    certs_.push_back(cert);
    committed = block.txs;
  }
  if (mempool_ != nullptr) mempool_->Remove(committed);
  absl::MutexLock lock(&mu_);
  if (lose_replies_ > 0) {
    --lose_replies_;
    return absl::DeadlineExceededError("reply lost");
  }
  return result;
}

absl::Status FakeLedger::RecordEvidence(
    const std::vector<EvidenceRecord>& records) {
  absl::MutexLock lock(&mu_);
  if (down_) return absl::UnavailableError("storage is down");
  if (records.size() > kMaxListEvidence) {
    return absl::InvalidArgumentError(absl::StrCat(
        records.size(), " evidence records, over ", kMaxListEvidence));
  }
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].kind.empty() || records[i].message.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("evidence record ", i, ": no kind or message"));
    }
  }
  for (EvidenceRecord r : records) {
    bool kept = false;
    for (const EvidenceRecord& e : evidence_) kept |= e.message == r.message;
    if (kept) continue;
    r.seq = evidence_.size() + 1;
    evidence_.push_back(std::move(r));
  }
  return absl::OkStatus();
}

absl::Status FakeLedger::Violation(std::string what) {
  violations_.push_back(what);
  return absl::FailedPreconditionError(what);
}

}  // namespace consortia::testing
