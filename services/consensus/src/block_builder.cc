#include "block_builder.h"

#include <algorithm>
#include <utility>

#include "consortia/merkle.h"

namespace consortia::consensus {

BlockBuilder::BlockBuilder(std::string chain_id, const CryptoSuite& suite,
                           Bytes proposer_key)
    : chain_id_(std::move(chain_id)),
      suite_(suite),
      proposer_key_(std::move(proposer_key)) {}

Block BlockBuilder::Build(const ChainState& state, std::vector<Bytes> txs,
                          uint64_t now_ms) const {
  Block b;
  BlockHeader& h = b.header;
  h.chain_id = chain_id_;
  h.height = state.height + 1;
  h.time_ms = std::max(now_ms, state.last_time_ms + 1);
  h.proposer = proposer_key_;
  h.prev_hash = state.last_block_hash;
  h.tx_root = MerkleRoot(suite_, txs);
  h.state_root = state.state_root;
  h.receipts_root = state.receipts_root;
  b.txs = std::move(txs);
  return b;
}

}  // namespace consortia::consensus
