// Storage's read side in memory: one fake per consumer's interface of
// storage_queries.h, each implementing every call of it as storage does
// (bounds, pagination, NotFound), over data the test puts in. Part of the
// test-only library consortia_test_fakes (common/testing/README.md).
//
//   FakeCommitHistory  the mempool's: commit events by height.
//   FakeBlockSource    consensus's: the blocks of a FakeLedger.
//   FakeChainQueries   the api's: blocks, txs and evidence.
//   FakeStateQueries   the api's: state records.
//
// Each is thread-safe. A test that needs a storage that misbehaves (answers
// more than the bounds allow, leaves holes) derives from one and overrides
// the call.
#ifndef CONSORTIA_COMMON_TESTING_FAKE_STORAGE_QUERIES_H_
#define CONSORTIA_COMMON_TESTING_FAKE_STORAGE_QUERIES_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/storage_queries.h"
#include "consortia/testing/fake_ledger.h"

namespace consortia::testing {

// ---------------------------------------------------------- CommitHistory

// Commit events by height, as the test adds them. GetChainTip answers the
// highest height added (and its event's block hash). GetCommitted answers,
// like storage, the events from `from` on without holes, stopping at a
// missing height, after `to`, or after the height whose txs reach the
// per-call limit (SetMaxTxsPerCall); InvalidArgument for from = 0, from > to
// or more than 1000 heights. ListMembers pages through the member keys the
// test sets (SetMembers), answered as of the highest height added.
class FakeCommitHistory : public CommitHistory {
 public:
  void AddEvent(CommittedEvent e);
  // The member set and permissioned flag ListMembers answers from now on.
  void SetMembers(std::vector<Bytes> keys, bool permissioned);
  // The chain rules ListMembers pages name from now on (none before).
  void SetRules(std::optional<ChainRules> rules);
  // The cursors of every ListMembers call, in order.
  std::vector<Bytes> list_members_calls() const;
  // Adds empty events for the heights after the highest one up to h.
  void GrowTo(uint64_t h);
  // The next n calls of GetChainTip or GetCommitted fail Unavailable
  // (storage is down). ListMembers does not fail.
  void FailNext(int n);
  // GetCommitted's tx limit per call (storage's kMaxCommittedTxsPerCall);
  // 0 = none (the default).
  void SetMaxTxsPerCall(size_t n);
  // The (from, to) of every GetCommitted call, in order.
  std::vector<std::pair<uint64_t, uint64_t>> committed_calls() const;
  int chain_tip_calls() const;

  absl::StatusOr<ChainTip> GetChainTip() override;
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override;
  absl::StatusOr<MemberPage> ListMembers(const Bytes& cursor,
                                         uint32_t limit) override;

 private:
  // OK, or the failure FailNext asked for (and one fewer left).
  absl::Status TakeFailure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<uint64_t, CommittedEvent> events_ ABSL_GUARDED_BY(mu_);
  uint64_t latest_ ABSL_GUARDED_BY(mu_) = 0;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_txs_per_call_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<uint64_t, uint64_t>> committed_calls_
      ABSL_GUARDED_BY(mu_);
  int chain_tip_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<Bytes> members_ ABSL_GUARDED_BY(mu_);
  bool permissioned_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<ChainRules> rules_ ABSL_GUARDED_BY(mu_);
  std::vector<Bytes> list_members_calls_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------ BlockSource

// The blocks a FakeLedger committed, as storage's BlockSource serves them:
// ReadCertifiedBlocks with its bounds and byte budget, CommittedHeights from
// the TxHash of each tx that decodes. Counts its reads.
class FakeBlockSource : public BlockSource {
 public:
  // `ledger` must outlive this.
  explicit FakeBlockSource(const FakeLedger* ledger);

  int range_reads() const;      // ReadCertifiedBlocks calls
  int blocks_read() const;      // blocks they returned
  int committed_reads() const;  // CommittedHeights calls

  absl::StatusOr<std::vector<BlockRecord>> ReadCertifiedBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override;
  absl::StatusOr<std::vector<uint64_t>> CommittedHeights(
      const std::vector<Hash32>& tx_hashes) override;

