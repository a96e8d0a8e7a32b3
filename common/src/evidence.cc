#include "consortia/evidence.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace consortia {
namespace {

constexpr std::string_view kProposalDomainTag = "consortia/proposal/v1";
// A vote is a few dozen bytes plus a signature.
constexpr size_t kMaxVoteBytes = 1024;

// Propagates a non-OK status from an expression.
#define EV_RETURN_IF_ERROR(expr)                          \
  do {                                                    \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

absl::Status GetVarint32(Decoder* d, uint32_t* v, const char* field) {
  const size_t start = d->offset();
  uint64_t x = 0;
  EV_RETURN_IF_ERROR(d->GetVarint(&x));
  if (x > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " ", x, " does not fit in 32 bits at offset ", start));
  }
  *v = static_cast<uint32_t>(x);
  return absl::OkStatus();
}

absl::Status TooLarge(size_t size) {
  return absl::InvalidArgumentError(absl::StrCat("evidence of ", size,
                                                 " bytes exceeds the limit of ",
                                                 kMaxConsensusMessageBytes));
}

// One message of an evidence pair: a proposal or a vote (a commit, or any
// other kind, is refused).
using EvidenceMessage = std::variant<Proposal, Vote>;

void PutEvidenceMessage(Encoder* e, const Proposal& p) {
  Encoder m;
  m.PutU8(static_cast<uint8_t>(ConsensusMessageKind::kProposal));
  PutProposal(&m, p);
  e->PutBytes(m.Take());
}

void PutEvidenceMessage(Encoder* e, const Vote& v) {
  Encoder m;
  m.PutU8(static_cast<uint8_t>(ConsensusMessageKind::kVote));
  m.PutBytes(EncodeVote(v));
  e->PutBytes(m.Take());
}

absl::StatusOr<EvidenceMessage> DecodeEvidenceMessage(ByteView data) {
  Decoder d(data);
  uint8_t kind = 0;
  EV_RETURN_IF_ERROR(d.GetU8(&kind));
  EvidenceMessage out;
  switch (static_cast<ConsensusMessageKind>(kind)) {
    case ConsensusMessageKind::kProposal: {
      Proposal p;
      EV_RETURN_IF_ERROR(GetProposal(&d, &p));
      out = std::move(p);
      break;
    }
    case ConsensusMessageKind::kVote: {
      Bytes raw;
      EV_RETURN_IF_ERROR(d.GetBytes(&raw, kMaxVoteBytes));
      absl::StatusOr<Vote> v = DecodeVote(raw);
      if (!v.ok()) return v.status();
      out = *std::move(v);
      break;
    }
    case ConsensusMessageKind::kCommit:
      return absl::InvalidArgumentError(
          "evidence must hold two votes or two proposals");
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown consensus message kind ", kind, " at offset 0"));
  }
  EV_RETURN_IF_ERROR(d.ExpectEnd());
  return out;
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

void PutProposal(Encoder* e, const Proposal& p) {
  e->PutVarint(p.height);
  e->PutVarint(p.round);
  e->PutVarint(static_cast<uint64_t>(p.valid_round + 1));
  e->PutVarint(p.proposer_index);
  e->PutBytes(EncodeBlock(p.block));
  e->PutBytes(p.signature);
}

absl::Status GetProposal(Decoder* d, Proposal* p, Bytes* block_bytes) {
  EV_RETURN_IF_ERROR(d->GetVarint(&p->height));
  EV_RETURN_IF_ERROR(GetVarint32(d, &p->round, "round"));
  const size_t vr_at = d->offset();
  uint64_t vr_plus_one = 0;
  EV_RETURN_IF_ERROR(d->GetVarint(&vr_plus_one));
  if (vr_plus_one > uint64_t{std::numeric_limits<uint32_t>::max()} + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "valid round + 1 = ", vr_plus_one, " out of range at offset ", vr_at));
  }
  p->valid_round = static_cast<int64_t>(vr_plus_one) - 1;
  EV_RETURN_IF_ERROR(GetVarint32(d, &p->proposer_index, "proposer index"));
  Bytes block;
  const size_t block_at = d->offset();
  EV_RETURN_IF_ERROR(d->GetBytes(&block, kMaxBlockBytes));
  absl::StatusOr<Block> b = DecodeBlock(block);
  if (!b.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "proposal block at offset ", block_at, ": ", b.status().message()));
  }
  p->block = *std::move(b);
  EV_RETURN_IF_ERROR(d->GetBytes(&p->signature, kMaxSignatureBytes));
  if (block_bytes != nullptr) *block_bytes = std::move(block);
  return absl::OkStatus();
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
    PutEvidenceMessage(&enc, v->first);
    PutEvidenceMessage(&enc, v->second);
  } else {
    const DoubleProposal& p = std::get<DoubleProposal>(e);
    PutEvidenceMessage(&enc, p.first);
    PutEvidenceMessage(&enc, p.second);
  }
  return enc.Take();
}

absl::StatusOr<Evidence> DecodeEvidence(ByteView data) {
  if (data.size() > kMaxConsensusMessageBytes) return TooLarge(data.size());
  Decoder d(data);
  EvidenceMessage m[2];
  for (EvidenceMessage& one : m) {
    Bytes raw;
    EV_RETURN_IF_ERROR(d.GetBytes(&raw, kMaxConsensusMessageBytes));
    absl::StatusOr<EvidenceMessage> decoded = DecodeEvidenceMessage(raw);
    if (!decoded.ok()) return decoded.status();
    one = *std::move(decoded);
  }
  EV_RETURN_IF_ERROR(d.ExpectEnd());
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
  return VerifyEvidence(suite, genesis, genesis.validators, e);
}

absl::Status VerifyEvidence(const CryptoSuite& suite, const Genesis& genesis,
                            const std::vector<Validator>& validators,
                            const Evidence& e) {
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError("evidence checked with another suite");
  }
  const size_t n = validators.size();
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
    const Bytes& key = validators[a.validator_index].public_key;
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
  const Bytes& key = validators[a.proposer_index].public_key;
  if (!suite.Verify(key, ProposalSignBytes(genesis.chain_id, a, ha),
                    a.signature) ||
      !suite.Verify(key, ProposalSignBytes(genesis.chain_id, b, hb),
                    b.signature)) {
    return absl::InvalidArgumentError("a proposal's signature does not verify");
  }
  return absl::OkStatus();
}

#undef EV_RETURN_IF_ERROR

}  // namespace consortia
