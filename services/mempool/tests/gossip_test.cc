// Tx gossip between mempools: the batch codec, the queues and their bounds
// against a fake PeerNet, and two or three real mempools in this process
// gossiping over real PeerNets (CurveZMQ on loopback).
#include "gossip.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/codec.h"
#include "consortia/metrics.h"
#include "consortia/peer_net.h"
#include "consortia/thread_pool.h"
#include "fake_query.h"
#include "gtest/gtest.h"
#include "mempool.h"
#include "test_util.h"
#include "zmq.hpp"

namespace consortia::mempool {
namespace {

using testing::Committed;
using testing::SignedTx;
using testing::WaitFor;

constexpr uint16_t kGossipType =
    static_cast<uint16_t>(MsgType::kMempoolGossipTxs);

std::vector<std::shared_ptr<const Bytes>> Shared(const std::vector<Bytes>& v) {
  std::vector<std::shared_ptr<const Bytes>> out;
  for (const Bytes& b : v) out.push_back(std::make_shared<const Bytes>(b));
  return out;
}

// `n` distinct signed txs of one key, nonces from `first`.
std::vector<Bytes> Txs(const KeyPair& key, uint64_t first, size_t n) {
  std::vector<Bytes> out;
  for (size_t i = 0; i < n; ++i) out.push_back(SignedTx(key, first + i, 100));
  return out;
}

// A tx whose signature does not verify (it signs other bytes).
Bytes BadSignatureTx(const KeyPair& key, uint64_t nonce) {
  Transaction tx = testing::MakeTx(key, nonce, 100);
  tx.signature[0] ^= 0x01;
  return EncodeTx(tx);
}

TEST(GossipBatchTest, RoundTripsAndRefusesGarbage) {
  const KeyPair key = Ed25519Sha256().GenerateKey();
  const std::vector<Bytes> txs = Txs(key, 1, 3);
  absl::StatusOr<std::vector<Bytes>> back =
      DecodeGossipBatch(EncodeGossipBatch(Shared(txs)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, txs);

  Bytes payload = EncodeGossipBatch(Shared(txs));
  payload.push_back(0);
  EXPECT_FALSE(DecodeGossipBatch(payload).ok());  // trailing byte
  payload.resize(payload.size() - 5);
  EXPECT_FALSE(DecodeGossipBatch(payload).ok());  // truncated
  Encoder too_many;
  too_many.PutVarint(kMaxGossipBatchTxs + 1);
  for (size_t i = 0; i <= kMaxGossipBatchTxs; ++i) too_many.PutBytes(Bytes{1});
  EXPECT_FALSE(DecodeGossipBatch(too_many.data()).ok());
}

// A PeerNet that records what is sent and refuses it when told to.
class FakePeerNet : public PeerNet {
 public:
  explicit FakePeerNet(std::vector<std::string> peers)
      : peers_(std::move(peers)) {}

  absl::Status Send(std::string_view peer_id, uint16_t type, ByteView payload,
                    uint64_t) override {
    absl::MutexLock lock(&mu_);
    if (refuse_) return absl::ResourceExhaustedError("full");
    sent_.push_back(
        {std::string(peer_id), type, Bytes(payload.begin(), payload.end())});
    return absl::OkStatus();
  }
  size_t Broadcast(uint16_t, ByteView, uint64_t) override { return 0; }
  size_t PeersConnected() const override { return peers_.size(); }
  std::vector<PeerStatus> Peers() const override {
    std::vector<PeerStatus> out;
    for (const std::string& id : peers_) {
      PeerStatus p;
      p.id = id;
      out.push_back(std::move(p));
    }
    return out;
  }
  PeerNetStats Stats() const override { return {}; }
  const std::string& node_id() const override { return id_; }

  struct Sent {
    std::string peer;
    uint16_t type;
    Bytes payload;
  };
  std::vector<Sent> sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  void set_refuse(bool refuse) {
    absl::MutexLock lock(&mu_);
    refuse_ = refuse;
  }

 private:
  const std::vector<std::string> peers_;
  const std::string id_ = "self";
  mutable absl::Mutex mu_;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
};

// The txs sent to `peer`, over all its batches.
size_t TxsSentTo(const FakePeerNet& net, const std::string& peer) {
  size_t n = 0;
  for (const FakePeerNet::Sent& s : net.sent()) {
    if (s.peer != peer) continue;
    EXPECT_EQ(s.type, kGossipType);
    absl::StatusOr<std::vector<Bytes>> txs = DecodeGossipBatch(s.payload);
    EXPECT_TRUE(txs.ok()) << txs.status();
    if (txs.ok()) n += txs->size();
  }
  return n;
}

class GossipUnitTest : public ::testing::Test {
 protected:
  GossipUnitTest()
      : verify_pool_(2),
        pool_(MempoolOptions(), testing::kChainId, Ed25519Sha256(),
              &verify_pool_) {
    pool_.SetReady();
  }

  void Deliver(Gossip& g, const std::string& from, const Bytes& payload) {
    Envelope env;
    env.type = kGossipType;
    g.Handlers().at(kGossipType)(from, env, payload);
  }

  KeyPair key_ = Ed25519Sha256().GenerateKey();
  ThreadPool verify_pool_;
  Mempool pool_;
};

TEST_F(GossipUnitTest, LocalTxsGoToEveryPeerInBatchesWithinTheLimits) {
  FakePeerNet net({"a", "b"});
  GossipOptions o;
  o.max_batch_txs = 4;
  o.flush_interval = absl::Milliseconds(5);
  Gossip g(o, &pool_);
  g.Start(&net);
  GossipingMempool api(&pool_, &g);
  const std::vector<Bytes> txs = Txs(key_, 1, 10);
  absl::StatusOr<std::vector<SubmitResult>> r = api.Submit(txs);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_sent == 20; }));
  EXPECT_EQ(TxsSentTo(net, "a"), 10u);
  EXPECT_EQ(TxsSentTo(net, "b"), 10u);
  for (const FakePeerNet::Sent& s : net.sent()) {
    absl::StatusOr<std::vector<Bytes>> batch = DecodeGossipBatch(s.payload);
    ASSERT_TRUE(batch.ok());
    EXPECT_LE(batch->size(), 4u);
  }
  // 10 txs in batches of at most 4: at least 3 per peer.
  EXPECT_GE(g.Stats().batches_sent, 6u);

