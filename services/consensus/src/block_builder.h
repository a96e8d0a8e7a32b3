// Builds the next block on top of the chain's state.
#ifndef CONSORTIA_CONSENSUS_SRC_BLOCK_BUILDER_H_
#define CONSORTIA_CONSENSUS_SRC_BLOCK_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/types.h"

namespace consortia::consensus {

// Makes block state.height + 1: the given txs in the given order, tx_root
// over them, prev_hash = state.last_block_hash, and (deferred execution) the
// state and receipts roots after block state.height as storage reported
// them. The time is now_ms, or one millisecond after the previous block when
// the clock is behind it, so block times strictly increase.
//
// Immutable after construction; thread-safe.
class BlockBuilder {
 public:
  // `suite` must outlive the builder.
  BlockBuilder(std::string chain_id, const CryptoSuite& suite,
               Bytes proposer_key);

  Block Build(const ChainState& state, std::vector<Bytes> txs,
              uint64_t now_ms) const;

 private:
  const std::string chain_id_;
  const CryptoSuite& suite_;
  const Bytes proposer_key_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_BLOCK_BUILDER_H_
