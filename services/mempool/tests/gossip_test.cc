// Tx gossip between mempools: the batch codec, the queues and their bounds
// against a fake PeerNet, and two or three real mempools in this process
// gossiping over real PeerNets (CurveZMQ on loopback).
#include "gossip.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/codec.h"
#include "consortia/metrics.h"
#include "consortia/peer_net.h"
#include "consortia/thread_pool.h"
#include "fake_peer_net.h"
#include "gtest/gtest.h"
#include "mempool.h"
#include "test_util.h"
#include "zmq.hpp"

namespace consortia::mempool {
namespace {

using testing::Committed;
using testing::FakePeerNet;
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
  pool_.OnCommitted(
      CommittedEvent{1, Hash32{}, {Committed(tx)}, {}, false, std::nullopt});
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

TEST_F(GossipUnitTest, EachPeersReceiveQueueIsBoundedInBatchesAndBytes) {
  auto charge = [](const std::vector<Bytes>& txs) {
    size_t n = 0;
    for (const Bytes& tx : txs) n += tx.size() + kQueuedTxOverhead;
    return n;
  };
  const std::vector<Bytes> a1 = Txs(key_, 1, 2), a2 = Txs(key_, 3, 2),
                           a3 = Txs(key_, 5, 2);
  const std::vector<Bytes> b1 = Txs(key_, 11, 4), b2 = Txs(key_, 15, 2),
                           b3 = Txs(key_, 17, 1);
  GossipOptions o;
  o.peer_queue_batches = 2;
  o.peer_queue_bytes = charge(b1) + charge(b3);
  MetricsRegistry registry;
  FakePeerNet net({"a", "b", "c"});
  Gossip g(o, &pool_, GossipMetrics::Create(registry));
  // Not started: received batches wait, so the bounds are exact.
  // Peer a: the third batch is over the batch bound.
  Deliver(g, "a", EncodeGossipBatch(Shared(a1)));
  Deliver(g, "a", EncodeGossipBatch(Shared(a2)));
  Deliver(g, "a", EncodeGossipBatch(Shared(a3)));
  // Peer b: b1 + b2 is over the byte bound, b1 + b3 is not.
  Deliver(g, "b", EncodeGossipBatch(Shared(b1)));
  Deliver(g, "b", EncodeGossipBatch(Shared(b2)));
  Deliver(g, "b", EncodeGossipBatch(Shared(b3)));
  // Peer c is not affected by the others' full queues; one batch always
  // fits an empty queue, even one over the byte bound.
  const std::vector<Bytes> c1 = Txs(key_, 21, 8);
  ASSERT_GT(charge(c1), o.peer_queue_bytes);
  Deliver(g, "c", EncodeGossipBatch(Shared(c1)));

  const GossipStats s = g.Stats();
  EXPECT_EQ(s.txs_received, 21u);
  EXPECT_EQ(s.batches_queued, 5u);
  EXPECT_EQ(s.dropped_receive_queue, 4u);
  const GossipPeerStats a = g.PeerStats("a");
  EXPECT_EQ(a.dropped_queue_full, 2u);
  EXPECT_EQ(a.queue_batches, 2u);
  EXPECT_EQ(a.queue_bytes, charge(a1) + charge(a2));
  const GossipPeerStats b = g.PeerStats("b");
  EXPECT_EQ(b.dropped_queue_full, 2u);
  EXPECT_EQ(b.queue_batches, 2u);
  EXPECT_EQ(b.max_queue_bytes, o.peer_queue_bytes);
  EXPECT_EQ(g.PeerStats("c").dropped_queue_full, 0u);
  const std::string text = registry.Serialize();
  EXPECT_NE(text.find("consortia_mempool_gossip_peer_dropped_total{peer=\"a\","
                      "reason=\"receive_queue_full\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_mempool_gossip_peer_queue_batches{peer=\"b\"} "
                      "2"),
            std::string::npos)
      << text;

  g.Start(&net);
  ASSERT_TRUE(WaitFor([&] { return g.Stats().txs_admitted == 17; }));
  EXPECT_EQ(pool_.pending_count(), 17u);
  EXPECT_EQ(g.PeerStats("a").queue_batches, 0u);
  EXPECT_EQ(g.PeerStats("b").queue_bytes, 0u);
  // Nothing left but what is forwarded (17 txs to each of 2 peers).
  EXPECT_TRUE(WaitFor([&] { return g.Stats().backlog == 0; }));
}

TEST_F(GossipUnitTest, FloodingPeerDoesNotShutOutAnHonestPeer) {
  GossipOptions o;
  FakePeerNet net({"bad", "honest"});
  Gossip g(o, &pool_);
  // Not started: what is queued is decided by the queues' bounds alone. The
  // flooding peer sends 100 batches of 200 bad-signature txs (twice the
  // default queue_txs), then the honest peer one batch of 10 good txs.
  std::vector<Bytes> bad;
  for (uint64_t i = 0; i < 200; ++i) bad.push_back(BadSignatureTx(key_, i));
  const Bytes bad_batch = EncodeGossipBatch(Shared(bad));
  for (int i = 0; i < 100; ++i) Deliver(g, "bad", bad_batch);
  const KeyPair honest = Ed25519Sha256().GenerateKey();
  Deliver(g, "honest", EncodeGossipBatch(Shared(Txs(honest, 1, 10))));
  g.Start(&net);
  ASSERT_TRUE(WaitFor([&] { return g.Stats().backlog == 0; }));
  // Every honest tx was admitted; none of the bad ones.
  EXPECT_EQ(pool_.pending_count(), 10u);
  EXPECT_EQ(g.Stats().txs_admitted, 10u);
}

// A MempoolApi that records every Submit call and accepts every tx; with
// block_ set, Submit waits until it is cleared.
class RecordingPool : public MempoolApi {
 public:
  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back(raw_txs);
    ++entered_;
    auto unblocked = [this]()
                         ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !block_; };
    mu_.Await(absl::Condition(&unblocked));
    std::vector<SubmitResult> out(raw_txs.size());
    for (SubmitResult& r : out) r.code = Admission::kAccepted;
    return out;
  }
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest&) override {
    return std::vector<Bytes>();
  }
  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>&, uint64_t) override {
    return std::vector<ProposalTxCheck>();
  }

  std::vector<std::vector<Bytes>> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  size_t txs() const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (const auto& c : calls_) n += c.size();
    return n;
  }
  int entered() const {
    absl::MutexLock lock(&mu_);
    return entered_;
  }
  void set_block(bool block) {
    absl::MutexLock lock(&mu_);
    block_ = block;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::vector<Bytes>> calls_ ABSL_GUARDED_BY(mu_);
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  bool block_ ABSL_GUARDED_BY(mu_) = false;
};

