// The mempool service over the bus, in one process: a fake storage serves
// the mempool's CommitHistory and publishes block.committed; clients reach the
// mempool through MakeRemoteMempool, exactly as the api and consensus do.
#include "consortia/mempool/mempool_service.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/peer_net.h"
#include "consortia/peers_file.h"
#include "consortia/service_api.h"
#include "consortia/testing/fake_storage_queries.h"
#include "consortia/thread_pool.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "zmq.hpp"

namespace consortia::mempool {
namespace {

using ::consortia::testing::FakeCommitHistory;
using testing::Committed;
using testing::kChainId;
using testing::MakeTx;
using testing::SignedTx;
using testing::WaitFor;

class MempoolServiceTest : public ::testing::Test {
 protected:
  MempoolServiceTest() : exec_pool_(2) {
    static std::atomic<int> counter{0};
    const std::string unique = absl::StrCat(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
        getpid(), "-", counter++);
    dir_ = std::filesystem::path(::testing::TempDir()) / ("mempool-" + unique);
    std::filesystem::create_directories(dir_);
    Genesis g;
    g.chain_id = kChainId;
    g.validators = {{"node0", Ed25519Sha256().GenerateKey().public_key, 1}};
    EXPECT_TRUE(
        WriteFileAtomic((dir_ / "genesis.json").string(), GenesisToJson(g))
            .ok());

    node_.node_name = "node0";
    node_.genesis_path = (dir_ / "genesis.json").string();
    node_.mempool_endpoint = absl::StrCat("inproc://mempool-", unique);
    node_.storage_endpoint = absl::StrCat("inproc://storage-", unique);
    node_.storage_events = absl::StrCat("inproc://events-", unique);
    node_.bus_timeout = absl::Seconds(10);
  }

  ~MempoolServiceTest() override {
    service_.reset();
    storage_.reset();
    publisher_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void StartStorage() {
    absl::StatusOr<std::unique_ptr<BusServer>> s = StartBusServer(
        ctx_, node_.storage_endpoint, "storage",
        ServeStorage({.commit_history = &history_}, exec_pool_.AsExecutor()));
    ASSERT_TRUE(s.ok()) << s.status();
    storage_ = *std::move(s);
  }

  void StartPublisher() {
    absl::StatusOr<std::unique_ptr<Publisher>> p =
        consortia::StartPublisher(ctx_, node_.storage_events, "storage");
    ASSERT_TRUE(p.ok()) << p.status();
    publisher_ = *std::move(p);
  }

  void StartMempool(MempoolOptions options = {}) {
    absl::StatusOr<std::unique_ptr<MempoolService>> s =
        MempoolService::Start(node_, options, ctx_, registry_);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = *std::move(s);
  }

  std::unique_ptr<MempoolApi> Client() {
    absl::StatusOr<std::unique_ptr<BusClient>> c =
        ConnectBusClient(ctx_, node_.mempool_endpoint, "test");
    EXPECT_TRUE(c.ok()) << c.status();
    clients_.push_back(*std::move(c));
    return MakeRemoteMempool(clients_.back().get(), absl::Seconds(10));
  }

  // Publishes a commit until the mempool has applied it (the subscription
  // may not be connected yet when the first copy goes out).
  void Commit(MempoolApi& api, const CommittedEvent& e) {
    history_.AddEvent(e);
    publisher_->Publish(kTopicBlockCommitted,
                        static_cast<uint16_t>(MsgType::kEventBlockCommitted),
                        EncodeCommittedEvent(e));
    ASSERT_TRUE(WaitFor([&] { return api.Reap({1, 1, e.height}).ok(); }));
  }

  std::filesystem::path dir_;
  NodeConfig node_;
  zmq::context_t ctx_;
  MetricsRegistry registry_;
  ThreadPool exec_pool_;
  FakeCommitHistory history_;
  std::unique_ptr<BusServer> storage_;
  std::unique_ptr<Publisher> publisher_;
  std::vector<std::unique_ptr<BusClient>> clients_;
  std::unique_ptr<MempoolService> service_;
  KeyPair alice_ = Ed25519Sha256().GenerateKey();
};

TEST_F(MempoolServiceTest, AdmitsReapsAndForgetsCommittedTxs) {
  history_.GrowTo(3);
  StartStorage();
  StartPublisher();
  StartMempool();
  ASSERT_TRUE(WaitFor([&] { return service_->Ready(); }));
  std::unique_ptr<MempoolApi> api = Client();

  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  Transaction forged = MakeTx(alice_, 3, 100);
  forged.signature[2] ^= 1;
  absl::StatusOr<std::vector<SubmitResult>> r =
      api->Submit({a, EncodeTx(forged), b});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].code, Admission::kAccepted);
  EXPECT_EQ((*r)[1].code, Admission::kBadSignature);
  EXPECT_EQ((*r)[2].code, Admission::kAccepted);

