// The bus messages between the services (service_messages.h): the codecs of
// every request and reply payload, and the public codecs of the commit event
// and the evidence record (service_api.h). Links no ZeroMQ.
#include "service_messages.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/codec.h"
#include "consortia/proof_bundle.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "wire_decode.h"

namespace consortia {
namespace {

namespace sai = service_api_internal;
using sai::kMaxBatchTxs;
using sai::kMaxCommittedPerCall;
using wire_decode::DecodeWith;
using wire_decode::GetNested;
using wire_decode::GetNestedCertificate;
using wire_decode::kMaxEncodedBlockRecordBytes;

constexpr uint8_t kMaxAdmission =
    static_cast<uint8_t>(Admission::kUnregisteredSender);

void PutTxList(const std::vector<Bytes>& txs, Encoder* e) {
  e->PutVarint(txs.size());
  for (const Bytes& tx : txs) e->PutBytes(tx);
}

absl::Status GetTxList(Decoder* d, size_t max_tx_bytes,
                       std::vector<Bytes>* txs) {
  uint64_t n;
  WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxBatchTxs, 1));
  txs->clear();
  txs->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Bytes tx;
    WIRE_RETURN_IF_ERROR(d->GetBytes(&tx, max_tx_bytes));
    txs->push_back(std::move(tx));
  }
  return absl::OkStatus();
}

// An optional ChainRules: a flag, then EncodeChainRules.
void PutOptionalRules(Encoder* e, const std::optional<ChainRules>& rules) {
  e->PutBool(rules.has_value());
  if (rules.has_value()) EncodeChainRules(*rules, e);
}

absl::Status GetOptionalRules(Decoder* d, std::optional<ChainRules>* out) {
  bool present = false;
  WIRE_RETURN_IF_ERROR(d->GetBool(&present));
  if (!present) {
    out->reset();
    return absl::OkStatus();
  }
  ChainRules r;
  WIRE_RETURN_IF_ERROR(DecodeChainRules(d, &r));
  *out = r;
  return absl::OkStatus();
}

void PutCommittedEvent(const CommittedEvent& ev, Encoder* e) {
  e->PutU64(ev.height);
  e->PutHash(ev.block_hash);
  e->PutVarint(ev.txs.size());
  for (const CommittedTx& tx : ev.txs) {
    e->PutHash(tx.hash);
    e->PutU64(tx.valid_until);
  }
  e->PutVarint(ev.member_changes.size());
  for (const MemberChange& c : ev.member_changes) {
    e->PutBytes(c.public_key);
    e->PutBool(c.registered);
  }
  e->PutBool(ev.permissioned);
  PutOptionalRules(e, ev.rules);
}

absl::Status GetCommittedEvent(Decoder* d, CommittedEvent* ev) {
  WIRE_RETURN_IF_ERROR(d->GetU64(&ev->height));
  WIRE_RETURN_IF_ERROR(d->GetHash(&ev->block_hash));
  uint64_t n;
  // Each tx takes exactly 40 bytes.
  WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxBlockTxs, 40));
  ev->txs.clear();
  ev->txs.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    CommittedTx tx;
    WIRE_RETURN_IF_ERROR(d->GetHash(&tx.hash));
    WIRE_RETURN_IF_ERROR(d->GetU64(&tx.valid_until));
    ev->txs.push_back(tx);
  }
  // Each change takes at least 3 bytes (length, one key byte, flag).
  WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxMemberChanges, 3));
  ev->member_changes.clear();
  ev->member_changes.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    MemberChange c;
    WIRE_RETURN_IF_ERROR(d->GetBytes(&c.public_key, kMaxMemberKeyBytes));
    if (c.public_key.empty()) {
      return absl::InvalidArgumentError("member change with an empty key");
    }
    // Each key once, in ascending order: what storage sends, and the only
    // encoding of a set of changes.
    if (!ev->member_changes.empty() &&
        !(ev->member_changes.back().public_key < c.public_key)) {
      return absl::InvalidArgumentError(
          "member changes are not in strictly ascending key order");
    }
    WIRE_RETURN_IF_ERROR(d->GetBool(&c.registered));
    ev->member_changes.push_back(std::move(c));
  }
  WIRE_RETURN_IF_ERROR(d->GetBool(&ev->permissioned));
  return GetOptionalRules(d, &ev->rules);
}