// `n` opaque txs tagged with `tag` (RecordingPool does not decode them).
std::vector<Bytes> Opaque(uint8_t tag, size_t n) {
  std::vector<Bytes> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(
        Bytes{tag, static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)});
  }
  return out;
}

size_t CountTagged(const std::vector<Bytes>& call, uint8_t tag) {
  size_t n = 0;
  for (const Bytes& tx : call) n += (!tx.empty() && tx[0] == tag) ? 1 : 0;
  return n;
}

TEST_F(GossipUnitTest, PeersAreServedRoundRobinOneTurnAtATime) {
  RecordingPool recording;
  FakePeerNet net({"a", "b", "c", "d"});
  Gossip g(GossipOptions(), &recording);
  // Peer a has a backlog: 8 batches of 256 txs and one of 1000; then peers b
  // and c send one small batch each.
  for (int i = 0; i < 8; ++i) {
    Deliver(g, "a", EncodeGossipBatch(Shared(Opaque('a', 256))));
  }
  Deliver(g, "a", EncodeGossipBatch(Shared(Opaque('a', 1000))));
  Deliver(g, "b", EncodeGossipBatch(Shared(Opaque('b', 3))));
  Deliver(g, "c", EncodeGossipBatch(Shared(Opaque('c', 7))));
  // Peer d's small batches go together in one turn.
  for (int i = 0; i < 3; ++i) {
    Deliver(g, "d", EncodeGossipBatch(Shared(Opaque('d', 10))));
  }
  g.Start(&net);
  ASSERT_TRUE(WaitFor([&] { return recording.txs() == 8 * 256 + 1040; }));
  const std::vector<std::vector<Bytes>> calls = recording.calls();
  // b, c and d wait for one turn of a's backlog, not all of it.
  ASSERT_GE(calls.size(), 4u);
  EXPECT_EQ(CountTagged(calls[0], 'a'), kTurnTxs);
  EXPECT_EQ(CountTagged(calls[1], 'b'), 3u);
  EXPECT_EQ(CountTagged(calls[2], 'c'), 7u);
  EXPECT_EQ(CountTagged(calls[3], 'd'), 30u);
  // Each call is one turn of one peer (a's batch of 1000 is cut in four).
  for (const std::vector<Bytes>& call : calls) {
    EXPECT_LE(call.size(), kTurnTxs);
    ASSERT_FALSE(call.empty());
    EXPECT_EQ(CountTagged(call, call[0][0]), call.size());
  }
  EXPECT_EQ(calls.size(), 3u + 8u + 4u);
}

