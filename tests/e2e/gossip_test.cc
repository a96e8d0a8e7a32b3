// End-to-end: mempool gossip among four validators, each the four real
// service processes on loopback ports (NetworkHarness with mempool_gossip).
// The same tx submitted to two nodes is committed exactly once; a tx
// submitted only to an observer (a node that never proposes) is committed;
// the gossip metrics show the txs crossing between the mempools.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "network_harness.h"
#include "nlohmann/json.hpp"

namespace consortia::testing {
namespace {

using nlohmann::json;

constexpr char kMempool[] = "consortia-mempool";

NetworkOptions GossipNetwork(int observers) {
  NetworkOptions o;
  o.validators = 4;
  o.observers = observers;
  o.mempool_gossip = true;
  return o;
}

// The height of the block holding the tx according to `node` (0 if none).
uint64_t TxHeight(const NetworkHarness& net, int node, const Hash32& hash) {
  auto r = HttpCall(net.api(node), "GET", "/v1/txs/" + ToHex(hash));
  if (!r.ok() || r->status != 200) return 0;
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return 0;
  return j.value("height", uint64_t{0});
}

// How many times the tx appears in blocks 1..up_to of `node`.
int Occurrences(const NetworkHarness& net, int node, uint64_t up_to,
                const Hash32& hash) {
  const std::string hex = ToHex(hash);
  int n = 0;
  for (uint64_t h = 1; h <= up_to; ++h) {
    auto r = HttpCall(net.api(node), "GET", absl::StrCat("/v1/blocks/", h));
    EXPECT_TRUE(r.ok() && r->status == 200) << "height " << h;
    if (!r.ok() || r->status != 200) continue;
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j["tx_hashes"].is_array()) continue;
    for (const json& t : j["tx_hashes"]) {
      if (t.is_string() && t.get<std::string>() == hex) ++n;
    }
  }
  return n;
}

double MetricOr0(const NetworkHarness& net, int node,
                 const std::string& sample) {
  return net.Metric(node, kMempool, sample).value_or(0);
}

// Starts every node; on failure, says why with the mempools' logs.
void StartAll(NetworkHarness& net) {
  absl::Status s = net.StartAll();
  if (s.ok()) return;
  std::string logs;
  for (int i = 0; i < net.size(); ++i) {
    for (const std::string& b : NetworkHarness::Binaries()) {
      absl::StrAppend(&logs, "\n--- node", i, " ", b, ":\n",
                      net.LogTail(i, b, 600));
    }
  }
  FAIL() << s << logs;
}

// Every node's gossip is connected to every other node's.
void ExpectGossipConnected(const NetworkHarness& net) {
  for (int i = 0; i < net.size(); ++i) {
    EXPECT_TRUE(NetworkHarness::WaitUntil([&] {
      return MetricOr0(net, i, "consortia_mempool_gossip_peers_connected") ==
             net.size() - 1;
    })) << "node"
        << i << "\n"
        << net.LogTail(i, kMempool);
  }
}

TEST(GossipE2eTest, SameTxSubmittedToTwoNodesIsCommittedOnce) {
  NetworkHarness net(GossipNetwork(/*observers=*/0));
  ASSERT_NO_FATAL_FAILURE(StartAll(net));
  ExpectGossipConnected(net);

  const Transaction tx = net.MakeTx(0, 1);
  const Hash32 hash = TxHash(Ed25519Sha256(), tx);
  const std::string body = TxToJson(tx);
  // Node 0 admits it; node 2 gets it a moment later from its client. The
  // api's answer for the second copy: 202 if gossip has not brought it yet,
  // 200 (already pending) if it has, 409 if it is already committed.
  for (int node : {0, 2}) {
    auto r = HttpCall(net.api(node), "POST", "/v1/txs", body);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->status == 202 || r->status == 200 || r->status == 409)
        << "node" << node << ": " << r->status << " " << r->body;
  }
  for (int i = 0; i < net.size(); ++i) {
    ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
      return net.Committed(i, hash);
    })) << "node"
        << i << "\n"
        << net.LogTail(i, "consortia-consensus");
  }
  // One height everywhere, and the tx in exactly one block.
  const uint64_t at = TxHeight(net, 0, hash);
  ASSERT_GT(at, 0u);
  for (int i = 1; i < net.size(); ++i) EXPECT_EQ(TxHeight(net, i, hash), at);
  // A few more blocks, in which a second copy would show up.
  ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
    for (int i = 0; i < net.size(); ++i) {
      if (net.Height(i) < at + 3) return false;
    }
    return true;
  }));
  const uint64_t top = net.Height(0);
  EXPECT_EQ(Occurrences(net, 0, top, hash), 1);
  EXPECT_TRUE(net.SameHashes(top, {0, 1, 2, 3}));
  // Resubmitted after the commit: refused as already committed.
  auto again = HttpCall(net.api(1), "POST", "/v1/txs", body);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 409) << again->body;

  // Nodes 1 and 3 never saw the tx from a client: gossip brought it.
  for (int i : {1, 3}) {
    EXPECT_TRUE(NetworkHarness::WaitUntil([&] {
      return MetricOr0(net, i, "consortia_mempool_gossip_txs_received_total") >=
             1;
    })) << "node"
        << i;
  }
  EXPECT_GE(MetricOr0(net, 0, "consortia_mempool_gossip_txs_sent_total"), 3);
  EXPECT_GE(MetricOr0(net, 0, "consortia_mempool_gossip_batches_sent_total"),
            3);
  // No tx was refused or lost on the way.
  for (int i = 0; i < net.size(); ++i) {
    EXPECT_EQ(MetricOr0(net, i, "consortia_mempool_gossip_txs_rejected_total"),
              0)
        << "node" << i;
    EXPECT_EQ(MetricOr0(net, i,
                        "consortia_mempool_gossip_dropped_total{reason=\""
                        "send_queue_full\"}"),
              0)
        << "node" << i;
  }
}

TEST(GossipE2eTest, TxSubmittedToAnObserverIsCommitted) {
  // Node 4 is an observer: not in the genesis validators, so its consensus
  // never proposes; only gossip can bring its client's txs to a proposer.
  NetworkHarness net(GossipNetwork(/*observers=*/1));
  ASSERT_NO_FATAL_FAILURE(StartAll(net));
  ExpectGossipConnected(net);
  constexpr int kObserver = 4;

  const std::vector<Hash32> hashes = net.Submit(kObserver, 5, 100);
  ASSERT_EQ(hashes.size(), 5u);
  for (const Hash32& hash : hashes) {
    for (int i = 0; i < net.size(); ++i) {
      ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
        return net.Committed(i, hash);
      })) << "node"
          << i << "\n"
          << net.LogTail(i, kMempool);
    }
  }
  for (const Hash32& hash : hashes) {
    const uint64_t at = TxHeight(net, 0, hash);
    EXPECT_GT(at, 0u);
    EXPECT_EQ(TxHeight(net, kObserver, hash), at);
  }
  EXPECT_GE(
      MetricOr0(net, kObserver, "consortia_mempool_gossip_txs_sent_total"),
      5 * 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_GE(MetricOr0(net, i, "consortia_mempool_gossip_txs_received_total"),
              5)
        << "node" << i;
  }
}

}  // namespace
}  // namespace consortia::testing
