// The remote clients of service_api.h (MakeRemoteMempool, MakeRemoteLedger,
// and for storage's read side MakeRemoteCommitHistory, MakeRemoteBlockSource,
// MakeRemoteChainQueries, MakeRemoteStateQueries): each call encodes its
// request (service_messages.h), makes one bus call with the client's
// deadline, and decodes the reply.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/bus.h"
#include "consortia/proof_bundle.h"
#include "consortia/service_api.h"
#include "service_messages.h"

namespace consortia {
namespace {

namespace sai = service_api_internal;

// Decodes a reply, or returns the call's own error (transport, deadline, or
// the server's status, unchanged).
template <typename T, typename DecodeFn>
absl::StatusOr<T> CallAndDecode(BusClient* client, MsgType type, Bytes payload,
                                absl::Duration timeout, DecodeFn decode) {
  absl::StatusOr<Bytes> reply =
      client->Call(static_cast<uint16_t>(type), std::move(payload), timeout);
  if (!reply.ok()) return reply.status();
  return decode(*reply);
}

// Thread-safe: BusClient is.
class RemoteMempool final : public MempoolApi {
 public:
  RemoteMempool(BusClient* client, absl::Duration timeout)
      : client_(client), timeout_(timeout) {}

  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override {
    absl::StatusOr<std::vector<SubmitResult>> r =
        CallAndDecode<std::vector<SubmitResult>>(
            client_, MsgType::kMempoolSubmit, sai::EncodeSubmitRequest(raw_txs),
            timeout_, sai::DecodeSubmitResponse);
    if (r.ok() && r->size() != raw_txs.size()) {
      return absl::InternalError(absl::StrCat("mempool answered ", r->size(),
                                              " results for ", raw_txs.size(),
                                              " txs"));
    }
    return r;
  }

  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override {
    return CallAndDecode<std::vector<Bytes>>(client_, MsgType::kMempoolReap,
                                             sai::EncodeReapRequest(req),
                                             timeout_, sai::DecodeReapResponse);
  }

  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height) override {
    absl::StatusOr<std::vector<ProposalTxCheck>> r =
        CallAndDecode<std::vector<ProposalTxCheck>>(
            client_, MsgType::kMempoolCheckProposal,
            sai::EncodeCheckProposalRequest(raw_txs, height), timeout_,
            sai::DecodeCheckProposalResponse);
    if (r.ok() && r->size() != raw_txs.size()) {
      return absl::InternalError(absl::StrCat("mempool answered ", r->size(),
                                              " verdicts for ", raw_txs.size(),
                                              " txs"));
    }
    return r;
  }

 private:
  BusClient* const client_;
  const absl::Duration timeout_;
};

// Thread-safe: BusClient is.
class RemoteLedger final : public LedgerApi {
 public:
  RemoteLedger(BusClient* client, absl::Duration timeout)
      : client_(client), timeout_(timeout) {}

  absl::StatusOr<ChainState> GetChainState() override {
    return CallAndDecode<ChainState>(client_, MsgType::kStorageChainState,
                                     Bytes(), timeout_, sai::DecodeChainState);
  }

  absl::StatusOr<CommitResult> CommitBlock(
      ByteView block, const CommitCertificate& cert) override {
    return CallAndDecode<CommitResult>(
        client_, MsgType::kStorageCommitBlock,
        sai::EncodeCommitBlockRequest(block, cert), timeout_,
        sai::DecodeCommitResult);
  }

  absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records) override {
    if (records.size() > kMaxListEvidence) {
      return absl::InvalidArgumentError(
          absl::StrCat(records.size(),
                       " evidence records in one call, over "
                       "the limit of ",
                       kMaxListEvidence));
    }
    return client_
        ->Call(static_cast<uint16_t>(MsgType::kStorageRecordEvidence),
               sai::EncodeEvidenceRecords(records), timeout_)
        .status();
  }

 private:
  BusClient* const client_;
  const absl::Duration timeout_;
};

