// The server dispatch of service_api.h (ServeMempool, ServeStorage): decodes
// each request by its message type (service_messages.h), runs the in-process
// implementation on the executor, and encodes its answer as the reply.
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
using sai::kMaxCommittedPerCall;

// Runs `fn(payload)` on the executor (inline when none is given) and answers
// with what it returns. fn decodes, calls the implementation and encodes; a
// decode error becomes an InvalidArgument reply.
template <typename Fn>
void RunAndReply(const Executor& exec, Bytes payload, BusServer::Reply reply,
                 Fn fn) {
  auto task = [payload = std::move(payload), reply = std::move(reply),
               fn = std::move(fn)]() { reply(fn(ByteView(payload))); };
  if (exec) {
    exec(std::move(task));
  } else {
    task();
  }
}

absl::Status UnknownType(const Envelope& req, absl::string_view service) {
  return absl::UnimplementedError(
      absl::StrCat(service, " does not serve message type ", req.type));
}

template <typename T>
absl::StatusOr<Bytes> Encoded(const absl::StatusOr<T>& r,
                              Bytes (*encode)(const T&)) {
  if (!r.ok()) return r.status();
  return encode(*r);
}

}  // namespace

BusServer::Handler ServeMempool(MempoolApi* impl, Executor exec) {
  return [impl, exec = std::move(exec)](const Envelope& req, Bytes payload,
                                        BusServer::Reply reply) {
    switch (static_cast<MsgType>(req.type)) {
      case MsgType::kMempoolSubmit:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [impl](ByteView p) -> absl::StatusOr<Bytes> {
                      auto txs = sai::DecodeSubmitRequest(p);
                      if (!txs.ok()) return txs.status();
                      return Encoded(impl->Submit(*txs),
                                     sai::EncodeSubmitResponse);
                    });
        return;
      case MsgType::kMempoolReap:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [impl](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeReapRequest(p);
                      if (!r.ok()) return r.status();
                      return Encoded(impl->Reap(*r), sai::EncodeReapResponse);
                    });
        return;
      case MsgType::kMempoolCheckProposal:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [impl](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeCheckProposalRequest(p);
                      if (!r.ok()) return r.status();
                      return Encoded(impl->CheckProposal(r->raw_txs, r->height),
                                     sai::EncodeCheckProposalResponse);
                    });
        return;
      default:
        reply(UnknownType(req, "mempool"));
    }
  };
}

