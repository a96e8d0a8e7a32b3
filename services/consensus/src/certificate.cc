#include "certificate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace consortia::consensus {

absl::StatusOr<CommitCertificate> BuildCertificate(
    uint64_t height, uint32_t round, const Hash32& block_hash,
    std::vector<Vote> precommits) {
  if (precommits.empty()) {
    return absl::InvalidArgumentError("a certificate needs precommits");
  }
  for (const Vote& v : precommits) {
    if (v.type != VoteType::kPrecommit || v.height != height ||
        v.round != round || v.block_hash != block_hash) {
      return absl::InvalidArgumentError(
          absl::StrCat("vote of validator ", v.validator_index,
                       " is not a precommit for height ", height, " round ",
                       round, " and this block"));
    }
  }
  std::sort(precommits.begin(), precommits.end(),
            [](const Vote& a, const Vote& b) {
              return a.validator_index < b.validator_index;
            });
  CommitCertificate cert;
  cert.height = height;
  cert.round = round;
  cert.block_hash = block_hash;
  for (const Vote& v : precommits) {
    if (!cert.sigs.empty() &&
        cert.sigs.back().validator_index == v.validator_index) {
      if (cert.sigs.back().signature == v.signature) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "validator ", v.validator_index, " signed two different precommits"));
    }
    cert.sigs.push_back(CommitSig{v.validator_index, v.signature});
  }
  return cert;
}

}  // namespace consortia::consensus
