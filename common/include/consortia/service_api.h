// What each service offers the others. Every interface here has two
// implementations: the service's own in-process object, and a remote client
// over the bus (MakeRemote* below), so a node runs as one process or as four
// with the same code. Messages carry batches: no call is made per key or per
// transaction on a hot path.
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
#include "consortia/types.h"

namespace consortia {

// Message type ids of the bus. Values are part of the wire protocol: never
// reuse or renumber one.
enum class MsgType : uint16_t {
  kMempoolSubmit = 1,
  kMempoolReap = 2,
  kStorageChainState = 10,
  kStorageCommitBlock = 11,
  kQueryBlock = 20,
  kQueryTx = 21,
  kQueryState = 22,
  kQueryCommitted = 23,
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
  kPoolFull = 9,          // retry later
  kSenderLimit = 10,      // too many pending from this sender; retry later
};
std::string_view AdmissionName(Admission a);

struct SubmitResult {
  Hash32 tx_hash{};     // zero when the tx did not decode
  Admission code = Admission::kAccepted;
  std::string detail;   // human-readable, for the client
};

struct ReapRequest {
  uint32_t max_txs = 0;
  uint64_t max_bytes = 0;
  // The height consensus is building on. The mempool first applies commit
  // events up to this height, so it never hands out a committed tx; if it
  // cannot within the call's deadline it answers Unavailable.
  uint64_t committed_height = 0;
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
class LedgerApi {
 public:
  virtual ~LedgerApi() = default;
  virtual absl::StatusOr<ChainState> GetChainState() = 0;
  // Executes and persists block + certificate + state + receipts + indexes
  // atomically, then publishes block.committed. FailedPrecondition if the
  // block does not extend the chain (height or prev_hash) or its header's
  // roots differ from storage's; committing the same block again returns the
  // same result (idempotent).
  virtual absl::StatusOr<CommitResult> CommitBlock(
      const Block& block, const CommitCertificate& cert) = 0;
};

struct BlockRecord {
  Block block;
  Hash32 block_hash{};
  std::optional<CommitCertificate> cert;
};

// A committed tx with what a client needs to check it offline.
struct TxRecord {
  Bytes raw_tx;
  uint64_t height = 0;
  uint32_t index = 0;
  Receipt receipt;
  MerkleProof inclusion;           // raw_tx in header.tx_root
  BlockHeader header;
  CommitCertificate cert;
  // receipt among its block's receipts; always set (the receipts exist as
  // soon as the block is executed), checkable once next_header exists.
  MerkleProof receipt_proof;       // receipt in next_header.receipts_root
  std::optional<BlockHeader> next_header;
  std::optional<CommitCertificate> next_cert;
};

struct StateRecord {
  bool found = false;
  Bytes value;
  Bytes owner;          // public key of the record's owner (kv app)
  uint64_t height = 0;  // state as of after executing this block
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

// The part of storage that the api and the mempool read. Thread-safe.
class QueryApi {
 public:
  virtual ~QueryApi() = default;
  // height nullopt = the latest block. NotFound if there is none.
  virtual absl::StatusOr<BlockRecord> GetBlock(std::optional<uint64_t> height) = 0;
  // NotFound if no committed tx has this hash.
  virtual absl::StatusOr<TxRecord> GetTx(const Hash32& hash) = 0;
  // found = false when the key has no value (not an error).
  virtual absl::StatusOr<StateRecord> GetState(const std::string& app,
                                               const std::string& key) = 0;
  // The commit events of heights [from, to], at most 1000 per call, to fill a
  // subscriber's gap or rebuild a replay window.
  virtual absl::StatusOr<std::vector<CommittedEvent>> GetCommitted(
      uint64_t from, uint64_t to) = 0;
};

// ---------------------------------------------------------------- codecs
// Payload encodings of the messages above. Decoders return InvalidArgument.

Bytes EncodeCommittedEvent(const CommittedEvent& e);
absl::StatusOr<CommittedEvent> DecodeCommittedEvent(ByteView data);

// A TxRecord's canonical encoding is also its offline proof bundle: the api
// returns it (hex) with every committed tx, and `consortia verify` decodes it
// and checks it with VerifyTxRecord, trusting nothing but the genesis.
Bytes EncodeTxRecord(const TxRecord& r);
absl::StatusOr<TxRecord> DecodeTxRecord(ByteView data);

// OK iff raw_tx decodes and hashes to `expected_hash` (when not zero), the
// inclusion proof leads to header.tx_root, cert is a valid commit certificate
// of header for the genesis validators, and, when next_header is present,
// next_header.prev_hash is header's hash, next_cert certifies next_header and
// the receipt proof leads to next_header.receipts_root. InvalidArgument or
// PermissionDenied (bad signatures) with the reason otherwise.
absl::Status VerifyTxRecord(const CryptoSuite& suite, const Genesis& genesis,
                            const TxRecord& r, const Hash32& expected_hash);

Bytes EncodeBlockRecord(const BlockRecord& r);
absl::StatusOr<BlockRecord> DecodeBlockRecord(ByteView data);

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