  // A resubmission is kAlreadyPending: not sent again.
  ASSERT_TRUE(api.Submit({txs[0]}).ok());
  const KeyPair other = Ed25519Sha256().GenerateKey();
  ASSERT_TRUE(api.Submit({SignedTx(other, 1, 100)}).ok());
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_sent == 22; }));
  EXPECT_EQ(TxsSentTo(net, "a"), 11u);
}

TEST_F(GossipUnitTest, ByteLimitCutsBatchesAndALargeTxGoesAlone) {
  FakePeerNet net({"a"});
  GossipOptions o;
  o.max_batch_bytes = 1;  // below any tx: one tx per batch
  o.flush_interval = absl::Milliseconds(5);
  Gossip g(o, &pool_);
  g.Start(&net);
  GossipingMempool api(&pool_, &g);
  ASSERT_TRUE(api.Submit(Txs(key_, 1, 3)).ok());
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_sent == 3; }));
  EXPECT_EQ(g.Stats().batches_sent, 3u);
}

TEST_F(GossipUnitTest, ReceivedTxsAreAdmittedAndForwardedToTheOthersOnly) {
  FakePeerNet net({"a", "b", "c"});
  GossipOptions o;
  o.flush_interval = absl::Milliseconds(5);
  Gossip g(o, &pool_);
  g.Start(&net);
  const std::vector<Bytes> txs = Txs(key_, 1, 5);
  Bytes payload = EncodeGossipBatch(Shared(txs));
  Deliver(g, "a", payload);
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_sent == 10; }));
  EXPECT_EQ(pool_.pending_count(), 5u);
  EXPECT_EQ(TxsSentTo(net, "a"), 0u);  // never back to the sender
  EXPECT_EQ(TxsSentTo(net, "b"), 5u);
  EXPECT_EQ(TxsSentTo(net, "c"), 5u);

  // The same batch from another peer: duplicates, not forwarded.
  Deliver(g, "b", payload);
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_duplicate == 5; }));
  const GossipStats s = g.Stats();
  EXPECT_EQ(s.txs_received, 10u);
  EXPECT_EQ(s.batches_received, 2u);
  EXPECT_EQ(s.txs_admitted, 5u);
  EXPECT_EQ(s.txs_sent, 10u);
}

