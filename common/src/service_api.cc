#include "consortia/service_api.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/codec.h"
#include "consortia/merkle.h"
#include "consortia/types.h"
#include "service_api_internal.h"

// Returns from the enclosing function when a Status-returning expression
// fails. Local to this file.
#define SA_RETURN_IF_ERROR(expr)                              \
  do {                                                        \
    if (absl::Status sa_status_ = (expr); !sa_status_.ok()) { \
      return sa_status_;                                      \
    }                                                         \
  } while (0)

namespace consortia {

std::string_view AdmissionName(Admission a) {
  switch (a) {
    case Admission::kAccepted:
      return "accepted";
    case Admission::kAlreadyPending:
      return "already_pending";
    case Admission::kMalformed:
      return "malformed";
    case Admission::kTooLarge:
      return "too_large";
    case Admission::kWrongChain:
      return "wrong_chain";
    case Admission::kExpired:
      return "expired";
    case Admission::kTooFarAhead:
      return "too_far_ahead";
    case Admission::kAlreadyCommitted:
      return "already_committed";
    case Admission::kBadSignature:
      return "bad_signature";
    case Admission::kPoolFull:
      return "pool_full";
    case Admission::kSenderLimit:
      return "sender_limit";
  }
  return "unknown";
}

absl::StatusOr<std::vector<ProposalTxCheck>> MempoolApi::CheckProposal(
    const std::vector<Bytes>&, uint64_t) {
  return absl::UnimplementedError("this mempool does not check proposals");
}

namespace {

namespace sai = service_api_internal;
using sai::kMaxBatchTxs;
using sai::kMaxCommittedPerCall;
using sai::kMaxEncodedBlockBytes;
using sai::kMaxEncodedBlockRecordBytes;
using sai::kMaxEncodedCertBytes;

constexpr uint8_t kMaxAdmission = static_cast<uint8_t>(Admission::kSenderLimit);

// Gives a nested decoder's error the name of the message it sits in, keeping
// the InvalidArgument code.
absl::Status Context(absl::string_view what, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
}

void PutTxList(const std::vector<Bytes>& txs, Encoder* e) {
  e->PutVarint(txs.size());
  for (const Bytes& tx : txs) e->PutBytes(tx);
}

absl::Status GetTxList(Decoder* d, size_t max_tx_bytes,
                       std::vector<Bytes>* txs) {
  uint64_t n;
  SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxBatchTxs, 1));
  txs->clear();
  txs->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Bytes tx;
    SA_RETURN_IF_ERROR(d->GetBytes(&tx, max_tx_bytes));
    txs->push_back(std::move(tx));
  }
  return absl::OkStatus();
}

// A nested encoding: length-prefixed bytes, decoded by its own decoder.
template <typename T, typename DecodeFn>
absl::Status GetNested(Decoder* d, size_t max_len, DecodeFn decode, T* out) {
  Bytes raw;
  SA_RETURN_IF_ERROR(d->GetBytes(&raw, max_len));
  absl::StatusOr<T> v = decode(raw);
  if (!v.ok()) return v.status();
  *out = *std::move(v);
  return absl::OkStatus();
}

absl::Status GetCertificate(Decoder* d, CommitCertificate* c) {
  return GetNested(d, kMaxEncodedCertBytes, DecodeCertificate, c);
}

absl::Status GetBlock(Decoder* d, Block* b) {
  return GetNested(d, kMaxEncodedBlockBytes, DecodeBlock, b);
}

void PutCommittedEvent(const CommittedEvent& ev, Encoder* e) {
  e->PutU64(ev.height);
  e->PutHash(ev.block_hash);
  e->PutVarint(ev.txs.size());
  for (const CommittedTx& tx : ev.txs) {
    e->PutHash(tx.hash);
    e->PutU64(tx.valid_until);
  }
}

absl::Status GetCommittedEvent(Decoder* d, CommittedEvent* ev) {
  SA_RETURN_IF_ERROR(d->GetU64(&ev->height));
  SA_RETURN_IF_ERROR(d->GetHash(&ev->block_hash));
  uint64_t n;
  // Each tx takes exactly 40 bytes.
  SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxBlockTxs, 40));
  ev->txs.clear();
  ev->txs.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    CommittedTx tx;
    SA_RETURN_IF_ERROR(d->GetHash(&tx.hash));
    SA_RETURN_IF_ERROR(d->GetU64(&tx.valid_until));
    ev->txs.push_back(tx);
  }
  return absl::OkStatus();
}

// Runs `body` over a decoder of `data`, requires all input consumed, and
// names the message in any error.
template <typename T, typename Body>
absl::StatusOr<T> DecodeWith(absl::string_view what, ByteView data, Body body) {
  Decoder d(data);
  T out{};
  absl::Status s = body(&d, &out);
  if (s.ok()) s = d.ExpectEnd();
  if (!s.ok()) return Context(what, s);
  return out;
}

}  // namespace

