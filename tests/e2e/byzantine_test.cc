// End-to-end: a consortium member that lies. Four validators, each the four
// real service processes on loopback; validator 0 runs a test-only mempool
// (consortia-mempool-liar) that admits a tx with a forged signature "from"
// another member's key and vouches for it in every proposal. While the
// honest validators' mempools are frozen (SIGSTOP: they answer nothing, as
// when stopped, slow or restarting), the honest consensus services must
// check the proposal's txs themselves: the forged tx is never committed,
// the member's record never changes, and the chain goes on once the
// mempools are back.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/types.h"
#include "gtest/gtest.h"
#include "network_harness.h"
#include "nlohmann/json.hpp"

namespace consortia::testing {
namespace {

constexpr char kConsensus[] = "consortia-consensus";
constexpr char kMempool[] = "consortia-mempool";

std::optional<std::string> RecordValue(const NetworkHarness& net, int node,
                                       const std::string& key) {
  auto r = HttpCall(net.api(node), "GET", "/v1/state/kv/" + key, "", "",
                    absl::Seconds(5));
  if (!r.ok() || r->status != 200) return std::nullopt;
  return nlohmann::json::parse(r->body)["value"].get<std::string>();
}

double MetricOr0(const NetworkHarness& net, int node, const std::string& bin,
                 const std::string& sample) {
  return net.Metric(node, bin, sample).value_or(0);
}

// On every crypto suite: the forged signature, the honest validators' own
// checks, the votes and certificates are all of the chain's suite.
class ByzantineE2eTest : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Suites, ByzantineE2eTest,
                         ::testing::ValuesIn(AllCryptoSuites()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return SuiteTestName(info.param);
                         });

TEST_P(ByzantineE2eTest, LyingProposerNeverGetsAForgedTxCommitted) {
  NetworkOptions o;
  o.crypto_suite = GetParam();
  o.replace_binary[0][kMempool] = "consortia-mempool-liar";
  // The liar cannot gossip (it has no p2p side); the honest mempools do
  // not need to for this scenario.
  o.mempool_gossip = false;
  NetworkHarness net(o);
  ASSERT_TRUE(net.StartAll().ok());

  // The member's record, set by its own key through an honest node.
  const KeyPair& member = net.client();
  const uint64_t h0 = net.Height(1);
  absl::StatusOr<Hash32> set = net.SubmitTx(
      1, SignedTx(member, net.genesis().chain_id, 1, h0 + 1000, "kv", "set",
                  {"owned", "original"}, net.suite()));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
    for (int i = 0; i < 4; ++i) {
      if (!net.Committed(i, *set)) return false;
    }
    return true;
  })) << "the member's own tx was not committed";

  // The forgery: the member's key as sender, another key's signature.
  const KeyPair attacker = net.suite().GenerateKey();
  Transaction forged =
      SignedTx(member, net.genesis().chain_id, 2, net.Height(0) + 1000, "kv",
               "set", {"owned", "forged"}, net.suite());
  forged.signature =
      *net.suite().Sign(attacker.secret_key, TxSignBytes(forged));
  absl::StatusOr<Hash32> forged_hash = net.SubmitTx(0, forged);
  ASSERT_TRUE(forged_hash.ok())
      << "the lying mempool must take the forged tx: " << forged_hash.status();

  // The honest mempools freeze: no verdict on any proposal, no txs to reap.
  for (int i = 1; i < 4; ++i) net.Pause(i, kMempool);
  const std::string invalid =
      "consortia_consensus_block_checks_total{outcome=\"invalid\"}";
  const std::string self_verified =
      "consortia_consensus_self_verified_txs_total";
  // Validator 0 proposes the forged tx in its rounds; each honest validator
  // checks it itself and finds it invalid.
  const bool judged = NetworkHarness::WaitUntil(
      [&] {
        for (int i = 1; i < 4; ++i) {
          if (MetricOr0(net, i, kConsensus, invalid) < 1) return false;
        }
        return true;
      },
      absl::Seconds(90));
  for (int i = 1; i < 4; ++i) net.Resume(i, kMempool);
  EXPECT_TRUE(judged) << "the honest validators never judged a forged "
                         "proposal:\n"
                      << net.LogTail(1, kConsensus);
  for (int i = 1; i < 4; ++i) {
    EXPECT_GE(MetricOr0(net, i, kConsensus, self_verified), 1) << i;
  }

  // Back to normal: the chain goes on and takes honest txs.
  const uint64_t h1 = net.Height(1);
  const std::vector<Hash32> after = net.Submit(2, 3, 100);
  ASSERT_FALSE(after.empty());
  ASSERT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (net.Height(i) < h1 + 3) return false;
          for (const Hash32& h : after) {
            if (!net.Committed(i, h)) return false;
          }
        }
        return true;
      },
      absl::Seconds(90)))
      << net.LogTail(1, kConsensus);
  EXPECT_TRUE(net.SameHashes(net.Height(1), {0, 1, 2, 3}));
  // The forged tx is nowhere, and the record is still the member's.
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(net.Committed(i, *forged_hash)) << "node " << i;
    EXPECT_EQ(RecordValue(net, i, "owned"), "original") << "node " << i;
  }
}

}  // namespace
}  // namespace consortia::testing
