// The records of the consensus WAL (wal.h) and their payload encoding in the
// project codec (consortia/codec.h): a kind byte, then
//   1 SignedVote:     bytes EncodeVote(vote)       (signature included)
//   2 SignedProposal: varint height, varint round, bytes message (opaque)
//   3 EndHeight:      varint height
//   4 (retired)       was LockState; never written by any release, refused
//                     when read; the value is never to be reused
//   5 Polka:          varint height, varint count (<= 1024), then count
//                     times bytes EncodeVote(vote), then bytes proposal
//                     (opaque, empty when none)
#ifndef CONSORTIA_CONSENSUS_SRC_WAL_RECORD_H_
#define CONSORTIA_CONSENSUS_SRC_WAL_RECORD_H_

#include <cstdint>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/types.h"

namespace consortia::consensus {

// A signed proposal, kept as the opaque encoding of the proposal message (the
// Tendermint engine defines it) with the height and round it is for.
struct WalProposal {
  uint64_t height = 0;
  uint32_t round = 0;
  Bytes message;
  bool operator==(const WalProposal&) const = default;
};

// Height `height` is committed: replay after a restart starts after the last
// one of these.
struct WalEndHeight {
  uint64_t height = 0;
  bool operator==(const WalEndHeight&) const = default;
};

// What made this validator lock on a block, logged before its precommit:
// the prevotes of more than two thirds of the power (the "polka", other
// validators' votes) and the proposal that carries the block (its encoding;
// empty when the proposal is this validator's own, logged already). A
// restarted validator replays them with its own messages, so it can show
// its lock's justification to its peers and re-propose the block: without
// them a lock whose polka or block no live peer still holds could never be
// released (a liveness loss the simulation finds).
struct WalPolka {
  uint64_t height = 0;
  std::vector<Vote> votes;
  Bytes proposal;
  bool operator==(const WalPolka&) const = default;
};

// One WAL record. A Vote is a vote this validator signed (with its signature).
using WalRecord = std::variant<Vote, WalProposal, WalEndHeight, WalPolka>;

// The height a record belongs to.
uint64_t WalRecordHeight(const WalRecord& r);

// The payload encoding of a record (kind byte + fields), and its inverse.
// DecodeWalRecord returns InvalidArgument for an unknown kind, malformed
// fields or trailing bytes.
Bytes EncodeWalRecord(const WalRecord& r);
absl::StatusOr<WalRecord> DecodeWalRecord(ByteView payload);

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_WAL_RECORD_H_
