// What each service offers the others. Every interface here has two
// implementations: the service's own in-process object, and a remote client
// over the bus (MakeRemote* below), so a node runs as one process or as four
// with the same code. Messages carry batches: no call is made per key or per
// transaction on a hot path.
//
// Where the code is (common/src/): the interfaces' own bits in
// service_api.cc; the messages and their codecs in service_messages.{h,cc}
// (library consortia_service_messages); the proof bundles in
// proof_bundle.cc (consortia_proof_bundle, no ZeroMQ); the remote clients in
// service_remote.cc and the server dispatch in service_serve.cc (both in
// consortia_bus).
#ifndef CONSORTIA_COMMON_SERVICE_API_H_
#define CONSORTIA_COMMON_SERVICE_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/bus.h"
#include "consortia/bytes.h"
#include "consortia/merkle.h"
#include "consortia/proof_bundle.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"

namespace consortia {

// Message type ids of the bus. Values are part of the wire protocol: never
// reuse or renumber one.
enum class MsgType : uint16_t {
  kMempoolSubmit = 1,
  kMempoolReap = 2,
  kMempoolCheckProposal = 3,
  kStorageChainState = 10,
  kStorageCommitBlock = 11,
  kStorageRecordEvidence = 12,
  kQueryBlock = 20,
  kQueryTx = 21,
  kQueryState = 22,
  kQueryCommitted = 23,
  kQueryStateAt = 24,
  kQueryBlockByHash = 25,
  kQueryListBlocks = 26,
  kQueryScanState = 27,
  kQueryEvidence = 28,
  kQueryGetBlocks = 29,
  // Between the consensus services of the validators, over PeerNet
  // (services/consensus, tendermint_driver.h). The payload of 30-32 is a
  // tendermint Message (EncodeMessage); of 33, the varint height the sender
  // is working on.
  kConsensusProposal = 30,
  kConsensusVote = 31,
  kConsensusCommit = 32,
  kConsensusStatus = 33,
  // Between the mempools of the nodes, over PeerNet (services/mempool,
  // gossip.h): a batch of raw txs (varint count, then each length-prefixed).
  kMempoolGossipTxs = 40,
  // Storage queries, continued.
  kQueryCommittedHeights = 50,
  kEventBlockCommitted = 100,
};

inline constexpr char kTopicBlockCommitted[] = "block.committed";

// ---------------------------------------------------------------- mempool

// Why a tx was or was not admitted. The wire value is stable; the api maps
// each to one HTTP status and problem type (services/api, problem.cc).
enum class Admission : uint8_t {
  kAccepted = 0,          // new, now pending
  kAlreadyPending = 1,    // same hash already pending: idempotent success
  kMalformed = 2,         // does not decode, or a field is invalid
  kTooLarge = 3,          // over the mempool's max tx bytes
  kWrongChain = 4,        // chain_id is not this chain's
  kExpired = 5,           // valid_until below the next height
  kTooFarAhead = 6,       // valid_until beyond the replay window
  kAlreadyCommitted = 7,  // same hash committed within its validity window
  kBadSignature = 8,
  kPoolFull = 9,      // retry later
  kSenderLimit = 10,  // too many pending from this sender; retry later
};
std::string_view AdmissionName(Admission a);

struct SubmitResult {
  Hash32 tx_hash{};  // zero when the tx did not decode
  Admission code = Admission::kAccepted;
  std::string detail;  // human-readable, for the client
};

struct ReapRequest {
  uint32_t max_txs = 0;
  uint64_t max_bytes = 0;
  // The height consensus is building on. The mempool first applies commit
  // events up to this height, so it never hands out a committed tx; if it
  // cannot within the call's deadline it answers Unavailable.
  uint64_t committed_height = 0;
};

// The mempool's verdict on one tx of a proposed block (CheckProposal).
struct ProposalTxCheck {
  Hash32 tx_hash{};  // zero when the tx did not decode
  // kAccepted: the tx may be included at the proposal's height. Otherwise
  // why not: kMalformed (does not decode, or a field is invalid),
  // kWrongChain, kExpired (valid_until below the height), kTooFarAhead
  // (valid_until beyond the height + the replay window), kAlreadyCommitted
  // (committed within its validity window, or earlier in the same proposal)
  // or kBadSignature. Never kAlreadyPending, kTooLarge, kPoolFull or
  // kSenderLimit: a node's local admission limits do not make a block
  // invalid.
  Admission code = Admission::kAccepted;
  bool operator==(const ProposalTxCheck&) const = default;
};

// Thread-safe.
class MempoolApi {
 public:
  virtual ~MempoolApi() = default;
  // One result per input, in order. A non-OK status means the whole call
  // failed (transport, shutdown), not that txs were rejected.
  virtual absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) = 0;
  // Pending txs in arrival order, within both limits.
  virtual absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) = 0;
  // Checks the txs of a block proposed at `height` (which builds on height
  // - 1), all in one call: one verdict per input, in order. A tx whose
  // signature the mempool has already verified (when it was submitted, or
  // in an earlier proposal) is not verified again. Like Reap, it first
  // applies the commit events up to height - 1. Errors concern the whole
  // call: InvalidArgument for height 0, Unavailable before the mempool is
  // ready or when the commit events up to height - 1 do not arrive in time,
  // FailedPrecondition when `height` is already committed. The default
  // answers Unimplemented (for fakes that do not need it).
  virtual absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height);
};