namespace service_api_internal {

Bytes EncodeSubmitRequest(const std::vector<Bytes>& raw_txs) {
  Encoder e;
  PutTxList(raw_txs, &e);
  return e.Take();
}

absl::StatusOr<std::vector<Bytes>> DecodeSubmitRequest(ByteView data) {
  return DecodeWith<std::vector<Bytes>>(
      "submit request", data, [](Decoder* d, std::vector<Bytes>* txs) {
        return GetTxList(d, kMaxSubmittedTxBytes, txs);
      });
}

Bytes EncodeSubmitResponse(const std::vector<SubmitResult>& results) {
  Encoder e;
  e.PutVarint(results.size());
  for (const SubmitResult& r : results) {
    e.PutHash(r.tx_hash);
    e.PutU8(static_cast<uint8_t>(r.code));
    e.PutString(r.detail.substr(0, std::min(r.detail.size(), kMaxDetailBytes)));
  }
  return e.Take();
}

absl::StatusOr<std::vector<SubmitResult>> DecodeSubmitResponse(ByteView data) {
  return DecodeWith<std::vector<SubmitResult>>(
      "submit response", data,
      [](Decoder* d, std::vector<SubmitResult>* out) -> absl::Status {
        uint64_t n;
        // hash + code + detail length: at least 34 bytes each.
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxBatchTxs, 34));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          SubmitResult r;
          SA_RETURN_IF_ERROR(d->GetHash(&r.tx_hash));
          uint8_t code;
          SA_RETURN_IF_ERROR(d->GetU8(&code));
          if (code > kMaxAdmission) {
            return absl::InvalidArgumentError(
                absl::StrCat("unknown admission code ", code));
          }
          r.code = static_cast<Admission>(code);
          SA_RETURN_IF_ERROR(d->GetString(&r.detail, kMaxDetailBytes));
          out->push_back(std::move(r));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeReapRequest(const ReapRequest& req) {
  Encoder e;
  e.PutU32(req.max_txs);
  e.PutU64(req.max_bytes);
  e.PutU64(req.committed_height);
  return e.Take();
}

absl::StatusOr<ReapRequest> DecodeReapRequest(ByteView data) {
  return DecodeWith<ReapRequest>(
      "reap request", data, [](Decoder* d, ReapRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU32(&r->max_txs));
        SA_RETURN_IF_ERROR(d->GetU64(&r->max_bytes));
        return d->GetU64(&r->committed_height);
      });
}

Bytes EncodeReapResponse(const std::vector<Bytes>& txs) {
  Encoder e;
  PutTxList(txs, &e);
  return e.Take();
}

absl::StatusOr<std::vector<Bytes>> DecodeReapResponse(ByteView data) {
  return DecodeWith<std::vector<Bytes>>(
      "reap response", data, [](Decoder* d, std::vector<Bytes>* txs) {
        return GetTxList(d, kMaxTxBytes, txs);
      });
}

Bytes EncodeCheckProposalRequest(const std::vector<Bytes>& raw_txs,
                                 uint64_t height) {
  Encoder e;
  e.PutU64(height);
  PutTxList(raw_txs, &e);
  return e.Take();
}

absl::StatusOr<CheckProposalRequest> DecodeCheckProposalRequest(ByteView data) {
  return DecodeWith<CheckProposalRequest>(
      "check proposal request", data,
      [](Decoder* d, CheckProposalRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&r->height));
        return GetTxList(d, kMaxTxBytes, &r->raw_txs);
      });
}

Bytes EncodeCheckProposalResponse(const std::vector<ProposalTxCheck>& checks) {
  Encoder e;
  e.PutVarint(checks.size());
  for (const ProposalTxCheck& c : checks) {
    e.PutHash(c.tx_hash);
    e.PutU8(static_cast<uint8_t>(c.code));
  }
  return e.Take();
}

absl::StatusOr<std::vector<ProposalTxCheck>> DecodeCheckProposalResponse(
    ByteView data) {
  return DecodeWith<std::vector<ProposalTxCheck>>(
      "check proposal response", data,
      [](Decoder* d, std::vector<ProposalTxCheck>* out) -> absl::Status {
        uint64_t n;
        // hash + code: 33 bytes each.
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxBatchTxs, 33));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          ProposalTxCheck c;
          SA_RETURN_IF_ERROR(d->GetHash(&c.tx_hash));
          uint8_t code;
          SA_RETURN_IF_ERROR(d->GetU8(&code));
          if (code > kMaxAdmission) {
            return absl::InvalidArgumentError(
                absl::StrCat("unknown admission code ", code));
          }
          c.code = static_cast<Admission>(code);
          out->push_back(c);
        }
        return absl::OkStatus();
      });
}

Bytes EncodeChainState(const ChainState& s) {
  Encoder e;
  e.PutU64(s.height);
  e.PutHash(s.last_block_hash);
  e.PutU64(s.last_time_ms);
  e.PutHash(s.state_root);
  e.PutHash(s.receipts_root);
  return e.Take();
}

absl::StatusOr<ChainState> DecodeChainState(ByteView data) {
  return DecodeWith<ChainState>(
      "chain state", data, [](Decoder* d, ChainState* s) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&s->height));
        SA_RETURN_IF_ERROR(d->GetHash(&s->last_block_hash));
        SA_RETURN_IF_ERROR(d->GetU64(&s->last_time_ms));
        SA_RETURN_IF_ERROR(d->GetHash(&s->state_root));
        return d->GetHash(&s->receipts_root);
      });
}

