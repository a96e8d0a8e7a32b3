// A flood of valid transactions from many senders at once, several times
// larger than the pool: the pool must stay within its bounds, answer the
// overflow with clean kPoolFull verdicts, and lose nothing it admitted.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/thread_pool.h"
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
  CommittedEvent block{1, {}, {}};
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

}  // namespace
}  // namespace consortia::mempool