// A validator set: varint count, then each validator's name, key and
// power. Genesis names have no length limit of their own; this one is far
// above any name a person writes.
constexpr size_t kMaxWireValidatorNameBytes = 4096;

void PutValidators(Encoder* e, const std::vector<Validator>& vals) {
  e->PutVarint(vals.size());
  for (const Validator& v : vals) {
    e->PutString(v.name);
    e->PutBytes(v.public_key);
    e->PutU64(v.power);
  }
}

absl::Status GetValidators(Decoder* d, std::vector<Validator>* out) {
  uint64_t n = 0;
  // Each validator takes at least two length bytes and its power.
  WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxValidators, 10));
  out->resize(n);
  for (Validator& v : *out) {
    WIRE_RETURN_IF_ERROR(d->GetString(&v.name, kMaxWireValidatorNameBytes));
    WIRE_RETURN_IF_ERROR(d->GetBytes(&v.public_key, kMaxPublicKeyBytes));
    WIRE_RETURN_IF_ERROR(d->GetU64(&v.power));
  }
  return absl::OkStatus();
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxBatchTxs, 34));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          SubmitResult r;
          WIRE_RETURN_IF_ERROR(d->GetHash(&r.tx_hash));
          uint8_t code;
          WIRE_RETURN_IF_ERROR(d->GetU8(&code));
          if (code > kMaxAdmission) {
            return absl::InvalidArgumentError(
                absl::StrCat("unknown admission code ", code));
          }
          r.code = static_cast<Admission>(code);
          WIRE_RETURN_IF_ERROR(d->GetString(&r.detail, kMaxDetailBytes));
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
        WIRE_RETURN_IF_ERROR(d->GetU32(&r->max_txs));
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->max_bytes));
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
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->height));
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxBatchTxs, 33));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          ProposalTxCheck c;
          WIRE_RETURN_IF_ERROR(d->GetHash(&c.tx_hash));
          uint8_t code;
          WIRE_RETURN_IF_ERROR(d->GetU8(&code));
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
  PutValidators(&e, s.next_validators);
  PutOptionalRules(&e, s.next_rules);
  return e.Take();
}

absl::StatusOr<ChainState> DecodeChainState(ByteView data) {
  return DecodeWith<ChainState>(
      "chain state", data, [](Decoder* d, ChainState* s) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetU64(&s->height));
        WIRE_RETURN_IF_ERROR(d->GetHash(&s->last_block_hash));
        WIRE_RETURN_IF_ERROR(d->GetU64(&s->last_time_ms));
        WIRE_RETURN_IF_ERROR(d->GetHash(&s->state_root));
        WIRE_RETURN_IF_ERROR(d->GetHash(&s->receipts_root));
        WIRE_RETURN_IF_ERROR(GetValidators(d, &s->next_validators));
        return GetOptionalRules(d, &s->next_rules);
      });
}

Bytes EncodeCommitBlockRequest(ByteView block, const CommitCertificate& cert) {
  Encoder e;
  e.PutBytes(block);
  e.PutBytes(EncodeCertificate(cert));
  return e.Take();
}

absl::StatusOr<CommitBlockRequest> DecodeCommitBlockRequest(ByteView data) {
  return DecodeWith<CommitBlockRequest>(
      "commit block request", data,
      [](Decoder* d, CommitBlockRequest* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetBytesView(&r->block, kMaxEncodedBlockBytes));
        return GetNestedCertificate(d, &r->cert);
      });
}

Bytes EncodeCommitResult(const CommitResult& r) {
  Encoder e;
  e.PutHash(r.state_root);
  e.PutHash(r.receipts_root);
  PutValidators(&e, r.next_validators);
  PutOptionalRules(&e, r.next_rules);
  return e.Take();
}

