// The messages of the Tendermint state machine: proposals and evidence of
// equivocation (common/evidence.h, which storage shares to check the
// evidence it keeps), votes and commit certificates (common/types.h), and a
// decided block with its certificate for peers that lag. Each has one
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
#include "consortia/evidence.h"
#include "consortia/types.h"

namespace consortia::consensus::tendermint {

// The paper's "-1": no valid round / no locked round.
inline constexpr int64_t kNoRound = kNoValidRound;

// The largest encoded consensus message: a proposal carrying a block of the
// largest encodable size, plus room for the fields around it.
inline constexpr size_t kMaxMessageBytes = kMaxConsensusMessageBytes;

// Proposals and evidence are defined in common/evidence.h (namespace
// consortia); these names keep tendermint:: spellings working.
using ::consortia::DecodeEvidence;
using ::consortia::DoubleProposal;
using ::consortia::DoubleVote;
using ::consortia::EncodeEvidence;
using ::consortia::Evidence;
using ::consortia::EvidenceHeight;
using ::consortia::EvidenceKind;
using ::consortia::EvidenceRound;
using ::consortia::EvidenceValidator;
using ::consortia::Proposal;
using ::consortia::ProposalSignBytes;
using ::consortia::VerifyEvidence;

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
//   Proposal: as PutProposal (common/evidence.h): varint height, varint32
//             round, varint (valid_round + 1) (at most 2^32), varint32
//             proposer_index, bytes EncodeBlock(block), bytes signature
//   Message:  u8 kind (ConsensusMessageKind: 1 proposal, 2 vote, 3 commit),
//             then for a proposal
//             its body as above, for a vote bytes EncodeVote, for a commit
//             bytes EncodeBlock, bytes EncodeCertificate.
// The decoders return InvalidArgument for malformed input, a field over its
// bound (a block over kMaxBlockBytes, a signature over kMaxSignatureBytes),
// an input over kMaxMessageBytes, an unknown kind, or trailing bytes.
Bytes EncodeProposal(const Proposal& p);
absl::StatusOr<Proposal> DecodeProposal(ByteView data);
Bytes EncodeMessage(const Message& m);
absl::StatusOr<Message> DecodeMessage(ByteView data);

// As DecodeMessage, and for a proposal or a commit also hands over the
// block's encoding as it came in the message (cleared for a vote). The
// decoders are canonical, so these bytes are EncodeBlock of the decoded
// block: the driver keeps them, to give a decided block to storage and to
// peers without encoding it again.
absl::StatusOr<Message> DecodeMessage(ByteView data, Bytes* block_bytes);
// EncodeMessage(Commit{block, certificate}) from the block's encoding
// (EncodeBlock(block)) instead of the block: the same bytes, without encoding
// the block again.
Bytes EncodeCommitMessage(ByteView block_bytes,
                          const CommitCertificate& certificate);

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