Bytes EncodeCommitBlockRequest(const Block& block,
                               const CommitCertificate& cert) {
  Encoder e;
  e.PutBytes(EncodeBlock(block));
  e.PutBytes(EncodeCertificate(cert));
  return e.Take();
}

absl::StatusOr<CommitBlockRequest> DecodeCommitBlockRequest(ByteView data) {
  return DecodeWith<CommitBlockRequest>(
      "commit block request", data,
      [](Decoder* d, CommitBlockRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(GetBlock(d, &r->block));
        return GetCertificate(d, &r->cert);
      });
}

Bytes EncodeCommitResult(const CommitResult& r) {
  Encoder e;
  e.PutHash(r.state_root);
  e.PutHash(r.receipts_root);
  return e.Take();
}

absl::StatusOr<CommitResult> DecodeCommitResult(ByteView data) {
  return DecodeWith<CommitResult>(
      "commit result", data, [](Decoder* d, CommitResult* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetHash(&r->state_root));
        return d->GetHash(&r->receipts_root);
      });
}

Bytes EncodeGetBlockRequest(std::optional<uint64_t> height) {
  Encoder e;
  e.PutBool(height.has_value());
  if (height.has_value()) e.PutU64(*height);
  return e.Take();
}

absl::StatusOr<std::optional<uint64_t>> DecodeGetBlockRequest(ByteView data) {
  return DecodeWith<std::optional<uint64_t>>(
      "get block request", data,
      [](Decoder* d, std::optional<uint64_t>* h) -> absl::Status {
        bool has;
        SA_RETURN_IF_ERROR(d->GetBool(&has));
        if (!has) return absl::OkStatus();
        uint64_t v;
        SA_RETURN_IF_ERROR(d->GetU64(&v));
        *h = v;
        return absl::OkStatus();
      });
}

Bytes EncodeGetTxRequest(const Hash32& hash) {
  Encoder e;
  e.PutHash(hash);
  return e.Take();
}

absl::StatusOr<Hash32> DecodeGetTxRequest(ByteView data) {
  return DecodeWith<Hash32>("get tx request", data, [](Decoder* d, Hash32* h) {
    return d->GetHash(h);
  });
}

Bytes EncodeGetStateRequest(const GetStateRequest& req) {
  Encoder e;
  e.PutString(req.app);
  e.PutString(req.key);
  return e.Take();
}

absl::StatusOr<GetStateRequest> DecodeGetStateRequest(ByteView data) {
  return DecodeWith<GetStateRequest>(
      "get state request", data,
      [](Decoder* d, GetStateRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetString(&r->app, kMaxAppBytes));
        return d->GetString(&r->key, kMaxStateKeyBytes);
      });
}

Bytes EncodeStateRecord(const StateRecord& r) {
  return ::consortia::EncodeStateRecord(r);
}

absl::StatusOr<StateRecord> DecodeStateRecord(ByteView data) {
  return ::consortia::DecodeStateRecord(data);
}

Bytes EncodeGetStateAtRequest(const GetStateAtRequest& req) {
  Encoder e;
  e.PutString(req.app);
  e.PutString(req.key);
  e.PutU64(req.height);
  return e.Take();
}

absl::StatusOr<GetStateAtRequest> DecodeGetStateAtRequest(ByteView data) {
  return DecodeWith<GetStateAtRequest>(
      "get state at request", data,
      [](Decoder* d, GetStateAtRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetString(&r->app, kMaxAppBytes));
        SA_RETURN_IF_ERROR(d->GetString(&r->key, kMaxStateKeyBytes));
        return d->GetU64(&r->height);
      });
}

Bytes EncodeListBlocksRequest(const ListBlocksRequest& req) {
  Encoder e;
  e.PutU64(req.from);
  e.PutU32(req.limit);
  return e.Take();
}

absl::StatusOr<ListBlocksRequest> DecodeListBlocksRequest(ByteView data) {
  return DecodeWith<ListBlocksRequest>(
      "list blocks request", data,
      [](Decoder* d, ListBlocksRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&r->from));
        return d->GetU32(&r->limit);
      });
}

Bytes EncodeBlockSummaries(const std::vector<BlockSummary>& blocks) {
  Encoder e;
  e.PutVarint(blocks.size());
  for (const BlockSummary& b : blocks) {
    EncodeHeader(b.header, &e);
    e.PutHash(b.block_hash);
    e.PutU32(b.tx_count);
  }
  return e.Take();
}

absl::StatusOr<std::vector<BlockSummary>> DecodeBlockSummaries(ByteView data) {
  return DecodeWith<std::vector<BlockSummary>>(
      "block summaries", data,
      [](Decoder* d, std::vector<BlockSummary>* out) -> absl::Status {
        uint64_t n;
        // A header alone takes well over 100 bytes.
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxListBlocks, 100));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          BlockSummary b;
          SA_RETURN_IF_ERROR(DecodeHeader(d, &b.header));
          SA_RETURN_IF_ERROR(d->GetHash(&b.block_hash));
          SA_RETURN_IF_ERROR(d->GetU32(&b.tx_count));
          out->push_back(std::move(b));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeGetBlocksRequest(const GetBlocksRequest& req) {
  Encoder e;
  e.PutU64(req.from);
  e.PutU32(req.limit);
  e.PutU64(req.max_bytes);
  return e.Take();
}

absl::StatusOr<GetBlocksRequest> DecodeGetBlocksRequest(ByteView data) {
  return DecodeWith<GetBlocksRequest>(
      "get blocks request", data,
      [](Decoder* d, GetBlocksRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&r->from));
        SA_RETURN_IF_ERROR(d->GetU32(&r->limit));
        return d->GetU64(&r->max_bytes);
      });
}

