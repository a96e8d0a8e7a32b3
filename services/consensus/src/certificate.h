// Commit certificates from precommits (the one-validator proposer loop builds
// one per block; the Tendermint state machine builds its own from the votes
// it counted).
#ifndef CONSORTIA_CONSENSUS_SRC_CERTIFICATE_H_
#define CONSORTIA_CONSENSUS_SRC_CERTIFICATE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/types.h"

namespace consortia::consensus {

// A certificate from precommits for (height, round, block_hash): their
// signatures sorted by validator index. A vote repeated verbatim counts once.
// InvalidArgument for no votes, a vote that is not a precommit for exactly
// that height, round and block, or two different votes from one validator.
// It checks neither signatures nor voting power: VerifyCertificate does.
absl::StatusOr<CommitCertificate> BuildCertificate(
    uint64_t height, uint32_t round, const Hash32& block_hash,
    std::vector<Vote> precommits);

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_CERTIFICATE_H_