TEST_F(GossipUnitTest, CommittedTxsFromAPeerAreDuplicates) {
  FakePeerNet net({"a", "b"});
  Gossip g(GossipOptions(), &pool_);
  g.Start(&net);
  const Bytes tx = SignedTx(key_, 1, 100);
  pool_.OnCommitted(CommittedEvent{1, Hash32{}, {Committed(tx)}});
  Deliver(g, "a", EncodeGossipBatch(Shared({tx})));
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_duplicate == 1; }));
  EXPECT_EQ(g.Stats().txs_admitted, 0u);
  EXPECT_EQ(pool_.pending_count(), 0u);
}

TEST_F(GossipUnitTest, BadSignatureIsRejectedAndNotForwarded) {
  FakePeerNet net({"a", "b"});
  GossipOptions o;
  o.flush_interval = absl::Milliseconds(5);
  Gossip g(o, &pool_);
  g.Start(&net);
  const Bytes good = SignedTx(key_, 1, 100);
  Deliver(g, "a", EncodeGossipBatch(Shared({BadSignatureTx(key_, 2), good})));
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_sent == 1; }));
  const GossipStats s = g.Stats();
  EXPECT_EQ(s.txs_rejected, 1u);
  EXPECT_EQ(s.txs_admitted, 1u);
  ASSERT_EQ(net.sent().size(), 1u);
  absl::StatusOr<std::vector<Bytes>> sent =
      DecodeGossipBatch(net.sent()[0].payload);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(*sent, std::vector<Bytes>{good});
}

TEST_F(GossipUnitTest, MalformedBatchIsDroppedAndCounted) {
  FakePeerNet net({"a"});
  MetricsRegistry registry;
  Gossip g(GossipOptions(), &pool_, GossipMetrics::Create(registry));
  g.Start(&net);
  Deliver(g, "a", Bytes{0x05, 0x01});
  EXPECT_EQ(g.Stats().dropped_malformed, 1u);
  EXPECT_EQ(g.Stats().batches_received, 0u);
  EXPECT_NE(
      registry.Serialize().find(
          "consortia_mempool_gossip_dropped_total{reason=\"malformed\"} 1"),
      std::string::npos)
      << registry.Serialize();
}

TEST_F(GossipUnitTest, FullSendQueueDropsAndCounts) {
  FakePeerNet net({"a"});
  MetricsRegistry registry;
  GossipOptions o;
  o.queue_txs = 4;
  Gossip g(o, &pool_, GossipMetrics::Create(registry));
  // The PeerNet refuses every batch, as when the peer's queue is full.
  net.set_refuse(true);
  g.Start(&net);
  GossipingMempool api(&pool_, &g);
  ASSERT_TRUE(api.Submit(Txs(key_, 1, 10)).ok());
  // 4 fit the queue and 6 are dropped at once; the 4 are then refused by
  // the (full) PeerNet and dropped too.
  EXPECT_GE(g.Stats().dropped_send_queue, 6u);
  ASSERT_TRUE(WaitFor([&] { return g.Stats().dropped_send_queue == 10; }));
  EXPECT_EQ(g.Stats().txs_sent, 0u);
  EXPECT_NE(registry.Serialize().find("consortia_mempool_gossip_dropped_total{"
                                      "reason=\"send_queue_full\"} 10"),
            std::string::npos)
      << registry.Serialize();
}

TEST_F(GossipUnitTest, FullReceiveQueueDropsAndCounts) {
  GossipOptions o;
  o.queue_txs = 5;
  Gossip g(o, &pool_);
  // Not started: received batches wait, so the bound is exact.
  Deliver(g, "a", EncodeGossipBatch(Shared(Txs(key_, 1, 3))));
  Deliver(g, "a", EncodeGossipBatch(Shared(Txs(key_, 4, 3))));
  Deliver(g, "a", EncodeGossipBatch(Shared(Txs(key_, 7, 2))));
  const GossipStats s = g.Stats();
  EXPECT_EQ(s.txs_received, 8u);
  EXPECT_EQ(s.dropped_receive_queue, 3u);  // the second batch
  FakePeerNet net({"a", "b"});
  g.Start(&net);
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_admitted == 5; }));
  EXPECT_EQ(pool_.pending_count(), 5u);
}

