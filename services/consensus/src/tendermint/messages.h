// The messages of the Tendermint state machine: proposals (defined here),
// votes and commit certificates (common/types.h), a decided block with its
// certificate for peers that lag, and evidence of equivocation. Each has one
// canonical encoding written with the project codec.
#ifndef CONSORTIA_CONSENSUS_SRC_TENDERMINT_MESSAGES_H_
#define CONSORTIA_CONSENSUS_SRC_TENDERMINT_MESSAGES_H_

#include <cstdint>
#include <string_view>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"

namespace consortia::consensus::tendermint {

// The paper's "-1": no valid round / no locked round.
inline constexpr int64_t kNoRound = -1;

// The largest encoded consensus message: a proposal carrying a block of the
// largest encodable size, plus room for the fields around it.
inline constexpr size_t kMaxMessageBytes = kMaxBlockBytes + 4096;

// <PROPOSAL, height, round, block, valid_round> of Algorithm 1, signed by
// validator proposer_index, which must be Proposer(height, round).
struct Proposal {
  uint64_t height = 0;
  uint32_t round = 0;
  // kNoRound, or the round (< round) in which the proposer saw 2f+1 prevotes
  // for this block (the paper's validRound).
  int64_t valid_round = kNoRound;
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

// A decided block with the certificate that proves it final. Sent to peers
// that are still working on that height, so that they decide it too
// (Algorithm 1 line 49 with the 2f+1 precommits carried in the certificate).
struct Commit {
  Block block;
  CommitCertificate certificate;

  bool operator==(const Commit&) const = default;
};

// One consensus message on the wire.
using Message = std::variant<Proposal, Vote, Commit>;

// Wire layout (codec.h primitives):
//   Proposal: varint height, varint32 round, varint (valid_round + 1) (at
//             most 2^32), varint32 proposer_index, bytes EncodeBlock(block),
//             bytes signature
//   Message:  u8 kind (1 proposal, 2 vote, 3 commit), then for a proposal
//             its body as above, for a vote bytes EncodeVote, for a commit
//             bytes EncodeBlock, bytes EncodeCertificate.
// The decoders return InvalidArgument for malformed input, a field over its
// bound (a block over kMaxBlockBytes, a signature over kMaxSignatureBytes),
// an input over kMaxMessageBytes, an unknown kind, or trailing bytes.
Bytes EncodeProposal(const Proposal& p);
absl::StatusOr<Proposal> DecodeProposal(ByteView data);
Bytes EncodeMessage(const Message& m);
absl::StatusOr<Message> DecodeMessage(ByteView data);

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

// Evidence as storage keeps it and the api serves it (hex): the two
// messages, each as EncodeMessage (a DoubleProposal's blocks without txs).
// DecodeEvidence returns InvalidArgument unless both are votes or both are
// proposals; it does not check signatures (VerifyEvidence does).
Bytes EncodeEvidence(const Evidence& e);
absl::StatusOr<Evidence> DecodeEvidence(ByteView data);
// "duplicate_vote" or "duplicate_proposal"; and the height and round.
std::string_view EvidenceKind(const Evidence& e);
uint64_t EvidenceHeight(const Evidence& e);
uint32_t EvidenceRound(const Evidence& e);

// OK iff e proves that a validator of genesis equivocated: both messages are
// for the same height and round (and type), they differ, and both signatures
// verify with that validator's key. InvalidArgument saying why otherwise.
absl::Status VerifyEvidence(const CryptoSuite& suite, const Genesis& genesis,
                            const Evidence& e);

// Round-robin proposer of (height, round) among n validators of equal
// power: (height + round) mod n. n must be > 0. ProposerSchedule gives the
// same answer for equal powers.
uint32_t ProposerIndex(uint64_t height, uint32_t round, size_t n);

// Who proposes at (height, round) for a validator set with voting powers.
// Slot s = (height + round) mod L goes to validators in proportion to their
// power, spread evenly over the cycle (smooth weighted round robin: at each
// slot every validator gains its weight as credit; the one with the most
// credit, lowest index on ties, proposes and pays back the total weight).
// So a validator with twice the power proposes twice as often, and
// consecutive rounds of a height move to other validators unless one holds
// over half the power. Weights are the powers divided by their gcd; if they
// still add up to more than kMaxSlots they are scaled down to that total
// (each keeps at least 1), which bounds the table. With equal powers, slot s
// goes to validator s mod n, as ProposerIndex. Immutable; thread-safe.
class ProposerSchedule {
 public:
  static constexpr uint64_t kMaxSlots = uint64_t{1} << 16;
  // powers must be non-empty and each > 0.
  explicit ProposerSchedule(const std::vector<uint64_t>& powers);
  uint32_t Index(uint64_t height, uint32_t round) const;
  // The length L of one cycle.
  size_t cycle() const { return table_.size(); }

 private:
  std::vector<uint32_t> table_;
};

}  // namespace consortia::consensus::tendermint

#endif  // CONSORTIA_CONSENSUS_SRC_TENDERMINT_MESSAGES_H_
