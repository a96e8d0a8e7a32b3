// The ledger: executes committed blocks with the native apps, persists each
// block with its certificate, state writes, receipts and indexes in one
// atomic KvStore batch, answers queries with Merkle proofs, and publishes a
// block.committed event after each commit. Key layout: keys.h and README.md.
// Sources: ledger.cc (open and consistency check), ledger_commit.cc (the
// commit path), ledger_query.cc (the query path), evidence.cc (evidence).
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_LEDGER_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_LEDGER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apps/app.h"
#include "consortia/admin_records.h"
#include "consortia/bus.h"
#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "keys.h"
#include "kv_store.h"
#include "smt.h"
#include "state_overlay.h"
#include "storage_metrics.h"

namespace consortia::storage {

// GetCommitted answers at most this many heights per call...
inline constexpr uint64_t kMaxCommittedHeightsPerCall = 1000;
// ...and stops after the block that brings the answer to this many txs (it
// always returns at least one block), so one reply stays a few megabytes.
// The page's next_height tells the caller where to continue.
inline constexpr size_t kMaxCommittedTxsPerCall = 100000;

// The commit event of a block: every tx that decodes, in block order, with
// its hash and valid_until. Txs that do not decode are left out (no mempool
// ever held them). Used both when committing and by GetCommitted.
CommittedEvent EventForBlock(const CryptoSuite& suite, const Block& block,
                             const Hash32& block_hash);

// The admin app's records that admission follows (admin_records.h):
// `member/<lower-case hex of the key>` per registered member key, and
// `config`, whose existence makes the chain permissioned.
using admin::kMemberKeyPrefix;
inline constexpr std::string_view kAdminConfigKey = admin::kConfigKey;

// What a block's write set changes for admission: the member keys written
// (registered) or deleted (unregistered), in ascending key order, and
// whether the admin `config` record exists after it (`permissioned_before`
// when the block does not touch it). A member key whose suffix is not
// lower-case hex is not a key the admin app writes and is left out.
keys::AdmissionRecord AdmissionOf(const StateOverlay::WriteSet& writes,
                                  bool permissioned_before);

// The state versions (trees after a block) kept by default: the latest and
// the 15 before it. At least 2, so that the state after block h stays
// provable once block h + 1, which certifies it, is committed.
inline constexpr uint64_t kDefaultStateVersions = 16;

// The state tree writes of a block's write set (store keys -> records).
// InvalidArgument if a key of the set is not a state key.
absl::StatusOr<std::vector<SmtWrite>> StateTreeWrites(
    const CryptoSuite& suite, const StateOverlay::WriteSet& writes);

// Thread-safe. Commits are serialized (one at a time, in height order);
// queries run concurrently with each other and with a commit, and never see
// half a block.
//
// CommitBlock takes the block's encoding, decodes it once (the decode counts
// in the validate phase of the commit metrics) and stores those bytes as the
// block. Errors: InvalidArgument for a block that does not decode or is
// malformed on its own (wrong chain id, tx_root, certificate);
// FailedPrecondition for one that does not extend this chain (height,
// prev_hash, state/receipts roots, or a different block already at that
// height); Internal / Unavailable / DataLoss when the store fails (nothing is
// written then).
// Query errors: NotFound for what does not exist, InvalidArgument for a bad
// request, DataLoss for a stored record that does not decode.
//
// It is the whole of storage's service: LedgerApi for consensus's commits,
// and each consumer's read interface (storage_queries.h): CommitHistory (the
// mempool), BlockSource (consensus), ChainQueries and StateQueries (the api).
class Ledger : public LedgerApi,
               public CommitHistory,
               public BlockSource,
               public ChainQueries,
               public StateQueries {
 public:
  struct Options {
    KvStore* store = nullptr;            // required; outlives the Ledger
    const Genesis* genesis = nullptr;    // required; outlives the Ledger
    const CryptoSuite* suite = nullptr;  // the genesis's suite
    const AppRegistry* apps = nullptr;   // required; outlives the Ledger
    Publisher* publisher = nullptr;      // optional; outlives the Ledger
    StorageMetrics metrics;              // default: no-op
    std::string location;                // the store's path, for messages
    // State versions kept for GetStateAt and proofs (>= 2): heights
    // latest - state_versions + 1 .. latest. Older tree nodes are deleted.
    uint64_t state_versions = kDefaultStateVersions;
    // Decoded state tree nodes kept in memory (SparseMerkleTree).
    size_t tree_cache_nodes = kDefaultTreeCacheNodes;
  };

  // Reads the chain state and checks that the store is consistent (the block,
  // header, certificate, roots and block hash index of the latest height all
  // exist and agree, the state tree's root node exists, and the store
  // belongs to the genesis's chain and has this code's state format).
  // FailedPrecondition "store at <location> is inconsistent: ..." otherwise;
  // store errors as they come.
  static absl::StatusOr<std::unique_ptr<Ledger>> Open(Options opts);

  // LedgerApi.
  absl::StatusOr<ChainState> GetChainState() override;
  absl::StatusOr<CommitResult> CommitBlock(
      ByteView encoded, const CommitCertificate& cert) override;

  // CommitHistory and ChainQueries: the tip from memory, once the store
  // has answered a KvStore::Ping (else the store's error, counted as one).
  absl::StatusOr<ChainTip> GetChainTip() override;

  // CommitHistory.
  // Heights [from, min(to, latest)], at most kMaxCommittedHeightsPerCall of
  // them, and no more once their txs reach kMaxCommittedTxsPerCall (the
  // height that reaches it is included). The page's next_height is the
  // first height not returned: a caller that wants all of a range continues
  // from there. from > latest gives an empty page with next_height = from;
  // from = 0 or from > to is InvalidArgument.
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override;
  // A prefix scan of the admin app's `member/` records through one store
  // snapshot, with the height and permissioned flag of that same moment.
  absl::StatusOr<MemberPage> ListMembers(const Bytes& cursor,
                                         uint32_t limit) override;
  // Test hook: lowers GetCommitted's per-call tx limit (default
  // kMaxCommittedTxsPerCall; 0 restores it) so that a test can make it stop
  // early with a few small blocks. Never called outside tests.
  void TestOnlySetMaxCommittedTxsPerCall(size_t max_txs);

  // BlockSource.
  // One MultiGet for the first (up to) 8 heights, then one per as many
  // more as the bytes left allow at the size of the largest block read so
  // far: a call reads about max_bytes, whatever the size of the blocks.
  absl::StatusOr<std::vector<BlockRecord>> ReadCertifiedBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override;
  // One MultiGet of the tx index.
  absl::StatusOr<std::vector<uint64_t>> CommittedHeights(
      const std::vector<Hash32>& tx_hashes) override;

  // ChainQueries (and GetChainTip above).
  absl::StatusOr<BlockRecord> GetCertifiedBlock(
      std::optional<uint64_t> height) override;
  absl::StatusOr<BlockRecord> GetCertifiedBlockByHash(
      const Hash32& hash) override;
  // Reads headers and tx counts only, never whole blocks.
  absl::StatusOr<std::vector<BlockSummary>> ListBlockSummaries(
      uint64_t from, uint32_t limit) override;
  absl::StatusOr<TxRecord> GetTx(const Hash32& hash) override;
  // One MultiGet of blocks and receipts per (up to) 8 heights.
  absl::StatusOr<std::vector<BlockWithReceipts>> ReadBlocksWithReceipts(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override;
  // In evidence.cc.
  absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit) override;
  // In validator_changes.cc: one scan of the V records, then one MultiGet of
  // the next blocks' headers and certificates.
  absl::StatusOr<std::vector<StateRecord>> ListValidatorChanges(
      uint64_t up_to_height) override;

  // StateQueries.
  absl::StatusOr<StateRecord> GetState(const std::string& app,
                                       const std::string& key) override;
  // Heights latest - state_versions + 1 .. latest (and 0, the empty state,
  // while it is among them). The proof comes from the tree of that height,
  // the value from its leaf.
  absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                         const std::string& key,
                                         uint64_t height) override;
  // Reads the flat latest state (S keys) through one store snapshot.
  absl::StatusOr<StatePage> ScanState(const std::string& app,
                                      const std::string& prefix,
                                      const std::string& cursor,
                                      uint32_t limit) override;