BusServer::Handler ServeStorage(LedgerApi* ledger, QueryApi* query,
                                Executor exec) {
  return [ledger, query, exec = std::move(exec)](
             const Envelope& req, Bytes payload, BusServer::Reply reply) {
    switch (static_cast<MsgType>(req.type)) {
      case MsgType::kStorageChainState:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [ledger](ByteView p) -> absl::StatusOr<Bytes> {
                      if (!p.empty()) {
                        return absl::InvalidArgumentError(
                            "chain state request: payload must be empty");
                      }
                      return Encoded(ledger->GetChainState(),
                                     sai::EncodeChainState);
                    });
        return;
      case MsgType::kStorageCommitBlock:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [ledger](ByteView p) -> absl::StatusOr<Bytes> {
                      // The block's bytes go to the ledger as they came (a
                      // view of the payload): it decodes them itself.
                      auto r = sai::DecodeCommitBlockRequest(p);
                      if (!r.ok()) return r.status();
                      return Encoded(ledger->CommitBlock(r->block, r->cert),
                                     sai::EncodeCommitResult);
                    });
        return;
      case MsgType::kQueryBlock:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto h = sai::DecodeGetBlockRequest(p);
                      if (!h.ok()) return h.status();
                      return Encoded(query->GetBlock(*h), EncodeBlockRecord);
                    });
        return;
      case MsgType::kQueryTx:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto h = sai::DecodeGetTxRequest(p);
                      if (!h.ok()) return h.status();
                      return Encoded(query->GetTx(*h), EncodeTxRecord);
                    });
        return;
      case MsgType::kQueryState:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeGetStateRequest(p);
                      if (!r.ok()) return r.status();
                      return Encoded(query->GetState(r->app, r->key),
                                     sai::EncodeStateRecord);
                    });
        return;
      case MsgType::kQueryCommitted:
        RunAndReply(
            exec, std::move(payload), std::move(reply),
            [query](ByteView p) -> absl::StatusOr<Bytes> {
              auto r = sai::DecodeGetCommittedRequest(p);
              if (!r.ok()) return r.status();
              absl::StatusOr<CommittedPage> page =
                  query->GetCommitted(r->from, r->to);
              if (page.ok() && page->events.size() > kMaxCommittedPerCall) {
                return absl::InternalError(
                    absl::StrCat("storage returned ", page->events.size(),
                                 " commit events, over the limit of ",
                                 kMaxCommittedPerCall));
              }
              return Encoded(page, sai::EncodeCommittedPage);
            });
        return;
      case MsgType::kQueryStateAt:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeGetStateAtRequest(p);
                      if (!r.ok()) return r.status();
                      return Encoded(
                          query->GetStateAt(r->app, r->key, r->height),
                          EncodeStateRecord);
                    });
        return;
      case MsgType::kQueryBlockByHash:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto h = sai::DecodeGetTxRequest(p);
                      if (!h.ok()) return h.status();
                      return Encoded(query->GetBlockByHash(*h),
                                     EncodeBlockRecord);
                    });
        return;
      case MsgType::kQueryListBlocks:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeListBlocksRequest(p);
                      if (!r.ok()) return r.status();
                      absl::StatusOr<std::vector<BlockSummary>> blocks =
                          query->ListBlocks(r->from, r->limit);
                      if (blocks.ok() && blocks->size() > kMaxListBlocks) {
                        return absl::InternalError(absl::StrCat(
                            "storage listed ", blocks->size(),
                            " blocks, over the limit of ", kMaxListBlocks));
                      }
                      return Encoded(blocks, sai::EncodeBlockSummaries);
                    });
        return;
      case MsgType::kQueryGetBlocks:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeGetBlocksRequest(p);
                      if (!r.ok()) return r.status();
                      absl::StatusOr<std::vector<BlockRecord>> blocks =
                          query->GetBlocks(r->from, r->limit, r->max_bytes);
                      if (blocks.ok() && blocks->size() > kMaxGetBlocks) {
                        return absl::InternalError(absl::StrCat(
                            "storage read ", blocks->size(),
                            " blocks, over the limit of ", kMaxGetBlocks));
                      }
                      return Encoded(blocks, sai::EncodeBlockRecords);
                    });
        return;
      case MsgType::kQueryScanState:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeScanStateRequest(p);
                      if (!r.ok()) return r.status();
                      absl::StatusOr<StatePage> page = query->ScanState(
                          r->app, r->prefix, r->cursor, r->limit);
                      if (page.ok() && page->items.size() > kMaxScanState) {
                        return absl::InternalError(absl::StrCat(
                            "storage scanned ", page->items.size(),
                            " records, over the limit of ", kMaxScanState));
                      }
                      return Encoded(page, sai::EncodeStatePage);
                    });
        return;
      case MsgType::kStorageRecordEvidence:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [ledger](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeEvidenceRecords(p);
                      if (!r.ok()) return r.status();
                      if (absl::Status s = ledger->RecordEvidence(*r);
                          !s.ok()) {
                        return s;
                      }
                      return Bytes();
                    });
        return;
      case MsgType::kQueryEvidence:
        RunAndReply(
            exec, std::move(payload), std::move(reply),
            [query](ByteView p) -> absl::StatusOr<Bytes> {
              auto r = sai::DecodeListBlocksRequest(p);
              if (!r.ok()) return r.status();
              absl::StatusOr<std::vector<EvidenceRecord>> records =
                  query->ListEvidence(r->from, r->limit);
              if (records.ok() && records->size() > kMaxListEvidence) {
                return absl::InternalError(absl::StrCat(
                    "storage listed ", records->size(),
                    " evidence records, over the limit of ", kMaxListEvidence));
              }
              return Encoded(records, sai::EncodeEvidenceRecords);
            });
        return;
      case MsgType::kQueryCommittedHeights:
        RunAndReply(exec, std::move(payload), std::move(reply),
                    [query](ByteView p) -> absl::StatusOr<Bytes> {
                      auto r = sai::DecodeHashList(p);
                      if (!r.ok()) return r.status();
                      absl::StatusOr<std::vector<uint64_t>> heights =
                          query->CommittedHeights(*r);
                      if (heights.ok() && heights->size() != r->size()) {
                        return absl::InternalError(
                            "storage answered another number of heights");
                      }
                      return Encoded(heights, sai::EncodeHeights);
                    });
        return;
      default:
        reply(UnknownType(req, "storage"));
    }
  };
}

}  // namespace consortia