Bytes EncodeBlockRecords(const std::vector<BlockRecord>& blocks) {
  Encoder e;
  e.PutVarint(blocks.size());
  for (const BlockRecord& b : blocks) e.PutBytes(EncodeBlockRecord(b));
  return e.Take();
}

absl::StatusOr<std::vector<BlockRecord>> DecodeBlockRecords(ByteView data) {
  return DecodeWith<std::vector<BlockRecord>>(
      "block records", data,
      [](Decoder* d, std::vector<BlockRecord>* out) -> absl::Status {
        uint64_t n;
        // A record holds at least a header and a hash: well over 100 bytes.
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxGetBlocks, 100));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          BlockRecord b;
          SA_RETURN_IF_ERROR(
              GetNested(d, kMaxEncodedBlockRecordBytes, DecodeBlockRecord, &b));
          out->push_back(std::move(b));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeHashList(const std::vector<Hash32>& hashes) {
  Encoder e;
  e.PutVarint(hashes.size());
  for (const Hash32& h : hashes) e.PutHash(h);
  return e.Take();
}

absl::StatusOr<std::vector<Hash32>> DecodeHashList(ByteView data) {
  return DecodeWith<std::vector<Hash32>>(
      "hash list", data,
      [](Decoder* d, std::vector<Hash32>* out) -> absl::Status {
        uint64_t n;
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxCommittedHeightsQuery, 32));
        out->resize(n);
        for (Hash32& h : *out) SA_RETURN_IF_ERROR(d->GetHash(&h));
        return absl::OkStatus();
      });
}

Bytes EncodeHeights(const std::vector<uint64_t>& heights) {
  Encoder e;
  e.PutVarint(heights.size());
  for (uint64_t h : heights) e.PutVarint(h);
  return e.Take();
}

absl::StatusOr<std::vector<uint64_t>> DecodeHeights(ByteView data) {
  return DecodeWith<std::vector<uint64_t>>(
      "heights", data,
      [](Decoder* d, std::vector<uint64_t>* out) -> absl::Status {
        uint64_t n;
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxCommittedHeightsQuery, 1));
        out->resize(n);
        for (uint64_t& h : *out) SA_RETURN_IF_ERROR(d->GetVarint(&h));
        return absl::OkStatus();
      });
}

Bytes EncodeEvidenceRecords(const std::vector<EvidenceRecord>& records) {
  Encoder e;
  e.PutVarint(records.size());
  for (const EvidenceRecord& r : records) e.PutBytes(EncodeEvidenceRecord(r));
  return e.Take();
}

absl::StatusOr<std::vector<EvidenceRecord>> DecodeEvidenceRecords(
    ByteView data) {
  return DecodeWith<std::vector<EvidenceRecord>>(
      "evidence records", data,
      [](Decoder* d, std::vector<EvidenceRecord>* out) -> absl::Status {
        uint64_t n;
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxListEvidence, 8));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          Bytes raw;
          SA_RETURN_IF_ERROR(d->GetBytes(&raw, kMaxEvidenceMessageBytes + 256));
          absl::StatusOr<EvidenceRecord> r = DecodeEvidenceRecord(raw);
          if (!r.ok()) return r.status();
          out->push_back(*std::move(r));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeScanStateRequest(const ScanStateRequest& req) {
  Encoder e;
  e.PutString(req.app);
  e.PutString(req.prefix);
  e.PutString(req.cursor);
  e.PutU32(req.limit);
  return e.Take();
}

absl::StatusOr<ScanStateRequest> DecodeScanStateRequest(ByteView data) {
  return DecodeWith<ScanStateRequest>(
      "scan state request", data,
      [](Decoder* d, ScanStateRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetString(&r->app, kMaxAppBytes));
        SA_RETURN_IF_ERROR(d->GetString(&r->prefix, kMaxStateKeyBytes));
        SA_RETURN_IF_ERROR(d->GetString(&r->cursor, kMaxStateKeyBytes));
        return d->GetU32(&r->limit);
      });
}

Bytes EncodeStatePage(const StatePage& page) {
  Encoder e;
  e.PutU64(page.height);
  e.PutVarint(page.items.size());
  for (const StateItem& item : page.items) {
    e.PutString(item.key);
    e.PutBytes(item.value);
    e.PutBytes(item.owner);
  }
  e.PutBool(page.next_cursor.has_value());
  if (page.next_cursor.has_value()) e.PutString(*page.next_cursor);
  return e.Take();
}