TEST(GossipNotReadyTest, BatchesBeforeReadyAreDroppedAndCounted) {
  ThreadPool verify(1);
  Mempool pool(MempoolOptions(), testing::kChainId, Ed25519Sha256(), &verify);
  FakePeerNet net({"a"});
  Gossip g(GossipOptions(), &pool);
  g.Start(&net);
  Envelope env;
  const KeyPair key = Ed25519Sha256().GenerateKey();
  g.Handlers().at(kGossipType)("a", env,
                               EncodeGossipBatch(Shared(Txs(key, 1, 2))));
  ASSERT_TRUE(WaitFor([&] { return g.Stats().dropped_not_ready == 2; }));
}

// ------------------------------------------------- over real PeerNets

// One node's mempool and its gossip over its own PeerNet.
struct Node {
  std::string id;
  CurveKeyPair keys;
  std::string endpoint;
  std::unique_ptr<zmq::context_t> ctx;
  std::shared_ptr<ZapAuthenticator> zap;
  std::unique_ptr<ThreadPool> verify_pool;
  std::unique_ptr<Mempool> mempool;
  std::unique_ptr<Gossip> gossip;
  std::unique_ptr<GossipingMempool> api;
  std::unique_ptr<PeerNet> net;

  ~Node() {
    if (gossip != nullptr) gossip->Stop();
    net.reset();
    gossip.reset();
    zap.reset();
    ctx.reset();
  }
};

class GossipNetworkTest : public ::testing::Test {
 protected:
  // Starts n nodes, all peers of each other, and waits until every link is
  // up. `absent` more peers are configured but never started.
  void StartNodes(size_t n, const GossipOptions& o, size_t absent = 0,
                  int send_hwm = 1000) {
    std::vector<PeerInfo> peers;
    for (size_t i = 0; i < n + absent; ++i) {
      auto node = std::make_unique<Node>();
      node->id = absl::StrCat("node", i);
      absl::StatusOr<CurveKeyPair> keys = GenerateCurveKeyPair();
      ASSERT_TRUE(keys.ok()) << keys.status();
      node->keys = *keys;
      node->endpoint = absl::StrCat("tcp://127.0.0.1:", testing::ListenPort());
      peers.push_back(PeerInfo{node->id, node->endpoint, keys->public_key});
      nodes_.push_back(std::move(node));
    }
    for (size_t i = 0; i < n; ++i) {
      Node& node = *nodes_[i];
      node.ctx = std::make_unique<zmq::context_t>();
      absl::StatusOr<std::shared_ptr<ZapAuthenticator>> zap =
          StartZapAuthenticator(*node.ctx, AllowListOf(peers));
      ASSERT_TRUE(zap.ok()) << zap.status();
      node.zap = *zap;
      node.verify_pool = std::make_unique<ThreadPool>(2);
      node.mempool =
          std::make_unique<Mempool>(MempoolOptions(), testing::kChainId,
                                    Ed25519Sha256(), node.verify_pool.get());
      node.mempool->SetReady();
      node.gossip = std::make_unique<Gossip>(o, node.mempool.get());
      node.api = std::make_unique<GossipingMempool>(node.mempool.get(),
                                                    node.gossip.get());
      PeerNetOptions po;
      po.node_id = node.id;
      po.bind_endpoint = node.endpoint;
      po.key_pair = node.keys;
      po.peers = peers;
      po.authenticator = node.zap;
      po.handlers = node.gossip->Handlers();
      po.metrics = node.gossip->net_metrics();
      po.send_hwm = send_hwm;
      absl::StatusOr<std::unique_ptr<PeerNet>> net =
          StartPeerNet(*node.ctx, std::move(po));
      ASSERT_TRUE(net.ok()) << net.status();
      node.net = *std::move(net);
      node.gossip->Start(node.net.get());
    }
    for (size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(WaitFor([&] {
        return nodes_[i]->net->PeersConnected() == n - 1;
      })) << nodes_[i]->id;
    }
  }

  // Waits until the gossip is quiet: nothing queued, every sent tx
  // received and judged (admitted, duplicate or rejected), on two polls in a
  // row (the nodes are read one after the other). `extra_sent` counts txs a
  // test sent by hand through a PeerNet.
  void WaitQuiet(size_t n, uint64_t extra_sent = 0) {
    auto quiet = [&] {
      uint64_t sent = extra_sent, received = 0, judged = 0, backlog = 0;
      for (size_t i = 0; i < n; ++i) {
        const GossipStats s = nodes_[i]->gossip->Stats();
        sent += s.txs_sent;
        received += s.txs_received;
        judged += s.txs_admitted + s.txs_duplicate + s.txs_rejected;
        backlog += s.backlog;
      }
      return backlog == 0 && sent == received && received == judged;
    };
    ASSERT_TRUE(WaitFor([&] {
      if (!quiet()) return false;
      absl::SleepFor(absl::Milliseconds(10));
      return quiet();
    }));
  }

