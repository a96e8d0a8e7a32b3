#include "double_sign_guard.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "wal_return_if_error.h"

namespace consortia::consensus {

DoubleSignGuard::DoubleSignGuard(Wal* wal, SignVoteFn sign_vote)
    : wal_(wal), sign_vote_(std::move(sign_vote)) {}

absl::StatusOr<DoubleSignGuard::VoteResult> DoubleSignGuard::SignVote(
    VoteType type, uint64_t height, uint32_t round, const Hash32& block_hash) {
  absl::MutexLock l(&mu_);
  if (std::optional<Vote> logged = wal_->FindSignedVote(height, round, type)) {
    const Outcome outcome = logged->block_hash == block_hash
                                ? Outcome::kResent
                                : Outcome::kConflict;
    if (outcome == Outcome::kConflict) {
      spdlog::warn(
          "consensus: refused to sign a conflicting vote at height {} round "
          "{}; re-sending the logged one",
          height, round);
    }
    return VoteResult{outcome, *std::move(logged)};
  }
  if (height <= wal_->last_end_height()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to sign a new vote at height ", height,
                     ": the WAL marks heights up to ", wal_->last_end_height(),
                     " as ended"));
  }
  absl::StatusOr<Vote> vote = sign_vote_(type, height, round, block_hash);
  if (!vote.ok()) return vote.status();
  if (vote->type != type || vote->height != height || vote->round != round ||
      vote->block_hash != block_hash) {
    return absl::InternalError("the signer returned a different vote");
  }
  WAL_RETURN_IF_ERROR(wal_->Append(*vote));
  return VoteResult{Outcome::kSigned, *std::move(vote)};
}

absl::StatusOr<DoubleSignGuard::ProposalResult> DoubleSignGuard::SignProposal(
    uint64_t height, uint32_t round, const MakeProposalFn& make) {
  absl::MutexLock l(&mu_);
  if (std::optional<Bytes> logged = wal_->FindProposal(height, round)) {
    return ProposalResult{Outcome::kResent, *std::move(logged)};
  }
  if (height <= wal_->last_end_height()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to propose at height ", height,
                     ": the WAL marks heights up to ", wal_->last_end_height(),
                     " as ended"));
  }
  absl::StatusOr<Bytes> message = make();
  if (!message.ok()) return message.status();
  WAL_RETURN_IF_ERROR(wal_->Append(WalProposal{height, round, *message}));
  return ProposalResult{Outcome::kSigned, *std::move(message)};
}

}  // namespace consortia::consensus
