#include "tendermint/messages.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"

namespace consortia::consensus::tendermint {
namespace {

constexpr std::string_view kProposalDomainTag = "consortia/proposal/v1";

enum class Kind : uint8_t { kProposal = 1, kVote = 2, kCommit = 3 };

// Propagates a non-OK status from an expression.
#define TM_RETURN_IF_ERROR(expr)                          \
  do {                                                    \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

absl::Status GetVarint32(Decoder* d, uint32_t* v, const char* field) {
  const size_t start = d->offset();
  uint64_t x = 0;
  TM_RETURN_IF_ERROR(d->GetVarint(&x));
  if (x > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " ", x, " does not fit in 32 bits at offset ", start));
  }
  *v = static_cast<uint32_t>(x);
  return absl::OkStatus();
}

void EncodeProposalBody(const Proposal& p, Encoder* e) {
  e->PutVarint(p.height);
  e->PutVarint(p.round);
  e->PutVarint(static_cast<uint64_t>(p.valid_round + 1));
  e->PutVarint(p.proposer_index);
  e->PutBytes(EncodeBlock(p.block));
  e->PutBytes(p.signature);
}

absl::Status DecodeProposalBody(Decoder* d, Proposal* p) {
  TM_RETURN_IF_ERROR(d->GetVarint(&p->height));
  TM_RETURN_IF_ERROR(GetVarint32(d, &p->round, "round"));
  const size_t vr_at = d->offset();
  uint64_t vr_plus_one = 0;
  TM_RETURN_IF_ERROR(d->GetVarint(&vr_plus_one));
  if (vr_plus_one > uint64_t{std::numeric_limits<uint32_t>::max()} + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "valid round + 1 = ", vr_plus_one, " out of range at offset ", vr_at));
  }
  p->valid_round = static_cast<int64_t>(vr_plus_one) - 1;
  TM_RETURN_IF_ERROR(GetVarint32(d, &p->proposer_index, "proposer index"));
  Bytes block;
  const size_t block_at = d->offset();
  TM_RETURN_IF_ERROR(d->GetBytes(&block, kMaxBlockBytes));
  absl::StatusOr<Block> b = DecodeBlock(block);
  if (!b.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "proposal block at offset ", block_at, ": ", b.status().message()));
  }
  p->block = *std::move(b);
  TM_RETURN_IF_ERROR(d->GetBytes(&p->signature, kMaxSignatureBytes));
  return absl::OkStatus();
}

absl::Status TooLarge(size_t size) {
  return absl::InvalidArgumentError(absl::StrCat("consensus message of ", size,
                                                 " bytes exceeds the limit of ",
                                                 kMaxMessageBytes));
}

}  // namespace

Bytes ProposalSignBytes(std::string_view chain_id, const Proposal& p,
                        const Hash32& block_hash) {
  Encoder e;
  e.PutString(kProposalDomainTag);
  e.PutString(chain_id);
  e.PutVarint(p.height);
  e.PutVarint(p.round);
  e.PutVarint(static_cast<uint64_t>(p.valid_round + 1));
  e.PutHash(block_hash);
  e.PutVarint(p.proposer_index);
  return e.Take();
}

Bytes EncodeProposal(const Proposal& p) {
  Encoder e;
  EncodeProposalBody(p, &e);
  return e.Take();
}

absl::StatusOr<Proposal> DecodeProposal(ByteView data) {
  if (data.size() > kMaxMessageBytes) return TooLarge(data.size());
  Decoder d(data);
  Proposal p;
  TM_RETURN_IF_ERROR(DecodeProposalBody(&d, &p));
  TM_RETURN_IF_ERROR(d.ExpectEnd());
  return p;
}

Bytes EncodeMessage(const Message& m) {
  Encoder e;
  if (const auto* p = std::get_if<Proposal>(&m)) {
    e.PutU8(static_cast<uint8_t>(Kind::kProposal));
    EncodeProposalBody(*p, &e);
  } else if (const auto* v = std::get_if<Vote>(&m)) {
    e.PutU8(static_cast<uint8_t>(Kind::kVote));
    e.PutBytes(EncodeVote(*v));
  } else {
    const Commit& c = std::get<Commit>(m);
    e.PutU8(static_cast<uint8_t>(Kind::kCommit));
    e.PutBytes(EncodeBlock(c.block));
    e.PutBytes(EncodeCertificate(c.certificate));
  }
  return e.Take();
}