  std::vector<std::unique_ptr<Node>> nodes_;
  KeyPair key_ = Ed25519Sha256().GenerateKey();
};

TEST_F(GossipNetworkTest, EachNodeForwardsOncePerPeerAndNothingEchoes) {
  GossipOptions o;
  StartNodes(3, o);
  ASSERT_FALSE(HasFatalFailure());
  constexpr size_t kTxs = 20;
  const std::vector<Bytes> txs = Txs(key_, 1, kTxs);
  absl::StatusOr<std::vector<SubmitResult>> r = nodes_[0]->api->Submit(txs);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const SubmitResult& s : *r) ASSERT_EQ(s.code, Admission::kAccepted);

  for (size_t i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return nodes_[i]->mempool->pending_count() == kTxs;
    })) << nodes_[i]->id;
  }
  // Each tx: the origin sends it to its 2 peers; each other node admits it
  // once (from whichever peer came first) and sends it to the one peer it
  // did not get it from; that copy is a duplicate and goes no further.
  // 4 copies per tx in all, 2 of them duplicates, whatever the timing.
  WaitQuiet(3);
  ASSERT_FALSE(HasFatalFailure());
  // Pause, then look again: a storm would keep the counters moving.
  absl::SleepFor(absl::Milliseconds(300));
  WaitQuiet(3);
  uint64_t sent = 0, duplicates = 0, admitted = 0;
  for (size_t i = 0; i < 3; ++i) {
    const GossipStats s = nodes_[i]->gossip->Stats();
    SCOPED_TRACE(nodes_[i]->id);
    EXPECT_LE(s.txs_sent, 2 * kTxs);  // at most once per peer
    EXPECT_EQ(s.txs_rejected, 0u);
    EXPECT_EQ(s.dropped_send_queue, 0u);
    sent += s.txs_sent;
    duplicates += s.txs_duplicate;
    admitted += s.txs_admitted;
    // One PeerNet message per batch.
    EXPECT_EQ(nodes_[i]->net->Stats().sent, s.batches_sent);
    EXPECT_EQ(nodes_[i]->net->Stats().received, s.batches_received);
    EXPECT_EQ(nodes_[i]->mempool->pending_count(), kTxs);
  }
  const GossipStats origin = nodes_[0]->gossip->Stats();
  EXPECT_EQ(origin.txs_sent, 2 * kTxs);
  EXPECT_EQ(origin.txs_admitted, 0u);  // what comes back is a duplicate
  EXPECT_EQ(nodes_[1]->gossip->Stats().txs_admitted +
                nodes_[2]->gossip->Stats().txs_admitted,
            2 * kTxs);
  EXPECT_EQ(sent, 4 * kTxs);
  EXPECT_EQ(admitted, 2 * kTxs);
  EXPECT_EQ(duplicates, 2 * kTxs);
}

TEST_F(GossipNetworkTest, DuplicatesAndCommittedTxsAreNotForwardedAgain) {
  GossipOptions o;
  StartNodes(3, o);
  ASSERT_FALSE(HasFatalFailure());
  // The same tx submitted to two nodes: each sends it to its two peers once;
  // every copy is a duplicate somewhere except the first at node 2.
  const Bytes tx = SignedTx(key_, 1, 100);
  ASSERT_TRUE(nodes_[0]->api->Submit({tx}).ok());
  ASSERT_TRUE(nodes_[1]->api->Submit({tx}).ok());
  ASSERT_TRUE(
      WaitFor([&] { return nodes_[2]->mempool->pending_count() == 1; }));
  WaitQuiet(3);
  ASSERT_FALSE(HasFatalFailure());
  // Node 2 got it from 0 and 1; whichever copy came second is a duplicate,
  // and it forwards the first to the other one, where it is a duplicate.
  uint64_t sent = 0;
  for (size_t i = 0; i < 3; ++i) {
    const GossipStats s = nodes_[i]->gossip->Stats();
    EXPECT_LE(s.txs_sent, 2u) << nodes_[i]->id;
    sent += s.txs_sent;
  }
  EXPECT_LE(sent, 5u);

  // Committed on nodes 1 and 2 (never pending there), then submitted to
  // node 0: both see a duplicate, neither forwards it.
  const Bytes committed = SignedTx(key_, 2, 100);
  for (size_t i = 1; i < 3; ++i) {
    nodes_[i]->mempool->OnCommitted(
        CommittedEvent{1, Hash32{}, {Committed(committed)}});
  }
  std::vector<GossipStats> before;
  for (size_t i = 0; i < 3; ++i) before.push_back(nodes_[i]->gossip->Stats());
  ASSERT_TRUE(nodes_[0]->api->Submit({committed}).ok());
  for (size_t i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return nodes_[i]->gossip->Stats().txs_duplicate ==
             before[i].txs_duplicate + 1;
    }));
  }
  WaitQuiet(3);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(nodes_[i]->gossip->Stats().txs_sent, before[i].txs_sent);
    EXPECT_EQ(nodes_[i]->gossip->Stats().txs_admitted, before[i].txs_admitted);
  }
  EXPECT_EQ(nodes_[0]->gossip->Stats().txs_sent, before[0].txs_sent + 2);
}

