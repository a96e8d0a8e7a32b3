// Storage's write side (LedgerApi) in memory, strict about the chain: for
// the tests of consensus (which commits through it) and of the bus around
// it. Part of the test-only library consortia_test_fakes
// (common/testing/README.md). FakeBlockSource (fake_storage_queries.h) reads
// its blocks back as storage's BlockSource does.
#ifndef CONSORTIA_COMMON_TESTING_FAKE_LEDGER_H_
#define CONSORTIA_COMMON_TESTING_FAKE_LEDGER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/service_api.h"
#include "consortia/testing/fake_mempool.h"
#include "consortia/types.h"

namespace consortia::testing {

// Commits a block only when it extends the chain exactly: the next height,
// prev_hash = the last block's hash, the state and receipts roots it returned
// for the last block (deterministic stand-ins, since it executes nothing),
// the genesis's chain id, a time after the last block's, the tx_root of its
// txs and a certificate that verifies against the validators of its height
// (Ed25519Sha256): the genesis's, or those SetValidatorEpochs gave, which
// every answer also names as next_validators, as storage does (and the rules of
// SetRulesFrom as next_rules). Anything else is
// refused with FailedPrecondition and recorded as a violation (tests of correct
// code expect none). A committed block's txs leave the FakeMempool given, if
// any, as the real mempool forgets committed txs. CommitBlock decodes the
// block's bytes first, as storage does; bytes that do not decode are refused
// with the decoder's error (not a violation) and do not count as a commit call.
//
// RecordEvidence keeps records as storage does: refused as a whole with
// InvalidArgument for more than kMaxListEvidence records or one with an empty
// kind or message; a record whose message is kept already is skipped;
// seq numbers 1, 2, ... in the order first kept.
//
// Thread-safe.
class FakeLedger : public LedgerApi {
 public:
  // `mempool` may be null; else it must outlive the ledger.
  explicit FakeLedger(const Genesis& genesis, FakeMempool* mempool = nullptr);

  // ---------------------------------------------------------------- hooks
  // Refuses the next n commits (Internal) without keeping them.
  void FailNextCommits(int n);
  // Keeps the next n commits but answers DeadlineExceeded (a lost reply).
  void LoseNextReplies(int n);
  // Every call fails Unavailable while down (a storage that is gone).
  void SetDown(bool down);
  // The validator sets by height from now on (as governance votes would
  // make them); the first epoch starts at height 1.
  void SetValidatorEpochs(std::vector<ValidatorEpoch> epochs);
  // The chain rules of heights >= `height` (as a set_rule vote would make
  // them), named as next_rules from then on; before any call, answers name
  // none (the genesis's hold). Calls come in ascending height order.
  void SetRulesFrom(uint64_t height, const ChainRules& rules);

  // ------------------------------------------------------------ observers
  uint64_t height() const;
  ChainState chain_state() const;
  std::vector<Block> blocks() const;  // blocks()[h - 1] is height h
  std::vector<CommitCertificate> certs() const;
  std::vector<std::string> violations() const;
  std::vector<EvidenceRecord> evidence() const;
  int commit_calls() const;
  int state_calls() const;  // GetChainState calls

  // ------------------------------------------------------------- LedgerApi
  absl::StatusOr<ChainState> GetChainState() override;
  absl::StatusOr<CommitResult> CommitBlock(
      ByteView block_bytes, const CommitCertificate& cert) override;
  absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records) override;

 private:
  absl::Status Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Genesis genesis_;
  FakeMempool* const mempool_;
  mutable absl::Mutex mu_;
  ChainState state_ ABSL_GUARDED_BY(mu_);
  // (from height, rules), ascending.
  std::vector<std::pair<uint64_t, ChainRules>> rules_ ABSL_GUARDED_BY(mu_);
  std::optional<ChainRules> RulesAt(uint64_t height) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Block> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<CommitCertificate> certs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::vector<EvidenceRecord> evidence_ ABSL_GUARDED_BY(mu_);
  int fail_commits_ ABSL_GUARDED_BY(mu_) = 0;
  int lose_replies_ ABSL_GUARDED_BY(mu_) = 0;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<ValidatorEpoch> epochs_ ABSL_GUARDED_BY(mu_);
  int commit_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int state_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTING_FAKE_LEDGER_H_
