#include "double_sign_guard.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "tendermint/messages.h"
#include "wal_return_if_error.h"

namespace consortia::consensus {
namespace {

// The vote without its signature: what the signature is over.
bool SameVote(const Vote& a, const Vote& b) {
  return a.type == b.type && a.height == b.height && a.round == b.round &&
         a.block_hash == b.block_hash && a.validator_index == b.validator_index;
}

}  // namespace

DoubleSignGuard::DoubleSignGuard(Wal* wal,
                                 std::unique_ptr<tendermint::MessageSigner> key,
                                 PolkaFn polka)
    : wal_(wal), key_(std::move(key)), polka_(std::move(polka)) {}

absl::StatusOr<Bytes> DoubleSignGuard::SignVote(const Vote& vote,
                                                ByteView sign_bytes) {
  absl::MutexLock l(&mu_);
  if (std::optional<Vote> logged =
          wal_->FindSignedVote(vote.height, vote.round, vote.type)) {
    if (SameVote(*logged, vote)) return std::move(logged->signature);
    spdlog::warn(
        "consensus: refused to sign a conflicting vote at height {} round {}",
        vote.height, vote.round);
    return absl::FailedPreconditionError(
        absl::StrCat("already voted for another block at height ", vote.height,
                     " round ", vote.round));
  }
  if (vote.height <= wal_->last_end_height()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to sign a new vote at height ", vote.height,
                     ": the WAL marks heights up to ", wal_->last_end_height(),
                     " as ended"));
  }
  // A non-nil precommit locks: its polka is logged first, so that after a
  // restart the lock comes back with what justifies it to the peers.
  if (polka_ != nullptr && vote.type == VoteType::kPrecommit &&
      !IsZero(vote.block_hash)) {
    WalPolka polka = polka_(vote.height, vote.round, vote.block_hash);
    std::erase_if(polka.votes, [&vote](const Vote& v) {
      return v.validator_index == vote.validator_index;
    });
    if (!polka.votes.empty() || !polka.proposal.empty()) {
      WAL_RETURN_IF_ERROR(wal_->Append(polka));
    }
  }
  absl::StatusOr<Bytes> sig = key_->SignVote(vote, sign_bytes);
  if (!sig.ok()) return sig.status();
  Vote signed_vote = vote;
  signed_vote.signature = *sig;
  WAL_RETURN_IF_ERROR(wal_->Append(signed_vote));
  return sig;
}

absl::StatusOr<Bytes> DoubleSignGuard::SignProposal(const Proposal& proposal,
                                                    ByteView sign_bytes) {
  absl::MutexLock l(&mu_);
  if (wal_->FindProposal(proposal.height, proposal.round).has_value()) {
    spdlog::warn(
        "consensus: refused to sign a second proposal at height {} round {}",
        proposal.height, proposal.round);
    return absl::FailedPreconditionError(
        absl::StrCat("already proposed at height ", proposal.height, " round ",
                     proposal.round));
  }
  if (proposal.height <= wal_->last_end_height()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to propose at height ", proposal.height,
                     ": the WAL marks heights up to ", wal_->last_end_height(),
                     " as ended"));
  }
  absl::StatusOr<Bytes> sig = key_->SignProposal(proposal, sign_bytes);
  if (!sig.ok()) return sig.status();
  Proposal signed_proposal = proposal;
  signed_proposal.signature = *sig;
  WAL_RETURN_IF_ERROR(
      wal_->Append(WalProposal{proposal.height, proposal.round,
                               tendermint::EncodeProposal(signed_proposal)}));
  return sig;
}

}  // namespace consortia::consensus
