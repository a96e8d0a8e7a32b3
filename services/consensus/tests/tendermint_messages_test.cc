// The Tendermint wire messages: proposal encoding, sign bytes, evidence.
#include <limits>
#include <string>

#include "consortia/codec.h"
#include "consortia/merkle.h"
#include "gtest/gtest.h"
#include "tendermint/messages.h"

namespace consortia::consensus::tendermint {
namespace {

class TendermintMessagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = *suite_.KeyFromSeed(suite_.Hash(AsBytes("tm-messages-key")));
    genesis_.chain_id = "tmnet";
    genesis_.validators = {{"v0", key_.public_key, 1},
                           {"v1", suite_.GenerateKey().public_key, 1}};
  }

  Block MakeBlock(uint64_t height, const std::string& tx) const {
    Block b;
    b.header.chain_id = "tmnet";
    b.header.height = height;
    b.header.time_ms = 1700000000000;
    b.header.proposer = key_.public_key;
    b.txs = {ToBytes(tx), ToBytes(tx + "-2")};
    b.header.tx_root = MerkleRoot(suite_, b.txs);
    return b;
  }

  Proposal SignedProposal(uint64_t height, uint32_t round, int64_t vr,
                          const Block& b) const {
    Proposal p;
    p.height = height;
    p.round = round;
    p.valid_round = vr;
    p.proposer_index = 0;
    p.block = b;
    p.signature = *suite_.Sign(
        key_.secret_key,
        ProposalSignBytes("tmnet", p, BlockHash(suite_, b.header)));
    return p;
  }

  Vote SignedVote(VoteType t, uint32_t round, const Hash32& hash) const {
    Vote v;
    v.type = t;
    v.height = 5;
    v.round = round;
    v.block_hash = hash;
    v.validator_index = 0;
    v.signature = *suite_.Sign(key_.secret_key, VoteSignBytes("tmnet", v));
    return v;
  }

  const CryptoSuite& suite_ = Ed25519Sha256();
  KeyPair key_;
  Genesis genesis_;
};

TEST_F(TendermintMessagesTest, ProposalRoundTripsWithAndWithoutValidRound) {
  for (int64_t vr : {kNoRound, int64_t{0}, int64_t{6},
                     int64_t{std::numeric_limits<uint32_t>::max()} - 1}) {
    const Proposal p = SignedProposal(9, std::numeric_limits<uint32_t>::max(),
                                      vr, MakeBlock(9, "a"));
    absl::StatusOr<Proposal> back = DecodeProposal(EncodeProposal(p));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, p);
    EXPECT_EQ(back->valid_round, vr);
  }
}

TEST_F(TendermintMessagesTest, EveryMessageKindRoundTrips) {
  const Block b = MakeBlock(5, "x");
  CommitCertificate cert;
  cert.height = 5;
  cert.round = 2;
  cert.block_hash = BlockHash(suite_, b.header);
  cert.sigs = {{0, Bytes(64, 7)}, {1, Bytes(64, 8)}};
  const Message messages[] = {
      Message(SignedProposal(5, 3, 1, b)),
      Message(SignedVote(VoteType::kPrecommit, 3, cert.block_hash)),
      Message(Commit{b, cert}),
  };
  for (const Message& m : messages) {
    const Bytes bytes = EncodeMessage(m);
    absl::StatusOr<Message> back = DecodeMessage(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, m);
    EXPECT_EQ(EncodeMessage(*back), bytes);  // one encoding per value
  }
}

// The driver keeps the block bytes a message came with, to hand a decided
// block to storage and to peers without encoding it again.
TEST_F(TendermintMessagesTest, DecoderHandsOverTheBlockBytesItCameWith) {
  const Block b = MakeBlock(5, "x");
  const Bytes block_bytes = EncodeBlock(b);
  CommitCertificate cert;
  cert.height = 5;
  cert.round = 2;
  cert.block_hash = BlockHash(suite_, b.header);
  cert.sigs = {{0, Bytes(64, 7)}};

  Bytes out = {1, 2, 3};
  ASSERT_TRUE(
      DecodeMessage(EncodeMessage(SignedProposal(5, 3, 1, b)), &out).ok());
  EXPECT_EQ(out, block_bytes);
  out = {1, 2, 3};
  ASSERT_TRUE(DecodeMessage(EncodeMessage(Commit{b, cert}), &out).ok());
  EXPECT_EQ(out, block_bytes);
  ASSERT_TRUE(DecodeMessage(EncodeMessage(SignedVote(VoteType::kPrevote, 3,
                                                     cert.block_hash)),
                            &out)
                  .ok());
  EXPECT_TRUE(out.empty());

  // A Commit message built from the bytes is the one built from the block.
  EXPECT_EQ(EncodeCommitMessage(block_bytes, cert),
            EncodeMessage(Commit{b, cert}));
}