absl::StatusOr<CommitResult> DecodeCommitResult(ByteView data) {
  return DecodeWith<CommitResult>(
      "commit result", data, [](Decoder* d, CommitResult* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetHash(&r->state_root));
        WIRE_RETURN_IF_ERROR(d->GetHash(&r->receipts_root));
        WIRE_RETURN_IF_ERROR(GetValidators(d, &r->next_validators));
        return GetOptionalRules(d, &r->next_rules);
      });
}

Bytes EncodeCertifiedBlockRequest(std::optional<uint64_t> height) {
  Encoder e;
  e.PutBool(height.has_value());
  if (height.has_value()) e.PutU64(*height);
  return e.Take();
}

absl::StatusOr<std::optional<uint64_t>> DecodeCertifiedBlockRequest(
    ByteView data) {
  return DecodeWith<std::optional<uint64_t>>(
      "certified block request", data,
      [](Decoder* d, std::optional<uint64_t>* h) -> absl::Status {
        bool has;
        WIRE_RETURN_IF_ERROR(d->GetBool(&has));
        if (!has) return absl::OkStatus();
        uint64_t v;
        WIRE_RETURN_IF_ERROR(d->GetU64(&v));
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
        WIRE_RETURN_IF_ERROR(d->GetString(&r->app, kMaxAppBytes));
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
        WIRE_RETURN_IF_ERROR(d->GetString(&r->app, kMaxAppBytes));
        WIRE_RETURN_IF_ERROR(d->GetString(&r->key, kMaxStateKeyBytes));
        return d->GetU64(&r->height);
      });
}

Bytes EncodePageRequest(const PageRequest& req) {
  Encoder e;
  e.PutU64(req.from);
  e.PutU32(req.limit);
  return e.Take();
}

absl::StatusOr<PageRequest> DecodePageRequest(ByteView data) {
  return DecodeWith<PageRequest>(
      "page request", data, [](Decoder* d, PageRequest* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->from));
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxBlockSummaries, 100));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          BlockSummary b;
          WIRE_RETURN_IF_ERROR(DecodeHeader(d, &b.header));
          WIRE_RETURN_IF_ERROR(d->GetHash(&b.block_hash));
          WIRE_RETURN_IF_ERROR(d->GetU32(&b.tx_count));
          out->push_back(std::move(b));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeValidatorChangesRequest(uint64_t up_to_height) {
  Encoder e;
  e.PutU64(up_to_height);
  return e.Take();
}

absl::StatusOr<uint64_t> DecodeValidatorChangesRequest(ByteView data) {
  return DecodeWith<uint64_t>(
      "validator changes request", data,
      [](Decoder* d, uint64_t* h) -> absl::Status { return d->GetU64(h); });
}

namespace {

// EncodeStateRecord: a value, an owner key, a proof of at most 256 hashes
// with a leaf, a header and a certificate, each bounded.
constexpr size_t kMaxEncodedStateRecordBytes =
    wire_decode::kMaxStateValueBytes + kMaxPublicKeyBytes + 257 * 64 +
    wire_decode::kMaxEncodedCertBytes + 64 * 1024;

}  // namespace

Bytes EncodeStateRecords(const std::vector<StateRecord>& records) {
  Encoder e;
  e.PutVarint(records.size());
  for (const StateRecord& r : records) {
    e.PutBytes(::consortia::EncodeStateRecord(r));
  }
  return e.Take();
}

