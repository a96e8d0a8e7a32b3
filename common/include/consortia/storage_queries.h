// What storage answers to the other services' reads: one interface per
// consumer, named for what it is to that consumer (STYLE.md rule 2: the
// consumer owns the narrow interface it needs). Each section below says
// which service owns its interface and why it holds exactly these calls; a
// consumer may hold several. No method has a default body: every
// implementation, fake or real, implements every call.
//
// They live in common/ and not in their consumers only because storage
// implements them and services cannot include each other (common/README.md,
// scripts/check-layering.sh). Storage's Ledger implements all four and serves
// them on its endpoint (ServeStorage, service_api.h); each has a remote client
// over the bus (MakeRemoteCommitHistory, MakeRemoteBlockSource,
// MakeRemoteChainQueries, MakeRemoteStateQueries, service_api.h). Shared test
// fakes of each: common/testing/ (consortia_test_fakes).
//
// The block reads differ in what and how much they return, and their names
// say so:
//   GetChainTip               the latest height and its block hash only;
//   GetCertifiedBlock         one whole block with its certificate (a proof
//   GetCertifiedBlockByHash   bundle), by height or latest / by hash;
//   ListBlockSummaries        headers, hashes and tx counts of a run of
//                             heights, without txs or certificates;
//   ReadCertifiedBlocks       whole blocks with their certificates for a run
//                             of heights, within a byte budget (block sync);
//   ReadBlocksWithReceipts    whole blocks with their txs' receipts for a run
//                             of heights, within a byte budget (the api's
//                             event stream).
//
// Thread safety: every implementation is thread-safe.
#ifndef CONSORTIA_COMMON_STORAGE_QUERIES_H_
#define CONSORTIA_COMMON_STORAGE_QUERIES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/proof_bundle.h"
#include "consortia/types.h"

