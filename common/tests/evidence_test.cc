// Evidence (common/evidence.h): its wire form is pinned to the bytes the
// consensus service wrote before the format moved to common/ (evidence
// already kept by storage and served by the api must still decode and
// verify), and VerifyEvidence refuses what does not prove equivocation.
#include "consortia/evidence.h"

#include <string>

#include "consortia/crypto_suite.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

// Bytes written by services/consensus/src/tendermint/messages.cc at commit
// 63eab49 (before the move) for GoldenVotes() and GoldenProposals().
constexpr char kGoldenDoubleVoteHex[] =
    "68026602ac020211111111111111111111111111111111111111111111111111"
    "111111111111110140eecfe45efe944be730d020cccde9c5586f9c907d2b3d2d"
    "5b9d9d143b2a9f1a3a54bf374f73f2348a6032f5ecfb887b604022140ea3204d"
    "bb2375b70c37fc970768026602ac020200000000000000000000000000000000"
    "00000000000000000000000000000000014055ebfa65e187482eb087bf65872b"
    "140d86340765f6fbb1a69642ec7b4589c936f498acd39a084737fba831cadf4e"
    "8eedbdfab9dc9ad7a4ad64dc2cddd2acc50a";
constexpr char kGoldenDoubleProposalHex[] =
    "d60101ac020202018d0106676f6c64656eac02d2090000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000404de7070eb553f53a"
    "d7348d8163f613927778a6a0333b1e19c89499aa4e3f6ed8578ca7128a364c5e"
    "8f5a6dc4c66a519afe19ef15677cb022d984eb02c007ef0bd60101ac02020001"
    "8d0106676f6c64656eac02ae2c00000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000400935810d85b556acee8c25a9abe7b531"
    "0c3f49ec7c7a5dca4913985dcadc75a31d58938861e3c3ded2a22054dd052949"
    "44779436717b95da2a520493acb63106";

class EvidenceTest : public ::testing::Test {
 protected:
  EvidenceTest() : key_(*suite_.KeyFromSeed(Bytes(32, 7))) {
    genesis_.chain_id = "golden";
    genesis_.crypto_suite = "ed25519-sha256";
    genesis_.validators.push_back(
        Validator{"v0", suite_.KeyFromSeed(Bytes(32, 6))->public_key, 1});
    genesis_.validators.push_back(Validator{"v1", key_.public_key, 1});
  }

  Vote SignedVote(Vote v) const {
    v.signature = *suite_.Sign(key_.secret_key, VoteSignBytes("golden", v));
    return v;
  }
  Proposal SignedProposal(Proposal p) const {
    p.signature = *suite_.Sign(
        key_.secret_key,
        ProposalSignBytes("golden", p, BlockHash(suite_, p.block.header)));
    return p;
  }
  DoubleVote GoldenVotes() const {
    Vote a;
    a.type = VoteType::kPrecommit;
    a.height = 300;
    a.round = 2;
    a.block_hash.fill(0x11);
    a.validator_index = 1;
    Vote b = a;
    b.block_hash = Hash32{};  // nil
    return DoubleVote{SignedVote(a), SignedVote(b)};
  }
  DoubleProposal GoldenProposals() const {
    Proposal p;
    p.height = 300;
    p.round = 2;
    p.valid_round = 1;
    p.proposer_index = 1;
    p.block.header.chain_id = "golden";
    p.block.header.height = 300;
    p.block.header.time_ms = 1234;
    Proposal q = p;
    q.valid_round = kNoValidRound;
    q.block.header.time_ms = 5678;
    return DoubleProposal{SignedProposal(p), SignedProposal(q)};
  }

  const CryptoSuite& suite_ = Ed25519Sha256();
  KeyPair key_;
  Genesis genesis_;
};

TEST_F(EvidenceTest, WireFormIsUnchangedByTheMove) {
  EXPECT_EQ(ToHex(EncodeEvidence(GoldenVotes())), kGoldenDoubleVoteHex);
  EXPECT_EQ(ToHex(EncodeEvidence(GoldenProposals())), kGoldenDoubleProposalHex);
  for (const char* hex : {kGoldenDoubleVoteHex, kGoldenDoubleProposalHex}) {
    absl::StatusOr<Evidence> e = DecodeEvidence(*FromHex(hex));
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(ToHex(EncodeEvidence(*e)), hex);
    EXPECT_TRUE(VerifyEvidence(suite_, genesis_, *e).ok())
        << VerifyEvidence(suite_, genesis_, *e);
    EXPECT_EQ(EvidenceValidator(*e), 1u);
    EXPECT_EQ(EvidenceHeight(*e), 300u);
    EXPECT_EQ(EvidenceRound(*e), 2u);
  }
}

TEST_F(EvidenceTest, RefusesWhatIsNotEquivocation) {
  const DoubleVote good = GoldenVotes();
  DoubleVote other_height = good;
  other_height.second.height = 301;
  other_height.second = SignedVote(other_height.second);
  DoubleVote forged = good;
  forged.second.signature[0] ^= 1;
  DoubleVote unknown = good;
  unknown.first.validator_index = unknown.second.validator_index = 2;
  unknown.first = SignedVote(unknown.first);
  unknown.second = SignedVote(unknown.second);
  DoubleVote other_validator = good;  // signed by v1, claims v0
  other_validator.first.validator_index = 0;
  other_validator.second.validator_index = 0;
  other_validator.first = SignedVote(other_validator.first);
  other_validator.second = SignedVote(other_validator.second);
  for (const DoubleVote& bad : {other_height, forged, unknown, other_validator,
                                DoubleVote{good.first, good.first}}) {
    EXPECT_EQ(VerifyEvidence(suite_, genesis_, bad).code(),
              absl::StatusCode::kInvalidArgument);
  }
  // A vote and a proposal, a truncated pair, trailing bytes: not evidence.
  const Bytes votes = EncodeEvidence(good);
  EXPECT_FALSE(DecodeEvidence(ByteView(votes.data(), votes.size() - 1)).ok());
  Bytes trailing = votes;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeEvidence(trailing).ok());
}

}  // namespace
}  // namespace consortia
