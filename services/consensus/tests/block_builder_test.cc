#include "block_builder.h"

#include <vector>

#include "consortia/merkle.h"
#include "gtest/gtest.h"

namespace consortia::consensus {
namespace {

ChainState StateAt(uint64_t height, uint64_t last_time_ms) {
  const CryptoSuite& s = Ed25519Sha256();
  ChainState st;
  st.height = height;
  st.last_block_hash = s.Hash(ToBytes("block"));
  st.last_time_ms = last_time_ms;
  st.state_root = s.Hash(ToBytes("state"));
  st.receipts_root = s.Hash(ToBytes("receipts"));
  return st;
}

TEST(BlockBuilderTest, BuildsTheNextBlockOnTheState) {
  const CryptoSuite& suite = Ed25519Sha256();
  KeyPair key = suite.GenerateKey();
  BlockBuilder builder("testnet", suite, key.public_key);
  ChainState st = StateAt(7, 1000);
  std::vector<Bytes> txs = {ToBytes("tx-a"), ToBytes("tx-b"), ToBytes("tx-c")};

  Block b = builder.Build(st, txs, 5000);
  EXPECT_EQ(b.header.chain_id, "testnet");
  EXPECT_EQ(b.header.height, 8u);
  EXPECT_EQ(b.header.time_ms, 5000u);
  EXPECT_EQ(b.header.proposer, key.public_key);
  EXPECT_EQ(b.header.prev_hash, st.last_block_hash);
  EXPECT_EQ(b.header.tx_root, MerkleRoot(suite, txs));
  // Deferred execution: the roots after block 7.
  EXPECT_EQ(b.header.state_root, st.state_root);
  EXPECT_EQ(b.header.receipts_root, st.receipts_root);
  EXPECT_EQ(b.txs, txs);
}

TEST(BlockBuilderTest, TimeAlwaysMovesForward) {
  const CryptoSuite& suite = Ed25519Sha256();
  BlockBuilder builder("testnet", suite, suite.GenerateKey().public_key);
  EXPECT_EQ(builder.Build(StateAt(3, 9000), {}, 5000).header.time_ms, 9001u);
  EXPECT_EQ(builder.Build(StateAt(3, 9000), {}, 9000).header.time_ms, 9001u);
  EXPECT_EQ(builder.Build(StateAt(3, 9000), {}, 9002).header.time_ms, 9002u);
}

TEST(BlockBuilderTest, FirstBlockHasZeroLinks) {
  const CryptoSuite& suite = Ed25519Sha256();
  BlockBuilder builder("testnet", suite, suite.GenerateKey().public_key);
  Block b = builder.Build(ChainState{}, {}, 42);
  EXPECT_EQ(b.header.height, 1u);
  EXPECT_EQ(b.header.prev_hash, Hash32{});
  EXPECT_EQ(b.header.state_root, Hash32{});
  EXPECT_EQ(b.header.receipts_root, Hash32{});
  EXPECT_EQ(b.header.tx_root, MerkleRoot(suite, std::vector<Bytes>{}));
  EXPECT_TRUE(b.txs.empty());
}

}  // namespace
}  // namespace consortia::consensus