absl::StatusOr<Message> DecodeMessage(ByteView data) {
  if (data.size() > kMaxMessageBytes) return TooLarge(data.size());
  Decoder d(data);
  uint8_t kind = 0;
  TM_RETURN_IF_ERROR(d.GetU8(&kind));
  Message out;
  switch (static_cast<Kind>(kind)) {
    case Kind::kProposal: {
      Proposal p;
      TM_RETURN_IF_ERROR(DecodeProposalBody(&d, &p));
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
      Bytes raw;
      TM_RETURN_IF_ERROR(d.GetBytes(&raw, kMaxBlockBytes));
      absl::StatusOr<Block> b = DecodeBlock(raw);
      if (!b.ok()) return b.status();
      // Each signature: an index, a length and at most kMaxSignatureBytes.
      TM_RETURN_IF_ERROR(
          d.GetBytes(&raw, 64 + kMaxValidators * (kMaxSignatureBytes + 8)));
      absl::StatusOr<CommitCertificate> c = DecodeCertificate(raw);
      if (!c.ok()) return c.status();
      out = Commit{*std::move(b), *std::move(c)};
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown consensus message kind ", kind, " at offset 0"));
  }
  TM_RETURN_IF_ERROR(d.ExpectEnd());
  return out;
}

uint32_t EvidenceValidator(const Evidence& e) {
  if (const auto* v = std::get_if<DoubleVote>(&e)) {
    return v->first.validator_index;
  }
  return std::get<DoubleProposal>(e).first.proposer_index;
}

Bytes EncodeEvidence(const Evidence& e) {
  Encoder enc;
  if (const auto* v = std::get_if<DoubleVote>(&e)) {
    enc.PutBytes(EncodeMessage(v->first));
    enc.PutBytes(EncodeMessage(v->second));
  } else {
    const DoubleProposal& p = std::get<DoubleProposal>(e);
    enc.PutBytes(EncodeMessage(p.first));
    enc.PutBytes(EncodeMessage(p.second));
  }
  return enc.Take();
}

absl::StatusOr<Evidence> DecodeEvidence(ByteView data) {
  if (data.size() > kMaxMessageBytes) return TooLarge(data.size());
  Decoder d(data);
  Message m[2];
  for (Message& one : m) {
    Bytes raw;
    TM_RETURN_IF_ERROR(d.GetBytes(&raw, kMaxMessageBytes));
    absl::StatusOr<Message> decoded = DecodeMessage(raw);
    if (!decoded.ok()) return decoded.status();
    one = *std::move(decoded);
  }
  TM_RETURN_IF_ERROR(d.ExpectEnd());
  if (const auto* a = std::get_if<Vote>(&m[0])) {
    if (const auto* b = std::get_if<Vote>(&m[1])) return DoubleVote{*a, *b};
  }
  if (const auto* a = std::get_if<Proposal>(&m[0])) {
    if (const auto* b = std::get_if<Proposal>(&m[1])) {
      return DoubleProposal{*a, *b};
    }
  }
  return absl::InvalidArgumentError(
      "evidence must hold two votes or two proposals");
}

std::string_view EvidenceKind(const Evidence& e) {
  return std::holds_alternative<DoubleVote>(e) ? "duplicate_vote"
                                               : "duplicate_proposal";
}

uint64_t EvidenceHeight(const Evidence& e) {
  if (const auto* v = std::get_if<DoubleVote>(&e)) return v->first.height;
  return std::get<DoubleProposal>(e).first.height;
}

uint32_t EvidenceRound(const Evidence& e) {
  if (const auto* v = std::get_if<DoubleVote>(&e)) return v->first.round;
  return std::get<DoubleProposal>(e).first.round;
}

absl::Status VerifyEvidence(const CryptoSuite& suite, const Genesis& genesis,
                            const Evidence& e) {
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError("evidence checked with another suite");
  }
  const size_t n = genesis.validators.size();
  if (const auto* dv = std::get_if<DoubleVote>(&e)) {
    const Vote& a = dv->first;
    const Vote& b = dv->second;
    if (a.type != b.type || a.height != b.height || a.round != b.round ||
        a.validator_index != b.validator_index) {
      return absl::InvalidArgumentError(
          "votes are not for the same height, round, type and validator");
    }
    if (a.block_hash == b.block_hash) {
      return absl::InvalidArgumentError("votes are for the same block");
    }
    if (a.validator_index >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("validator ", a.validator_index, " is unknown"));
    }
    const Bytes& key = genesis.validators[a.validator_index].public_key;
    if (!suite.Verify(key, VoteSignBytes(genesis.chain_id, a), a.signature) ||
        !suite.Verify(key, VoteSignBytes(genesis.chain_id, b), b.signature)) {
      return absl::InvalidArgumentError("a vote's signature does not verify");
    }
    return absl::OkStatus();
  }
  const DoubleProposal& dp = std::get<DoubleProposal>(e);
  const Proposal& a = dp.first;
  const Proposal& b = dp.second;
  if (a.height != b.height || a.round != b.round ||
      a.proposer_index != b.proposer_index) {
    return absl::InvalidArgumentError(
        "proposals are not for the same height, round and proposer");
  }
  if (a.proposer_index >= n) {
    return absl::InvalidArgumentError(
        absl::StrCat("proposer ", a.proposer_index, " is unknown"));
  }
  const Hash32 ha = BlockHash(suite, a.block.header);
  const Hash32 hb = BlockHash(suite, b.block.header);
  if (ha == hb && a.valid_round == b.valid_round) {
    return absl::InvalidArgumentError("proposals are the same");
  }
  const Bytes& key = genesis.validators[a.proposer_index].public_key;
  if (!suite.Verify(key, ProposalSignBytes(genesis.chain_id, a, ha),
                    a.signature) ||
      !suite.Verify(key, ProposalSignBytes(genesis.chain_id, b, hb),
                    b.signature)) {
    return absl::InvalidArgumentError("a proposal's signature does not verify");
  }
  return absl::OkStatus();
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
