// End-to-end: four validators, each the four real service processes on
// loopback ports, running Tendermint among their consensus services over
// CurveZMQ, under a steady tx load. Each scenario injects a fault and then
// checks the two things a consortium relies on: every node holds the same
// block hash at every height, and no tx the api acknowledged as committed
// is missing from any node.
//   - kill -9 of the whole node of the current proposer; it restarts and
//     catches up by block sync;
//   - one validator cut off by a fault-injecting proxy, then healed;
//   - two of four stopped: commits halt (no quorum) without any fork; one
//     restarted: commits resume; the other restarted: it catches up;
//   - a validator's key signing conflicting votes: every node keeps the
//     evidence, the api lists it, and it verifies against the genesis;
//   - one authenticated peer flooding status messages, oversized proposals
//     and votes: the budgets shed it and the chain goes on.
#include <atomic>
#include <deque>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/codec.h"
#include "consortia/peer_net.h"
#include "consortia/service_api.h"
#include "gtest/gtest.h"
#include "network_harness.h"
#include "nlohmann/json.hpp"
#include "tendermint/messages.h"
#include "zmq.hpp"

namespace consortia::testing {
namespace {

constexpr char kConsensus[] = "consortia-consensus";

// Submits one tx about every 50 ms to the nodes marked live, in turn, and
// remembers which ones the api then reported as committed (GET /v1/txs
// answered 200 on the node it was sent to).
class TxLoad {
 public:
  TxLoad(const NetworkHarness* net, uint64_t nonce_base)
      : net_(net), nonce_(nonce_base), live_(net->size()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TxLoad() { Stop(); }

  void SetLive(int node, bool live) { live_.Set(node, live); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Hash32> Acknowledged() const {
    absl::MutexLock lock(&mu_);
    return acknowledged_;
  }
  uint64_t submitted() const {
    absl::MutexLock lock(&mu_);
    return submitted_;
  }

 private:
  struct Pending {
    Hash32 hash;
    int node = 0;
  };

  void Run() {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const int node = live_.Next();
      if (node < 0) continue;
      absl::StatusOr<Hash32> h =
          net_->SubmitTx(node, net_->MakeTx(node, nonce_));
      ++nonce_;
      if (h.ok()) {
        absl::MutexLock lock(&mu_);
        ++submitted_;
        pending_.push_back({*h, node});
      }
      // Look at a few of the oldest pending txs on their own node.
      for (int k = 0; k < 4; ++k) {
        Pending p;
        {
          absl::MutexLock lock(&mu_);
          if (pending_.empty()) break;
          p = pending_.front();
          pending_.pop_front();
          if (!live_.Live(p.node)) {
            pending_.push_back(p);
            continue;
          }
        }
        const bool committed = net_->Committed(p.node, p.hash);
        absl::MutexLock lock(&mu_);
        if (committed) {
          acknowledged_.push_back(p.hash);
        } else if (pending_.size() < 5000) {
          pending_.push_back(p);
        }
      }
    }
  }

  const NetworkHarness* const net_;
  uint64_t nonce_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  LiveNodes live_;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<Hash32> acknowledged_ ABSL_GUARDED_BY(mu_);
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

class BftNetworkTest : public ::testing::Test {
 protected:
  // The test itself as the allow-listed "tester" p2p identity
  // (NetworkOptions::tester_peer), on its own context.
  absl::StatusOr<std::unique_ptr<PeerNet>> JoinAsTester(zmq::context_t& ctx) {
    absl::StatusOr<std::shared_ptr<ZapAuthenticator>> zap =
        StartZapAuthenticator(ctx, AllowListOf(net_->peers()));
    if (!zap.ok()) return zap.status();
    PeerNetOptions po;
    po.node_id = net_->tester().id;
    po.bind_endpoint = net_->tester().endpoint;
    po.key_pair = net_->tester_key();
    po.peers = net_->peers();
    po.authenticator = *zap;
    return StartPeerNet(ctx, std::move(po));
  }

  void Start(NetworkOptions options = {}) {
    net_ = std::make_unique<NetworkHarness>(std::move(options));
    ASSERT_TRUE(net_->StartAll().ok());
  }

  uint64_t MaxHeight(const std::vector<int>& nodes) const {
    uint64_t h = 0;
    for (int i : nodes) h = std::max(h, net_->Height(i));
    return h;
  }
  uint64_t MinHeight(const std::vector<int>& nodes) const {
    uint64_t h = UINT64_MAX;
    for (int i : nodes) h = std::min(h, net_->Height(i));
    return h;
  }
  ::testing::AssertionResult AllReach(
      uint64_t height, const std::vector<int>& nodes,
      absl::Duration timeout = absl::Seconds(90)) const {
    if (NetworkHarness::WaitUntil([&] { return MinHeight(nodes) >= height; },
                                  timeout)) {
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

  // The end-of-scenario checks, on every node.
  void ExpectConsistent(const TxLoad& load) {
    const std::vector<int> all = {0, 1, 2, 3};
    const uint64_t top = MaxHeight(all);
    ASSERT_TRUE(AllReach(top, all));
    EXPECT_TRUE(net_->SameHashes(top, all));
    const std::vector<Hash32> acked = load.Acknowledged();
    EXPECT_GT(acked.size(), 0u) << "the load never saw a tx committed";
    for (const Hash32& h : acked) {
      for (int i : all) {
        EXPECT_TRUE(net_->Committed(i, h))
            << "acknowledged tx " << ToHex(h) << " missing on node" << i;
      }
    }
  }

  std::unique_ptr<NetworkHarness> net_;
};

// The crash scenario on every crypto suite (votes, proposals, certificates
// and the block sync's certificate checks all in the chain's suite).
class BftSuiteTest : public BftNetworkTest,
                     public ::testing::WithParamInterface<std::string> {};

INSTANTIATE_TEST_SUITE_P(Suites, BftSuiteTest,
                         ::testing::ValuesIn(AllCryptoSuites()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return SuiteTestName(info.param);
                         });

TEST_P(BftSuiteTest, KilledProposerCatchesUpByBlockSync) {
  NetworkOptions options;
  options.crypto_suite = GetParam();
  Start(options);
  if (HasFatalFailure()) return;
  TxLoad load(net_.get(), 1'000'000);
  ASSERT_TRUE(AllReach(3, {0, 1, 2, 3}));

  // kill -9 every process of the node proposing right now.
  const std::optional<double> p =
      net_->Metric(0, kConsensus, "consortia_consensus_proposer");
  ASSERT_TRUE(p.has_value());
  const int victim = static_cast<int>(*p);
  std::vector<int> others;
  for (int i = 0; i < 4; ++i) {
    if (i != victim) others.push_back(i);
  }
  load.SetLive(victim, false);
  net_->KillNode(victim);
  const uint64_t at_kill = MaxHeight(others);
  ASSERT_TRUE(AllReach(at_kill + 5, others));

  // Restarted on its own data: it fetches what it missed, then rejoins.
  ASSERT_TRUE(net_->StartNode(victim).ok());
  load.SetLive(victim, true);
  ASSERT_TRUE(AllReach(MaxHeight(others) + 2, {0, 1, 2, 3}));
  const std::optional<double> synced = net_->Metric(
      victim, kConsensus,
      "consortia_consensus_sync_blocks_total{direction=\"applied\"");
  ASSERT_TRUE(synced.has_value());
  EXPECT_GT(*synced, 0);
  load.Stop();
  ExpectConsistent(load);
}

TEST_F(BftNetworkTest, CutOffValidatorRejoinsWhenThePartitionHeals) {
  NetworkOptions options;
  options.proxied = true;
  Start(options);
  if (HasFatalFailure()) return;
  TxLoad load(net_.get(), 2'000'000);
  ASSERT_TRUE(AllReach(3, {0, 1, 2, 3}));

  // Node 3 can reach nobody and nobody can reach it; the three others are
  // a quorum and keep committing.
  net_->Isolate(3);
  const uint64_t at_cut = MaxHeight({0, 1, 2});
  ASSERT_TRUE(AllReach(at_cut + 6, {0, 1, 2}));
  // Alone, node 3 cannot have decided anything past the cut.
  EXPECT_LE(net_->Height(3), at_cut + 1);

  net_->HealAll();
  ASSERT_TRUE(AllReach(MaxHeight({0, 1, 2}) + 2, {0, 1, 2, 3}));
  load.Stop();
  ExpectConsistent(load);
}

TEST_F(BftNetworkTest, TwoOfFourDownHaltsSafelyAndOneBackResumes) {
  Start();
  if (HasFatalFailure()) return;
  TxLoad load(net_.get(), 3'000'000);
  ASSERT_TRUE(AllReach(3, {0, 1, 2, 3}));

  load.SetLive(2, false);
  load.SetLive(3, false);
  net_->StopNode(2);
  net_->StopNode(3);
  // A height whose precommits were already out may still finish; after
  // that, two of four are no quorum: nothing more can be decided.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const uint64_t halted = MaxHeight({0, 1});
  const uint64_t submitted_before = load.submitted();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  EXPECT_EQ(MaxHeight({0, 1}), halted) << "committed without a quorum";
  EXPECT_GT(load.submitted(), submitted_before)
      << "the api should keep accepting txs while consensus halts";

  // One back: three of four again, commits resume.
  ASSERT_TRUE(net_->StartNode(2).ok());
  load.SetLive(2, true);
  ASSERT_TRUE(AllReach(halted + 3, {0, 1, 2}));
  // The last one back catches up.
  ASSERT_TRUE(net_->StartNode(3).ok());
  load.SetLive(3, true);
  ASSERT_TRUE(AllReach(MaxHeight({0, 1, 2}) + 1, {0, 1, 2, 3}));
  load.Stop();
  ExpectConsistent(load);
}

TEST_F(BftNetworkTest, EquivocationIsKeptAndServedByEveryNode) {
  NetworkOptions options;
  options.tester_peer = true;
  Start(options);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(AllReach(2, {0, 1, 2, 3}));

  // The test joins as the allow-listed "tester" identity and relays two
  // prevotes signed with validator 1's key for different blocks in the same
  // round, as validator 1 would if it were faulty.
  zmq::context_t ctx;
  absl::StatusOr<std::unique_ptr<PeerNet>> tester = JoinAsTester(ctx);
  ASSERT_TRUE(tester.ok()) << tester.status();
  const NodeKey& key = net_->node_key(1);
  auto evidence_on = [&](int node) {
    auto r = HttpCall(net_->api(node), "GET", "/v1/evidence");
    if (!r.ok() || r->status != 200) return nlohmann::json();
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    return j.is_object() ? j["evidence"] : nlohmann::json();
  };
  ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
    const uint64_t h = MaxHeight({0, 1, 2, 3}) + 1;
    for (const char* tag : {"block-x", "block-y"}) {
      Vote v;
      v.type = VoteType::kPrevote;
      v.height = h;
      v.round = 0;
      v.block_hash = Ed25519Sha256().Hash(ToBytes(tag));
      v.validator_index = 1;
      v.signature = *Ed25519Sha256().Sign(
          key.secret_key, VoteSignBytes(net_->genesis().chain_id, v));
      (*tester)->Broadcast(static_cast<uint16_t>(MsgType::kConsensusVote),
                           consensus::tendermint::EncodeMessage(v));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return evidence_on(0).size() > 0;
  })) << net_->LogTail(0, kConsensus);

  // Every node that saw both votes keeps and serves the evidence; what it
  // serves is the proof itself, checkable by anyone with the genesis.
  for (int i : {0, 2, 3}) {
    ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
      return evidence_on(i).size() > 0;
    })) << "node"
        << i;
    const nlohmann::json e = evidence_on(i)[0];
    EXPECT_EQ(e["kind"], "duplicate_vote");
    EXPECT_EQ(e["validator_index"], 1);
    EXPECT_EQ(e["message"]["encoding"], "consortia-evidence-v1");
    absl::StatusOr<Bytes> raw = FromHex(e["message"]["hex"].get<std::string>());
    ASSERT_TRUE(raw.ok());
    absl::StatusOr<consensus::tendermint::Evidence> ev =
        consensus::tendermint::DecodeEvidence(*raw);
    ASSERT_TRUE(ev.ok()) << ev.status();
    EXPECT_TRUE(consensus::tendermint::VerifyEvidence(Ed25519Sha256(),
                                                      net_->genesis(), *ev)
                    .ok());
    const std::optional<double> counted =
        net_->Metric(i, kConsensus, "consortia_consensus_evidence_total");
    ASSERT_TRUE(counted.has_value());
    EXPECT_GE(*counted, 1);
  }
  // The chain goes on, and agrees.
  tester->reset();
  const uint64_t h = MaxHeight({0, 1, 2, 3});
  ASSERT_TRUE(AllReach(h + 2, {0, 1, 2, 3}));
  EXPECT_TRUE(net_->SameHashes(h + 2, {0, 1, 2, 3}));
}

TEST_F(BftNetworkTest, FloodingPeerIsShedAndTheChainGoesOn) {
  // Blocks of at most 1 MiB of txs (a chain rule of the genesis): the
  // nodes' limit for a proposal or commit message is then a little over
  // 1 MiB.
  constexpr uint64_t kBlockBytes = 1 << 20;
  NetworkOptions options;
  options.tester_peer = true;
  options.chain_rules.max_block_bytes = kBlockBytes;
  Start(options);
  if (HasFatalFailure()) return;
  const std::vector<int> all = {0, 1, 2, 3};
  TxLoad load(net_.get(), 5'000'000);
  ASSERT_TRUE(AllReach(3, all));

  // The block interval without the flood (measured, not asserted).
  const auto interval_over = [&](absl::Duration window) {
    const uint64_t h0 = MinHeight(all);
    const absl::Time t0 = absl::Now();
    absl::SleepFor(window);
    const uint64_t h1 = MinHeight(all);
    return h1 > h0 ? (absl::Now() - t0) / static_cast<double>(h1 - h0)
                   : absl::InfiniteDuration();
  };
  const absl::Duration calm = interval_over(absl::Seconds(5));

  // The test joins as the allow-listed "tester" (listed without a role, so
  // treated as a validator's node: the worst case) and floods every node.
  zmq::context_t ctx;
  absl::StatusOr<std::unique_ptr<PeerNet>> tester = JoinAsTester(ctx);
  ASSERT_TRUE(tester.ok()) << tester.status();

  Encoder enc;
  enc.PutVarint(1);
  const Bytes status = enc.Take();  // Status{height=1}: "send me everything"
  // A proposal over the limit, from the right proposer of the next height,
  // with a garbage signature: dropped unread, by size.
  consensus::tendermint::Proposal big;
  big.height = MaxHeight(all) + 1;
  big.proposer_index = consensus::tendermint::ProposerIndex(big.height, 0, 4);
  big.block.header.chain_id = net_->genesis().chain_id;
  big.block.header.height = big.height;
  for (int i = 0; i < 7; ++i) big.block.txs.push_back(Bytes(200'000, 'x'));
  big.signature = Bytes(64, 0xee);
  const Bytes oversized = consensus::tendermint::EncodeMessage(big);
  ASSERT_GT(oversized.size(), kBlockBytes + 300'000);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread flood([&] {
    std::mt19937_64 rng(11);
    uint64_t burst = 0;
    uint64_t h = 0;
    while (!stop) {
      if (burst % 200 == 0) h = MaxHeight(all);
      for (int i = 0; i < 50; ++i) {
        (*tester)->Broadcast(static_cast<uint16_t>(MsgType::kConsensusStatus),
                             status);
        // Votes of every kind: any validator, this height or the next two,
        // any round up to far away, garbage signatures.
        Vote v;
        v.type = rng() % 2 ? VoteType::kPrevote : VoteType::kPrecommit;
        v.height = h + 1 + rng() % 3;
        v.round = static_cast<uint32_t>(rng() % 2 ? rng() % 4 : rng());
        v.validator_index = static_cast<uint32_t>(rng() % 4);
        v.block_hash[0] = static_cast<uint8_t>(rng());
        v.signature = Bytes(64, static_cast<uint8_t>(rng()));
        (*tester)->Broadcast(static_cast<uint16_t>(MsgType::kConsensusVote),
                             consensus::tendermint::EncodeMessage(v));
      }
      if (++burst % 20 == 0) {
        (*tester)->Broadcast(static_cast<uint16_t>(MsgType::kConsensusProposal),
                             oversized);
      }
      sent += 101;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });

  // The honest validators keep committing under the flood.
  const absl::Time flood_start = absl::Now();
  const uint64_t before = MinHeight(all);
  const absl::Duration flooded = interval_over(absl::Seconds(5));
  EXPECT_TRUE(AllReach(before + 5, all, absl::Seconds(120)));
  const absl::Duration flood_time = absl::Now() - flood_start;

  // The counters show the flood being shed, and memory stays bounded.
  for (int i : all) {
    const auto dropped = [&](const char* reason) {
      return net_
          ->MetricSum(i, kConsensus,
                      "consortia_consensus_peer_messages_dropped_total",
                      absl::StrCat("reason=\"", reason, "\""))
          .value_or(-1);
    };
    const double over_budget = dropped("over_budget");
    const double backed_off = dropped("backed_off");
    const double oversized_dropped = dropped("oversized");
    EXPECT_GT(over_budget + backed_off, 0) << "node" << i;
    EXPECT_GT(oversized_dropped + backed_off, 0) << "node" << i;
    const double served =
        net_->Metric(i, kConsensus,
                     "consortia_consensus_sync_requests_total{outcome="
                     "\"served\"}")
            .value_or(-1);
    const double skipped =
        net_->Metric(i, kConsensus,
                     "consortia_consensus_sync_requests_total{outcome="
                     "\"skipped\"}")
            .value_or(-1);
    EXPECT_GT(skipped, 0) << "node" << i;
    // At most one answer per peer (4 others and the tester) per gossip
    // interval (200 ms), generously: thousands of Status{1} came in.
    EXPECT_LE(served, 5 * 5 * (absl::ToDoubleSeconds(flood_time) + 30))
        << "node" << i;
    const double queued =
        net_->Metric(i, kConsensus,
                     "consortia_consensus_inbound_queued_messages")
            .value_or(-1);
    EXPECT_LE(queued, 5 * 1000) << "node" << i;  // per-peer caps
    const std::optional<uint64_t> rss = net_->RssBytes(i, kConsensus);
    ASSERT_TRUE(rss.has_value());
    EXPECT_LT(*rss, uint64_t{1} << 30) << "node" << i;
    std::cout << "node" << i << ": over_budget " << over_budget
              << ", backed_off " << backed_off << ", oversized "
              << oversized_dropped << ", sync served " << served << ", skipped "
              << skipped << ", consensus RSS " << *rss / (1 << 20) << " MiB\n";
  }
  stop = true;
  flood.join();
  std::cout << "flood: " << sent.load() << " messages offered in "
            << absl::FormatDuration(flood_time) << "; block interval "
            << absl::FormatDuration(calm) << " without the flood, "
            << absl::FormatDuration(flooded) << " under it\n";
  tester->reset();
  const uint64_t h = MaxHeight(all);
  ASSERT_TRUE(AllReach(h + 2, all));
  EXPECT_TRUE(net_->SameHashes(h + 2, all));
  load.Stop();
  ExpectConsistent(load);
}

}  // namespace
}  // namespace consortia::testing
