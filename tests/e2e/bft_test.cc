// End-to-end: four validators, each the four real service processes on
// loopback ports, running Tendermint among their consensus services over
// CurveZMQ. Transactions sent to any node are committed on all of them, every
// node reports the same block hash at every height, and the chain survives
// the SIGKILL of one validator's consensus process, which catches up when it
// comes back.
#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/config.h"
#include "consortia/peer_net.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

constexpr int kValidators = 4;

uint16_t Port() {
  absl::StatusOr<uint16_t> p = PickFreePort();
  if (!p.ok()) std::abort();
  return *p;
}

struct BftNode {
  std::string dir;
  HttpTarget api;
  std::vector<std::string> common_flags;
  std::map<std::string, std::vector<std::string>> own_flags;
  std::map<std::string, ChildProcess> procs;
};

class BftNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    genesis_.chain_id = "bft-e2e";
    genesis_.genesis_time_ms = 1;
    std::vector<NodeKey> keys;
    std::vector<PeerInfo> peers;
    std::vector<CurveKeyPair> curves;
    for (int i = 0; i < kValidators; ++i) {
      KeyPair kp = Ed25519Sha256().GenerateKey();
      keys.push_back(NodeKey{"ed25519-sha256", kp.public_key, kp.secret_key});
      genesis_.validators.push_back(
          Validator{absl::StrCat("validator", i), kp.public_key, 1});
      absl::StatusOr<CurveKeyPair> curve = GenerateCurveKeyPair();
      ASSERT_TRUE(curve.ok()) << curve.status();
      curves.push_back(*curve);
      peers.push_back({absl::StrCat("node", i),
                       absl::StrCat("tcp://127.0.0.1:", Port()),
                       curve->public_key});
    }
    const std::string genesis_path = dir_.path() + "/genesis.json";
    ASSERT_TRUE(WriteFileAtomic(genesis_path, GenesisToJson(genesis_)).ok());
    json peers_json = json::array();
    for (const PeerInfo& p : peers) {
      peers_json.push_back({{"id", p.id},
                            {"endpoint", p.endpoint},
                            {"public_key", CurveKeyToZ85(p.public_key)}});
    }
    const std::string peers_path = dir_.path() + "/peers.json";
    ASSERT_TRUE(WriteFileAtomic(peers_path, peers_json.dump()).ok());

    for (int i = 0; i < kValidators; ++i) {
      auto n = std::make_unique<BftNode>();
      n->dir = absl::StrCat(dir_.path(), "/node", i);
      std::filesystem::create_directories(n->dir + "/data");
      ASSERT_TRUE(
          WriteFileAtomic(n->dir + "/node_key.json", NodeKeyToJson(keys[i]))
              .ok());
      ASSERT_TRUE(WriteFileAtomic(n->dir + "/p2p_key.json",
                                  CurveKeyPairToJson(curves[i]))
                      .ok());
      n->api = HttpTarget{"127.0.0.1", Port(), ""};
      n->common_flags = {
          absl::StrCat("--node_name=node", i),
          "--genesis=" + genesis_path,
          "--node_key=" + n->dir + "/node_key.json",
          "--data_dir=" + n->dir + "/data",
          absl::StrCat("--mempool_endpoint=tcp://127.0.0.1:", Port()),
          absl::StrCat("--storage_endpoint=tcp://127.0.0.1:", Port()),
          absl::StrCat("--storage_events=tcp://127.0.0.1:", Port()),
      };
      n->own_flags["consortia-api"] = {
          absl::StrCat("--api_port=", n->api.port)};
      n->own_flags["consortia-consensus"] = {
          "--consensus_p2p_endpoint=" + peers[i].endpoint,
          "--consensus_p2p_key=" + n->dir + "/p2p_key.json",
          "--consensus_peers=" + peers_path,
          "--consensus_timeout_propose_ms=1000",
          "--consensus_timeout_prevote_ms=300",
          "--consensus_timeout_precommit_ms=300",
          "--consensus_timeout_delta_ms=200",
          "--consensus_timeout_commit_ms=100",
          "--consensus_gossip_interval_ms=200",
      };
      nodes_.push_back(std::move(n));
    }
  }

  void TearDown() override {
    for (auto& n : nodes_) {
      for (const char* b : {"consortia-api", "consortia-consensus",
                            "consortia-mempool", "consortia-storage"}) {
        auto it = n->procs.find(b);
        if (it != n->procs.end()) it->second.Stop(absl::Seconds(20));
      }
    }
  }

  absl::Status StartProcess(BftNode& n, const std::string& binary) {
    std::vector<std::string> argv = {BinDir() + "/" + binary};
    argv.insert(argv.end(), n.common_flags.begin(), n.common_flags.end());
    auto own = n.own_flags.find(binary);
    if (own != n.own_flags.end()) {
      argv.insert(argv.end(), own->second.begin(), own->second.end());
    }
    absl::StatusOr<ChildProcess> p =
        ChildProcess::Start(argv, n.dir + "/" + binary + ".log");
    if (!p.ok()) return p.status();
    n.procs.erase(binary);
    n.procs.emplace(binary, *std::move(p));
    return absl::OkStatus();
  }

  std::string LogTail(const BftNode& n, const std::string& binary) const {
    absl::StatusOr<std::string> text = ReadFile(n.dir + "/" + binary + ".log");
    if (!text.ok()) return "";
    return text->size() > 3000 ? text->substr(text->size() - 3000) : *text;
  }

  void StartAll() {
    for (auto& n : nodes_) {
      for (const char* b : {"consortia-storage", "consortia-mempool",
                            "consortia-consensus", "consortia-api"}) {
        ASSERT_TRUE(StartProcess(*n, b).ok());
      }
    }
    for (auto& n : nodes_) {
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      bool ready = false;
      while (!ready && absl::Now() < deadline) {
        auto r = HttpCall(n->api, "GET", "/readyz", "", "", absl::Seconds(2));
        ready = r.ok() && r->status == 200;
        if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      ASSERT_TRUE(ready) << LogTail(*n, "consortia-consensus");
    }
  }

  // The node's latest height (0 when it has no block yet).
  uint64_t Height(const BftNode& n) const {
    auto r = HttpCall(n.api, "GET", "/v1/blocks/latest");
    if (!r.ok() || r->status != 200) return 0;
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_object()) return 0;
    return j["header"]["height"].get<uint64_t>();
  }

  std::string BlockHashAt(const BftNode& n, uint64_t h) const {
    auto r = HttpCall(n.api, "GET", absl::StrCat("/v1/blocks/", h));
    if (!r.ok() || r->status != 200) return "";
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_object()) return "";
    return j["block_hash"].get<std::string>();
  }

  template <typename F>
  bool WaitUntil(F cond, absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return cond();
  }

  bool Committed(const BftNode& n, const Hash32& hash) const {
    auto r = HttpCall(n.api, "GET", "/v1/txs/" + ToHex(hash));
    return r.ok() && r->status == 200;
  }

  // Every node that has height h reports the same hash for it.
  void ExpectSameHashes(uint64_t up_to, const std::vector<int>& which) {
    for (uint64_t h = 1; h <= up_to; ++h) {
      const std::string first = BlockHashAt(*nodes_[which[0]], h);
      ASSERT_FALSE(first.empty()) << "node" << which[0] << " lacks " << h;
      for (int i : which) {
        EXPECT_EQ(BlockHashAt(*nodes_[i], h), first)
            << "node" << i << " differs at height " << h;
      }
    }
  }

  std::vector<Hash32> Submit(BftNode& n, int count, uint64_t nonce_base) {
    std::vector<Hash32> out;
    const uint64_t h = Height(n);
    for (int i = 0; i < count; ++i) {
      Transaction tx =
          SignedTx(client_, genesis_.chain_id, nonce_base + i, h + 1000, "kv",
                   "set", {absl::StrCat("k", nonce_base + i), "v"});
      auto r = HttpCall(n.api, "POST", "/v1/txs", TxToJson(tx));
      EXPECT_TRUE(r.ok() && r->status == 202)
          << (r.ok() ? r->body : r.status().ToString());
      out.push_back(TxHash(Ed25519Sha256(), tx));
    }
    return out;
  }

  TempDir dir_;
  Genesis genesis_;
  std::vector<std::unique_ptr<BftNode>> nodes_;
  KeyPair client_ = TestKey(9);
};

