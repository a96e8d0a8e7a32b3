#include "single_validator.h"

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/merkle.h"
#include "fakes.h"
#include "gtest/gtest.h"

namespace consortia::consensus {
namespace {

using testing::AllTxs;
using testing::FakeClock;
using testing::FakeLedger;
using testing::FakeMempool;
using testing::kChainId;
using testing::MakeTxs;
using testing::WaitFor;

class SingleValidatorTest : public ::testing::Test {
 protected:
  SingleValidatorTest() {
    KeyPair kp = suite_.GenerateKey();
    key_ = NodeKey{"ed25519-sha256", kp.public_key, kp.secret_key};
    genesis_.chain_id = kChainId;
    genesis_.validators = {{"node0", key_.public_key, 1}};
    ledger_ = std::make_unique<FakeLedger>(genesis_, &mempool_);
    options_.block_poll_interval = absl::Milliseconds(1);
    options_.empty_block_interval = absl::Hours(1);
  }

  void Start() {
    absl::StatusOr<std::unique_ptr<SingleValidator>> v =
        SingleValidator::Create(options_, genesis_, suite_, key_, &mempool_,
                                ledger_.get(), &clock_);
    ASSERT_TRUE(v.ok()) << v.status();
    validator_ = *std::move(v);
    validator_->Start();
  }

  void TearDown() override {
    if (validator_) validator_->Stop();
    EXPECT_TRUE(ledger_->violations().empty()) << ledger_->violations().front();
  }

  const CryptoSuite& suite_ = Ed25519Sha256();
  NodeKey key_;
  Genesis genesis_;
  ConsensusOptions options_;
  FakeClock clock_;
  FakeMempool mempool_;
  std::unique_ptr<FakeLedger> ledger_;
  std::unique_ptr<SingleValidator> validator_;
};

TEST_F(SingleValidatorTest, CommitsReapedTxsInOrder) {
  options_.max_block_txs = 4;
  std::vector<Bytes> txs = MakeTxs(10, "tx");
  mempool_.Add(txs);
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 10; }));
  std::vector<Block> blocks = ledger_->blocks();
  EXPECT_EQ(AllTxs(blocks), txs);
  for (const Block& b : blocks) EXPECT_LE(b.txs.size(), 4u);
  EXPECT_EQ(blocks.front().header.height, 1u);
  EXPECT_TRUE(validator_->Ready());

  // Txs that arrive later go into later blocks.
  std::vector<Bytes> more = MakeTxs(3, "more");
  mempool_.Add(more);
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 13; }));
  txs.insert(txs.end(), more.begin(), more.end());
  EXPECT_EQ(AllTxs(ledger_->blocks()), txs);
  ASSERT_TRUE(
      WaitFor([&] { return validator_->height() == ledger_->height(); }));
}

TEST_F(SingleValidatorTest, RespectsTheBlockByteLimit) {
  options_.max_block_bytes = 256 * 1024;
  std::vector<Bytes> txs;
  for (int i = 0; i < 5; ++i) txs.push_back(Bytes(100 * 1024, uint8_t(i)));
  mempool_.Add(txs);
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 5; }));
  for (const Block& b : ledger_->blocks()) EXPECT_LE(b.txs.size(), 2u);
  EXPECT_EQ(AllTxs(ledger_->blocks()), txs);
}

TEST_F(SingleValidatorTest, MakesEmptyBlocksOnlyWhenIdleLongEnough) {
  options_.empty_block_interval = absl::Seconds(1);
  Start();
  // The loop runs many times, but the clock does not move: no block.
  ASSERT_TRUE(WaitFor([&] { return mempool_.reaps() >= 20; }));
  EXPECT_EQ(ledger_->height(), 0u);

  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitFor([&] { return ledger_->height() >= 1; }));
  const int reaps = mempool_.reaps();
  ASSERT_TRUE(WaitFor([&] { return mempool_.reaps() >= reaps + 20; }));
  EXPECT_EQ(ledger_->height(), 1u);

  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitFor([&] { return ledger_->height() >= 2; }));
  std::vector<Block> blocks = ledger_->blocks();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_TRUE(blocks[0].txs.empty());
  EXPECT_TRUE(blocks[1].txs.empty());
  // Block time comes from the injected clock.
  EXPECT_EQ(blocks[1].header.time_ms,
            static_cast<uint64_t>(absl::ToUnixMillis(clock_.Now())));
}