absl::StatusOr<StatePage> DecodeStatePage(ByteView data) {
  return DecodeWith<StatePage>(
      "state page", data, [](Decoder* d, StatePage* p) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&p->height));
        uint64_t n;
        // Three length prefixes at least.
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxScanState, 3));
        p->items.reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          StateItem item;
          SA_RETURN_IF_ERROR(d->GetString(&item.key, kMaxStateKeyBytes));
          SA_RETURN_IF_ERROR(d->GetBytes(&item.value, kMaxStateValueBytes));
          SA_RETURN_IF_ERROR(d->GetBytes(&item.owner, kMaxPublicKeyBytes));
          p->items.push_back(std::move(item));
        }
        bool more;
        SA_RETURN_IF_ERROR(d->GetBool(&more));
        if (more) {
          std::string cursor;
          SA_RETURN_IF_ERROR(d->GetString(&cursor, kMaxStateKeyBytes));
          p->next_cursor = std::move(cursor);
        }
        return absl::OkStatus();
      });
}

Bytes EncodeGetCommittedRequest(const GetCommittedRequest& req) {
  Encoder e;
  e.PutU64(req.from);
  e.PutU64(req.to);
  return e.Take();
}

absl::StatusOr<GetCommittedRequest> DecodeGetCommittedRequest(ByteView data) {
  return DecodeWith<GetCommittedRequest>(
      "get committed request", data,
      [](Decoder* d, GetCommittedRequest* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&r->from));
        return d->GetU64(&r->to);
      });
}

Bytes EncodeCommittedPage(const CommittedPage& page) {
  Encoder e;
  e.PutVarint(page.events.size());
  for (const CommittedEvent& ev : page.events) PutCommittedEvent(ev, &e);
  e.PutU64(page.next_height);
  return e.Take();
}

absl::StatusOr<CommittedPage> DecodeCommittedPage(ByteView data) {
  return DecodeWith<CommittedPage>(
      "committed page", data,
      [](Decoder* d, CommittedPage* out) -> absl::Status {
        uint64_t n;
        // height + hash + count: at least 41 bytes each.
        SA_RETURN_IF_ERROR(d->GetCount(&n, kMaxCommittedPerCall, 41));
        out->events.reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          CommittedEvent ev;
          SA_RETURN_IF_ERROR(GetCommittedEvent(d, &ev));
          if (!out->events.empty() && ev.height <= out->events.back().height) {
            return absl::InvalidArgumentError(
                absl::StrCat("commit event of height ", ev.height,
                             " after height ", out->events.back().height));
          }
          out->events.push_back(std::move(ev));
        }
        SA_RETURN_IF_ERROR(d->GetU64(&out->next_height));
        if (!out->events.empty() &&
            out->next_height <= out->events.back().height) {
          return absl::InvalidArgumentError(absl::StrCat(
              "next height ", out->next_height,
              " is not after the last event's ", out->events.back().height));
        }
        return absl::OkStatus();
      });
}

}  // namespace service_api_internal

// ------------------------------------------------------- public codecs

Bytes EncodeCommittedEvent(const CommittedEvent& ev) {
  Encoder e;
  PutCommittedEvent(ev, &e);
  return e.Take();
}

absl::StatusOr<CommittedEvent> DecodeCommittedEvent(ByteView data) {
  return DecodeWith<CommittedEvent>("committed event", data, GetCommittedEvent);
}

// Layout: u64 seq, string kind, u64 height, u32 round, u32 validator_index,
// bytes message.
Bytes EncodeEvidenceRecord(const EvidenceRecord& r) {
  Encoder e;
  e.PutU64(r.seq);
  e.PutString(r.kind);
  e.PutU64(r.height);
  e.PutU32(r.round);
  e.PutU32(r.validator_index);
  e.PutBytes(r.message);
  return e.Take();
}

absl::StatusOr<EvidenceRecord> DecodeEvidenceRecord(ByteView data) {
  return DecodeWith<EvidenceRecord>(
      "evidence record", data,
      [](Decoder* d, EvidenceRecord* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetU64(&r->seq));
        SA_RETURN_IF_ERROR(d->GetString(&r->kind, 64));
        SA_RETURN_IF_ERROR(d->GetU64(&r->height));
        SA_RETURN_IF_ERROR(d->GetU32(&r->round));
        SA_RETURN_IF_ERROR(d->GetU32(&r->validator_index));
        return d->GetBytes(&r->message, kMaxEvidenceMessageBytes);
      });
}

// Layout: bytes raw_tx, u64 height, u32 index, bytes receipt, proof
// inclusion, header, bytes cert, proof receipt_proof, bool has_next_header
// [header], bool has_next_cert [bytes cert].
Bytes EncodeTxRecord(const TxRecord& r) {
  Encoder e;
  e.PutBytes(r.raw_tx);
  e.PutU64(r.height);
  e.PutU32(r.index);
  e.PutBytes(EncodeReceipt(r.receipt));
  EncodeMerkleProof(r.inclusion, &e);
  EncodeHeader(r.header, &e);
  e.PutBytes(EncodeCertificate(r.cert));
  EncodeMerkleProof(r.receipt_proof, &e);
  e.PutBool(r.next_header.has_value());
  if (r.next_header.has_value()) EncodeHeader(*r.next_header, &e);
  e.PutBool(r.next_cert.has_value());
  if (r.next_cert.has_value()) e.PutBytes(EncodeCertificate(*r.next_cert));
  return e.Take();
}

