#include "wal_record.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"
#include "wal_return_if_error.h"

namespace consortia::consensus {
namespace {

// Record kinds: an on-disk format. A value, once used, is never reused.
enum RecordKind : uint8_t {
  kKindVote = 1,
  kKindProposal = 2,
  kKindEndHeight = 3,
  // 4 was LockState (Tendermint's locked/valid round and value). No release
  // ever appended one; it is refused when read (DecodeWalRecord).
  kKindRetiredLockState = 4,
  kKindPolka = 5,
};

// Votes in one Polka record: at most every validator's vote.
constexpr uint64_t kMaxPolkaVotes = 1024;

// An encoded Vote is far below this (the signature is at most
// kMaxSignatureBytes).
constexpr size_t kMaxEncodedVoteBytes = 1024;

absl::Status GetVarint32(Decoder* d, uint32_t* v) {
  uint64_t x = 0;
  WAL_RETURN_IF_ERROR(d->GetVarint(&x));
  if (x > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("round over 32 bits at offset ", d->offset()));
  }
  *v = static_cast<uint32_t>(x);
  return absl::OkStatus();
}

}  // namespace

uint64_t WalRecordHeight(const WalRecord& r) {
  return std::visit([](const auto& x) -> uint64_t { return x.height; }, r);
}

Bytes EncodeWalRecord(const WalRecord& r) {
  Encoder e;
  if (const Vote* v = std::get_if<Vote>(&r)) {
    e.PutU8(kKindVote);
    e.PutBytes(EncodeVote(*v));
  } else if (const WalProposal* p = std::get_if<WalProposal>(&r)) {
    e.PutU8(kKindProposal);
    e.PutVarint(p->height);
    e.PutVarint(p->round);
    e.PutBytes(p->message);
  } else if (const WalEndHeight* h = std::get_if<WalEndHeight>(&r)) {
    e.PutU8(kKindEndHeight);
    e.PutVarint(h->height);
  } else {
    const WalPolka& pv = std::get<WalPolka>(r);
    e.PutU8(kKindPolka);
    e.PutVarint(pv.height);
    e.PutVarint(pv.votes.size());
    for (const Vote& v : pv.votes) e.PutBytes(EncodeVote(v));
    e.PutBytes(pv.proposal);
  }
  return e.Take();
}

absl::StatusOr<WalRecord> DecodeWalRecord(ByteView payload) {
  Decoder d(payload);
  uint8_t kind = 0;
  WAL_RETURN_IF_ERROR(d.GetU8(&kind));
  WalRecord out;
  switch (kind) {
    case kKindVote: {
      Bytes enc;
      WAL_RETURN_IF_ERROR(d.GetBytes(&enc, kMaxEncodedVoteBytes));
      absl::StatusOr<Vote> v = DecodeVote(enc);
      if (!v.ok()) return v.status();
      out = *std::move(v);
      break;
    }
    case kKindProposal: {
      WalProposal p;
      WAL_RETURN_IF_ERROR(d.GetVarint(&p.height));
      WAL_RETURN_IF_ERROR(GetVarint32(&d, &p.round));
      WAL_RETURN_IF_ERROR(d.GetBytes(&p.message, payload.size()));
      out = std::move(p);
      break;
    }
    case kKindEndHeight: {
      WalEndHeight h;
      WAL_RETURN_IF_ERROR(d.GetVarint(&h.height));
      out = h;
      break;
    }
    case kKindRetiredLockState:
      return absl::InvalidArgumentError(
          "retired WAL record kind 4 (LockState): no release writes it");
    case kKindPolka: {
      WalPolka pv;
      WAL_RETURN_IF_ERROR(d.GetVarint(&pv.height));
      uint64_t n = 0;
      // Each vote takes at least a length byte and a few fields.
      WAL_RETURN_IF_ERROR(d.GetCount(&n, kMaxPolkaVotes, 8));
      pv.votes.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        Bytes enc;
        WAL_RETURN_IF_ERROR(d.GetBytes(&enc, kMaxEncodedVoteBytes));
        absl::StatusOr<Vote> v = DecodeVote(enc);
        if (!v.ok()) return v.status();
        pv.votes.push_back(*std::move(v));
      }
      WAL_RETURN_IF_ERROR(d.GetBytes(&pv.proposal, payload.size()));
      out = std::move(pv);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown WAL record kind ", kind));
  }
  WAL_RETURN_IF_ERROR(d.ExpectEnd());
  return out;
}

}  // namespace consortia::consensus