  absl::StatusOr<std::vector<Bytes>> reaped = api->Reap({100, 1 << 20, 3});
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, (std::vector<Bytes>{a, b}));

  Commit(*api, {4, {}, {Committed(a)}, {}, false, std::nullopt});
  reaped = api->Reap({100, 1 << 20, 4});
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, std::vector<Bytes>{b});
  r = api->Submit({a});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);

  const std::string text = registry_.Serialize();
  EXPECT_NE(text.find("consortia_mempool_admitted_total"), std::string::npos);
  EXPECT_NE(text.find("reason=\"bad_signature\""), std::string::npos) << text;
}

TEST_F(MempoolServiceTest, ChecksAProposalOverTheBusWithTheSignatureCache) {
  history_.GrowTo(2);
  StartStorage();
  StartPublisher();
  StartMempool();
  ASSERT_TRUE(WaitFor([&] { return service_->Ready(); }));
  std::unique_ptr<MempoolApi> api = Client();

  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  ASSERT_TRUE(api->Submit({a, b}).ok());
  Transaction forged = MakeTx(alice_, 3, 100);
  forged.signature[0] ^= 1;
  absl::StatusOr<std::vector<ProposalTxCheck>> c =
      api->CheckProposal({a, b, EncodeTx(forged)}, 3);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ((*c)[0].code, Admission::kAccepted);
  EXPECT_EQ((*c)[1].code, Admission::kAccepted);
  EXPECT_EQ((*c)[2].code, Admission::kBadSignature);
  EXPECT_EQ((*c)[0].tx_hash, testing::HashOf(a));
  const std::string text = registry_.Serialize();
  EXPECT_NE(
      text.find(
          "consortia_mempool_sig_cache_hits_total{call=\"check_proposal\"} 2"),
      std::string::npos)
      << text;

  // A height whose parent never gets committed: the whole call fails.
  absl::StatusOr<std::vector<ProposalTxCheck>> ahead =
      api->CheckProposal({a}, 50);
  EXPECT_TRUE(absl::IsUnavailable(ahead.status())) << ahead.status();
}

// Pending txs live in memory only: a restarted mempool has lost them, still
// refuses replays of committed ones (it rebuilds the window from storage),
// and a client that resubmits everything it has not seen committed is safe,
// because admission is idempotent by tx hash.
TEST_F(MempoolServiceTest, RestartLosesPendingTxsAndResubmissionIsSafe) {
  history_.GrowTo(2);
  StartStorage();
  StartPublisher();
  StartMempool();
  ASSERT_TRUE(WaitFor([&] { return service_->Ready(); }));
  std::unique_ptr<MempoolApi> api = Client();

  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  absl::StatusOr<std::vector<SubmitResult>> r = api->Submit({a, b});
  ASSERT_TRUE(r.ok()) << r.status();
  Commit(*api, {3, {}, {Committed(a)}, {}, false, std::nullopt});

  // Restart: the old process is gone, a new one starts on the same
  // endpoints.
  api.reset();
  clients_.clear();
  service_.reset();
  StartMempool();
  ASSERT_TRUE(WaitFor([&] { return service_->Ready(); }));
  api = Client();

  absl::StatusOr<std::vector<Bytes>> reaped = api->Reap({100, 1 << 20, 3});
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_TRUE(reaped->empty()) << "pending txs survived a restart";

  // The client resubmits both: the committed one is refused as a replay,
  // the lost one is admitted again, under the same hash.
  r = api->Submit({a, b});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);
  EXPECT_EQ((*r)[1].code, Admission::kAccepted);
  EXPECT_EQ((*r)[1].tx_hash, testing::HashOf(b));
  // Resubmitting again is harmless.
  r = api->Submit({b});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyPending);
  reaped = api->Reap({100, 1 << 20, 3});
  ASSERT_TRUE(reaped.ok());
  EXPECT_EQ(*reaped, std::vector<Bytes>{b});
}

TEST_F(MempoolServiceTest, WaitsForStorageBeforeBecomingReady) {
  StartPublisher();
  StartMempool();
  std::unique_ptr<MempoolApi> api = Client();
  absl::StatusOr<std::vector<SubmitResult>> r =
      api->Submit({SignedTx(alice_, 1, 100)});
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_FALSE(service_->Ready());

  history_.GrowTo(7);
  StartStorage();
  ASSERT_TRUE(WaitFor([&] { return service_->Ready(); }));
  r = api->Submit({SignedTx(alice_, 1, 7)});
  ASSERT_TRUE(r.ok()) << r.status();
  // The next height is 8: the rebuilt window counts.
  EXPECT_EQ((*r)[0].code, Admission::kExpired);
}

TEST_F(MempoolServiceTest, RefusesToStartWithoutAGenesis) {
  node_.genesis_path = (dir_ / "missing.json").string();
  absl::StatusOr<std::unique_ptr<MempoolService>> s =
      MempoolService::Start(node_, MempoolOptions{}, ctx_, registry_);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  // LoadGenesis's wording, as in every service.
  EXPECT_EQ(
      s.status().message().find("genesis: cannot open " + node_.genesis_path),
      0u)
      << s.status();
}

