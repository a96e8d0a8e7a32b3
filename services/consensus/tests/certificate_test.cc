#include "certificate.h"

#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tendermint/state_machine.h"

namespace consortia::consensus {
namespace {

class CertificateTest : public ::testing::Test {
 protected:
  // A vote (a precommit unless told) signed over VoteSignBytes("testnet", vote)
  // with `key`.
  Vote SignedVote(const KeyPair& key, uint32_t index, uint64_t height,
                  uint32_t round, const Hash32& hash,
                  VoteType type = VoteType::kPrecommit) {
    Vote v;
    v.type = type;
    v.height = height;
    v.round = round;
    v.block_hash = hash;
    v.validator_index = index;
    absl::StatusOr<std::unique_ptr<tendermint::KeySigner>> signer =
        tendermint::KeySigner::Create(suite_, key.secret_key, key.public_key);
    EXPECT_TRUE(signer.ok()) << signer.status();
    absl::StatusOr<Bytes> sig =
        (*signer)->SignVote(v, VoteSignBytes("testnet", v));
    EXPECT_TRUE(sig.ok()) << sig.status();
    v.signature = *std::move(sig);
    return v;
  }

  const CryptoSuite& suite_ = Ed25519Sha256();
  KeyPair key_ = suite_.GenerateKey();
  Hash32 block_ = suite_.Hash(ToBytes("a block"));
};

TEST_F(CertificateTest, CertificateOfOneValidatorVerifies) {
  Genesis g;
  g.chain_id = "testnet";
  g.validators = {{"v0", key_.public_key, 1}};
  BlockHeader header;
  header.chain_id = "testnet";
  header.height = 4;
  const Hash32 hash = BlockHash(suite_, header);

  absl::StatusOr<CommitCertificate> cert =
      BuildCertificate(4, 0, hash, {SignedVote(key_, 0, 4, 0, hash)});
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

TEST_F(CertificateTest, CertificateSortsAndDeduplicates) {
  std::vector<KeyPair> keys = {suite_.GenerateKey(), suite_.GenerateKey(),
                               suite_.GenerateKey()};
  std::vector<Vote> votes;
  for (uint32_t i : {2u, 0u, 1u}) {
    votes.push_back(SignedVote(keys[i], i, 5, 2, block_));
  }
  votes.push_back(votes[0]);  // a verbatim repeat
  absl::StatusOr<CommitCertificate> cert =
      BuildCertificate(5, 2, block_, votes);
  ASSERT_TRUE(cert.ok()) << cert.status();
  ASSERT_EQ(cert->sigs.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(cert->sigs[i].validator_index, i);
}

TEST_F(CertificateTest, CertificateRefusesMismatchedVotes) {
  auto vote = [&](VoteType t, uint64_t h, uint32_t r, const Hash32& b) {
    return SignedVote(key_, 0, h, r, b, t);
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