absl::StatusOr<TxRecord> DecodeTxRecord(ByteView data) {
  return DecodeWith<TxRecord>(
      "tx record", data, [](Decoder* d, TxRecord* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetBytes(&r->raw_tx, kMaxTxBytes));
        SA_RETURN_IF_ERROR(d->GetU64(&r->height));
        SA_RETURN_IF_ERROR(d->GetU32(&r->index));
        SA_RETURN_IF_ERROR(GetNested(d, sai::kMaxEncodedReceiptBytes,
                                     DecodeReceipt, &r->receipt));
        SA_RETURN_IF_ERROR(DecodeMerkleProof(d, &r->inclusion));
        SA_RETURN_IF_ERROR(DecodeHeader(d, &r->header));
        SA_RETURN_IF_ERROR(GetCertificate(d, &r->cert));
        SA_RETURN_IF_ERROR(DecodeMerkleProof(d, &r->receipt_proof));
        bool has;
        SA_RETURN_IF_ERROR(d->GetBool(&has));
        if (has) {
          BlockHeader next;
          SA_RETURN_IF_ERROR(DecodeHeader(d, &next));
          r->next_header = std::move(next);
        }
        SA_RETURN_IF_ERROR(d->GetBool(&has));
        if (has) {
          CommitCertificate next_cert;
          SA_RETURN_IF_ERROR(GetCertificate(d, &next_cert));
          r->next_cert = std::move(next_cert);
        }
        return absl::OkStatus();
      });
}

// Layout: bytes block, hash block_hash, bool has_cert [bytes cert].
Bytes EncodeBlockRecord(const BlockRecord& r) {
  Encoder e;
  e.PutBytes(EncodeBlock(r.block));
  e.PutHash(r.block_hash);
  e.PutBool(r.cert.has_value());
  if (r.cert.has_value()) e.PutBytes(EncodeCertificate(*r.cert));
  return e.Take();
}

absl::StatusOr<BlockRecord> DecodeBlockRecord(ByteView data) {
  return DecodeWith<BlockRecord>(
      "block record", data, [](Decoder* d, BlockRecord* r) -> absl::Status {
        SA_RETURN_IF_ERROR(GetBlock(d, &r->block));
        SA_RETURN_IF_ERROR(d->GetHash(&r->block_hash));
        bool has;
        SA_RETURN_IF_ERROR(d->GetBool(&has));
        if (has) {
          CommitCertificate cert;
          SA_RETURN_IF_ERROR(GetCertificate(d, &cert));
          r->cert = std::move(cert);
        }
        return absl::OkStatus();
      });
}

Bytes EncodeStateRecord(const StateRecord& r) {
  Encoder e;
  e.PutBool(r.found);
  e.PutBytes(r.value);
  e.PutBytes(r.owner);
  e.PutU64(r.height);
  e.PutHash(r.state_root);
  EncodeStateProof(r.proof, &e);
  e.PutBool(r.next_header.has_value());
  if (r.next_header.has_value()) EncodeHeader(*r.next_header, &e);
  e.PutBool(r.next_cert.has_value());
  if (r.next_cert.has_value()) e.PutBytes(EncodeCertificate(*r.next_cert));
  return e.Take();
}

absl::StatusOr<StateRecord> DecodeStateRecord(ByteView data) {
  return DecodeWith<StateRecord>(
      "state record", data, [](Decoder* d, StateRecord* r) -> absl::Status {
        SA_RETURN_IF_ERROR(d->GetBool(&r->found));
        SA_RETURN_IF_ERROR(d->GetBytes(&r->value, sai::kMaxStateValueBytes));
        SA_RETURN_IF_ERROR(d->GetBytes(&r->owner, kMaxPublicKeyBytes));
        SA_RETURN_IF_ERROR(d->GetU64(&r->height));
        SA_RETURN_IF_ERROR(d->GetHash(&r->state_root));
        SA_RETURN_IF_ERROR(DecodeStateProof(d, &r->proof));
        bool has;
        SA_RETURN_IF_ERROR(d->GetBool(&has));
        if (has) {
          BlockHeader next;
          SA_RETURN_IF_ERROR(DecodeHeader(d, &next));
          r->next_header = std::move(next);
        }
        SA_RETURN_IF_ERROR(d->GetBool(&has));
        if (has) {
          CommitCertificate next_cert;
          SA_RETURN_IF_ERROR(GetCertificate(d, &next_cert));
          r->next_cert = std::move(next_cert);
        }
        return absl::OkStatus();
      });
}

// ------------------------------------------------------- verification
//
// How the roots are built (storage builds them the same way):
//   - header.tx_root is the Merkle root over the block's txs as they are
//     stored in Block::txs, i.e. each leaf is the raw canonical encoding of
//     one Transaction;
//   - the receipts root (carried by the next header, deferred execution) is
//     the Merkle root over EncodeReceipt(receipt) of the block's receipts, one
//     per tx and in the same order, so a tx and its receipt share an index.