TEST_F(MempoolServiceTest, RefusesInvalidOptions) {
  MempoolOptions o;
  o.max_txs = 0;
  absl::StatusOr<std::unique_ptr<MempoolService>> s =
      MempoolService::Start(node_, o, ctx_, registry_);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
}

// Writes a CurveZMQ key for each of `ids` and a peers file naming them with
// mempool endpoints on free loopback ports; returns the options of each.
std::vector<MempoolOptions> GossipOptionsFor(
    const std::filesystem::path& dir, const std::vector<std::string>& ids) {
  std::vector<PeersFileEntry> entries;
  std::vector<MempoolOptions> out;
  for (const std::string& id : ids) {
    absl::StatusOr<CurveKeyPair> keys = GenerateCurveKeyPair();
    EXPECT_TRUE(keys.ok()) << keys.status();
    const std::string key_path = (dir / (id + "-p2p_key.json")).string();
    EXPECT_TRUE(WriteFileAtomic(key_path, CurveKeyPairToJson(*keys)).ok());
    const std::string endpoint =
        absl::StrCat("tcp://127.0.0.1:", testing::ListenPort());
    // The consensus endpoint is not used here.
    entries.push_back({id, "tcp://127.0.0.1:1", endpoint, keys->public_key});
    MempoolOptions o;
    o.p2p_endpoint = endpoint;
    o.p2p_key_path = key_path;
    o.peers_path = (dir / "peers.json").string();
    out.push_back(o);
  }
  EXPECT_TRUE(
      WriteFileAtomic((dir / "peers.json").string(), PeersFileToJson(entries))
          .ok());
  return out;
}

TEST_F(MempoolServiceTest, GossipsSubmittedTxsToAnotherNodesMempool) {
  history_.GrowTo(1);
  StartStorage();
  StartPublisher();
  const std::vector<MempoolOptions> opts =
      GossipOptionsFor(dir_, {"node0", "node1"});
  StartMempool(opts[0]);
  // A second mempool of the same chain, with its own bus endpoint, reading
  // the same storage.
  NodeConfig other = node_;
  other.node_name = "node1";
  other.mempool_endpoint += "-node1";
  absl::StatusOr<std::unique_ptr<MempoolService>> second =
      MempoolService::Start(other, opts[1], ctx_, registry_);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(WaitFor([&] { return service_->Ready() && (*second)->Ready(); }));

  std::unique_ptr<MempoolApi> api = Client();
  const Bytes tx = SignedTx(alice_, 1, 100);
  absl::StatusOr<std::vector<SubmitResult>> r = api->Submit({tx});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)[0].code, Admission::kAccepted);

  absl::StatusOr<std::unique_ptr<BusClient>> c =
      ConnectBusClient(ctx_, other.mempool_endpoint, "test");
  ASSERT_TRUE(c.ok()) << c.status();
  std::unique_ptr<MempoolApi> api1 =
      MakeRemoteMempool(c->get(), absl::Seconds(10));
  // Gossip brought it: node1's pool holds it, and a resubmission there is
  // already pending.
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<std::vector<Bytes>> reaped = api1->Reap({10, 1 << 20, 0});
    return reaped.ok() && reaped->size() == 1 && (*reaped)[0] == tx;
  }));
  r = api1->Submit({tx});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyPending);
  EXPECT_NE(registry_.Serialize().find(
                "consortia_mempool_gossip_txs_admitted_total 1"),
            std::string::npos);
  api1.reset();
  c->reset();
  second->reset();
}

TEST_F(MempoolServiceTest, RefusesGossipWithABadKeyOrPeersFile) {
  std::vector<MempoolOptions> opts = GossipOptionsFor(dir_, {"node0"});
  MempoolOptions o = opts[0];
  o.p2p_key_path = (dir_ / "missing.json").string();
  EXPECT_FALSE(MempoolService::Start(node_, o, ctx_, registry_).ok());
  o = opts[0];
  o.peers_path = (dir_ / "missing.json").string();
  EXPECT_FALSE(MempoolService::Start(node_, o, ctx_, registry_).ok());
  // A key that is not in the peers file.
  absl::StatusOr<CurveKeyPair> stranger = GenerateCurveKeyPair();
  ASSERT_TRUE(stranger.ok());
  o = opts[0];
  o.p2p_key_path = (dir_ / "stranger.json").string();
  ASSERT_TRUE(
      WriteFileAtomic(o.p2p_key_path, CurveKeyPairToJson(*stranger)).ok());
  absl::StatusOr<std::unique_ptr<MempoolService>> s =
      MempoolService::Start(node_, o, ctx_, registry_);
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
}

}  // namespace
}  // namespace consortia::mempool
