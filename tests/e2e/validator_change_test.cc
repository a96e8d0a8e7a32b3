// End-to-end (issue 14, point 1): governance votes take effect on every
// node, on real processes.
//
// FourToFiveToFourUnderLoadWithAValidatorKilled: the validator set changes
// by vote, 4 -> 5 -> 4, under a signed-tx load, with a validator killed
// (kill -9) during the change.
//
// Five nodes run; the genesis names four validators, and the fifth node's
// key is a candidate (every peers file lists it as a validator's node). One
// organisation governs (one admin approval executes a proposal).
//   1. add_validator(node 4) is proposed and executes at height C; node 1 is
//      killed right after (once the last batch it accepted is committed:
//      TakeDown). The change is in force at E = C + 3: every live
//      node reports 5 validators, node 4 reports itself a validator.
//   2. Node 1 restarts (it catches up through the change by block sync);
//      then node 2 is stopped. The four live nodes 0, 1, 3, 4 hold 4 of 5
//      votes: the chain commits N more heights only if node 4's votes count
//      (0, 1, 3 alone hold 3 of 5, not more than two thirds).
//   3. Node 2 restarts; remove_validator(node 4) executes; from its E the
//      set is 4 again; node 4 follows as an observer. Node 4 is stopped and
//      the chain still commits N more heights.
// At the end: every node holds the same block hash at every height, and
// every tx the api accepted during the load is committed.
//
// ChainRulesTakeEffectOnEveryNode: set_rule votes lower max_block_txs to 10
// and grow the replay window to 5,000 (docs/apps.md, "Chain rules"). From
// the height after each vote's block, no node's block holds more than 10
// txs (200 txs take at least 20 blocks), and a tx valid 3,000 heights ahead,
// refused before, is admitted, also by a mempool restarted afterwards.
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "consortia/admin_records.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "network_harness.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

constexpr char kConsensus[] = "consortia-consensus";
// Heights the chain must commit after each step.
constexpr uint64_t kMoreHeights = 5;
// The load: batches of kv txs over POST /v1/txs:batch, to the live nodes in
// turn.
constexpr int kBatchTxs = 100;

// Posts a batch of signed kv txs every 50 ms (up to 2,000 txs/s offered, near
// what four validators commit on two cores) and keeps the hashes the api
// accepted ("pending" in the batch answer).
class BatchLoad {
 public:
  BatchLoad(const NetworkHarness* net, const KeyPair& key)
      : net_(net), key_(key), live_(net->size()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~BatchLoad() { Stop(); }

  void SetLive(int node, bool live) { live_.Set(node, live); }
  // Stops sending to `node`, waits until a request in flight to it is
  // answered, and returns the hashes it accepted in its last batch.
  std::vector<Hash32> Quiesce(int node) {
    live_.Set(node, false);
    { absl::MutexLock sending(&send_mu_); }
    absl::MutexLock lock(&mu_);
    return last_accepted_[node];
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Hash32> Accepted() const {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }

 private:
  void Run() {
    uint64_t nonce = 1'000'000;
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      // Held from the choice of a node to its answer (Quiesce).
      absl::MutexLock sending(&send_mu_);
      const int node = live_.Next();
      if (node >= 0) Send(node, nonce);
    }
  }

  // Sends one batch to `node`; keeps the hashes it accepted.
  void Send(int node, uint64_t& nonce) {
    {
      const std::string chain = net_->genesis().chain_id;
      const uint64_t valid_until = net_->Height(node) + 500;
      if (valid_until == 500) return;  // the node does not answer
      json txs = json::array();
      std::vector<Hash32> hashes;
      for (int i = 0; i < kBatchTxs; ++i, ++nonce) {
        const Transaction tx =
            SignedTx(key_, chain, nonce, valid_until, "kv", "set",
                     {absl::StrCat("load-", nonce), "v"}, net_->suite());
        hashes.push_back(TxHash(net_->suite(), tx));
        txs.push_back(json::parse(TxToJson(tx)));
      }
      absl::StatusOr<HttpResult> r = HttpCall(
          net_->api(node), "POST", "/v1/txs:batch", json{{"txs", txs}}.dump());
      if (!r.ok() || r->status != 200) return;
      const json answer = json::parse(r->body, nullptr, false);
      if (!answer.contains("results")) return;
      absl::MutexLock lock(&mu_);
      std::vector<Hash32>& last = last_accepted_[node];
      last.clear();
      for (size_t i = 0; i < answer["results"].size() && i < hashes.size();
           ++i) {
        if (answer["results"][i].value("status", "") == "pending") {
          accepted_.push_back(hashes[i]);
          last.push_back(hashes[i]);
        }
      }
    }
  }

  const NetworkHarness* const net_;
  const KeyPair key_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  LiveNodes live_;
  std::vector<Hash32> accepted_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::vector<Hash32>> last_accepted_ ABSL_GUARDED_BY(mu_);
  absl::Mutex send_mu_;
  std::thread thread_;
};

class ValidatorChangeTest : public ::testing::Test {
 protected:
  uint64_t MinHeight(const std::vector<int>& nodes) const {
    uint64_t h = UINT64_MAX;
    for (int i : nodes) h = std::min(h, net_->Height(i));
    return h;
  }
  ::testing::AssertionResult AllReach(uint64_t height,
                                      const std::vector<int>& nodes) const {
    if (NetworkHarness::WaitUntil([&] { return MinHeight(nodes) >= height; },
                                  absl::Seconds(120))) {
      return ::testing::AssertionSuccess();
    }
    auto failure = ::testing::AssertionFailure();
    failure << "not all of the nodes reached height " << height << ":";
    for (int i : nodes) failure << " node" << i << "=" << net_->Height(i);
    for (int i : nodes) {
      failure << "\n---- node" << i << " consensus log tail\n"
              << net_->LogTail(i, kConsensus, 1500);
    }
    return failure;
  }
  double Gauge(int node, const std::string& name) const {
    return net_->Metric(node, kConsensus, name).value_or(-1);
  }
  // Proposes `action` with the admin key on node `node`; the one
  // organisation's approval executes it. Returns the change's
  // effective_height (from validators/pending).
  uint64_t Govern(int node, const json& action) {
    if (Execute(node, action) == 0) return 0;
    auto v = HttpCall(net_->api(node), "GET",
                      "/v1/state/admin/validators%2Fpending");
    EXPECT_TRUE(v.ok() && v->status == 200);
    if (!v.ok()) return 0;
    const json value = json::parse(
        json::parse(v->body, nullptr, false).value("value", std::string("{}")),
        nullptr, false);
    return value.value("effective_height", uint64_t{0});
  }