TEST_F(TendermintMessagesTest, DecoderRejectsTruncatedTrailingAndUnknown) {
  const Bytes good = EncodeMessage(SignedProposal(5, 3, 1, MakeBlock(5, "x")));
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeMessage(ByteView(good.data(), n)).ok()) << n;
  }
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeMessage(trailing).ok());
  Bytes unknown = good;
  unknown[0] = 9;
  EXPECT_FALSE(DecodeMessage(unknown).ok());
  EXPECT_FALSE(DecodeMessage(Bytes{}).ok());
}

TEST_F(TendermintMessagesTest, DecoderRejectsValidRoundOutOfRange) {
  Encoder e;
  e.PutVarint(5);                                                   // height
  e.PutVarint(3);                                                   // round
  e.PutVarint(uint64_t{std::numeric_limits<uint32_t>::max()} + 2);  // vr + 1
  e.PutVarint(0);
  e.PutBytes(EncodeBlock(MakeBlock(5, "x")));
  e.PutBytes(Bytes(64, 1));
  absl::StatusOr<Proposal> p = DecodeProposal(e.data());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("valid round"), std::string::npos)
      << p.status();
}

TEST_F(TendermintMessagesTest, SignBytesBindEveryFieldAndTheDomain) {
  const Proposal p = SignedProposal(5, 3, 1, MakeBlock(5, "x"));
  const Hash32 h = BlockHash(suite_, p.block.header);
  const Bytes base = ProposalSignBytes("tmnet", p, h);
  EXPECT_NE(ProposalSignBytes("othernet", p, h), base);
  Proposal q = p;
  q.height = 6;
  EXPECT_NE(ProposalSignBytes("tmnet", q, h), base);
  q = p;
  q.round = 4;
  EXPECT_NE(ProposalSignBytes("tmnet", q, h), base);
  q = p;
  q.valid_round = kNoRound;
  EXPECT_NE(ProposalSignBytes("tmnet", q, h), base);
  q = p;
  q.proposer_index = 1;
  EXPECT_NE(ProposalSignBytes("tmnet", q, h), base);
  Hash32 other = h;
  other[0] ^= 1;
  EXPECT_NE(ProposalSignBytes("tmnet", p, other), base);
  // A vote signature can never pass for a proposal signature.
  const Vote v = SignedVote(VoteType::kPrevote, 3, h);
  EXPECT_FALSE(suite_.Verify(key_.public_key, base, v.signature));
  EXPECT_TRUE(suite_.Verify(key_.public_key, base, p.signature));
}

TEST_F(TendermintMessagesTest, DoubleVoteEvidenceVerifies) {
  const Hash32 a = suite_.Hash(AsBytes("a"));
  const Hash32 b = suite_.Hash(AsBytes("b"));
  const DoubleVote good{SignedVote(VoteType::kPrevote, 1, a),
                        SignedVote(VoteType::kPrevote, 1, Hash32{})};
  EXPECT_TRUE(VerifyEvidence(suite_, genesis_, good).ok());
  EXPECT_EQ(EvidenceValidator(good), 0u);

  DoubleVote same{SignedVote(VoteType::kPrevote, 1, a),
                  SignedVote(VoteType::kPrevote, 1, a)};
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, same).ok());
  DoubleVote rounds{SignedVote(VoteType::kPrevote, 1, a),
                    SignedVote(VoteType::kPrevote, 2, b)};
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, rounds).ok());
  DoubleVote types{SignedVote(VoteType::kPrevote, 1, a),
                   SignedVote(VoteType::kPrecommit, 1, b)};
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, types).ok());
  DoubleVote forged = good;
  forged.second.signature[0] ^= 1;
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, forged).ok());
  DoubleVote someone_else = good;
  someone_else.first.validator_index = someone_else.second.validator_index = 1;
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, someone_else).ok());
}