 private:
  const FakeLedger* const ledger_;
  mutable absl::Mutex mu_;
  int range_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int blocks_read_ ABSL_GUARDED_BY(mu_) = 0;
  int committed_reads_ ABSL_GUARDED_BY(mu_) = 0;
};

// ----------------------------------------------------------- ChainQueries

// Blocks by height, txs by hash and evidence, as the test adds them; every
// call checks storage's bounds. The tip is the highest block added ({0, zero}
// without blocks).
class FakeChainQueries : public ChainQueries {
 public:
  void AddBlock(const BlockRecord& b);
  void AddTx(const Hash32& hash, const TxRecord& r);
  // Sets r.seq to the next number (1, 2, ...).
  void AddEvidence(EvidenceRecord r);
  // A validator-set change of block r.height (ListValidatorChanges answers
  // those up to the height asked for, in height order).
  void AddValidatorChange(const StateRecord& r);
  // The up_to_height of each ListValidatorChanges call, in order.
  std::vector<uint64_t> validator_changes_asked() const;

  // A non-OK status fails every call with it (OK restores).
  void SetFailure(absl::Status s);
  // ListBlockSummaries and ListEvidence answer at most n, whatever the limit:
  // a storage whose answer stops early (the ChainQueries contract allows it).
  void SetMaxListed(uint32_t n);
  // GetTx waits until Release (a storage that hangs).
  void HoldGetTx();
  void Release();
  // Waits (at most 30 s) until n GetTx calls are being held.
  bool WaitForHeld(int n);

  int get_tx_calls() const;
  int chain_tip_calls() const;
  int block_reads() const;  // GetCertifiedBlock and ...ByHash calls

  absl::StatusOr<ChainTip> GetChainTip() override;
  absl::StatusOr<BlockRecord> GetCertifiedBlock(
      std::optional<uint64_t> height) override;
  absl::StatusOr<BlockRecord> GetCertifiedBlockByHash(
      const Hash32& hash) override;
  absl::StatusOr<std::vector<BlockSummary>> ListBlockSummaries(
      uint64_t from, uint32_t limit) override;
  absl::StatusOr<TxRecord> GetTx(const Hash32& hash) override;
  absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit) override;
  // The blocks added, each tx's receipt the one of the TxRecord added for it
  // at that height and index (a default receipt with the tx's position
  // otherwise). Counted in blocks_with_receipts_reads().
  absl::StatusOr<std::vector<BlockWithReceipts>> ReadBlocksWithReceipts(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override;
  int blocks_with_receipts_reads() const;
  absl::StatusOr<std::vector<StateRecord>> ListValidatorChanges(
      uint64_t up_to_height) override;

 private:
  mutable absl::Mutex mu_;
  int receipt_reads_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  uint32_t max_listed_ ABSL_GUARDED_BY(mu_) =
      std::numeric_limits<uint32_t>::max();
  bool hold_get_tx_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  int get_tx_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int chain_tip_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int block_reads_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, BlockRecord> blocks_ ABSL_GUARDED_BY(mu_);
  std::map<Hash32, TxRecord> txs_ ABSL_GUARDED_BY(mu_);
  std::vector<EvidenceRecord> evidence_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, StateRecord> validator_changes_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> validator_changes_asked_ ABSL_GUARDED_BY(mu_);
};

// ----------------------------------------------------------- StateQueries

// State records by (app, key), as the test sets them, all of one height
// (SetHeight; 0 by default). GetState answers the record as set (found =
// false when none is); GetStateAt the same with its height set to the one
// asked for, NotFound above the state's height; ScanState pages through the
// app's keys in byte order, as of the state's height. An app is known once it
// has a record; ScanState of another is InvalidArgument, as storage's of an
// unknown app.
class FakeStateQueries : public StateQueries {
 public:
  void SetState(const std::string& app, const std::string& key, StateRecord r);
  void SetHeight(uint64_t height);
  // A non-OK status fails every call with it (OK restores).
  void SetFailure(absl::Status s);
  // The heights GetStateAt was asked for, in order.
  std::vector<uint64_t> heights_asked() const;

  absl::StatusOr<StateRecord> GetState(const std::string& app,
                                       const std::string& key) override;
  absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                         const std::string& key,
                                         uint64_t height) override;
  absl::StatusOr<StatePage> ScanState(const std::string& app,
                                      const std::string& prefix,
                                      const std::string& cursor,
                                      uint32_t limit) override;

 private:
  mutable absl::Mutex mu_;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  uint64_t height_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<std::string, std::string>, StateRecord> state_
      ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> heights_asked_ ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTING_FAKE_STORAGE_QUERIES_H_