absl::StatusOr<std::vector<StateRecord>> DecodeStateRecords(ByteView data) {
  return DecodeWith<std::vector<StateRecord>>(
      "state records", data,
      [](Decoder* d, std::vector<StateRecord>* out) -> absl::Status {
        uint64_t n;
        // A record holds at least a height, a root and two flags.
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxValidatorChanges, 40));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          StateRecord r;
          WIRE_RETURN_IF_ERROR(
              GetNested(d, kMaxEncodedStateRecordBytes, DecodeStateRecord, &r));
          out->push_back(std::move(r));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeCertifiedBlocksRequest(const CertifiedBlocksRequest& req) {
  Encoder e;
  e.PutU64(req.from);
  e.PutU32(req.limit);
  e.PutU64(req.max_bytes);
  return e.Take();
}

absl::StatusOr<CertifiedBlocksRequest> DecodeCertifiedBlocksRequest(
    ByteView data) {
  return DecodeWith<CertifiedBlocksRequest>(
      "certified blocks request", data,
      [](Decoder* d, CertifiedBlocksRequest* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->from));
        WIRE_RETURN_IF_ERROR(d->GetU32(&r->limit));
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxCertifiedBlocks, 100));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          BlockRecord b;
          WIRE_RETURN_IF_ERROR(
              GetNested(d, kMaxEncodedBlockRecordBytes, DecodeBlockRecord, &b));
          out->push_back(std::move(b));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeBlocksWithReceipts(const std::vector<BlockWithReceipts>& blocks) {
  Encoder e;
  e.PutVarint(blocks.size());
  for (const BlockWithReceipts& b : blocks) {
    e.PutBytes(EncodeBlock(b.block));
    e.PutHash(b.block_hash);
    e.PutVarint(b.receipts.size());
    for (const Receipt& r : b.receipts) e.PutBytes(EncodeReceipt(r));
  }
  return e.Take();
}

absl::StatusOr<std::vector<BlockWithReceipts>> DecodeBlocksWithReceipts(
    ByteView data) {
  return DecodeWith<std::vector<BlockWithReceipts>>(
      "blocks with receipts", data,
      [](Decoder* d, std::vector<BlockWithReceipts>* out) -> absl::Status {
        uint64_t n;
        // A block holds at least a header and a hash: well over 100 bytes.
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxBlocksWithReceipts, 100));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          BlockWithReceipts b;
          WIRE_RETURN_IF_ERROR(wire_decode::GetNestedBlock(d, &b.block));
          WIRE_RETURN_IF_ERROR(d->GetHash(&b.block_hash));
          uint64_t m;
          // A receipt holds at least a hash.
          WIRE_RETURN_IF_ERROR(d->GetCount(&m, kMaxBlockTxs, 32));
          b.receipts.reserve(m);
          for (uint64_t j = 0; j < m; ++j) {
            Receipt r;
            WIRE_RETURN_IF_ERROR(GetNested(
                d, wire_decode::kMaxEncodedReceiptBytes, DecodeReceipt, &r));
            b.receipts.push_back(std::move(r));
          }
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxCommittedHeightsQuery, 32));
        out->resize(n);
        for (Hash32& h : *out) WIRE_RETURN_IF_ERROR(d->GetHash(&h));
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxCommittedHeightsQuery, 1));
        out->resize(n);
        for (uint64_t& h : *out) WIRE_RETURN_IF_ERROR(d->GetVarint(&h));
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
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxListEvidence, 8));
        out->reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          Bytes raw;
          WIRE_RETURN_IF_ERROR(
              d->GetBytes(&raw, kMaxEvidenceMessageBytes + 256));
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
        WIRE_RETURN_IF_ERROR(d->GetString(&r->app, kMaxAppBytes));
        WIRE_RETURN_IF_ERROR(d->GetString(&r->prefix, kMaxStateKeyBytes));
        WIRE_RETURN_IF_ERROR(d->GetString(&r->cursor, kMaxStateKeyBytes));
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
        WIRE_RETURN_IF_ERROR(d->GetU64(&p->height));
        uint64_t n;
        // Three length prefixes at least.
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxScanState, 3));
        p->items.reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          StateItem item;
          WIRE_RETURN_IF_ERROR(d->GetString(&item.key, kMaxStateKeyBytes));
          WIRE_RETURN_IF_ERROR(d->GetBytes(&item.value, kMaxStateValueBytes));
          WIRE_RETURN_IF_ERROR(d->GetBytes(&item.owner, kMaxPublicKeyBytes));
          p->items.push_back(std::move(item));
        }
        bool more;
        WIRE_RETURN_IF_ERROR(d->GetBool(&more));
        if (more) {
          std::string cursor;
          WIRE_RETURN_IF_ERROR(d->GetString(&cursor, kMaxStateKeyBytes));
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
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->from));
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
        // height + hash + two counts + flag: at least 43 bytes each.
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxCommittedPerCall, 43));
        out->events.reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          CommittedEvent ev;
          WIRE_RETURN_IF_ERROR(GetCommittedEvent(d, &ev));
          if (!out->events.empty() && ev.height <= out->events.back().height) {
            return absl::InvalidArgumentError(
                absl::StrCat("commit event of height ", ev.height,
                             " after height ", out->events.back().height));
          }
          out->events.push_back(std::move(ev));
        }
        WIRE_RETURN_IF_ERROR(d->GetU64(&out->next_height));
        if (!out->events.empty() &&
            out->next_height <= out->events.back().height) {
          return absl::InvalidArgumentError(absl::StrCat(
              "next height ", out->next_height,
              " is not after the last event's ", out->events.back().height));
        }
        return absl::OkStatus();
      });
}