TEST_F(TendermintMessagesTest, DoubleProposalEvidenceVerifiesWithoutTxs) {
  Proposal a = SignedProposal(5, 2, kNoRound, MakeBlock(5, "a"));
  Proposal b = SignedProposal(5, 2, kNoRound, MakeBlock(5, "b"));
  a.block.txs.clear();  // the signature covers the header only
  b.block.txs.clear();
  EXPECT_TRUE(VerifyEvidence(suite_, genesis_, DoubleProposal{a, b}).ok());
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, DoubleProposal{a, a}).ok());
  Proposal later = SignedProposal(5, 3, kNoRound, MakeBlock(5, "b"));
  EXPECT_FALSE(VerifyEvidence(suite_, genesis_, DoubleProposal{a, later}).ok());
}

TEST(TendermintProposer, RoundRobinOverHeightPlusRound) {
  EXPECT_EQ(ProposerIndex(1, 0, 4), 1u);
  EXPECT_EQ(ProposerIndex(1, 3, 4), 0u);
  EXPECT_EQ(ProposerIndex(2, 0, 4), 2u);
  EXPECT_EQ(ProposerIndex(std::numeric_limits<uint64_t>::max(),
                          std::numeric_limits<uint32_t>::max(), 7),
            (std::numeric_limits<uint64_t>::max() % 7 +
             std::numeric_limits<uint32_t>::max() % 7) %
                7);
}

TEST(TendermintProposer, EqualPowersScheduleIsRoundRobin) {
  const ProposerSchedule s({5, 5, 5, 5});
  EXPECT_EQ(s.cycle(), 4u);
  for (uint64_t h = 0; h < 20; ++h) {
    for (uint32_t r = 0; r < 6; ++r) {
      EXPECT_EQ(s.Index(h, r), ProposerIndex(h, r, 4)) << h << " " << r;
    }
  }
}

TEST(TendermintProposer, ShareFollowsPowerAndIsSpreadOut) {
  const std::vector<uint64_t> powers = {1, 2, 3, 4};
  const ProposerSchedule s(powers);
  ASSERT_EQ(s.cycle(), 10u);
  std::vector<int> count(powers.size(), 0);
  uint32_t prev = s.Index(0, 0);
  int run = 0;
  for (uint64_t h = 0; h < 1000; ++h) {
    const uint32_t i = s.Index(h, 0);
    ++count[i];
    // Spread out: no validator holds over half the power, so it never
    // proposes three times in a row (twice only across the cycle's end).
    run = (h > 0 && i == prev) ? run + 1 : 1;
    EXPECT_LE(run, 2) << "height " << h;
    prev = i;
  }
  for (size_t i = 0; i < powers.size(); ++i) {
    EXPECT_EQ(count[i], static_cast<int>(100 * powers[i])) << i;
  }
  // Rounds of one height walk the same cycle.
  EXPECT_EQ(s.Index(7, 2), s.Index(9, 0));
}

TEST(TendermintProposer, HugePowersAreScaledAndZeroNeverProposes) {
  const uint64_t big = uint64_t{1} << 59;
  const ProposerSchedule s({big, big / 2 + 1, 0, 3});
  EXPECT_LE(s.cycle(), ProposerSchedule::kMaxSlots + 4);
  std::vector<uint64_t> count(4, 0);
  for (uint64_t slot = 0; slot < s.cycle(); ++slot) ++count[s.Index(slot, 0)];
  EXPECT_EQ(count[2], 0u);
  EXPECT_GE(count[3], 1u);  // scaled down, never to nothing
  EXPECT_NEAR(static_cast<double>(count[0]) / static_cast<double>(count[1]),
              2.0, 0.01);
  // Arithmetic at the top of the ranges does not overflow.
  EXPECT_LT(s.Index(std::numeric_limits<uint64_t>::max(),
                    std::numeric_limits<uint32_t>::max()),
            4u);
}

}  // namespace
}  // namespace consortia::consensus::tendermint
