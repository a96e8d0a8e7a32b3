// Vote signing with the node key, and commit certificates from precommits.
#ifndef CONSORTIA_CONSENSUS_SRC_SIGNER_H_
#define CONSORTIA_CONSENSUS_SRC_SIGNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"

namespace consortia::consensus {

// Signs votes (VoteSignBytes) for one chain as one validator.
// Immutable after construction; thread-safe.
class Signer {
 public:
  // `suite` must outlive the signer. validator_index is this node's position
  // in the genesis validator list.
  Signer(const CryptoSuite& suite, std::string chain_id, Bytes secret_key,
         uint32_t validator_index);

  // A signed vote. InvalidArgument if the secret key is malformed.
  absl::StatusOr<Vote> SignVote(VoteType type, uint64_t height, uint32_t round,
                                const Hash32& block_hash) const;

  uint32_t validator_index() const { return validator_index_; }

 private:
  const CryptoSuite& suite_;
  const std::string chain_id_;
  const Bytes secret_key_;
  const uint32_t validator_index_;
};

// A certificate from precommits for (height, round, block_hash): their
// signatures sorted by validator index. A vote repeated verbatim counts once.
// InvalidArgument for no votes, a vote that is not a precommit for exactly
// that height, round and block, or two different votes from one validator.
// It checks neither signatures nor voting power: VerifyCertificate does.
absl::StatusOr<CommitCertificate> BuildCertificate(
    uint64_t height, uint32_t round, const Hash32& block_hash,
    std::vector<Vote> precommits);

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_SIGNER_H_
