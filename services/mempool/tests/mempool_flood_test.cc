// Floods. Valid transactions from many senders at once, several times
// larger than the pool: the pool must stay within its bounds, answer the
// overflow with clean kPoolFull verdicts, and lose nothing it admitted. A
// peer flooding bad-signature gossip: the honest peers and the api still get
// their txs admitted, and the flooding peer is throttled.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/thread_pool.h"
#include "fake_peer_net.h"
#include "gossip.h"
#include "gtest/gtest.h"
#include "mempool.h"
#include "test_util.h"

namespace consortia::mempool {
namespace {

using testing::Committed;
using testing::HashOf;
using testing::kChainId;
using testing::SignedTx;

struct FloodOutcome {
  std::vector<Bytes> accepted;
  std::vector<Bytes> refused;  // kPoolFull
  size_t other = 0;            // any other verdict, or a failed call
  size_t max_seen_txs = 0;
  uint64_t max_seen_bytes = 0;
};

// Each of `senders` threads submits its own txs in batches of `batch`,
// while a watcher samples the pool's size.
FloodOutcome Flood(Mempool& m, size_t senders, size_t per_sender, size_t batch,
                   const std::string& value = "v") {
  std::vector<std::vector<Bytes>> txs(senders);
  for (size_t s = 0; s < senders; ++s) {
    KeyPair key = Ed25519Sha256().GenerateKey();
    for (size_t i = 0; i < per_sender; ++i) {
      txs[s].push_back(SignedTx(key, i, 100, kChainId, value));
    }
  }
  FloodOutcome out;
  absl::Mutex mu;
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) {
      out.max_seen_txs = std::max(out.max_seen_txs, m.pending_count());
      out.max_seen_bytes = std::max(out.max_seen_bytes, m.pending_bytes());
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  std::vector<std::thread> threads;
  for (size_t s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      for (size_t begin = 0; begin < per_sender; begin += batch) {
        std::vector<Bytes> chunk(
            txs[s].begin() + begin,
            txs[s].begin() + std::min(per_sender, begin + batch));
        absl::StatusOr<std::vector<SubmitResult>> r = m.Submit(chunk);
        absl::MutexLock lock(&mu);
        if (!r.ok() || r->size() != chunk.size()) {
          out.other += chunk.size();
          continue;
        }
        for (size_t i = 0; i < chunk.size(); ++i) {
          const SubmitResult& res = (*r)[i];
          if (res.code == Admission::kAccepted) {
            out.accepted.push_back(chunk[i]);
          } else if (res.code == Admission::kPoolFull &&
                     res.detail.find("retry later") != std::string::npos &&
                     res.tx_hash == HashOf(chunk[i])) {
            out.refused.push_back(chunk[i]);
          } else {
            ++out.other;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  done = true;
  watcher.join();
  return out;
}

absl::flat_hash_set<Hash32> Hashes(const std::vector<Bytes>& txs) {
  absl::flat_hash_set<Hash32> out;
  for (const Bytes& tx : txs) out.insert(HashOf(tx));
  return out;
}

uint64_t TotalBytes(const std::vector<Bytes>& txs) {
  uint64_t n = 0;
  for (const Bytes& tx : txs) n += tx.size();
  return n;
}

class MempoolFloodTest : public ::testing::Test {
 protected:
  ThreadPool pool_{2};
};

TEST_F(MempoolFloodTest, FloodLargerThanThePoolByCount) {
  MempoolOptions o;
  o.max_txs = 300;
  o.max_per_sender = 300;
  Mempool m(o, kChainId, Ed25519Sha256(), &pool_);
  m.SetReady();

  constexpr size_t kSenders = 12;
  constexpr size_t kPerSender = 100;  // 1200 txs, four times the pool
  FloodOutcome f = Flood(m, kSenders, kPerSender, 25);

  // Every tx got a clean verdict: admitted, or "pool full, retry later".
  EXPECT_EQ(f.other, 0u);
  EXPECT_EQ(f.accepted.size() + f.refused.size(), kSenders * kPerSender);
  // The pool filled up exactly, and never went past its bound.
  EXPECT_EQ(f.accepted.size(), o.max_txs);
  EXPECT_LE(f.max_seen_txs, o.max_txs);
  EXPECT_EQ(m.pending_count(), o.max_txs);
  // Its byte accounting is exact: what it holds is what it admitted.
  EXPECT_EQ(m.pending_bytes(), TotalBytes(f.accepted));

  // Nothing admitted is lost: consensus reaps every admitted tx, and only
  // those.
  absl::StatusOr<std::vector<Bytes>> reaped =
      m.Reap({100000, uint64_t{1} << 40, 0});
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(Hashes(*reaped), Hashes(f.accepted));
  EXPECT_EQ(reaped->size(), f.accepted.size());

  // Once they are committed the pool is empty, and the refused txs, sent
  // again, are admitted (clients retry after a 429).
  CommittedEvent block{1, {}, {}, {}, false, std::nullopt};
  for (const Bytes& tx : *reaped) block.txs.push_back(Committed(tx));
  m.OnCommitted(block);
  EXPECT_EQ(m.pending_count(), 0u);
  EXPECT_EQ(m.pending_bytes(), 0u);
  std::vector<Bytes> retry(f.refused.begin(), f.refused.begin() + o.max_txs);
  absl::StatusOr<std::vector<SubmitResult>> again = m.Submit(retry);
  ASSERT_TRUE(again.ok());
  for (const SubmitResult& r : *again) {
    EXPECT_EQ(r.code, Admission::kAccepted) << r.detail;
  }
}

TEST_F(MempoolFloodTest, FloodLargerThanThePoolByBytes) {
  const std::string value(1000, 'x');
  const size_t tx_size =
      SignedTx(Ed25519Sha256().GenerateKey(), 0, 100, kChainId, value).size();
  MempoolOptions o;
  o.max_bytes = 50 * tx_size + tx_size / 2;  // room for 50 txs
  Mempool m(o, kChainId, Ed25519Sha256(), &pool_);
  m.SetReady();

  FloodOutcome f = Flood(m, 8, 40, 10, value);  // 320 txs
  EXPECT_EQ(f.other, 0u);
  EXPECT_EQ(f.accepted.size(), 50u);
  EXPECT_EQ(f.refused.size(), 270u);
  EXPECT_LE(f.max_seen_bytes, o.max_bytes);
  EXPECT_EQ(m.pending_bytes(), TotalBytes(f.accepted));
  absl::StatusOr<std::vector<Bytes>> reaped =
      m.Reap({100000, uint64_t{1} << 40, 0});
  ASSERT_TRUE(reaped.ok());
  EXPECT_EQ(Hashes(*reaped), Hashes(f.accepted));
}

// ------------------------------------------ gossip: a peer that floods

// One peer floods bad-signature batches while an honest peer gossips good
// txs and this node's api submits good txs. The honest peer's and the api's
// txs must all be admitted (counts, not timings); the latencies with and
// without the flood are printed for the record, never asserted.
class GossipFloodTest : public ::testing::Test {
 protected:
  static constexpr uint16_t kGossipType =
      static_cast<uint16_t>(MsgType::kMempoolGossipTxs);

  GossipFloodTest()
      : net_({"bad", "honest", "third"}),
        verify_pool_(2),
        pool_(MempoolOptions(), kChainId, Ed25519Sha256(), &verify_pool_) {
    pool_.SetReady();
  }

  void Deliver(Gossip& g, const std::string& from, const Bytes& payload) {
    Envelope env;
    env.type = kGossipType;
    g.Handlers().at(kGossipType)(from, env, payload);
  }

  static Bytes Batch(const std::vector<Bytes>& txs) {
    std::vector<std::shared_ptr<const Bytes>> shared;
    for (const Bytes& tx : txs) shared.push_back(std::make_shared<Bytes>(tx));
    return EncodeGossipBatch(shared);
  }

  // `n` txs of a fresh key whose signatures do not verify.
  static std::vector<Bytes> BadTxs(size_t n) {
    const KeyPair key = Ed25519Sha256().GenerateKey();
    std::vector<Bytes> out;
    for (size_t i = 0; i < n; ++i) {
      Transaction tx = testing::MakeTx(key, i, 100);
      tx.signature[0] ^= 0x01;
      out.push_back(EncodeTx(tx));
    }
    return out;
  }

  static std::vector<Bytes> GoodTxs(const KeyPair& key, uint64_t first,
                                    size_t n) {
    std::vector<Bytes> out;
    for (size_t i = 0; i < n; ++i) out.push_back(SignedTx(key, first + i, 100));
    return out;
  }

  // Rounds of: the honest peer sends one batch of `kBatch` txs, then the
  // api submits `kBatch` txs; each waits until its txs are pending. Returns
  // the mean latencies in ms (peer batch until pending, api Submit call).
  struct Latency {
    double peer_ms = 0;
    double api_ms = 0;
  };
  Latency HonestRounds(Gossip& g, GossipingMempool& api, int rounds) {
    static constexpr size_t kBatch = 50;
    Latency sum;
    for (int r = 0; r < rounds; ++r) {
      const std::vector<Bytes> peer_txs = GoodTxs(honest_key_, nonce_, kBatch);
      nonce_ += kBatch;
      const std::vector<Bytes> api_txs = GoodTxs(api_key_, nonce_, kBatch);
      nonce_ += kBatch;
      const Bytes payload = Batch(peer_txs);
      const size_t before = pool_.pending_count();
      absl::Time start = absl::Now();
      Deliver(g, "honest", payload);
      EXPECT_TRUE(testing::WaitFor([&] {
        return pool_.pending_count() >= before + kBatch;
      })) << "round "
          << r << ": the honest peer's batch was never admitted";
      sum.peer_ms += absl::ToDoubleMilliseconds(absl::Now() - start);
      start = absl::Now();
      absl::StatusOr<std::vector<SubmitResult>> res = api.Submit(api_txs);
      sum.api_ms += absl::ToDoubleMilliseconds(absl::Now() - start);
      EXPECT_TRUE(res.ok()) << res.status();
      if (res.ok()) {
        for (const SubmitResult& s : *res) {
          EXPECT_EQ(s.code, Admission::kAccepted) << s.detail;
        }
      }
      honest_sent_ += kBatch;
      api_sent_ += kBatch;
      if (::testing::Test::HasFailure()) break;
    }
    return {sum.peer_ms / rounds, sum.api_ms / rounds};
  }

  testing::FakePeerNet net_;
  ThreadPool verify_pool_;
  Mempool pool_;
  KeyPair honest_key_ = Ed25519Sha256().GenerateKey();
  KeyPair api_key_ = Ed25519Sha256().GenerateKey();
  uint64_t nonce_ = 1;
  size_t honest_sent_ = 0;
  size_t api_sent_ = 0;

  // The whole scenario; with `throttle` false the flooding peer is never
  // throttled, so only the round-robin protects the others.
  void RunFlood(bool throttle);
};

void GossipFloodTest::RunFlood(bool throttle) {
  GossipOptions o;
  if (throttle) {
    // Short back-offs (20, 40, 80, 160 ms), so that the flood outlives the
    // first throttles and is throttled again while it runs.
    o.throttle = absl::Milliseconds(20);
    o.max_throttle = absl::Milliseconds(160);
  } else {
    o.fail_threshold = std::numeric_limits<size_t>::max();
  }
  Gossip g(o, &pool_);
  GossipingMempool api(&pool_, &g);
  // 256 bad-signature txs, sent again and again: a bad signature is never
  // cached, so every copy costs a check.
  const Bytes bad_batch = Batch(BadTxs(256));

  // Before the gossip starts, the flood fills what it can, then the honest
  // peer's batches arrive: they must not be shut out.
  for (int i = 0; i < 200; ++i) Deliver(g, "bad", bad_batch);
  std::vector<Bytes> early = GoodTxs(honest_key_, 1'000'000, 100);
  Deliver(g, "honest", Batch(early));
  g.Start(&net_);
  ASSERT_TRUE(testing::WaitFor([&] { return pool_.pending_count() >= 100; }))
      << "the honest peer's batch was shut out by the flood";
  // What the flood queued is judged (or discarded) before the quiet rounds.
  ASSERT_TRUE(testing::WaitFor([&] { return g.Stats().backlog == 0; }));

  const Latency quiet = HonestRounds(g, api, 20);
  ASSERT_FALSE(HasFailure());

  // The flood: a batch of 256 bad txs every 200 µs (about 1.3 million bad
  // signatures a second offered), from "the PeerNet thread" (this thread).
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> flood_batches{0};
  std::thread flood([&] {
    while (!stop.load()) {
      Deliver(g, "bad", bad_batch);
      flood_batches.fetch_add(1);
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  // Let the flood reach its steady state (its queue full) first.
  absl::SleepFor(absl::Milliseconds(200));
  const Latency flooded = HonestRounds(g, api, 20);
  stop = true;
  flood.join();
  ASSERT_FALSE(HasFailure());

  // Every honest tx is pending, and no bad one.
  EXPECT_EQ(pool_.pending_count(), 100 + honest_sent_ + api_sent_);
  // The gossip counts a turn's txs just after the pool admitted them.
  EXPECT_TRUE(testing::WaitFor([&] {
    return g.PeerStats("honest").txs_admitted == 100 + honest_sent_;
  }));
  const GossipStats s = g.Stats();
  // The flooding peer was throttled (and its batches dropped), the honest
  // one never; no queue went past its bounds.
  const GossipPeerStats bad = g.PeerStats("bad");
  const GossipPeerStats honest = g.PeerStats("honest");
  if (throttle) {
    EXPECT_GE(bad.throttles, 2u);  // before the flood, and during it
    EXPECT_GT(bad.dropped_throttled, 0u);
    // It cost at most fail_threshold failed turns per throttle.
    EXPECT_LE(bad.failed_batches, (bad.throttles + 1) * o.fail_threshold);
  } else {
    EXPECT_EQ(bad.throttles, 0u);
  }
  EXPECT_GT(bad.bad_txs, 0u);
  EXPECT_GT(bad.dropped_queue_full, 0u);  // the pre-start flood was shed
  EXPECT_EQ(honest.throttles, 0u);
  EXPECT_EQ(honest.failed_batches, 0u);
  EXPECT_EQ(honest.dropped_queue_full + honest.dropped_throttled, 0u);
  EXPECT_EQ(honest.txs_admitted, 100 + honest_sent_);
  EXPECT_LE(bad.max_queue_batches, o.peer_queue_batches);
  EXPECT_LE(bad.max_queue_bytes, o.peer_queue_bytes);
  EXPECT_LE(honest.max_queue_batches, o.peer_queue_batches);
  std::printf(
      "[ figures ] throttle %s: honest peer batch admitted in %.2f ms quiet, "
      "%.2f ms under "
      "the flood; api Submit of 50 txs %.2f ms quiet, %.2f ms under the "
      "flood; %llu flood batches offered, %llu bad txs checked\n",
      throttle ? "on" : "off", quiet.peer_ms, flooded.peer_ms, quiet.api_ms,
      flooded.api_ms, static_cast<unsigned long long>(flood_batches.load()),
      static_cast<unsigned long long>(s.txs_rejected));
  std::printf(
      "[ figures ] throttle %s: bad peer: %llu throttles, %llu txs dropped "
      "while "
      "throttled, %llu for a full queue, queue peak %llu batches / %llu "
      "bytes\n",
      throttle ? "on" : "off", static_cast<unsigned long long>(bad.throttles),
      static_cast<unsigned long long>(bad.dropped_throttled),
      static_cast<unsigned long long>(bad.dropped_queue_full),
      static_cast<unsigned long long>(bad.max_queue_batches),
      static_cast<unsigned long long>(bad.max_queue_bytes));
}

TEST_F(GossipFloodTest, BadSignatureFloodIsThrottledAndStarvesNoOne) {
  RunFlood(/*throttle=*/true);
}

// Round-robin alone (the flooding peer never throttled) still keeps the
// honest peer and the api going.
TEST_F(GossipFloodTest, RoundRobinAloneKeepsHonestPeerAndApiGoing) {
  RunFlood(/*throttle=*/false);
}

}  // namespace
}  // namespace consortia::mempool