// ---------------------------------------------------------------- storage

// Where the ledger stands: the last committed block, and the roots after
// executing it (which the next block's header carries).
struct ChainState {
  uint64_t height = 0;  // 0 = nothing committed yet
  Hash32 last_block_hash{};
  uint64_t last_time_ms = 0;
  Hash32 state_root{};
  Hash32 receipts_root{};
};

struct CommitResult {
  Hash32 state_root{};     // after executing the block
  Hash32 receipts_root{};  // of the block's receipts
};

// The part of storage that consensus uses. Thread-safe.
// Proof that a validator equivocated: two validly signed, conflicting votes
// or proposals of it for one height and round. Consensus finds it, storage
// keeps it, the api lists it. `message` is consensus's encoding of the pair
// (tendermint EncodeEvidence, docs/consensus.md), which anyone can check
// against the genesis validators' keys; the other fields summarise it.
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

class LedgerApi {
 public:
  virtual ~LedgerApi() = default;
  virtual absl::StatusOr<ChainState> GetChainState() = 0;
  // Executes and persists block + certificate + state + receipts + indexes
  // atomically, then publishes block.committed. `block` is the block's
  // canonical encoding (EncodeBlock), as consensus received or built it:
  // storage decodes it once, to execute it, and persists these very bytes
  // (only a block's own encoding decodes to it, types.h), so no one encodes
  // the block again on the way. InvalidArgument if it does not decode;
  // FailedPrecondition if the block does not extend the chain (height or
  // prev_hash) or its header's roots differ from storage's; committing the
  // same block again returns the same result (idempotent).
  virtual absl::StatusOr<CommitResult> CommitBlock(
      ByteView block, const CommitCertificate& cert) = 0;
  // Keeps each record durably, in one write, unless a record with the same
  // message is kept already (idempotent; seq is ignored). InvalidArgument
  // for more than kMaxListEvidence records, an empty kind or message, a
  // message over kMaxEvidenceMessageBytes, or (storage) a record whose
  // message is not evidence that verifies against the genesis validators
  // (VerifyEvidence, common/evidence.h) with the kind, height, round and
  // validator the record states: then nothing is kept, and the error names
  // the first bad record.
  // Unimplemented unless overridden (storage does).
  virtual absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records);
};

// The records a query answers with (BlockRecord, TxRecord, StateRecord) are
// proof bundles, declared with their codecs and their offline verification in
// proof_bundle.h.

// Bounds of the paginated queries.
inline constexpr uint32_t kMaxListBlocks = 100;
inline constexpr uint32_t kMaxGetBlocks = 64;
inline constexpr uint32_t kMaxScanState = 100;
// Hashes per CommittedHeights call: a whole block's.
inline constexpr size_t kMaxCommittedHeightsQuery = kMaxBlockTxs;

// One block of a list: its header, hash and size, without its txs.
struct BlockSummary {
  BlockHeader header;
  Hash32 block_hash{};
  uint32_t tx_count = 0;
  bool operator==(const BlockSummary&) const = default;
};

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

struct CommittedTx {
  Hash32 hash{};
  uint64_t valid_until = 0;
  bool operator==(const CommittedTx&) const = default;
};

// Payload of a block.committed event.
struct CommittedEvent {
  uint64_t height = 0;
  Hash32 block_hash{};
  std::vector<CommittedTx> txs;
  bool operator==(const CommittedEvent&) const = default;
};

// A page of commit events (QueryApi::GetCommitted): the events of heights
// [from, next_height - 1], one per height in height order, where `from` is
// the height asked for. A page may stop before the end of the range asked
// for (a limit of heights or txs per reply, or storage's tip): next_height
// says where it stopped, and a caller that wants the rest asks again from
// next_height. next_height == from means storage has nothing from `from`
// yet (beyond its tip).
struct CommittedPage {
  std::vector<CommittedEvent> events;
  uint64_t next_height = 0;
  bool operator==(const CommittedPage&) const = default;
};