  // Proposes `action` with the admin key on node `node`, which the one
  // organisation's approval executes; returns the height of the block that
  // executed it (0 on a failure, which the test records).
  uint64_t Execute(int node, const json& action) {
    const Transaction tx =
        SignedTx(admin_, net_->genesis().chain_id, ++admin_nonce_,
                 net_->Height(node) + 1000, "admin", "propose",
                 {action.dump(), "100"}, net_->suite());
    absl::StatusOr<Hash32> h = net_->SubmitTx(node, tx);
    EXPECT_TRUE(h.ok()) << h.status();
    if (!h.ok()) return 0;
    EXPECT_TRUE(
        NetworkHarness::WaitUntil([&] { return net_->Committed(node, *h); }));
    auto r = HttpCall(net_->api(node), "GET", "/v1/txs/" + ToHex(*h));
    EXPECT_TRUE(r.ok() && r->status == 200);
    if (!r.ok()) return 0;
    const json answer = json::parse(r->body, nullptr, false);
    const json receipt = answer.value("receipt", json::object());
    EXPECT_EQ(receipt.value("code_name", ""), "ok") << receipt;
    if (receipt.value("code_name", "") != "ok") return 0;
    return answer.value("height", uint64_t{0});
  }
  // Starts 4 validators and `candidates` more nodes on a chain of one
  // organisation, "ops", whose admin_ (key seed `seed`) governs alone and
  // whose key of seed `seed + 1`, returned, sends the load; until height 2.
  KeyPair StartNetwork(int candidates, int seed) {
    const CryptoSuite& suite = Ed25519Sha256();
    admin_ = TestKey(seed, suite);
    const KeyPair loader = TestKey(seed + 1, suite);
    NetworkOptions o;
    o.validators = 4;
    o.candidates = candidates;
    Consortium c;
    c.approval_percent = 50;
    c.orgs.push_back({"ops",
                      "Operations",
                      {{admin_.public_key, {admin::Role::kAdmin}},
                       {loader.public_key, {admin::Role::kMember}}}});
    o.consortium = c;
    net_ = std::make_unique<NetworkHarness>(o);
    absl::Status started = net_->StartAll();
    EXPECT_TRUE(started.ok()) << started;
    std::vector<int> all(net_->size());
    for (int i = 0; i < net_->size(); ++i) all[i] = i;
    EXPECT_TRUE(AllReach(2, all));
    return loader;
  }
  // Takes node `node` down (kill -9, or a graceful stop) once the load no
  // longer sends to it and the last batch it accepted is committed (seen on
  // node 0): an accepted tx is pending in memory only until a block or a
  // peer's mempool holds it (docs/mempool.md, "Restarts and resubmission"),
  // so this test's "every accepted tx committed" holds for the txs a node
  // accepted before it went down.
  void TakeDown(BatchLoad& load, int node, bool kill) {
    for (const Hash32& h : load.Quiesce(node)) {
      EXPECT_TRUE(NetworkHarness::WaitUntil([&] {
        return net_->Committed(0, h);
      })) << "node "
          << node << " accepted " << ToHex(h);
    }
    if (kill) {
      net_->KillNode(node);
    } else {
      net_->StopNode(node);
    }
  }
  // The tx count of block `height` on node `node` (-1 when it cannot say).
  int TxCount(int node, uint64_t height) const {
    auto r =
        HttpCall(net_->api(node), "GET", absl::StrCat("/v1/blocks/", height));
    if (!r.ok() || r->status != 200) return -1;
    return json::parse(r->body, nullptr, false).value("tx_count", -1);
  }