TEST_F(SingleValidatorTest, RecoversAfterAFailedCommit) {
  ledger_->FailNextCommits(1);
  std::vector<Bytes> txs = MakeTxs(5, "tx");
  mempool_.Add(txs);
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 5; }));
  EXPECT_EQ(AllTxs(ledger_->blocks()), txs);
  EXPECT_GT(ledger_->commit_calls(),
            static_cast<int>(ledger_->blocks().size()));
  // It went back to storage for a fresh chain state.
  EXPECT_GE(ledger_->state_calls(), 2);
}

TEST_F(SingleValidatorTest, RecoversWhenACommitReplyIsLost) {
  ledger_->LoseNextReplies(1);
  mempool_.Add(MakeTxs(1, "first"));
  Start();
  ASSERT_TRUE(WaitFor([&] { return ledger_->height() >= 1; }));
  std::vector<Bytes> later = MakeTxs(2, "later");
  mempool_.Add(later);
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 3; }));
  // Block 1 was committed once; the next block built on it.
  std::vector<Block> blocks = ledger_->blocks();
  EXPECT_EQ(blocks[0].header.height, 1u);
  EXPECT_EQ(blocks[1].header.height, 2u);
  EXPECT_EQ(blocks[1].txs, later);
}

TEST_F(SingleValidatorTest, EveryBlockCarriesAValidCertificate) {
  mempool_.Add(MakeTxs(3, "tx"));
  Start();
  ASSERT_TRUE(WaitFor([&] { return ledger_->height() >= 1; }));
  std::vector<Block> blocks = ledger_->blocks();
  std::vector<CommitCertificate> certs = ledger_->certs();
  ASSERT_EQ(blocks.size(), certs.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_TRUE(
        VerifyCertificate(suite_, genesis_, blocks[i].header, certs[i]).ok());
    EXPECT_EQ(certs[i].height, blocks[i].header.height);
    EXPECT_EQ(certs[i].block_hash, BlockHash(suite_, blocks[i].header));
    ASSERT_EQ(certs[i].sigs.size(), 1u);
    EXPECT_EQ(certs[i].sigs[0].validator_index, 0u);
  }
}

TEST_F(SingleValidatorTest, NotReadyUntilStorageAnswers) {
  ledger_->SetDown(true);
  mempool_.Add(MakeTxs(2, "tx"));
  Start();
  ASSERT_TRUE(WaitFor([&] { return ledger_->state_calls() >= 3; }));
  EXPECT_FALSE(validator_->Ready());
  EXPECT_EQ(ledger_->height(), 0u);
  ledger_->SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return validator_->Ready(); }));
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 2; }));
}

TEST_F(SingleValidatorTest, RefusesAGenesisWithFourValidators) {
  for (int i = 1; i < 4; ++i) {
    genesis_.validators.push_back(
        {absl::StrCat("node", i), suite_.GenerateKey().public_key, 1});
  }
  absl::StatusOr<std::unique_ptr<SingleValidator>> v = SingleValidator::Create(
      options_, genesis_, suite_, key_, &mempool_, ledger_.get(), &clock_);
  EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  EXPECT_EQ(v.status().message(),
            "this build runs one validator; genesis has 4");
}

TEST_F(SingleValidatorTest, RefusesAKeyThatIsNotTheValidator) {
  genesis_.validators[0].public_key = suite_.GenerateKey().public_key;
  absl::StatusOr<std::unique_ptr<SingleValidator>> v = SingleValidator::Create(
      options_, genesis_, suite_, key_, &mempool_, ledger_.get(), &clock_);
  EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  EXPECT_NE(v.status().message().find("node0"), std::string::npos);
}

TEST_F(SingleValidatorTest, RefusesAKeyWhoseSecretDoesNotMatch) {
  key_.secret_key = suite_.GenerateKey().secret_key;
  absl::StatusOr<std::unique_ptr<SingleValidator>> v = SingleValidator::Create(
      options_, genesis_, suite_, key_, &mempool_, ledger_.get(), &clock_);
  EXPECT_TRUE(absl::IsInvalidArgument(v.status())) << v.status();
}

}  // namespace
}  // namespace consortia::consensus
