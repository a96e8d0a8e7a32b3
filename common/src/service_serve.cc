// The server dispatch of service_api.h (ServeMempool, ServeStorage): decodes
// each request by its message type (service_messages.h), runs the in-process
// implementation on the executor, and encodes its answer as the reply.
// ServeStorage's cases are grouped by the interface that answers them.
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

BusServer::Handler ServeStorage(const StorageInterfaces& impl, Executor exec) {
  return [impl, exec = std::move(exec)](const Envelope& req, Bytes payload,
                                        BusServer::Reply reply) {
    LedgerApi* const ledger = impl.ledger;
    CommitHistory* const history = impl.commit_history;
    BlockSource* const blocks = impl.block_source;
    ChainQueries* const chain = impl.chain_queries;
    StateQueries* const state = impl.state_queries;
    // Runs fn when the interface that answers this type was given; else the
    // type is not served here.
    auto serve = [&](const void* served, auto fn) {
      if (served == nullptr) {
        reply(UnknownType(req, "storage"));
        return;
      }
      RunAndReply(exec, std::move(payload), std::move(reply), std::move(fn));
    };
    switch (static_cast<MsgType>(req.type)) {
      // ------------------------------------------------ LedgerApi
      case MsgType::kStorageChainState:
        serve(ledger, [ledger](ByteView p) -> absl::StatusOr<Bytes> {
          if (!p.empty()) {
            return absl::InvalidArgumentError(
                "chain state request: payload must be empty");
          }
          return Encoded(ledger->GetChainState(), sai::EncodeChainState);
        });
        return;
      case MsgType::kStorageCommitBlock:
        serve(ledger, [ledger](ByteView p) -> absl::StatusOr<Bytes> {
          // The block's bytes go to the ledger as they came (a view of the
          // payload): it decodes them itself.
          auto r = sai::DecodeCommitBlockRequest(p);
          if (!r.ok()) return r.status();
          return Encoded(ledger->CommitBlock(r->block, r->cert),
                         sai::EncodeCommitResult);
        });
        return;
      case MsgType::kStorageRecordEvidence:
        serve(ledger, [ledger](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeEvidenceRecords(p);
          if (!r.ok()) return r.status();
          if (absl::Status s = ledger->RecordEvidence(*r); !s.ok()) return s;
          return Bytes();
        });
        return;

      // ------------------------------- CommitHistory (and ChainQueries)
      case MsgType::kQueryChainTip: {
        const void* tip_source =
            history != nullptr ? static_cast<const void*>(history) : chain;
        serve(tip_source,
              [history, chain](ByteView p) -> absl::StatusOr<Bytes> {
                if (!p.empty()) {
                  return absl::InvalidArgumentError(
                      "chain tip request: payload must be empty");
                }
                return Encoded(history != nullptr ? history->GetChainTip()
                                                  : chain->GetChainTip(),
                               sai::EncodeChainTip);
              });
        return;
      }
      case MsgType::kQueryCommitted:
        serve(history, [history](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeGetCommittedRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<CommittedPage> page =
              history->GetCommitted(r->from, r->to);
          if (page.ok() && page->events.size() > kMaxCommittedPerCall) {
            return absl::InternalError(absl::StrCat(
                "storage returned ", page->events.size(),
                " commit events, over the limit of ", kMaxCommittedPerCall));
          }
          return Encoded(page, sai::EncodeCommittedPage);
        });
        return;

      case MsgType::kQueryMembers:
        serve(history, [history](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeListMembersRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<MemberPage> page =
              history->ListMembers(r->cursor, r->limit);
          if (page.ok() && page->public_keys.size() > kMaxListMembers) {
            return absl::InternalError(absl::StrCat(
                "storage returned ", page->public_keys.size(),
                " member keys, over the limit of ", kMaxListMembers));
          }
          return Encoded(page, sai::EncodeMemberPage);
        });
        return;

      // ------------------------------------------------ BlockSource
      case MsgType::kQueryCertifiedBlocks:
        serve(blocks, [blocks](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeCertifiedBlocksRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<std::vector<BlockRecord>> read =
              blocks->ReadCertifiedBlocks(r->from, r->limit, r->max_bytes);
          if (read.ok() && read->size() > kMaxCertifiedBlocks) {
            return absl::InternalError(absl::StrCat(
                "storage read ", read->size(), " blocks, over the limit of ",
                kMaxCertifiedBlocks));
          }
          return Encoded(read, sai::EncodeBlockRecords);
        });
        return;
      case MsgType::kQueryCommittedHeights:
        serve(blocks, [blocks](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeHashList(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<std::vector<uint64_t>> heights =
              blocks->CommittedHeights(*r);
          if (heights.ok() && heights->size() != r->size()) {
            return absl::InternalError(
                "storage answered another number of heights");
          }
          return Encoded(heights, sai::EncodeHeights);
        });
        return;

      // ------------------------------------------------ ChainQueries
      case MsgType::kQueryCertifiedBlock:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto h = sai::DecodeCertifiedBlockRequest(p);
          if (!h.ok()) return h.status();
          return Encoded(chain->GetCertifiedBlock(*h), EncodeBlockRecord);
        });
        return;
      case MsgType::kQueryCertifiedBlockByHash:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto h = sai::DecodeGetTxRequest(p);
          if (!h.ok()) return h.status();
          return Encoded(chain->GetCertifiedBlockByHash(*h), EncodeBlockRecord);
        });
        return;
      case MsgType::kQueryBlockSummaries:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodePageRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<std::vector<BlockSummary>> summaries =
              chain->ListBlockSummaries(r->from, r->limit);
          if (summaries.ok() && summaries->size() > kMaxBlockSummaries) {
            return absl::InternalError(absl::StrCat(
                "storage listed ", summaries->size(),
                " blocks, over the limit of ", kMaxBlockSummaries));
          }
          return Encoded(summaries, sai::EncodeBlockSummaries);
        });
        return;
      case MsgType::kQueryBlocksWithReceipts:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeCertifiedBlocksRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<std::vector<BlockWithReceipts>> read =
              chain->ReadBlocksWithReceipts(r->from, r->limit, r->max_bytes);
          if (read.ok() && read->size() > kMaxBlocksWithReceipts) {
            return absl::InternalError(absl::StrCat(
                "storage read ", read->size(), " blocks, over the limit of ",
                kMaxBlocksWithReceipts));
          }
          return Encoded(read, sai::EncodeBlocksWithReceipts);
        });
        return;
      case MsgType::kQueryTx:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto h = sai::DecodeGetTxRequest(p);
          if (!h.ok()) return h.status();
          return Encoded(chain->GetTx(*h), EncodeTxRecord);
        });
        return;
      case MsgType::kQueryEvidence:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodePageRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<std::vector<EvidenceRecord>> records =
              chain->ListEvidence(r->from, r->limit);
          if (records.ok() && records->size() > kMaxListEvidence) {
            return absl::InternalError(absl::StrCat(
                "storage listed ", records->size(),
                " evidence records, over the limit of ", kMaxListEvidence));
          }
          return Encoded(records, sai::EncodeEvidenceRecords);
        });
        return;
      case MsgType::kQueryValidatorChanges:
        serve(chain, [chain](ByteView p) -> absl::StatusOr<Bytes> {
          auto h = sai::DecodeValidatorChangesRequest(p);
          if (!h.ok()) return h.status();
          absl::StatusOr<std::vector<StateRecord>> changes =
              chain->ListValidatorChanges(*h);
          if (changes.ok() && changes->size() > kMaxValidatorChanges) {
            return absl::InternalError(
                absl::StrCat("storage listed ", changes->size(),
                             " validator changes, over the limit of ",
                             kMaxValidatorChanges));
          }
          return Encoded(changes, sai::EncodeStateRecords);
        });
        return;

      // ------------------------------------------------ StateQueries
      case MsgType::kQueryState:
        serve(state, [state](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeGetStateRequest(p);
          if (!r.ok()) return r.status();
          return Encoded(state->GetState(r->app, r->key),
                         sai::EncodeStateRecord);
        });
        return;
      case MsgType::kQueryStateAt:
        serve(state, [state](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeGetStateAtRequest(p);
          if (!r.ok()) return r.status();
          return Encoded(state->GetStateAt(r->app, r->key, r->height),
                         EncodeStateRecord);
        });
        return;
      case MsgType::kQueryScanState:
        serve(state, [state](ByteView p) -> absl::StatusOr<Bytes> {
          auto r = sai::DecodeScanStateRequest(p);
          if (!r.ok()) return r.status();
          absl::StatusOr<StatePage> page =
              state->ScanState(r->app, r->prefix, r->cursor, r->limit);
          if (page.ok() && page->items.size() > kMaxScanState) {
            return absl::InternalError(
                absl::StrCat("storage scanned ", page->items.size(),
                             " records, over the limit of ", kMaxScanState));
          }
          return Encoded(page, sai::EncodeStatePage);
        });
        return;
      default:
        reply(UnknownType(req, "storage"));
    }
  };
}

}  // namespace consortia
