// The double-sign guard: the MessageSigner a validator's state machine signs
// through. It stands in front of the key (KeySigner) and the consensus WAL
// (wal.h), so that a validator never signs two different messages for one
// (height, round, step), even across a crash and restart.
#ifndef CONSORTIA_CONSENSUS_SRC_DOUBLE_SIGN_GUARD_H_
#define CONSORTIA_CONSENSUS_SRC_DOUBLE_SIGN_GUARD_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"
#include "consortia/types.h"
#include "tendermint/state_machine.h"
#include "wal.h"

namespace consortia::consensus {

// A MessageSigner decorator: it decides whether a message may be signed from
// the typed message it is given (its slot: height, round and step; and for a
// vote, the block it names), has `key` sign exactly the sign bytes it is
// given, and returns the signature only once the signed message is durable
// in the WAL (Append: written and fsynced). A message that leaves the process
// was therefore logged first, and a restarted validator finds it there.
//
// The rules, per slot:
// - Vote (height, round, type): if the WAL holds this validator's vote for
//   the slot, the same vote gets the logged signature back (nothing is
//   signed; the caller re-sends it) and any other vote is refused
//   (FailedPrecondition). Otherwise it is signed and logged.
// - Proposal (height, round): at most one, ever. If the WAL holds a proposal
//   for the slot, the request is refused (FailedPrecondition): the state
//   machine takes its logged proposal back at a restart (StartHeight's
//   own_log) and never asks twice. Otherwise it is signed and logged (the
//   signed proposal's wire encoding, WalProposal).
// - Neither is signed anew at a height <= wal->last_end_height() (that height
//   is over; FailedPrecondition).
// - Before a non-nil precommit is signed, `polka` (when set) is asked for
//   what the lock rests on and that is logged first (WalPolka), without this
//   validator's own votes (logged already); an empty polka is not logged.
// Other errors (nothing is returned to send): `key`'s error; the WAL's Append
// error (the message is not durable; the WAL then refuses further appends
// until a restart).
//
// Thread-safe: one decision-sign-and-log at a time. `polka` is called with
// the guard's lock held, from the caller's thread.
class DoubleSignGuard final : public tendermint::MessageSigner {
 public:
  // What a precommit for block_hash in `round` of `height` rests on: the
  // prevotes (and the proposal of another validator) behind the lock.
  using PolkaFn = std::function<WalPolka(uint64_t height, uint32_t round,
                                         const Hash32& block_hash)>;

  // `wal` must outlive the guard; `key` signs (normally a KeySigner).
  DoubleSignGuard(Wal* wal, std::unique_ptr<tendermint::MessageSigner> key,
                  PolkaFn polka = nullptr);

  absl::StatusOr<Bytes> SignVote(const Vote& vote,
                                 ByteView sign_bytes) override;
  absl::StatusOr<Bytes> SignProposal(const Proposal& proposal,
                                     ByteView sign_bytes) override;

 private:
  Wal* const wal_;
  const std::unique_ptr<tendermint::MessageSigner> key_;
  const PolkaFn polka_;
  absl::Mutex mu_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_DOUBLE_SIGN_GUARD_H_
