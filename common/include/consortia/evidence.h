// Evidence of equivocation: a validator that signed two conflicting votes or
// two conflicting proposals for the same height and round. Consensus finds
// it; storage keeps it (and checks it first); the api serves it. Its wire
// form is two consensus messages, so the proposal message, its signing bytes
// and its encoding live here too, beside the vote (types.h). No I/O.
// Everything here is a pure function of its arguments: thread-safe.
#ifndef CONSORTIA_COMMON_EVIDENCE_H_
#define CONSORTIA_COMMON_EVIDENCE_H_

#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/codec.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"

namespace consortia {

// The largest encoded consensus message: a proposal carrying a block of the
// largest encodable size, plus room for the fields around it. Evidence is
// never larger either.
inline constexpr size_t kMaxConsensusMessageBytes = kMaxBlockBytes + 4096;

// The first byte of a consensus message (EncodeMessage in consensus):
// which message follows.
enum class ConsensusMessageKind : uint8_t {
  kProposal = 1,
  kVote = 2,
  kCommit = 3,
};

// The paper's "-1" for a proposal's valid round: none.
inline constexpr int64_t kNoValidRound = -1;

// <PROPOSAL, height, round, block, valid_round> of Tendermint's Algorithm 1,
// signed by validator proposer_index, which must be the proposer of
// (height, round).
struct Proposal {
  uint64_t height = 0;
  uint32_t round = 0;
  // kNoValidRound, or the round (< round) in which the proposer saw 2f+1
  // prevotes for this block (the paper's validRound).
  int64_t valid_round = kNoValidRound;
  uint32_t proposer_index = 0;
  Block block;
  Bytes signature;  // over ProposalSignBytes()

  bool operator==(const Proposal&) const = default;
};

// What the proposer signs: the domain tag "consortia/proposal/v1", the chain
// id, height, round, valid_round + 1, the block's hash (BlockHash of its
// header; the header's tx_root binds the txs) and the proposer index.
// block_hash must be BlockHash(suite, p.block.header); callers that already
// have it pass it to save a hash.
Bytes ProposalSignBytes(std::string_view chain_id, const Proposal& p,
                        const Hash32& block_hash);

// A proposal's body on the wire: varint height, varint32 round, varint
// (valid_round + 1) (at most 2^32), varint32 proposer_index, bytes
// EncodeBlock(block) (at most kMaxBlockBytes), bytes signature (at most
// kMaxSignatureBytes). GetProposal returns InvalidArgument for malformed
// input or a field over its bound, and leaves the decoder after the body.
// Given block_bytes, it also hands over the block's encoding as it came (so a
// caller that keeps it need not encode the block again; the decoder is
// canonical, so these are EncodeBlock(p->block)).
void PutProposal(Encoder* e, const Proposal& p);
absl::Status GetProposal(Decoder* d, Proposal* p, Bytes* block_bytes = nullptr);

// Two validly signed votes of one validator for the same height, round and
// type, for different blocks (one may be nil).
struct DoubleVote {
  Vote first;
  Vote second;
  bool operator==(const DoubleVote&) const = default;
};

// Two validly signed, different proposals of one proposer for the same height
// and round. The blocks keep only their headers (the signature covers the
// header's hash, so the pair stays verifiable without the txs).
struct DoubleProposal {
  Proposal first;
  Proposal second;
  bool operator==(const DoubleProposal&) const = default;
};

using Evidence = std::variant<DoubleVote, DoubleProposal>;

// The validator that the evidence accuses.
uint32_t EvidenceValidator(const Evidence& e);

// Evidence as storage keeps it and the api serves it (hex,
// "consortia-evidence-v1"): the two messages, each as a consensus message
// (u8 kind, then for a proposal its body as PutProposal, for a vote bytes
// EncodeVote), each length-prefixed (a DoubleProposal's blocks without
// txs). DecodeEvidence returns InvalidArgument for malformed input, input
// over kMaxConsensusMessageBytes, trailing bytes, or unless both are votes
// or both are proposals; it does not check signatures (VerifyEvidence does).
Bytes EncodeEvidence(const Evidence& e);
absl::StatusOr<Evidence> DecodeEvidence(ByteView data);
// "duplicate_vote" or "duplicate_proposal"; and the height and round.
std::string_view EvidenceKind(const Evidence& e);
uint64_t EvidenceHeight(const Evidence& e);
uint32_t EvidenceRound(const Evidence& e);

// OK iff e proves that a validator of genesis equivocated: both messages are
// for the same height and round (and type), they differ, and both signatures
// verify with that validator's key. InvalidArgument saying why otherwise.
// The second form names the validators of the evidence's height (the set in
// force there, ValidatorsAt in types.h) instead of the genesis's.
absl::Status VerifyEvidence(const CryptoSuite& suite, const Genesis& genesis,
                            const Evidence& e);
absl::Status VerifyEvidence(const CryptoSuite& suite, const Genesis& genesis,
                            const std::vector<Validator>& validators,
                            const Evidence& e);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_EVIDENCE_H_