TEST_F(GossipUnitTest, ApiSubmitsAlreadyRunningGoBeforeTheNextGossipCall) {
  RecordingPool api_pool;   // what the api's Submit reaches
  RecordingPool peer_pool;  // where the gossip admits
  FakePeerNet net({"a"});
  Gossip g(GossipOptions(), &peer_pool);
  g.Start(&net);
  GossipingMempool api(&api_pool, &g);
  api_pool.set_block(true);
  std::thread client([&] { ASSERT_TRUE(api.Submit(Opaque('x', 10)).ok()); });
  ASSERT_TRUE(WaitFor([&] { return api_pool.entered() == 1; }));
  // A peer's batch arrives while the api's Submit runs: the gossip waits.
  Deliver(g, "a", EncodeGossipBatch(Shared(Opaque('a', 5))));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(peer_pool.entered(), 0);
  EXPECT_EQ(g.Stats().backlog, 5u);
  // Once it returns, the gossip goes on.
  api_pool.set_block(false);
  client.join();
  ASSERT_TRUE(WaitFor([&] { return peer_pool.txs() == 5; }));
}

// A clock the test moves by hand.
class ManualClock {
 public:
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  std::function<absl::Time()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch() + absl::Hours(1);
};

TEST_F(GossipUnitTest, FailingPeerIsThrottledWithGrowingBackOff) {
  ManualClock clock;
  GossipOptions o;
  o.fail_threshold = 2;
  o.fail_window = absl::Seconds(10);
  o.throttle = absl::Seconds(1);
  o.max_throttle = absl::Seconds(4);
  o.test_only_clock = clock.AsFunction();
  MetricsRegistry registry;
  FakePeerNet net({"bad", "good"});
  Gossip g(o, &pool_, GossipMetrics::Create(registry));
  g.Start(&net);
  std::vector<Bytes> bad_txs;
  for (uint64_t i = 0; i < 3; ++i) bad_txs.push_back(BadSignatureTx(key_, i));
  const Bytes bad = EncodeGossipBatch(Shared(bad_txs));

  uint64_t failed = 0;
  // Sends one bad batch and waits until it is judged.
  auto fail_once = [&] {
    Deliver(g, "bad", bad);
    ++failed;
    ASSERT_TRUE(WaitFor([&] {
      return g.PeerStats("bad").failed_batches == failed &&
             g.Stats().backlog == 0;
    }));
  };
  // True if a batch sent now is dropped at once because of a throttle.
  auto throttled_now = [&] {
    const uint64_t before = g.Stats().dropped_throttled;
    Deliver(g, "bad", bad);
    if (g.Stats().dropped_throttled == before + 3) return true;
    ++failed;  // it was queued: let it be judged
    EXPECT_TRUE(WaitFor([&] {
      return g.PeerStats("bad").failed_batches == failed &&
             g.Stats().backlog == 0;
    }));
    return false;
  };

  fail_once();
  EXPECT_EQ(g.PeerStats("bad").throttles, 0u);  // one failure is not enough
  fail_once();
  GossipPeerStats s = g.PeerStats("bad");
  EXPECT_EQ(s.throttles, 1u);
  EXPECT_EQ(s.bad_txs, 6u);
  EXPECT_EQ(s.throttled_until, clock.Now() + absl::Seconds(1));
  EXPECT_TRUE(throttled_now());

  // After 1 s it is heard again; failing again it is throttled for 2 s.
  clock.Advance(absl::Seconds(1));
  fail_once();
  fail_once();
  EXPECT_EQ(g.PeerStats("bad").throttles, 2u);
  EXPECT_EQ(g.PeerStats("bad").throttled_until, clock.Now() + absl::Seconds(2));
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(throttled_now());
  clock.Advance(absl::Seconds(1));
  // Then 4 s, then 4 s again (the most).
  fail_once();
  fail_once();
  EXPECT_EQ(g.PeerStats("bad").throttled_until, clock.Now() + absl::Seconds(4));
  clock.Advance(absl::Seconds(4));
  fail_once();
  fail_once();
  EXPECT_EQ(g.PeerStats("bad").throttles, 4u);
  EXPECT_EQ(g.PeerStats("bad").throttled_until, clock.Now() + absl::Seconds(4));
  // Quiet for max_throttle after its throttle: it starts again at 1 s.
  clock.Advance(absl::Seconds(8));
  fail_once();
  fail_once();
  EXPECT_EQ(g.PeerStats("bad").throttled_until, clock.Now() + absl::Seconds(1));
  // Failures spread wider than the window never add up to a throttle.
  clock.Advance(absl::Seconds(1));
  fail_once();
  clock.Advance(absl::Seconds(11));
  fail_once();
  EXPECT_EQ(g.PeerStats("bad").throttles, 5u);
  EXPECT_FALSE(throttled_now());
  EXPECT_EQ(g.PeerStats("bad").throttles, 6u);  // that one made two

  const GossipStats total = g.Stats();
  EXPECT_EQ(total.throttles, 6u);
  EXPECT_EQ(total.dropped_throttled, 6u);  // the two batches sent while out
  const std::string text = registry.Serialize();
  EXPECT_NE(
      text.find(
          "consortia_mempool_gossip_peer_throttles_total{peer=\"bad\"} 6"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_mempool_gossip_peer_throttles_total{peer="
                      "\"good\"} 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_mempool_gossip_dropped_total{reason="
                      "\"throttled\"} 6"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_mempool_gossip_peer_bad_txs_total{peer="
                      "\"bad\"} " +
                      std::to_string(3 * failed)),
            std::string::npos)
      << text;
}

TEST_F(GossipUnitTest, PeerRelayingGoodTxsIsNeverThrottled) {
  GossipOptions o;
  o.fail_threshold = 1;  // the strictest setting
  FakePeerNet net({"good"});
  Gossip g(o, &pool_);
  g.Start(&net);
  // New txs, the same ones again (duplicates), committed ones, expired ones
  // and ones too far ahead: none is a fault.
  const std::vector<Bytes> fresh = Txs(key_, 1, 20);
  const Bytes committed = SignedTx(key_, 100, 100);
  pool_.OnCommitted(CommittedEvent{
      1, Hash32{}, {Committed(committed)}, {}, false, std::nullopt});
  const std::vector<Bytes> odd = {committed, SignedTx(key_, 101, 1),
                                  SignedTx(key_, 102, 1'000'000)};
  for (int round = 0; round < 5; ++round) {
    Deliver(g, "good", EncodeGossipBatch(Shared(fresh)));
    Deliver(g, "good", EncodeGossipBatch(Shared(odd)));
  }
  ASSERT_TRUE(WaitFor([&] { return g.Stats().backlog == 0; }));
  const GossipPeerStats s = g.PeerStats("good");
  EXPECT_EQ(s.failed_batches, 0u);
  EXPECT_EQ(s.throttles, 0u);
  EXPECT_EQ(s.dropped_throttled, 0u);
  EXPECT_EQ(s.txs_admitted, 20u);
  EXPECT_EQ(pool_.pending_count(), 20u);
}

TEST_F(GossipUnitTest, UndecodableBatchesCountAsFailures) {
  GossipOptions o;
  o.fail_threshold = 3;
  FakePeerNet net({"a"});
  Gossip g(o, &pool_);
  g.Start(&net);
  for (int i = 0; i < 3; ++i) Deliver(g, "a", Bytes{0x05, 0x01});
  EXPECT_EQ(g.Stats().dropped_malformed, 3u);
  EXPECT_EQ(g.PeerStats("a").failed_batches, 3u);
  EXPECT_EQ(g.PeerStats("a").throttles, 1u);
  // Now even its good batches are dropped, without being decoded.
  Deliver(g, "a", EncodeGossipBatch(Shared(Txs(key_, 1, 4))));
  EXPECT_EQ(g.Stats().dropped_throttled, 4u);
  EXPECT_EQ(g.Stats().batches_received, 0u);
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
    nodes_[i]->mempool->OnCommitted(CommittedEvent{
        1, Hash32{}, {Committed(committed)}, {}, false, std::nullopt});
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
  // Every tx is either sent or dropped and counted. (Not checked right after
  // Submit: the flusher may take a tx out of the queue between two enqueues
  // and so make room for one more.)
  ASSERT_TRUE(WaitFor([&] {
    const GossipStats s = nodes_[0]->gossip->Stats();
    return s.txs_sent + s.dropped_send_queue == kTxs;
  }));
  const GossipStats s = nodes_[0]->gossip->Stats();
  EXPECT_GE(s.dropped_send_queue, kTxs - 5);
  EXPECT_LE(s.txs_sent, 5u);
  EXPECT_EQ(nodes_[0]->mempool->pending_count(), kTxs);  // kept locally
}

TEST_F(GossipNetworkTest, FloodingPeerIsThrottledAndTheOthersGetThrough) {
  GossipOptions o;
  StartNodes(3, o);
  ASSERT_FALSE(HasFatalFailure());
  // Node 0 turns hostile: it sends node 1 batches of bad signatures straight
  // through its PeerNet, while node 2's api takes good txs.
  std::vector<Bytes> bad;
  for (uint64_t i = 0; i < 100; ++i) bad.push_back(BadSignatureTx(key_, i));
  const Bytes bad_batch = EncodeGossipBatch(Shared(bad));
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    for (int i = 0; i < 300 && !stop.load(); ++i) {
      nodes_[0]->net->Send("node1", kGossipType, bad_batch).IgnoreError();
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  constexpr size_t kTxs = 200;
  const KeyPair client = Ed25519Sha256().GenerateKey();
  for (size_t i = 0; i < kTxs; i += 50) {
    ASSERT_TRUE(nodes_[2]->api->Submit(Txs(client, 1000 + i, 50)).ok());
  }
  const bool arrived =
      WaitFor([&] { return nodes_[1]->mempool->pending_count() == kTxs; });
  stop = true;
  flood.join();
  ASSERT_TRUE(arrived);
  // The peer id is the authenticated sender's: node 0 is throttled, node 2
  // never.
  ASSERT_TRUE(WaitFor(
      [&] { return nodes_[1]->gossip->PeerStats("node0").throttles > 0; }));
  const GossipPeerStats hostile = nodes_[1]->gossip->PeerStats("node0");
  const GossipPeerStats honest = nodes_[1]->gossip->PeerStats("node2");
  EXPECT_GT(hostile.bad_txs, 0u);
  EXPECT_EQ(honest.throttles, 0u);
  EXPECT_EQ(honest.failed_batches, 0u);
  EXPECT_EQ(honest.dropped_queue_full + honest.dropped_throttled, 0u);
  EXPECT_EQ(nodes_[2]->gossip->PeerStats("node1").throttles, 0u);
}

}  // namespace
}  // namespace consortia::mempool
