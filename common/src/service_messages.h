// The bus messages between the services: the request and reply payloads of
// each MsgType of service_api.h, and their codecs. Internal to common/: the
// remote clients (service_remote.cc) and the server dispatch
// (service_serve.cc) use them, and so do the tests and the fuzz target. The
// payloads that are proof bundles (block, tx and state records) have their
// public codecs in proof_bundle.h. Decoders return InvalidArgument for
// malformed input, any count or length over its bound, or trailing bytes.
#ifndef CONSORTIA_COMMON_SRC_SERVICE_MESSAGES_H_
#define CONSORTIA_COMMON_SRC_SERVICE_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/proof_bundle.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "wire_decode.h"

// The namespace keeps its old name (these were service_api.cc's internals),
// so that the tests' `sai::` call sites stay as they were.
namespace consortia::service_api_internal {

// Bounds of the decoders (beyond those of types.h).
// Txs per Submit or Reap call.
inline constexpr size_t kMaxBatchTxs = kMaxBlockTxs;
// One raw tx handed to Submit. Larger than kMaxTxBytes on purpose: the
// mempool, not the bus, answers kTooLarge for an oversized tx.
inline constexpr size_t kMaxSubmittedTxBytes = 4 * kMaxTxBytes;
inline constexpr size_t kMaxDetailBytes = 4096;
inline constexpr size_t kMaxStateKeyBytes = kMaxArgBytes;
// Encoded forms nested inside a message, and state values (wire_decode.h).
using wire_decode::kMaxEncodedBlockBytes;
using wire_decode::kMaxEncodedBlockRecordBytes;
using wire_decode::kMaxEncodedCertBytes;
using wire_decode::kMaxEncodedReceiptBytes;
using wire_decode::kMaxStateValueBytes;
// Events per GetCommitted reply (the CommitHistory contract).
inline constexpr size_t kMaxCommittedPerCall = 1000;

// kMempoolSubmit
Bytes EncodeSubmitRequest(const std::vector<Bytes>& raw_txs);
absl::StatusOr<std::vector<Bytes>> DecodeSubmitRequest(ByteView data);
Bytes EncodeSubmitResponse(const std::vector<SubmitResult>& results);
absl::StatusOr<std::vector<SubmitResult>> DecodeSubmitResponse(ByteView data);

// kMempoolReap
Bytes EncodeReapRequest(const ReapRequest& req);
absl::StatusOr<ReapRequest> DecodeReapRequest(ByteView data);
Bytes EncodeReapResponse(const std::vector<Bytes>& txs);
absl::StatusOr<std::vector<Bytes>> DecodeReapResponse(ByteView data);

// kMempoolCheckProposal
struct CheckProposalRequest {
  uint64_t height = 0;
  std::vector<Bytes> raw_txs;
};
Bytes EncodeCheckProposalRequest(const std::vector<Bytes>& raw_txs,
                                 uint64_t height);
absl::StatusOr<CheckProposalRequest> DecodeCheckProposalRequest(ByteView data);
Bytes EncodeCheckProposalResponse(const std::vector<ProposalTxCheck>& checks);
absl::StatusOr<std::vector<ProposalTxCheck>> DecodeCheckProposalResponse(
    ByteView data);

// kStorageChainState (the request payload is empty)
Bytes EncodeChainState(const ChainState& s);
absl::StatusOr<ChainState> DecodeChainState(ByteView data);

// kStorageCommitBlock: bytes block (EncodeBlock, passed through as it came:
// the server does not decode it, storage does), bytes EncodeCertificate.
struct CommitBlockRequest {
  ByteView block;  // points into the decoded payload
  CommitCertificate cert;
};
Bytes EncodeCommitBlockRequest(ByteView block, const CommitCertificate& cert);
// `block` of the result is valid as long as `data` is.
absl::StatusOr<CommitBlockRequest> DecodeCommitBlockRequest(ByteView data);
Bytes EncodeCommitResult(const CommitResult& r);
absl::StatusOr<CommitResult> DecodeCommitResult(ByteView data);

// kQueryCertifiedBlock (reply: EncodeBlockRecord)
Bytes EncodeCertifiedBlockRequest(std::optional<uint64_t> height);
absl::StatusOr<std::optional<uint64_t>> DecodeCertifiedBlockRequest(
    ByteView data);

// kQueryTx (reply: EncodeTxRecord)
Bytes EncodeGetTxRequest(const Hash32& hash);
absl::StatusOr<Hash32> DecodeGetTxRequest(ByteView data);

// kQueryState
struct GetStateRequest {
  std::string app;
  std::string key;
};
Bytes EncodeGetStateRequest(const GetStateRequest& req);
absl::StatusOr<GetStateRequest> DecodeGetStateRequest(ByteView data);
// The reply is the public EncodeStateRecord (proof_bundle.h); these two
// forward to it.
Bytes EncodeStateRecord(const StateRecord& r);
absl::StatusOr<StateRecord> DecodeStateRecord(ByteView data);

// kQueryStateAt (reply: EncodeStateRecord)
struct GetStateAtRequest {
  std::string app;
  std::string key;
  uint64_t height = 0;
};
Bytes EncodeGetStateAtRequest(const GetStateAtRequest& req);
absl::StatusOr<GetStateAtRequest> DecodeGetStateAtRequest(ByteView data);

// kQueryCertifiedBlockByHash (request: EncodeGetTxRequest's form, a bare
// hash; reply: EncodeBlockRecord)

// The request of a paginated list (kQueryBlockSummaries, kQueryEvidence):
// where to start (a height or a seq) and how many at most.
struct PageRequest {
  uint64_t from = 0;
  uint32_t limit = 0;
};
Bytes EncodePageRequest(const PageRequest& req);
absl::StatusOr<PageRequest> DecodePageRequest(ByteView data);

// kQueryBlockSummaries (request: EncodePageRequest)
Bytes EncodeBlockSummaries(const std::vector<BlockSummary>& blocks);
absl::StatusOr<std::vector<BlockSummary>> DecodeBlockSummaries(ByteView data);

// kQueryValidatorChanges: the request is the u64 up_to_height; the reply
// at most kMaxValidatorChanges EncodeStateRecords.
Bytes EncodeValidatorChangesRequest(uint64_t up_to_height);
absl::StatusOr<uint64_t> DecodeValidatorChangesRequest(ByteView data);
Bytes EncodeStateRecords(const std::vector<StateRecord>& records);
absl::StatusOr<std::vector<StateRecord>> DecodeStateRecords(ByteView data);

// kQueryCertifiedBlocks
struct CertifiedBlocksRequest {
  uint64_t from = 0;
  uint32_t limit = 0;
  uint64_t max_bytes = 0;
};
Bytes EncodeCertifiedBlocksRequest(const CertifiedBlocksRequest& req);
absl::StatusOr<CertifiedBlocksRequest> DecodeCertifiedBlocksRequest(
    ByteView data);
// At most kMaxCertifiedBlocks EncodeBlockRecords.
Bytes EncodeBlockRecords(const std::vector<BlockRecord>& blocks);
absl::StatusOr<std::vector<BlockRecord>> DecodeBlockRecords(ByteView data);

// kQueryBlocksWithReceipts (request: EncodeCertifiedBlocksRequest's form).
// At most kMaxBlocksWithReceipts of: bytes EncodeBlock, hash, varint count,
// then each bytes EncodeReceipt.
Bytes EncodeBlocksWithReceipts(const std::vector<BlockWithReceipts>& blocks);
absl::StatusOr<std::vector<BlockWithReceipts>> DecodeBlocksWithReceipts(
    ByteView data);

// kQueryScanState
struct ScanStateRequest {
  std::string app;
  std::string prefix;
  std::string cursor;
  uint32_t limit = 0;
};
Bytes EncodeScanStateRequest(const ScanStateRequest& req);
absl::StatusOr<ScanStateRequest> DecodeScanStateRequest(ByteView data);
Bytes EncodeStatePage(const StatePage& page);
absl::StatusOr<StatePage> DecodeStatePage(ByteView data);

// kQueryCommitted
struct GetCommittedRequest {
  uint64_t from = 0;
  uint64_t to = 0;
};
Bytes EncodeGetCommittedRequest(const GetCommittedRequest& req);
absl::StatusOr<GetCommittedRequest> DecodeGetCommittedRequest(ByteView data);
// The reply: varint count, the events, then u64 next_height. The decoder
// also refuses events out of height order and a next_height that is not
// after the last event's height.
Bytes EncodeCommittedPage(const CommittedPage& page);
absl::StatusOr<CommittedPage> DecodeCommittedPage(ByteView data);

// kQueryMembers
struct ListMembersRequest {
  Bytes cursor;
  uint32_t limit = 0;
};
Bytes EncodeListMembersRequest(const ListMembersRequest& req);
absl::StatusOr<ListMembersRequest> DecodeListMembersRequest(ByteView data);
// The reply: u64 height, bool permissioned, varint count, the keys (each
// length-prefixed, non-empty, strictly ascending), then bool + bytes
// next_cursor.
Bytes EncodeMemberPage(const MemberPage& page);
absl::StatusOr<MemberPage> DecodeMemberPage(ByteView data);

// kQueryCommittedHeights
Bytes EncodeHashList(const std::vector<Hash32>& hashes);
absl::StatusOr<std::vector<Hash32>> DecodeHashList(ByteView data);
Bytes EncodeHeights(const std::vector<uint64_t>& heights);
absl::StatusOr<std::vector<uint64_t>> DecodeHeights(ByteView data);

// kStorageRecordEvidence (reply: empty) and kQueryEvidence (request:
// EncodePageRequest, from_seq and limit)
Bytes EncodeEvidenceRecords(const std::vector<EvidenceRecord>& records);
absl::StatusOr<std::vector<EvidenceRecord>> DecodeEvidenceRecords(
    ByteView data);

// kQueryChainTip (the request payload is empty)
Bytes EncodeChainTip(const ChainTip& tip);
absl::StatusOr<ChainTip> DecodeChainTip(ByteView data);

}  // namespace consortia::service_api_internal

#endif  // CONSORTIA_COMMON_SRC_SERVICE_MESSAGES_H_