TEST_F(BftNetworkTest, FourValidatorsAgreeAndSurviveAKilledValidator) {
  StartAll();
  if (HasFatalFailure()) return;

  // Txs sent to every node are committed, and visible on every node.
  std::vector<Hash32> hashes;
  for (int i = 0; i < kValidators; ++i) {
    for (const Hash32& h : Submit(*nodes_[i], 3, 100 * (i + 1))) {
      hashes.push_back(h);
    }
  }
  for (const Hash32& h : hashes) {
    for (auto& n : nodes_) {
      ASSERT_TRUE(WaitUntil([&] { return Committed(*n, h); }))
          << ToHex(h) << "\n"
          << LogTail(*n, "consortia-consensus");
    }
  }
  uint64_t common = Height(*nodes_[0]);
  for (auto& n : nodes_) common = std::min(common, Height(*n));
  ASSERT_GE(common, 1u);
  ExpectSameHashes(common, {0, 1, 2, 3});

  // SIGKILL validator 3's consensus: the other three keep committing.
  nodes_[3]->procs.at("consortia-consensus").Signal(SIGKILL);
  (void)nodes_[3]->procs.at("consortia-consensus").Wait(absl::Seconds(10));
  const uint64_t at_kill = Height(*nodes_[0]);
  std::vector<Hash32> while_down = Submit(*nodes_[1], 3, 1000);
  for (const Hash32& h : while_down) {
    ASSERT_TRUE(WaitUntil([&] { return Committed(*nodes_[1], h); }))
        << LogTail(*nodes_[1], "consortia-consensus");
  }
  ASSERT_TRUE(WaitUntil([&] {
    return Height(*nodes_[0]) >= at_kill + 3 &&
           Height(*nodes_[2]) >= at_kill + 3;
  }));

  // Restarted (same WAL, same storage), it catches up with the others.
  ASSERT_TRUE(StartProcess(*nodes_[3], "consortia-consensus").ok());
  const uint64_t target = Height(*nodes_[0]) + 2;
  ASSERT_TRUE(WaitUntil([&] { return Height(*nodes_[3]) >= target; }))
      << LogTail(*nodes_[3], "consortia-consensus");
  for (const Hash32& h : while_down) EXPECT_TRUE(Committed(*nodes_[3], h));
  ExpectSameHashes(target, {0, 1, 2, 3});
}

}  // namespace
}  // namespace consortia::testing
