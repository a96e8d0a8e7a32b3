#include "signer.h"

#include <vector>

#include "gtest/gtest.h"

namespace consortia::consensus {
namespace {

class SignerTest : public ::testing::Test {
 protected:
  const CryptoSuite& suite_ = Ed25519Sha256();
  KeyPair key_ = suite_.GenerateKey();
  Hash32 block_ = suite_.Hash(ToBytes("a block"));
};

TEST_F(SignerTest, SignsVotesOverVoteSignBytes) {
  Signer signer(suite_, "testnet", key_.secret_key, 3);
  absl::StatusOr<Vote> v = signer.SignVote(VoteType::kPrecommit, 9, 1, block_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->type, VoteType::kPrecommit);
  EXPECT_EQ(v->height, 9u);
  EXPECT_EQ(v->round, 1u);
  EXPECT_EQ(v->block_hash, block_);
  EXPECT_EQ(v->validator_index, 3u);
  EXPECT_TRUE(suite_.Verify(key_.public_key, VoteSignBytes("testnet", *v),
                            v->signature));
  // Bound to the chain.
  EXPECT_FALSE(suite_.Verify(key_.public_key, VoteSignBytes("othernet", *v),
                             v->signature));
}

TEST_F(SignerTest, MalformedSecretKeyIsAnError) {
  Signer signer(suite_, "testnet", Bytes{1, 2, 3}, 0);
  EXPECT_FALSE(signer.SignVote(VoteType::kPrecommit, 1, 0, block_).ok());
}

TEST_F(SignerTest, CertificateOfOneValidatorVerifies) {
  Genesis g;
  g.chain_id = "testnet";
  g.validators = {{"v0", key_.public_key, 1}};
  BlockHeader header;
  header.chain_id = "testnet";
  header.height = 4;
  const Hash32 hash = BlockHash(suite_, header);

  Signer signer(suite_, "testnet", key_.secret_key, 0);
  absl::StatusOr<Vote> v = signer.SignVote(VoteType::kPrecommit, 4, 0, hash);
  ASSERT_TRUE(v.ok());
  absl::StatusOr<CommitCertificate> cert = BuildCertificate(4, 0, hash, {*v});
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(cert->height, 4u);
  EXPECT_EQ(cert->block_hash, hash);
  ASSERT_EQ(cert->sigs.size(), 1u);
  EXPECT_TRUE(VerifyCertificate(suite_, g, header, *cert).ok());

  // The same certificate does not prove another header.
  BlockHeader other = header;
  other.time_ms = 1;
  EXPECT_FALSE(VerifyCertificate(suite_, g, other, *cert).ok());
}

TEST_F(SignerTest, CertificateSortsAndDeduplicates) {
  std::vector<KeyPair> keys = {suite_.GenerateKey(), suite_.GenerateKey(),
                               suite_.GenerateKey()};
  std::vector<Vote> votes;
  for (uint32_t i : {2u, 0u, 1u}) {
    absl::StatusOr<Vote> v = Signer(suite_, "testnet", keys[i].secret_key, i)
                                 .SignVote(VoteType::kPrecommit, 5, 2, block_);
    ASSERT_TRUE(v.ok());
    votes.push_back(*v);
  }
  votes.push_back(votes[0]);  // a verbatim repeat
  absl::StatusOr<CommitCertificate> cert =
      BuildCertificate(5, 2, block_, votes);
  ASSERT_TRUE(cert.ok()) << cert.status();
  ASSERT_EQ(cert->sigs.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(cert->sigs[i].validator_index, i);
}

TEST_F(SignerTest, CertificateRefusesMismatchedVotes) {
  Signer signer(suite_, "testnet", key_.secret_key, 0);
  auto vote = [&](VoteType t, uint64_t h, uint32_t r, const Hash32& b) {
    absl::StatusOr<Vote> v = signer.SignVote(t, h, r, b);
    EXPECT_TRUE(v.ok());
    return *v;
  };
  EXPECT_FALSE(BuildCertificate(5, 0, block_, {}).ok());
  EXPECT_FALSE(
      BuildCertificate(5, 0, block_, {vote(VoteType::kPrevote, 5, 0, block_)})
          .ok());
  EXPECT_FALSE(
      BuildCertificate(5, 0, block_, {vote(VoteType::kPrecommit, 6, 0, block_)})
          .ok());
  EXPECT_FALSE(
      BuildCertificate(5, 0, block_, {vote(VoteType::kPrecommit, 5, 1, block_)})
          .ok());
  EXPECT_FALSE(BuildCertificate(5, 0, block_,
                                {vote(VoteType::kPrecommit, 5, 0, Hash32{})})
                   .ok());
  // Two different precommits from one validator.
  Vote a = vote(VoteType::kPrecommit, 5, 0, block_);
  Vote b = a;
  b.signature[0] ^= 1;
  absl::StatusOr<CommitCertificate> c = BuildCertificate(5, 0, block_, {a, b});
  EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
}

}  // namespace
}  // namespace consortia::consensus