absl::Status VerifyTxRecord(const CryptoSuite& suite, const Genesis& genesis,
                            const TxRecord& r, const Hash32& expected_hash) {
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("crypto suite ", std::string(suite.name()),
                     " is not the chain's (", genesis.crypto_suite, ")"));
  }
  absl::StatusOr<Transaction> tx = DecodeTx(r.raw_tx);
  if (!tx.ok()) return Context("raw_tx", tx.status());
  Hash32 tx_hash = TxHash(suite, *tx);
  if (!IsZero(expected_hash) && tx_hash != expected_hash) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tx hash is ", ToHex(tx_hash), ", expected ", ToHex(expected_hash)));
  }
  if (tx->chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError("tx belongs to another chain");
  }
  // What was signed: a proof of inclusion shows nothing about who sent the
  // tx unless its signature verifies.
  if (!suite.Verify(tx->sender, TxSignBytes(*tx), tx->signature)) {
    return absl::PermissionDeniedError(
        "the tx's signature does not verify for its sender key");
  }

  // The tx is in the block.
  if (r.header.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError("header belongs to another chain");
  }
  if (r.header.height != r.height) {
    return absl::InvalidArgumentError(
        absl::StrCat("record height ", r.height, " differs from header height ",
                     r.header.height));
  }
  if (r.inclusion.index != r.index) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof is for index ", r.inclusion.index,
                     ", record says ", r.index));
  }
  if (!MerkleVerify(suite, r.header.tx_root, r.raw_tx, r.inclusion)) {
    return absl::InvalidArgumentError(
        "inclusion proof does not lead to the header's tx root");
  }

  // The block is final.
  if (absl::Status s = VerifyCertificate(suite, genesis, r.header, r.cert);
      !s.ok()) {
    return s;
  }

  if (!r.next_header.has_value()) {
    if (r.next_cert.has_value()) {
      return absl::InvalidArgumentError(
          "next_cert is present without next_header");
    }
    return absl::OkStatus();
  }

  // The receipt: proven against the receipts root of the next header, which
  // must follow this block and be final itself.
  const BlockHeader& next = *r.next_header;
  if (next.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError("next header belongs to another chain");
  }
  if (next.height != r.header.height + 1) {
    return absl::InvalidArgumentError(absl::StrCat("next header has height ",
                                                   next.height, ", expected ",
                                                   r.header.height + 1));
  }
  if (next.prev_hash != BlockHash(suite, r.header)) {
    return absl::InvalidArgumentError(
        "next header's prev_hash is not the block's hash");
  }
  if (!r.next_cert.has_value()) {
    return absl::InvalidArgumentError("next_header comes without next_cert");
  }
  if (absl::Status s = VerifyCertificate(suite, genesis, next, *r.next_cert);
      !s.ok()) {
    return s;
  }
  if (r.receipt.tx_hash != tx_hash) {
    return absl::InvalidArgumentError("receipt is for another tx");
  }
  if (r.receipt_proof.index != r.index ||
      r.receipt_proof.leaf_count != r.inclusion.leaf_count) {
    return absl::InvalidArgumentError(
        "receipt proof is not at the tx's position");
  }
  if (!MerkleVerify(suite, next.receipts_root, EncodeReceipt(r.receipt),
                    r.receipt_proof)) {
    return absl::InvalidArgumentError(
        "receipt proof does not lead to the next header's receipts root");
  }
  return absl::OkStatus();
}

absl::Status VerifyStateRecord(const CryptoSuite& suite, const Genesis& genesis,
                               std::string_view app, std::string_view key,
                               const StateRecord& r, bool require_certified) {
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("crypto suite ", std::string(suite.name()),
                     " is not the chain's (", genesis.crypto_suite, ")"));
  }
  if (!r.found && (!r.value.empty() || !r.owner.empty())) {
    return absl::InvalidArgumentError(
        "the record says not found but carries a value");
  }
  const Hash32 path = StateKeyPath(suite, app, key);
  std::optional<Hash32> value_hash;
  if (r.found) value_hash = StateValueHash(suite, r.value, r.owner);
  if (absl::Status s =
          VerifyStateProof(suite, r.state_root, path, value_hash, r.proof);
      !s.ok()) {
    return s;
  }
  if (!r.next_header.has_value()) {
    if (r.next_cert.has_value()) {
      return absl::InvalidArgumentError("next_cert comes without next_header");
    }
    if (require_certified) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the state after block ", r.height, " is not certified yet: block ",
          r.height + 1, " does not exist"));
    }
    return absl::OkStatus();
  }
  const BlockHeader& next = *r.next_header;
  if (next.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("next header is for chain '", next.chain_id, "'"));
  }
  if (next.height != r.height + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "next header is block ", next.height, ", not ", r.height + 1));
  }
  if (next.state_root != r.state_root) {
    return absl::InvalidArgumentError(
        "the next header carries another state root");
  }
  if (!r.next_cert.has_value()) {
    return absl::InvalidArgumentError("next_header comes without next_cert");
  }
  return VerifyCertificate(suite, genesis, next, *r.next_cert);
}

// ------------------------------------------------------- query defaults

absl::StatusOr<StateRecord> QueryApi::GetStateAt(const std::string&,
                                                 const std::string&, uint64_t) {
  return absl::UnimplementedError("GetStateAt is not implemented here");
}