  // Seconds spent in each phase of the commits so far (the phases of
  // StorageMetrics::commit_*), for the benchmark's breakdown.
  struct CommitTimings {
    uint64_t blocks = 0;
    double validate = 0;
    double execute = 0;
    double tree = 0;
    double write = 0;
  };
  CommitTimings commit_timings() const;

  // LedgerApi: evidence of equivocation (evidence.cc), kept apart from the
  // blocks, in its own atomic write, numbered in the order first recorded.
  absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records) override;

  // The chain's validator sets so far, the genesis's first: what the
  // certificate and evidence checks use, and the next set consensus gets
  // with each commit (validator_changes.cc).
  std::shared_ptr<const std::vector<ValidatorEpoch>> ValidatorEpochs();

 private:
  explicit Ledger(Options opts);

  struct Executed {
    std::vector<Bytes> receipts;  // EncodeReceipt of each tx, in order
    std::vector<std::pair<Hash32, keys::TxLocation>> new_txs;  // to index
    StateOverlay::WriteSet writes;
    // The commit event's txs (as EventForBlock), from the hashes Execute
    // computed: the commit does not decode and hash the txs again.
    std::vector<CommittedTx> event_txs;
  };

  absl::Status CheckConsistent(ChainState* out);
  absl::Status Inconsistent(absl::string_view what) const;
  // The stored roots after `height`, for an idempotent re-commit.
  absl::StatusOr<CommitResult> StoredResult(uint64_t height);
  absl::Status ValidateBlock(const Block& block, const CommitCertificate& cert,
                             const Hash32& block_hash, const ChainState& chain);
  absl::StatusOr<Executed> Execute(const Block& block);
  // Counts and passes on a store or decoding failure.
  absl::Status StoreError(absl::Status s);
  absl::Status Corrupt(absl::string_view what, const absl::Status& s);
  // The chain rules of the admin `config` record `json` (RulesInForce), or
  // nullopt, logged and counted as corrupt, when it does not decode or holds
  // a rule out of bounds: the rules then stay as they were (every node reads
  // the same record, so every node keeps the same rules).
  std::optional<ChainRules> RulesOfConfig(std::string_view json);
  // The rules a block's writes put in force when they differ from `before`
  // (a set_rule vote rewrote `config`); nullopt when they do not.
  std::optional<ChainRules> RulesChange(const StateOverlay::WriteSet& writes,
                                        const ChainRules& before);
  // The oldest height whose state is kept when the chain is at `latest`.
  uint64_t OldestKept(uint64_t latest) const;
  // Loads the V records into epochs_ (Open). A crash between a block's
  // write and the write of its V record leaves the latest change without
  // one: it is written here, from the state the block left.
  absl::Status LoadValidatorChanges();
  // Block `height` changed "validators/pending": keeps the record with its
  // proof (V<height>) and puts the new set in epochs_. Idempotent.
  absl::Status KeepValidatorChange(uint64_t height);
  // KeepValidatorChange of the latest change in state, unless kept already
  // (after a crash between the two writes, or a failed KeepValidatorChange).
  absl::Status KeepLatestValidatorChange();
  // The set of `height`, from epochs_.
  std::vector<Validator> ValidatorsOf(uint64_t height);

  Options opts_;  // not const: its metric handles are updated
  const Genesis& genesis_;
  const CryptoSuite& suite_;
  const SparseMerkleTree tree_;

  // Serializes commits; taken before state_mu_.
  mutable absl::Mutex commit_mu_ ABSL_ACQUIRED_BEFORE(state_mu_);
  CommitTimings timings_ ABSL_GUARDED_BY(commit_mu_);
  // Writers: the batch write of a commit together with the update of chain_.
  // Readers: a query that must see the state as of exactly one height.
  absl::Mutex state_mu_;
  // Its next_rules are always set: the rules of the next height.
  ChainState chain_ ABSL_GUARDED_BY(state_mu_);
  // Whether the admin `config` record exists after chain_.height.
  bool permissioned_ ABSL_GUARDED_BY(state_mu_) = false;
  // Replaced whole when a change is kept; readers take the pointer.
  std::shared_ptr<const std::vector<ValidatorEpoch>> epochs_
      ABSL_GUARDED_BY(state_mu_);
  // The heights of the changes kept (V records), ascending.
  std::vector<uint64_t> validator_change_heights_ ABSL_GUARDED_BY(state_mu_);
  // Serializes RecordEvidence (it reads the last seq, then writes).
  absl::Mutex evidence_mu_;
  // The state trees below this height were pruned before this Ledger opened
  // ("M state_pruned_through"); set by Open.
  uint64_t pruned_floor_ = 0;
  // GetCommitted's tx limit per call (TestOnlySetMaxCommittedTxsPerCall).
  std::atomic<size_t> max_committed_txs_{kMaxCommittedTxsPerCall};
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_LEDGER_H_