  std::unique_ptr<NetworkHarness> net_;
  KeyPair admin_;
  uint64_t admin_nonce_ = 0;
};

TEST_F(ValidatorChangeTest, FourToFiveToFourUnderLoadWithAValidatorKilled) {
  const KeyPair loader = StartNetwork(/*candidates=*/1, /*seed=*/61);
  ASSERT_FALSE(HasFailure());
  const std::vector<int> all = {0, 1, 2, 3, 4};
  EXPECT_EQ(Gauge(4, "consortia_consensus_is_validator"), 0);
  EXPECT_EQ(Gauge(0, "consortia_consensus_validators"), 4);

  BatchLoad load(net_.get(), loader);

  // 1. Add node 4; kill node 1 during the change.
  const uint64_t added_from =
      Govern(0, json{{"type", "add_validator"},
                     {"name", "validator4"},
                     {"public_key", ToHex(net_->node_key(4).public_key)},
                     {"power", 1}});
  ASSERT_GT(added_from, 0u);
  TakeDown(load, 1, /*kill=*/true);
  const std::vector<int> without1 = {0, 2, 3, 4};
  ASSERT_TRUE(AllReach(added_from + kMoreHeights, without1));
  for (int i : without1) {
    EXPECT_EQ(Gauge(i, "consortia_consensus_validators"), 5) << "node " << i;
  }
  EXPECT_EQ(Gauge(4, "consortia_consensus_is_validator"), 1);

  // 2. Node 1 back (block sync through the change); node 2 stopped: only
  // node 4's votes make a quorum of 4 of 5.
  ASSERT_TRUE(net_->StartNode(1).ok());
  load.SetLive(1, true);
  ASSERT_TRUE(AllReach(MinHeight(without1), {1}));
  EXPECT_EQ(Gauge(1, "consortia_consensus_validators"), 5);
  TakeDown(load, 2, /*kill=*/false);
  const std::vector<int> without2 = {0, 1, 3, 4};
  ASSERT_TRUE(AllReach(MinHeight(without2) + kMoreHeights, without2));

  // 3. Node 2 back; remove node 4; then stop it.
  ASSERT_TRUE(net_->StartNode(2).ok());
  load.SetLive(2, true);
  ASSERT_TRUE(AllReach(MinHeight(without2), {2}));
  const uint64_t removed_from =
      Govern(0, json{{"type", "remove_validator"}, {"name", "validator4"}});
  ASSERT_GT(removed_from, added_from);
  ASSERT_TRUE(AllReach(removed_from + 1, all));
  for (int i : all) {
    EXPECT_EQ(Gauge(i, "consortia_consensus_validators"), 4) << "node " << i;
  }
  EXPECT_EQ(Gauge(4, "consortia_consensus_is_validator"), 0);
  TakeDown(load, 4, /*kill=*/false);
  const std::vector<int> four = {0, 1, 2, 3};
  ASSERT_TRUE(AllReach(MinHeight(four) + kMoreHeights, four));

  load.Stop();
  const uint64_t top = MinHeight(four);
  EXPECT_TRUE(net_->SameHashes(top, four));
  ASSERT_TRUE(net_->StartNode(4).ok());
  ASSERT_TRUE(AllReach(top, {4}));
  EXPECT_TRUE(net_->SameHashes(top, all));

  const std::vector<Hash32> accepted = load.Accepted();
  EXPECT_GT(accepted.size(), 1000u) << "the load hardly ran";
  ASSERT_TRUE(NetworkHarness::WaitUntil(
      [&] { return net_->Committed(0, accepted.back()); }));
  size_t missing = 0;
  for (const Hash32& h : accepted) {
    if (!net_->Committed(0, h)) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << accepted.size() << " accepted txs";
  std::printf(
      "validator change: %zu txs accepted, all committed; chain at %llu\n",
      accepted.size(), static_cast<unsigned long long>(top));
}

TEST_F(ValidatorChangeTest, ChainRulesTakeEffectOnEveryNode) {
  const KeyPair loader = StartNetwork(/*candidates=*/0, /*seed=*/63);
  ASSERT_FALSE(HasFailure());
  const CryptoSuite& suite = net_->suite();
  const std::vector<int> all = {0, 1, 2, 3};
  const std::string chain = net_->genesis().chain_id;
  uint64_t nonce = 0;
  auto far_tx = [&](int node) {
    return SignedTx(loader, chain, ++nonce, net_->Height(node) + 3000, "kv",
                    "set", {absl::StrCat("far-", nonce), "v"}, suite);
  };
  absl::StatusOr<Hash32> refused = net_->SubmitTx(0, far_tx(0));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("too-far-ahead"), std::string::npos)
      << refused.status();

  const uint64_t limited_from = Execute(0, json{{"type", "set_rule"},
                                                {"name", "max_block_txs"},
                                                {"value", 10}}) +
                                1;
  ASSERT_GT(limited_from, 1u);
  const uint64_t grown_from = Execute(1, json{{"type", "set_rule"},
                                              {"name", "replay_window"},
                                              {"value", 5000}}) +
                              1;
  ASSERT_GT(grown_from, limited_from);
  ASSERT_TRUE(AllReach(grown_from, all));

  // 200 txs in two batches to two nodes: at most 10 a block.
  const uint64_t load_from = net_->Height(0) + 1;
  std::vector<Hash32> load;
  for (int node : {1, 3}) {
    json txs = json::array();
    const uint64_t valid_until = net_->Height(node) + 500;
    for (int i = 0; i < 100; ++i) {
      const Transaction tx =
          SignedTx(loader, chain, ++nonce, valid_until, "kv", "set",
                   {absl::StrCat("load-", nonce), "v"}, suite);
      load.push_back(TxHash(suite, tx));
      txs.push_back(json::parse(TxToJson(tx)));
    }
    absl::StatusOr<HttpResult> r = HttpCall(
        net_->api(node), "POST", "/v1/txs:batch", json{{"txs", txs}}.dump());
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : "");
  }
  for (const Hash32& h : load) {
    ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
      return net_->Committed(2, h);
    })) << ToHex(h);
  }
  const uint64_t top = MinHeight(all);
  ASSERT_TRUE(AllReach(top, all));
  EXPECT_TRUE(net_->SameHashes(top, all));
  int blocks_with_load = 0;
  for (int node : all) {
    for (uint64_t h = limited_from; h <= top; ++h) {
      const int n = TxCount(node, h);
      EXPECT_GE(n, 0) << "node " << node << " height " << h;
      EXPECT_LE(n, 10) << "node " << node << " height " << h;
      if (node == 0 && h >= load_from && n > 0) ++blocks_with_load;
    }
  }
  EXPECT_GE(blocks_with_load, 20);

  // The grown window: admitted, committed; and so after a mempool restart.
  absl::StatusOr<Hash32> far = net_->SubmitTx(0, far_tx(0));
  ASSERT_TRUE(far.ok()) << far.status();
  net_->Kill(2, "consortia-mempool");
  ASSERT_TRUE(net_->StartProcess(2, "consortia-mempool").ok());
  ASSERT_TRUE(net_->WaitReady(2, absl::Seconds(60)).ok());
  absl::StatusOr<Hash32> far2 = net_->SubmitTx(2, far_tx(2));
  ASSERT_TRUE(far2.ok()) << far2.status();
  for (const Hash32& h : {*far, *far2}) {
    EXPECT_TRUE(
        NetworkHarness::WaitUntil([&] { return net_->Committed(0, h); }));
  }
  std::printf(
      "chain rules: max_block_txs 10 from height %llu, 200 txs in %d "
      "blocks; replay_window 5000 from height %llu\n",
      static_cast<unsigned long long>(limited_from), blocks_with_load,
      static_cast<unsigned long long>(grown_from));
}

}  // namespace
}  // namespace consortia::testing
