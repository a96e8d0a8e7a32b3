// What each service offers the others over the bus. Every interface has two
// implementations: the service's own in-process object, and a remote client
// over the bus (MakeRemote* below), so a node runs as one process or as four
// with the same code. Messages carry batches: no call is made per key or per
// transaction on a hot path.
//
// The interfaces: MempoolApi (the mempool's) and LedgerApi (storage's write
// side, for consensus) below; storage's read side, one interface per
// consumer (CommitHistory, BlockSource, ChainQueries, StateQueries), in
// storage_queries.h, which this header includes. No method has a default
// body.
//
// Where the code is (common/src/): the admission names in service_api.cc;
// the messages and their codecs in service_messages.{h,cc} (library
// consortia_service_messages); the proof bundles in proof_bundle.cc
// (consortia_proof_bundle, no ZeroMQ); the remote clients in
// service_remote.cc and the server dispatch in service_serve.cc (both in
// consortia_bus). Shared test fakes: common/testing/ (consortia_test_fakes).
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
#include "consortia/storage_queries.h"
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
  // Storage queries (storage_queries.h).
  kQueryCertifiedBlock = 20,
  kQueryTx = 21,
  kQueryState = 22,
  kQueryCommitted = 23,
  kQueryStateAt = 24,
  kQueryCertifiedBlockByHash = 25,
  kQueryBlockSummaries = 26,
  kQueryScanState = 27,
  kQueryEvidence = 28,
  kQueryCertifiedBlocks = 29,
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
  kQueryChainTip = 51,
  kQueryBlocksWithReceipts = 52,
  kQueryMembers = 53,
  kQueryValidatorChanges = 54,
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
  // The chain is permissioned and the sender key is not a registered member
  // (the mempool's membership cache, services/mempool/README.md).
  kUnregisteredSender = 11,
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
  // (committed within its validity window, or earlier in the same proposal),
  // kUnregisteredSender (on a permissioned chain, a sender that is not a
  // member after height - 1: execution would refuse it on every node, so a
  // block that carries it is a proposer's flood; honest proposers reap only
  // members' txs) or kBadSignature. Never kAlreadyPending, kTooLarge,
  // kPoolFull or kSenderLimit: a node's local admission limits do not make a
  // block invalid.
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
  // FailedPrecondition when `height` is already committed.
  virtual absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height) = 0;
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
  // The validators of height + 1: the genesis's until governance changes
  // them (docs/apps.md, "Validator-set changes"). A change committed at
  // height H is in force from H + delay (delay >= 2), so the state after
  // each block tells the set of the next one.
  std::vector<Validator> next_validators;
  // The chain rules of height + 1: the genesis's, with those a governance
  // vote changed (set_rule) from the block after the vote's (docs/apps.md,
  // "Chain rules"). Absent: the genesis's (a storage that names none, as
  // test fakes).
  std::optional<ChainRules> next_rules;
};

struct CommitResult {
  Hash32 state_root{};                     // after executing the block
  Hash32 receipts_root{};                  // of the block's receipts
  std::vector<Validator> next_validators;  // of the block's height + 1
  std::optional<ChainRules> next_rules;    // of height + 1 (as ChainState)
};

// The part of storage that consensus writes through (owner: consensus; it
// reads through BlockSource, storage_queries.h). Thread-safe.
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
  // message is not evidence that verifies against the validators of its
  // height (VerifyEvidence, common/evidence.h) with the kind, height, round and
  // validator the record states: then nothing is kept, and the error names
  // the first bad record.
  virtual absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records) = 0;
};

// What storage answers to reads (CommitHistory for the mempool, BlockSource
// for consensus, ChainQueries and StateQueries for the api), with the
// records they answer with, is in storage_queries.h. The records that are
// proof bundles (BlockRecord, TxRecord, StateRecord) are declared with their
// codecs and their offline verification in proof_bundle.h.

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
// Storage's read side, one client per consumer's interface (one remote object
// implements all four; each factory hands out the slice its consumer owns).
std::unique_ptr<CommitHistory> MakeRemoteCommitHistory(BusClient* client,
                                                       absl::Duration timeout);
std::unique_ptr<BlockSource> MakeRemoteBlockSource(BusClient* client,
                                                   absl::Duration timeout);
std::unique_ptr<ChainQueries> MakeRemoteChainQueries(BusClient* client,
                                                     absl::Duration timeout);
std::unique_ptr<StateQueries> MakeRemoteStateQueries(BusClient* client,
                                                     absl::Duration timeout);

// Runs a blocking call off the bus I/O thread. Implemented by ThreadPool.
using Executor = std::function<void(std::function<void()>)>;

// Bus handlers that serve an in-process implementation; the calls run on
// `exec`. Unknown message types are answered with Unimplemented.
BusServer::Handler ServeMempool(MempoolApi* impl, Executor exec);

// What storage serves on its one endpoint: its write side and the four
// interfaces of its read side. Storage's Ledger is all five. None is owned;
// each must outlive the handler. A null one answers its message types with
// Unimplemented (as an unknown type), so that a test serves only the fakes it
// needs. GetChainTip, which two interfaces declare, is answered by
// commit_history, or by chain_queries when commit_history is null.
struct StorageInterfaces {
  LedgerApi* ledger = nullptr;
  CommitHistory* commit_history = nullptr;
  BlockSource* block_source = nullptr;
  ChainQueries* chain_queries = nullptr;
  StateQueries* state_queries = nullptr;
};
BusServer::Handler ServeStorage(const StorageInterfaces& impl, Executor exec);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_SERVICE_API_H_