namespace consortia {

// ----------------------------------------------------- shared records

// Where the chain ends: the latest committed height and its block's hash.
struct ChainTip {
  uint64_t height = 0;  // 0 = nothing committed yet (block_hash is zero)
  Hash32 block_hash{};
  bool operator==(const ChainTip&) const = default;
};

// Proof that a validator equivocated: two validly signed, conflicting votes
// or proposals of it for one height and round. Consensus finds it and hands
// it to storage (LedgerApi::RecordEvidence, service_api.h), storage keeps it,
// the api lists it (ChainQueries::ListEvidence). `message` is consensus's
// encoding of the pair (tendermint EncodeEvidence, docs/consensus.md), which
// anyone can check against the genesis validators' keys; the other fields
// summarise it.
struct EvidenceRecord {
  uint64_t seq = 0;  // set by storage: 1, 2, ... in the order first kept
  std::string kind;  // "duplicate_vote" or "duplicate_proposal"
  uint64_t height = 0;
  uint32_t round = 0;
  uint32_t validator_index = 0;
  Bytes message;
  bool operator==(const EvidenceRecord&) const = default;
};

// Bounds of evidence: records per RecordEvidence or ListEvidence call, and
// bytes of one message (two headers and two signatures need far less).
inline constexpr uint32_t kMaxListEvidence = 100;
inline constexpr size_t kMaxEvidenceMessageBytes = 64 * 1024;

// ------------------------------------------ CommitHistory (owner: mempool)
// The mempool forgets committed txs and refuses them again within their
// validity window. It follows the block.committed events, and from storage
// it needs only where the chain ends (to rebuild its replay window at start),
// the commit events of a range of heights (the window, or a gap in the
// events it received), and, for admission on a permissioned chain, the
// registered member keys once at start (ListMembers; the commit events keep
// its cache current afterwards): never a block, a proof or a state value.

struct CommittedTx {
  Hash32 hash{};
  uint64_t valid_until = 0;
  bool operator==(const CommittedTx&) const = default;
};

// A member key that a block registered (wrote the admin record
// `member/<hex of public_key>`, new or changed) or unregistered (deleted it).
struct MemberChange {
  Bytes public_key;
  bool registered = false;
  bool operator==(const MemberChange&) const = default;
};

// Bounds of a commit event's member changes: per event (a genesis consortium
// registers all its founding keys in block 1) and bytes of one key.
inline constexpr size_t kMaxMemberChanges = 100000;
inline constexpr size_t kMaxMemberKeyBytes = kMaxPublicKeyBytes;

// Payload of a block.committed event (kTopicBlockCommitted, service_api.h),
// and one height of a CommittedPage.
struct CommittedEvent {
  uint64_t height = 0;
  Hash32 block_hash{};
  std::vector<CommittedTx> txs;
  // The member keys the block registered or unregistered (admin app,
  // `member/<hex>` records), each key once, in ascending byte order; the
  // mempool's membership cache applies them (services/mempool/README.md).
  std::vector<MemberChange> member_changes;
  // Whether the chain is permissioned after this block: the admin record
  // `config` exists. A permissioned chain admits txs only from registered
  // member keys.
  bool permissioned = false;
  // The chain rules in force from the next height, when this block changed
  // them (a set_rule vote); absent when they stay as they were. The
  // mempool's replay window follows them.
  std::optional<ChainRules> rules;
  bool operator==(const CommittedEvent&) const = default;
};

// A page of commit events (CommitHistory::GetCommitted): the events of
// heights [from, next_height - 1], one per height in height order, where
// `from` is the height asked for. A page may stop before the end of the range
// asked for (a limit of heights or txs per reply, or storage's tip):
// next_height says where it stopped, and a caller that wants the rest asks
// again from next_height. next_height == from means storage has nothing from
// `from` yet (beyond its tip).
struct CommittedPage {
  std::vector<CommittedEvent> events;
  uint64_t next_height = 0;
  bool operator==(const CommittedPage&) const = default;
};

// Keys per ListMembers call.
inline constexpr uint32_t kMaxListMembers = 1000;

// A page of the registered member keys (CommitHistory::ListMembers), read
// from the state after block `height`.
struct MemberPage {
  uint64_t height = 0;
  // Whether the chain is permissioned after that block (as
  // CommittedEvent::permissioned).
  bool permissioned = false;
  // Public keys in ascending byte order.
  std::vector<Bytes> public_keys;
  // Set when more keys may follow: pass it as the next call's cursor.
  std::optional<Bytes> next_cursor;
  // The chain rules in force after that block (absent: the genesis's).
  std::optional<ChainRules> rules;
  bool operator==(const MemberPage&) const = default;
};

class CommitHistory {
 public:
  virtual ~CommitHistory() = default;
  // The latest committed height and its block hash ({0, zero} on an empty
  // chain). Storage answers from memory, but only after checking that its
  // store answers (KvStore::Ping): an error (Unavailable, or the store's)
  // means storage cannot serve reads right now, as when its Redis is down.
  virtual absl::StatusOr<ChainTip> GetChainTip() = 0;
  // The commit events of heights [from, to], to fill a subscriber's gap or
  // rebuild a replay window. The answer may stop early: at most 1000 heights
  // per call, fewer when their txs reach a per-reply limit (storage: 100,000;
  // at least one height is always returned) or at the tip; its next_height
  // says where it stopped (CommittedPage), and a caller that wants the whole
  // range calls again from there until next_height > to. A call that makes
  // no progress (next_height == from) means the heights are not committed
  // yet. InvalidArgument for from = 0 or from > to.
  virtual absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                                     uint64_t to) = 0;
  // The registered member keys (the admin app's `member/<hex>` records),
  // after `cursor` (exclusive; empty = from the first), at most `limit`
  // (1..kMaxListMembers), in ascending byte order, all from the state after
  // one height (the page's), with whether the chain is permissioned then. A
  // page with a next_cursor may be followed by more, possibly read at a later
  // height: a caller that wants the whole set loads every page and then
  // applies the member changes of every commit event above the FIRST page's
  // height (a change applied twice is harmless). InvalidArgument for a limit
  // out of range or a cursor longer than a key.
  virtual absl::StatusOr<MemberPage> ListMembers(const Bytes& cursor,
                                                 uint32_t limit) = 0;
};

// --------------------------------------------- BlockSource (owner: consensus)
// Consensus commits through LedgerApi (service_api.h) and reads back only
// what a validator needs of the past: old decided blocks, whole and
// certified, many per call, to hand to a peer that lags (block sync); and
// whether the txs of a proposed block were committed before, when its mempool
// cannot say (the replay window).