absl::StatusOr<BlockRecord> QueryApi::GetBlockByHash(const Hash32&) {
  return absl::UnimplementedError("GetBlockByHash is not implemented here");
}

absl::StatusOr<std::vector<BlockSummary>> QueryApi::ListBlocks(uint64_t,
                                                               uint32_t) {
  return absl::UnimplementedError("ListBlocks is not implemented here");
}

absl::StatusOr<StatePage> QueryApi::ScanState(const std::string&,
                                              const std::string&,
                                              const std::string&, uint32_t) {
  return absl::UnimplementedError("ScanState is not implemented here");
}

absl::StatusOr<std::vector<BlockRecord>> QueryApi::GetBlocks(uint64_t, uint32_t,
                                                             uint64_t) {
  return absl::UnimplementedError("GetBlocks is not implemented here");
}

absl::StatusOr<std::vector<EvidenceRecord>> QueryApi::ListEvidence(uint64_t,
                                                                   uint32_t) {
  return absl::UnimplementedError("ListEvidence is not implemented here");
}

absl::StatusOr<std::vector<uint64_t>> QueryApi::CommittedHeights(
    const std::vector<Hash32>&) {
  return absl::UnimplementedError("CommittedHeights is not implemented here");
}

absl::Status LedgerApi::RecordEvidence(const std::vector<EvidenceRecord>&) {
  return absl::UnimplementedError("RecordEvidence is not implemented here");
}

// ------------------------------------------------------- remote clients

namespace {

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
      const Block& block, const CommitCertificate& cert) override {
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

// Thread-safe: BusClient is.
class RemoteQuery final : public QueryApi {
 public:
  RemoteQuery(BusClient* client, absl::Duration timeout)
      : client_(client), timeout_(timeout) {}

  absl::StatusOr<BlockRecord> GetBlock(
      std::optional<uint64_t> height) override {
    return CallAndDecode<BlockRecord>(client_, MsgType::kQueryBlock,
                                      sai::EncodeGetBlockRequest(height),
                                      timeout_, DecodeBlockRecord);
  }

  absl::StatusOr<TxRecord> GetTx(const Hash32& hash) override {
    return CallAndDecode<TxRecord>(client_, MsgType::kQueryTx,
                                   sai::EncodeGetTxRequest(hash), timeout_,
                                   DecodeTxRecord);
  }

  absl::StatusOr<StateRecord> GetState(const std::string& app,
                                       const std::string& key) override {
    return CallAndDecode<StateRecord>(client_, MsgType::kQueryState,
                                      sai::EncodeGetStateRequest({app, key}),
                                      timeout_, sai::DecodeStateRecord);
  }

  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override {
    return CallAndDecode<CommittedPage>(
        client_, MsgType::kQueryCommitted,
        sai::EncodeGetCommittedRequest({from, to}), timeout_,
        sai::DecodeCommittedPage);
  }

  absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                         const std::string& key,
                                         uint64_t height) override {
    return CallAndDecode<StateRecord>(
        client_, MsgType::kQueryStateAt,
        sai::EncodeGetStateAtRequest({app, key, height}), timeout_,
        DecodeStateRecord);
  }

  absl::StatusOr<BlockRecord> GetBlockByHash(const Hash32& hash) override {
    return CallAndDecode<BlockRecord>(client_, MsgType::kQueryBlockByHash,
                                      sai::EncodeGetTxRequest(hash), timeout_,
                                      DecodeBlockRecord);
  }

  absl::StatusOr<std::vector<BlockSummary>> ListBlocks(
      uint64_t from, uint32_t limit) override {
    return CallAndDecode<std::vector<BlockSummary>>(
        client_, MsgType::kQueryListBlocks,
        sai::EncodeListBlocksRequest({from, limit}), timeout_,
        sai::DecodeBlockSummaries);
  }

  absl::StatusOr<std::vector<BlockRecord>> GetBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override {
    return CallAndDecode<std::vector<BlockRecord>>(
        client_, MsgType::kQueryGetBlocks,
        sai::EncodeGetBlocksRequest({from, limit, max_bytes}), timeout_,
        sai::DecodeBlockRecords);
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

  absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit) override {
    return CallAndDecode<std::vector<EvidenceRecord>>(
        client_, MsgType::kQueryEvidence,
        sai::EncodeListBlocksRequest({from_seq, limit}), timeout_,
        sai::DecodeEvidenceRecords);
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

 private:
  BusClient* const client_;
  const absl::Duration timeout_;
};

// ------------------------------------------------------- serving

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

std::unique_ptr<MempoolApi> MakeRemoteMempool(BusClient* client,
                                              absl::Duration timeout) {
  return std::make_unique<RemoteMempool>(client, timeout);
}

std::unique_ptr<LedgerApi> MakeRemoteLedger(BusClient* client,
                                            absl::Duration timeout) {
  return std::make_unique<RemoteLedger>(client, timeout);
}

std::unique_ptr<QueryApi> MakeRemoteQuery(BusClient* client,
                                          absl::Duration timeout) {
  return std::make_unique<RemoteQuery>(client, timeout);
}

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

#undef SA_RETURN_IF_ERROR