// Storage's whole read side: one object implements the four consumers'
// interfaces (GetChainTip, which two of them declare, is one call), and each
// MakeRemote* factory hands out the slice its consumer owns. Thread-safe:
// BusClient is.
class RemoteStorageQueries final : public CommitHistory,
                                   public BlockSource,
                                   public ChainQueries,
                                   public StateQueries {
 public:
  RemoteStorageQueries(BusClient* client, absl::Duration timeout)
      : client_(client), timeout_(timeout) {}

  // CommitHistory and ChainQueries.
  absl::StatusOr<ChainTip> GetChainTip() override {
    return CallAndDecode<ChainTip>(client_, MsgType::kQueryChainTip, Bytes(),
                                   timeout_, sai::DecodeChainTip);
  }

  // CommitHistory.
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override {
    return CallAndDecode<CommittedPage>(
        client_, MsgType::kQueryCommitted,
        sai::EncodeGetCommittedRequest({from, to}), timeout_,
        sai::DecodeCommittedPage);
  }

  absl::StatusOr<MemberPage> ListMembers(const Bytes& cursor,
                                         uint32_t limit) override {
    return CallAndDecode<MemberPage>(
        client_, MsgType::kQueryMembers,
        sai::EncodeListMembersRequest({cursor, limit}), timeout_,
        sai::DecodeMemberPage);
  }

  // BlockSource.
  absl::StatusOr<std::vector<BlockRecord>> ReadCertifiedBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override {
    return CallAndDecode<std::vector<BlockRecord>>(
        client_, MsgType::kQueryCertifiedBlocks,
        sai::EncodeCertifiedBlocksRequest({from, limit, max_bytes}), timeout_,
        sai::DecodeBlockRecords);
  }

  absl::StatusOr<std::vector<uint64_t>> CommittedHeights(
      const std::vector<Hash32>& tx_hashes) override {
    if (tx_hashes.size() > kMaxCommittedHeightsQuery) {
      return absl::InvalidArgumentError(
          absl::StrCat("asked for ", tx_hashes.size(), " tx hashes, over ",
                       kMaxCommittedHeightsQuery));
    }
    absl::StatusOr<std::vector<uint64_t>> heights =
        CallAndDecode<std::vector<uint64_t>>(
            client_, MsgType::kQueryCommittedHeights,
            sai::EncodeHashList(tx_hashes), timeout_, sai::DecodeHeights);
    if (heights.ok() && heights->size() != tx_hashes.size()) {
      return absl::InternalError(absl::StrCat("storage answered ",
                                              heights->size(), " heights for ",
                                              tx_hashes.size(), " tx hashes"));
    }
    return heights;
  }

  // ChainQueries.
  absl::StatusOr<BlockRecord> GetCertifiedBlock(
      std::optional<uint64_t> height) override {
    return CallAndDecode<BlockRecord>(client_, MsgType::kQueryCertifiedBlock,
                                      sai::EncodeCertifiedBlockRequest(height),
                                      timeout_, DecodeBlockRecord);
  }

  absl::StatusOr<BlockRecord> GetCertifiedBlockByHash(
      const Hash32& hash) override {
    return CallAndDecode<BlockRecord>(
        client_, MsgType::kQueryCertifiedBlockByHash,
        sai::EncodeGetTxRequest(hash), timeout_, DecodeBlockRecord);
  }

  absl::StatusOr<std::vector<BlockSummary>> ListBlockSummaries(
      uint64_t from, uint32_t limit) override {
    return CallAndDecode<std::vector<BlockSummary>>(
        client_, MsgType::kQueryBlockSummaries,
        sai::EncodePageRequest({from, limit}), timeout_,
        sai::DecodeBlockSummaries);
  }

  absl::StatusOr<TxRecord> GetTx(const Hash32& hash) override {
    return CallAndDecode<TxRecord>(client_, MsgType::kQueryTx,
                                   sai::EncodeGetTxRequest(hash), timeout_,
                                   DecodeTxRecord);
  }

  absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit) override {
    return CallAndDecode<std::vector<EvidenceRecord>>(
        client_, MsgType::kQueryEvidence,
        sai::EncodePageRequest({from_seq, limit}), timeout_,
        sai::DecodeEvidenceRecords);
  }

  absl::StatusOr<std::vector<BlockWithReceipts>> ReadBlocksWithReceipts(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override {
    return CallAndDecode<std::vector<BlockWithReceipts>>(
        client_, MsgType::kQueryBlocksWithReceipts,
        sai::EncodeCertifiedBlocksRequest({from, limit, max_bytes}), timeout_,
        sai::DecodeBlocksWithReceipts);
  }

  absl::StatusOr<std::vector<StateRecord>> ListValidatorChanges(
      uint64_t up_to_height) override {
    return CallAndDecode<std::vector<StateRecord>>(
        client_, MsgType::kQueryValidatorChanges,
        sai::EncodeValidatorChangesRequest(up_to_height), timeout_,
        sai::DecodeStateRecords);
  }

  // StateQueries.
  absl::StatusOr<StateRecord> GetState(const std::string& app,
                                       const std::string& key) override {
    return CallAndDecode<StateRecord>(client_, MsgType::kQueryState,
                                      sai::EncodeGetStateRequest({app, key}),
                                      timeout_, sai::DecodeStateRecord);
  }

  absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                         const std::string& key,
                                         uint64_t height) override {
    return CallAndDecode<StateRecord>(
        client_, MsgType::kQueryStateAt,
        sai::EncodeGetStateAtRequest({app, key, height}), timeout_,
        DecodeStateRecord);
  }

  absl::StatusOr<StatePage> ScanState(const std::string& app,
                                      const std::string& prefix,
                                      const std::string& cursor,
                                      uint32_t limit) override {
    return CallAndDecode<StatePage>(
        client_, MsgType::kQueryScanState,
        sai::EncodeScanStateRequest({app, prefix, cursor, limit}), timeout_,
        sai::DecodeStatePage);
  }

 private:
  BusClient* const client_;
  const absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<MempoolApi> MakeRemoteMempool(BusClient* client,
                                              absl::Duration timeout) {
  return std::make_unique<RemoteMempool>(client, timeout);
}

std::unique_ptr<LedgerApi> MakeRemoteLedger(BusClient* client,
                                            absl::Duration timeout) {
  return std::make_unique<RemoteLedger>(client, timeout);
}

std::unique_ptr<CommitHistory> MakeRemoteCommitHistory(BusClient* client,
                                                       absl::Duration timeout) {
  return std::make_unique<RemoteStorageQueries>(client, timeout);
}

std::unique_ptr<BlockSource> MakeRemoteBlockSource(BusClient* client,
                                                   absl::Duration timeout) {
  return std::make_unique<RemoteStorageQueries>(client, timeout);
}

std::unique_ptr<ChainQueries> MakeRemoteChainQueries(BusClient* client,
                                                     absl::Duration timeout) {
  return std::make_unique<RemoteStorageQueries>(client, timeout);
}

std::unique_ptr<StateQueries> MakeRemoteStateQueries(BusClient* client,
                                                     absl::Duration timeout) {
  return std::make_unique<RemoteStorageQueries>(client, timeout);
}

}  // namespace consortia