Bytes EncodeListMembersRequest(const ListMembersRequest& req) {
  Encoder e;
  e.PutBytes(req.cursor);
  e.PutU32(req.limit);
  return e.Take();
}

absl::StatusOr<ListMembersRequest> DecodeListMembersRequest(ByteView data) {
  return DecodeWith<ListMembersRequest>(
      "list members request", data,
      [](Decoder* d, ListMembersRequest* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetBytes(&r->cursor, kMaxMemberKeyBytes));
        return d->GetU32(&r->limit);
      });
}

Bytes EncodeMemberPage(const MemberPage& page) {
  Encoder e;
  e.PutU64(page.height);
  e.PutBool(page.permissioned);
  e.PutVarint(page.public_keys.size());
  for (const Bytes& k : page.public_keys) e.PutBytes(k);
  e.PutBool(page.next_cursor.has_value());
  if (page.next_cursor.has_value()) e.PutBytes(*page.next_cursor);
  PutOptionalRules(&e, page.rules);
  return e.Take();
}

absl::StatusOr<MemberPage> DecodeMemberPage(ByteView data) {
  return DecodeWith<MemberPage>(
      "member page", data, [](Decoder* d, MemberPage* out) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetU64(&out->height));
        WIRE_RETURN_IF_ERROR(d->GetBool(&out->permissioned));
        uint64_t n;
        // length + at least one key byte.
        WIRE_RETURN_IF_ERROR(d->GetCount(&n, kMaxListMembers, 2));
        out->public_keys.reserve(n);
        for (uint64_t i = 0; i < n; ++i) {
          Bytes k;
          WIRE_RETURN_IF_ERROR(d->GetBytes(&k, kMaxMemberKeyBytes));
          if (k.empty()) {
            return absl::InvalidArgumentError("empty member key");
          }
          if (!out->public_keys.empty() && !(out->public_keys.back() < k)) {
            return absl::InvalidArgumentError(
                "member keys are not in strictly ascending order");
          }
          out->public_keys.push_back(std::move(k));
        }
        bool more = false;
        WIRE_RETURN_IF_ERROR(d->GetBool(&more));
        if (more) {
          Bytes cursor;
          WIRE_RETURN_IF_ERROR(d->GetBytes(&cursor, kMaxMemberKeyBytes));
          if (cursor.empty()) {
            return absl::InvalidArgumentError("empty member page cursor");
          }
          out->next_cursor = std::move(cursor);
        }
        return GetOptionalRules(d, &out->rules);
      });
}

Bytes EncodeChainTip(const ChainTip& tip) {
  Encoder e;
  e.PutU64(tip.height);
  e.PutHash(tip.block_hash);
  return e.Take();
}

absl::StatusOr<ChainTip> DecodeChainTip(ByteView data) {
  return DecodeWith<ChainTip>("chain tip", data,
                              [](Decoder* d, ChainTip* t) -> absl::Status {
                                WIRE_RETURN_IF_ERROR(d->GetU64(&t->height));
                                return d->GetHash(&t->block_hash);
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
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->seq));
        WIRE_RETURN_IF_ERROR(d->GetString(&r->kind, 64));
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->height));
        WIRE_RETURN_IF_ERROR(d->GetU32(&r->round));
        WIRE_RETURN_IF_ERROR(d->GetU32(&r->validator_index));
        return d->GetBytes(&r->message, kMaxEvidenceMessageBytes);
      });
}

}  // namespace consortia
