// The double-sign guard: votes and proposals are signed only through the
// consensus WAL (wal.h), so that a restarted validator never signs a vote that
// conflicts with one it sent before.
#ifndef CONSORTIA_CONSENSUS_SRC_DOUBLE_SIGN_GUARD_H_
#define CONSORTIA_CONSENSUS_SRC_DOUBLE_SIGN_GUARD_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"
#include "consortia/types.h"
#include "wal.h"

namespace consortia::consensus {

// Signs votes and proposals only through the WAL: a new one is logged (and
// synced) before it is returned, and one that would conflict with a logged one
// is refused, the logged one being returned to re-send instead.
// Thread-safe (one sign-and-log at a time).
class DoubleSignGuard {
 public:
  // Makes a signed vote for exactly (type, height, round, block_hash).
  using SignVoteFn = std::function<absl::StatusOr<Vote>(
      VoteType type, uint64_t height, uint32_t round, const Hash32& hash)>;
  // Makes the signed proposal message for the guarded (height, round).
  using MakeProposalFn = std::function<absl::StatusOr<Bytes>()>;

  enum class Outcome {
    kSigned,    // newly signed and logged: send it
    kResent,    // the same vote/proposal was logged before: send it again
    kConflict,  // another one was logged for this slot: refused; `vote` /
                // `message` is the logged one, to re-send instead
  };
  struct VoteResult {
    Outcome outcome = Outcome::kSigned;
    Vote vote;
  };
  struct ProposalResult {
    Outcome outcome = Outcome::kSigned;
    Bytes message;
  };

  // `wal` must outlive the guard.
  DoubleSignGuard(Wal* wal, SignVoteFn sign_vote);

  // The vote to send for (type, height, round, block_hash). Errors (send
  // nothing): FailedPrecondition for a vote not logged before at a height
  // <= wal->last_end_height() (that height is over); the signer's error;
  // Internal if the signer returned a different vote; the WAL's Append error
  // (the vote is not durable).
  absl::StatusOr<VoteResult> SignVote(VoteType type, uint64_t height,
                                      uint32_t round, const Hash32& block_hash);
  // The proposal to send at (height, round): the logged one if any (kResent:
  // a proposer proposes once per round), else make() is called and its
  // result logged first. Errors as SignVote.
  absl::StatusOr<ProposalResult> SignProposal(uint64_t height, uint32_t round,
                                              const MakeProposalFn& make);

 private:
  Wal* const wal_;
  const SignVoteFn sign_vote_;
  absl::Mutex mu_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_DOUBLE_SIGN_GUARD_H_