TEST_F(GossipNetworkTest, BadSignatureFromAPeerIsRejectedAndNotForwarded) {
  GossipOptions o;
  StartNodes(3, o);
  ASSERT_FALSE(HasFatalFailure());
  // Node 0 sends node 1 a batch directly (as a faulty peer would): one good
  // tx, one with a bad signature.
  const Bytes good = SignedTx(key_, 1, 100);
  const Bytes bad = BadSignatureTx(key_, 2);
  ASSERT_TRUE(
      nodes_[0]
          ->net
          ->Send("node1", kGossipType, EncodeGossipBatch(Shared({bad, good})))
          .ok());
  // Node 1 forwards the good tx to node 2 (not back to node 0); node 2
  // forwards it to node 0, where it is new (node 0 sent the batch by hand
  // and never admitted it), and node 0 to node 1, where it is a duplicate.
  for (size_t i : {0, 2}) {
    ASSERT_TRUE(WaitFor([&] {
      return nodes_[i]->mempool->pending_count() == 1;
    })) << nodes_[i]->id;
  }
  WaitQuiet(3, /*extra_sent=*/2);
  ASSERT_FALSE(HasFatalFailure());
  const GossipStats s1 = nodes_[1]->gossip->Stats();
  EXPECT_EQ(s1.txs_received, 3u);
  EXPECT_EQ(s1.txs_rejected, 1u);
  EXPECT_EQ(s1.txs_admitted, 1u);
  EXPECT_EQ(s1.txs_duplicate, 1u);
  EXPECT_EQ(s1.txs_sent, 1u);  // the good one, to node 2 only
  for (size_t i : {0, 2}) {
    const GossipStats s = nodes_[i]->gossip->Stats();
    SCOPED_TRACE(nodes_[i]->id);
    EXPECT_EQ(s.txs_received, 1u);  // the good tx only
    EXPECT_EQ(s.txs_rejected, 0u);
    EXPECT_EQ(s.txs_admitted, 1u);
    EXPECT_EQ(s.txs_sent, 1u);
  }
  EXPECT_EQ(nodes_[1]->mempool->pending_count(), 1u);
}

TEST_F(GossipNetworkTest, SlowPeerQueueDropsAndCounts) {
  GossipOptions o;
  o.queue_txs = 5;
  o.max_batch_txs = 1;
  // Node 1 is configured but never runs: its PeerNet queue (2 batches)
  // fills, then the gossip's own queue (5 txs).
  StartNodes(1, o, /*absent=*/1, /*send_hwm=*/2);
  ASSERT_FALSE(HasFatalFailure());
  constexpr size_t kTxs = 12;
  ASSERT_TRUE(nodes_[0]->api->Submit(Txs(key_, 1, kTxs)).ok());
  EXPECT_GE(nodes_[0]->gossip->Stats().dropped_send_queue, kTxs - 5);
  ASSERT_TRUE(WaitFor([&] {
    const GossipStats s = nodes_[0]->gossip->Stats();
    return s.txs_sent + s.dropped_send_queue == kTxs;
  }));
  const GossipStats s = nodes_[0]->gossip->Stats();
  EXPECT_LE(s.txs_sent, 5u);
  EXPECT_EQ(nodes_[0]->mempool->pending_count(), kTxs);  // kept locally
}

}  // namespace
}  // namespace consortia::mempool