// The part of storage that the api and the mempool read. Thread-safe.
class QueryApi {
 public:
  virtual ~QueryApi() = default;
  // height nullopt = the latest block. NotFound if there is none.
  virtual absl::StatusOr<BlockRecord> GetBlock(
      std::optional<uint64_t> height) = 0;
  // NotFound if no committed tx has this hash.
  virtual absl::StatusOr<TxRecord> GetTx(const Hash32& hash) = 0;
  // found = false when the key has no value (not an error).
  virtual absl::StatusOr<StateRecord> GetState(const std::string& app,
                                               const std::string& key) = 0;
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

  // The queries below answer Unimplemented unless overridden (test fakes
  // that do not need them leave them so); storage implements them all.

  // As GetState (whose answer is for the latest height), for the state
  // after block `height`. NotFound beyond the tip, or for a height older
  // than the versions storage keeps (the latest few; see its README).
  virtual absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                                 const std::string& key,
                                                 uint64_t height);
  // The block with this hash. NotFound if none.
  virtual absl::StatusOr<BlockRecord> GetBlockByHash(const Hash32& hash);
  // Blocks from height `from` up, at most `limit` (1..kMaxListBlocks), in
  // height order without holes; empty when from is beyond the tip. The
  // answer may hold fewer than `limit` before the tip too (a future byte
  // budget per reply): a caller that wants more continues from the last
  // height + 1, and only an empty answer means nothing more is committed.
  // InvalidArgument for from = 0 or a limit out of range.
  virtual absl::StatusOr<std::vector<BlockSummary>> ListBlocks(uint64_t from,
                                                               uint32_t limit);
  // Whole blocks with their certificates (as GetBlock), from height `from`
  // up, in one call: at most `limit` (1..kMaxGetBlocks), fewer at the tip
  // (empty when from is beyond it), and no more once their encoded blocks
  // reach `max_bytes` (the block that reaches it is included, so a call
  // that can return a block returns at least one). So an answer may stop
  // before `limit` blocks and before the tip: a caller that wants more
  // continues from the last height + 1 (empty: nothing from `from` yet).
  // Block sync reads old blocks with it. InvalidArgument for from = 0, a
  // limit out of range or max_bytes = 0.
  virtual absl::StatusOr<std::vector<BlockRecord>> GetBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes);
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
                                              uint32_t limit);
  // Evidence records with seq >= from_seq, in seq order without holes, at
  // most `limit` (1..kMaxListEvidence). As with ListBlocks, the answer may
  // hold fewer than `limit` before the last record: a caller that wants
  // more continues from the last seq + 1, and only an empty answer means
  // there is no more. InvalidArgument for from_seq = 0 or a limit out of
  // range.
  virtual absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit);
  // For each tx hash, the height of the block that committed it, or 0 when
  // none did; one answer per hash, in order, from one store read. A
  // validator checks a proposed block's replay window with it when its
  // mempool cannot. InvalidArgument for more than kMaxCommittedHeightsQuery
  // hashes.
  virtual absl::StatusOr<std::vector<uint64_t>> CommittedHeights(
      const std::vector<Hash32>& tx_hashes);
};

// ---------------------------------------------------------------- codecs
// Payload encodings of the messages above. Decoders return InvalidArgument.

Bytes EncodeEvidenceRecord(const EvidenceRecord& r);
absl::StatusOr<EvidenceRecord> DecodeEvidenceRecord(ByteView data);

Bytes EncodeCommittedEvent(const CommittedEvent& e);
absl::StatusOr<CommittedEvent> DecodeCommittedEvent(ByteView data);

// The codecs and the verification of the proof bundles (BlockRecord, TxRecord,
// StateRecord) are in proof_bundle.h; the request and reply payloads of each
// MsgType are internal (common/src/service_messages.h).

// ---------------------------------------------------------------- remotes
// Bus clients that implement the interfaces; `client` must outlive them. Each
// call is one request with the given deadline.

std::unique_ptr<MempoolApi> MakeRemoteMempool(BusClient* client,
                                              absl::Duration timeout);
std::unique_ptr<LedgerApi> MakeRemoteLedger(BusClient* client,
                                            absl::Duration timeout);
std::unique_ptr<QueryApi> MakeRemoteQuery(BusClient* client,
                                          absl::Duration timeout);

// Runs a blocking call off the bus I/O thread. Implemented by ThreadPool.
using Executor = std::function<void(std::function<void()>)>;

// Bus handlers that serve an in-process implementation; the calls run on
// `exec`. Unknown message types are answered with Unimplemented.
BusServer::Handler ServeMempool(MempoolApi* impl, Executor exec);
// Serves both LedgerApi and QueryApi on one endpoint (storage's).
BusServer::Handler ServeStorage(LedgerApi* ledger, QueryApi* query,
                                Executor exec);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_SERVICE_API_H_
