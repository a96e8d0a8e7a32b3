// The consensus service over the bus, in one process: a fake mempool and a
// fake ledger (which checks the header chain) are served on inproc
// endpoints, as the real services serve theirs.
#include "consortia/consensus/consensus_service.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "fakes.h"
#include "gtest/gtest.h"
#include "zmq.hpp"

namespace consortia::consensus {
namespace {

using testing::AllTxs;
using testing::FakeLedger;
using testing::FakeMempool;
using testing::kChainId;
using testing::MakeTxs;
using testing::WaitFor;

class ConsensusServiceTest : public ::testing::Test {
 protected:
  ConsensusServiceTest() : exec_pool_(2) {
    static std::atomic<int> counter{0};
    const std::string unique = absl::StrCat(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
        getpid(), "-", counter++);
    dir_ =
        std::filesystem::path(::testing::TempDir()) / ("consensus-" + unique);
    std::filesystem::create_directories(dir_);
    KeyPair kp = Ed25519Sha256().GenerateKey();
    key_ = NodeKey{"ed25519-sha256", kp.public_key, kp.secret_key};
    genesis_.chain_id = kChainId;
    genesis_.validators = {{"node0", key_.public_key, 1}};

    node_.node_name = "node0";
    node_.genesis_path = (dir_ / "genesis.json").string();
    node_.node_key_path = (dir_ / "node_key.json").string();
    node_.mempool_endpoint = absl::StrCat("inproc://mempool-", unique);
    node_.storage_endpoint = absl::StrCat("inproc://storage-", unique);
    node_.storage_events = absl::StrCat("inproc://events-", unique);
    node_.bus_timeout = absl::Seconds(10);
    EXPECT_TRUE(WriteFileAtomic(node_.node_key_path, NodeKeyToJson(key_)).ok());
  }

  ~ConsensusServiceTest() override {
    service_.reset();
    servers_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void WriteGenesis() {
    ASSERT_TRUE(
        WriteFileAtomic(node_.genesis_path, GenesisToJson(genesis_)).ok());
  }

  void ServeFakes() {
    ledger_ = std::make_unique<FakeLedger>(genesis_, &mempool_);
    absl::StatusOr<std::unique_ptr<BusServer>> s = StartBusServer(
        ctx_, node_.storage_endpoint, "storage",
        ServeStorage({.ledger = ledger_.get()}, exec_pool_.AsExecutor()));
    ASSERT_TRUE(s.ok()) << s.status();
    servers_.push_back(*std::move(s));
    s = StartBusServer(ctx_, node_.mempool_endpoint, "mempool",
                       ServeMempool(&mempool_, exec_pool_.AsExecutor()));
    ASSERT_TRUE(s.ok()) << s.status();
    servers_.push_back(*std::move(s));
  }

  std::filesystem::path dir_;
  NodeKey key_;
  Genesis genesis_;
  NodeConfig node_;
  zmq::context_t ctx_;
  MetricsRegistry registry_;
  ThreadPool exec_pool_;
  FakeMempool mempool_;
  std::unique_ptr<FakeLedger> ledger_;
  std::vector<std::unique_ptr<BusServer>> servers_;
  std::unique_ptr<ConsensusService> service_;
};

TEST_F(ConsensusServiceTest, CommitsTheMempoolsTxsThroughTheBus) {
  WriteGenesis();
  ServeFakes();
  std::vector<Bytes> txs = MakeTxs(20, "tx");
  mempool_.Add(txs);
  ConsensusOptions o;
  o.max_block_txs = 7;
  absl::StatusOr<std::unique_ptr<ConsensusService>> s =
      ConsensusService::Start(node_, o, ctx_, registry_);
  ASSERT_TRUE(s.ok()) << s.status();
  service_ = *std::move(s);
  ASSERT_TRUE(WaitFor([&] { return service_->Ready(); }));
  ASSERT_TRUE(WaitFor([&] { return AllTxs(ledger_->blocks()).size() >= 20; }));
  EXPECT_EQ(AllTxs(ledger_->blocks()), txs);
  EXPECT_TRUE(ledger_->violations().empty()) << ledger_->violations().front();
  const std::string text = registry_.Serialize();
  EXPECT_NE(text.find("consortia_consensus_blocks_committed_total"),
            std::string::npos);
  // n of the genesis (one validator here), for the alerts that compare the
  // missing validators with f.
  EXPECT_NE(text.find("consortia_consensus_validators 1\n"), std::string::npos)
      << text;
}

TEST_F(ConsensusServiceTest, FourValidatorsNeedTheP2pKeyAndPeers) {
  for (int i = 1; i < 4; ++i) {
    genesis_.validators.push_back(
        {absl::StrCat("node", i), Ed25519Sha256().GenerateKey().public_key, 1});
  }
  WriteGenesis();
  absl::StatusOr<std::unique_ptr<ConsensusService>> s =
      ConsensusService::Start(node_, ConsensusOptions{}, ctx_, registry_);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("--consensus_p2p_key"),
            absl::string_view::npos)
      << s.status();
}

TEST_F(ConsensusServiceTest, RefusesAMissingNodeKey) {
  WriteGenesis();
  node_.node_key_path = (dir_ / "missing.json").string();
  absl::StatusOr<std::unique_ptr<ConsensusService>> s =
      ConsensusService::Start(node_, ConsensusOptions{}, ctx_, registry_);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace consortia::consensus