// Blocks per ReadCertifiedBlocks call.
inline constexpr uint32_t kMaxCertifiedBlocks = 64;
// Hashes per CommittedHeights call: a whole block's.
inline constexpr size_t kMaxCommittedHeightsQuery = kMaxBlockTxs;

class BlockSource {
 public:
  virtual ~BlockSource() = default;
  // Whole blocks with their certificates (as GetCertifiedBlock), from height
  // `from` up, in one call: at most `limit` (1..kMaxCertifiedBlocks), fewer
  // at the tip (empty when from is beyond it), and no more once their encoded
  // blocks reach `max_bytes` (the block that reaches it is included, so a
  // call that can return a block returns at least one). So an answer may
  // stop before `limit` blocks and before the tip: a caller that wants more
  // continues from the last height + 1 (empty: nothing from `from` yet).
  // InvalidArgument for from = 0, a limit out of range or max_bytes = 0.
  virtual absl::StatusOr<std::vector<BlockRecord>> ReadCertifiedBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes) = 0;
  // For each tx hash (TxHash), the height of the block that committed it, or
  // 0 when none did; one answer per hash, in order, from one store read.
  // InvalidArgument for more than kMaxCommittedHeightsQuery hashes.
  virtual absl::StatusOr<std::vector<uint64_t>> CommittedHeights(
      const std::vector<Hash32>& tx_hashes) = 0;
};

// --------------------------------------------------- ChainQueries (owner: api)
// The api's read routes over the chain itself (GET /v1/blocks..., /v1/txs/...,
// /v1/evidence; services/api/README.md), its readiness probe (GetChainTip,
// once a second), and the validator-set changes it adds to every proof it
// answers (ListValidatorChanges). Every answer a client may check offline is a
// proof bundle (proof_bundle.h).

// Blocks per ListBlockSummaries call.
inline constexpr uint32_t kMaxBlockSummaries = 100;

// One block of a list: its header, hash and size, without its txs.
struct BlockSummary {
  BlockHeader header;
  Hash32 block_hash{};
  uint32_t tx_count = 0;
  bool operator==(const BlockSummary&) const = default;
};

// Blocks per ReadBlocksWithReceipts call.
inline constexpr uint32_t kMaxBlocksWithReceipts = 64;

// Validator-set changes per ListValidatorChanges answer. A change takes
// effect two blocks after its own at the earliest and the next one waits
// for it, so a chain needs millions of blocks of governance votes to reach
// this.
inline constexpr uint32_t kMaxValidatorChanges = 10000;

// A committed block with the receipts of its txs (one per tx, in order).
struct BlockWithReceipts {
  Block block;
  Hash32 block_hash{};
  std::vector<Receipt> receipts;
  bool operator==(const BlockWithReceipts&) const = default;
};

