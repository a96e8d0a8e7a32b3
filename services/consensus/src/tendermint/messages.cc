#include "tendermint/messages.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"

namespace consortia::consensus::tendermint {
namespace {

using Kind = ConsensusMessageKind;

// Propagates a non-OK status from an expression.
#define TM_RETURN_IF_ERROR(expr)                          \
  do {                                                    \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

absl::Status TooLarge(size_t size) {
  return absl::InvalidArgumentError(absl::StrCat("consensus message of ", size,
                                                 " bytes exceeds the limit of ",
                                                 kMaxMessageBytes));
}

}  // namespace

Bytes EncodeProposal(const Proposal& p) {
  Encoder e;
  PutProposal(&e, p);
  return e.Take();
}

absl::StatusOr<Proposal> DecodeProposal(ByteView data) {
  if (data.size() > kMaxMessageBytes) return TooLarge(data.size());
  Decoder d(data);
  Proposal p;
  TM_RETURN_IF_ERROR(GetProposal(&d, &p));
  TM_RETURN_IF_ERROR(d.ExpectEnd());
  return p;
}

Bytes EncodeMessage(const Message& m) {
  Encoder e;
  if (const auto* p = std::get_if<Proposal>(&m)) {
    e.PutU8(static_cast<uint8_t>(Kind::kProposal));
    PutProposal(&e, *p);
  } else if (const auto* v = std::get_if<Vote>(&m)) {
    e.PutU8(static_cast<uint8_t>(Kind::kVote));
    e.PutBytes(EncodeVote(*v));
  } else {
    const Commit& c = std::get<Commit>(m);
    return EncodeCommitMessage(EncodeBlock(c.block), c.certificate);
  }
  return e.Take();
}

Bytes EncodeCommitMessage(ByteView block_bytes,
                          const CommitCertificate& certificate) {
  Encoder e;
  e.PutU8(static_cast<uint8_t>(Kind::kCommit));
  e.PutBytes(block_bytes);
  e.PutBytes(EncodeCertificate(certificate));
  return e.Take();
}

absl::StatusOr<Message> DecodeMessage(ByteView data) {
  return DecodeMessage(data, nullptr);
}

absl::StatusOr<Message> DecodeMessage(ByteView data, Bytes* block_bytes) {
  if (block_bytes != nullptr) block_bytes->clear();
  if (data.size() > kMaxMessageBytes) return TooLarge(data.size());
  Decoder d(data);
  uint8_t kind = 0;
  TM_RETURN_IF_ERROR(d.GetU8(&kind));
  Message out;
  switch (static_cast<Kind>(kind)) {
    case Kind::kProposal: {
      Proposal p;
      TM_RETURN_IF_ERROR(GetProposal(&d, &p, block_bytes));
      out = std::move(p);
      break;
    }
    case Kind::kVote: {
      Bytes raw;
      // A vote is a few dozen bytes plus a signature.
      TM_RETURN_IF_ERROR(d.GetBytes(&raw, 1024));
      absl::StatusOr<Vote> v = DecodeVote(raw);
      if (!v.ok()) return v.status();
      out = *std::move(v);
      break;
    }
    case Kind::kCommit: {
      ByteView block;
      TM_RETURN_IF_ERROR(d.GetBytesView(&block, kMaxBlockBytes));
      absl::StatusOr<Block> b = DecodeBlock(block);
      if (!b.ok()) return b.status();
      // Each signature: an index, a length and at most kMaxSignatureBytes.
      ByteView cert;
      TM_RETURN_IF_ERROR(d.GetBytesView(
          &cert, 64 + kMaxValidators * (kMaxSignatureBytes + 8)));
      absl::StatusOr<CommitCertificate> c = DecodeCertificate(cert);
      if (!c.ok()) return c.status();
      out = Commit{*std::move(b), *std::move(c)};
      if (block_bytes != nullptr)
        block_bytes->assign(block.begin(), block.end());
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown consensus message kind ", kind, " at offset 0"));
  }
  TM_RETURN_IF_ERROR(d.ExpectEnd());
  return out;
}

uint32_t ProposerIndex(uint64_t height, uint32_t round, size_t n) {
  return static_cast<uint32_t>((height % n + round % n) % n);
}

ProposerSchedule::ProposerSchedule(const std::vector<uint64_t>& powers) {
  uint64_t g = 0;
  for (uint64_t p : powers) g = std::gcd(g, p);
  if (g == 0) g = 1;  // no power at all: the caller refuses such a set
  std::vector<uint64_t> weights;
  uint64_t total = 0;
  for (uint64_t p : powers) {
    weights.push_back(p / g);
    total += p / g;
  }
  if (total > kMaxSlots) {
    const uint64_t scaled_from = total;
    total = 0;
    for (uint64_t& w : weights) {
      if (w == 0) continue;  // a validator without power never proposes
      w = std::max<uint64_t>(
          1, static_cast<uint64_t>(static_cast<unsigned __int128>(w) *
                                   kMaxSlots / scaled_from));
      total += w;
    }
  }
  std::vector<int64_t> credit(weights.size(), 0);
  table_.reserve(total);
  for (uint64_t s = 0; s < total; ++s) {
    size_t best = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      credit[i] += static_cast<int64_t>(weights[i]);
      if (credit[i] > credit[best]) best = i;
    }
    credit[best] -= static_cast<int64_t>(total);
    table_.push_back(static_cast<uint32_t>(best));
  }
}

uint32_t ProposerSchedule::Index(uint64_t height, uint32_t round) const {
  const uint64_t l = table_.size();
  if (l == 0) return 0;
  return table_[(height % l + round % l) % l];
}

#undef TM_RETURN_IF_ERROR

}  // namespace consortia::consensus::tendermint