class ChainQueries {
 public:
  virtual ~ChainQueries() = default;
  // As CommitHistory::GetChainTip: the latest height and block hash, and an
  // error when storage cannot serve reads now. Cheap: the api's readiness
  // probe calls it every second.
  virtual absl::StatusOr<ChainTip> GetChainTip() = 0;
  // One whole block with its certificate (once storage has it): the block's
  // proof bundle. height nullopt = the latest block. NotFound beyond the tip,
  // and for the latest on an empty chain.
  virtual absl::StatusOr<BlockRecord> GetCertifiedBlock(
      std::optional<uint64_t> height) = 0;
  // As GetCertifiedBlock, for the block with this hash. NotFound if none.
  virtual absl::StatusOr<BlockRecord> GetCertifiedBlockByHash(
      const Hash32& hash) = 0;
  // The summaries (header, hash, tx count; no txs) of the blocks from height
  // `from` up, at most `limit` (1..kMaxBlockSummaries), in height order
  // without holes; empty when from is beyond the tip. The answer may hold
  // fewer than `limit` before the tip too (a future byte budget per reply): a
  // caller that wants more continues from the last height + 1, and only an
  // empty answer means nothing more is committed. InvalidArgument for
  // from = 0 or a limit out of range.
  virtual absl::StatusOr<std::vector<BlockSummary>> ListBlockSummaries(
      uint64_t from, uint32_t limit) = 0;
  // The committed tx with this hash, with its proof bundle. NotFound if no
  // committed tx has it.
  virtual absl::StatusOr<TxRecord> GetTx(const Hash32& hash) = 0;
  // Evidence records with seq >= from_seq, in seq order without holes, at
  // most `limit` (1..kMaxListEvidence). As with ListBlockSummaries, the
  // answer may hold fewer than `limit` before the last record: a caller that
  // wants more continues from the last seq + 1, and only an empty answer
  // means there is no more. InvalidArgument for from_seq = 0 or a limit out
  // of range.
  virtual absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit) = 0;
  // The blocks from height `from` up with their txs' receipts, for the event
  // stream (GET /v1/events): at most `limit` (1..kMaxBlocksWithReceipts),
  // fewer at the tip (empty when from is beyond it), and no more once their
  // encoded blocks reach `max_bytes` (the block that reaches it is included).
  // As with ReadCertifiedBlocks, a caller that wants more continues from the
  // last height + 1. InvalidArgument for from = 0, a limit out of range or
  // max_bytes = 0.
  virtual absl::StatusOr<std::vector<BlockWithReceipts>> ReadBlocksWithReceipts(
      uint64_t from, uint32_t limit, uint64_t max_bytes) = 0;
  // The validator-set changes committed at heights 2..up_to_height, in
  // increasing height: for each block H whose txs changed the admin app's
  // "validators/pending" record, that record as block H left it with its
  // state proof, and block H + 1's header and certificate once that block
  // exists (it does for every H below the tip). What a client needs to
  // follow the validator sets from the genesis (FollowValidatorChanges,
  // proof_bundle.h): a change of block H takes effect at H + 2 at the
  // earliest, so the changes up to h - 1 give the set of every height up to
  // h + 1. Empty on a chain whose set never changed. ResourceExhausted if
  // there are more than kMaxValidatorChanges.
  virtual absl::StatusOr<std::vector<StateRecord>> ListValidatorChanges(
      uint64_t up_to_height) = 0;
};

// --------------------------------------------------- StateQueries (owner: api)
// The api's read routes over the apps' state (GET /v1/state/...): one value
// with its proof, latest or as of a height, and a page of a prefix scan.

// Records per ScanState call.
inline constexpr uint32_t kMaxScanState = 100;

// One record of a state scan.
struct StateItem {
  std::string key;
  Bytes value;
  Bytes owner;
  bool operator==(const StateItem&) const = default;
};

// A page of a state scan: records in key (byte) order.
struct StatePage {
  uint64_t height = 0;  // the state as of after this block
  std::vector<StateItem> items;
  // Set when more records may follow: pass it as the next call's cursor.
  std::optional<std::string> next_cursor;
  bool operator==(const StatePage&) const = default;
};

class StateQueries {
 public:
  virtual ~StateQueries() = default;
  // The record of `key` in `app` in the latest state, with its proof.
  // found = false when the key has no value (not an error).
  virtual absl::StatusOr<StateRecord> GetState(const std::string& app,
                                               const std::string& key) = 0;
  // As GetState, for the state after block `height`. NotFound beyond the
  // tip, or for a height older than the versions storage keeps (the latest
  // few; see its README).
  virtual absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                                 const std::string& key,
                                                 uint64_t height) = 0;
  // The records of `app` whose keys start with `prefix`, after `cursor`
  // (exclusive; empty = from the first), at most `limit` (1..kMaxScanState),
  // all from the state after one height. A page that comes with a
  // next_cursor may be followed by more (pass it as the next call's cursor;
  // the next page may be of a later height); one without it ends the scan.
  // InvalidArgument for an unknown app, a limit out of range, or a cursor
  // that does not start with prefix.
  virtual absl::StatusOr<StatePage> ScanState(const std::string& app,
                                              const std::string& prefix,
                                              const std::string& cursor,
                                              uint32_t limit) = 0;
};

}  // namespace consortia

#endif  // CONSORTIA_COMMON_STORAGE_QUERIES_H_
