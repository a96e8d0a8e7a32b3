#include "sig_cache.h"

#include <thread>
#include <vector>

#include "consortia/crypto_suite.h"
#include "gtest/gtest.h"

namespace consortia::mempool {
namespace {

Hash32 H(uint64_t i, char tag = 'h') {
  const std::string s = std::string(1, tag) + std::to_string(i);
  return Ed25519Sha256().Hash(
      ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(SigCacheTest, HitsOnlyTheSameHashWithTheSameSignatureDigest) {
  SigCache cache(100);
  EXPECT_FALSE(cache.Contains(H(1), H(1, 'a')));
  cache.Insert(H(1), H(1, 'a'));
  EXPECT_TRUE(cache.Contains(H(1), H(1, 'a')));
  // Same tx hash, another signature: a miss.
  EXPECT_FALSE(cache.Contains(H(1), H(2, 'a')));
  // Another tx with the first one's signature digest: a miss.
  EXPECT_FALSE(cache.Contains(H(2), H(1, 'a')));
  // A re-signed tx replaces the digest.
  cache.Insert(H(1), H(3, 'a'));
  EXPECT_TRUE(cache.Contains(H(1), H(3, 'a')));
  EXPECT_FALSE(cache.Contains(H(1), H(1, 'a')));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(SigCacheTest, StaysWithinItsCapacityAndForgetsTheOldestFirst) {
  constexpr size_t kCapacity = 64;
  SigCache cache(kCapacity);
  for (uint64_t i = 0; i < 10 * kCapacity; ++i) {
    cache.Insert(H(i), H(i, 'a'));
    ASSERT_LE(cache.size(), kCapacity);
  }
  EXPECT_EQ(cache.size(), kCapacity);
  // The newest entries of each shard are still there, the oldest are gone:
  // every shard holds the last entries it was given, so the very last
  // insert is always a hit and the very first never.
  EXPECT_TRUE(
      cache.Contains(H(10 * kCapacity - 1), H(10 * kCapacity - 1, 'a')));
  EXPECT_FALSE(cache.Contains(H(0), H(0, 'a')));
  size_t hits = 0;
  for (uint64_t i = 0; i < 10 * kCapacity; ++i) {
    hits += cache.Contains(H(i), H(i, 'a')) ? 1 : 0;
  }
  EXPECT_EQ(hits, kCapacity);
}

TEST(SigCacheTest, SmallerThanTheShardCountStillBounded) {
  SigCache cache(3);
  for (uint64_t i = 0; i < 100; ++i) cache.Insert(H(i), H(i, 'a'));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.Contains(H(99), H(99, 'a')));
}

TEST(SigCacheTest, ZeroCapacityDisablesIt) {
  SigCache cache(0);
  cache.Insert(H(1), H(1, 'a'));
  EXPECT_FALSE(cache.Contains(H(1), H(1, 'a')));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(SigCacheTest, ConcurrentInsertsAndLookupsStayBoundedAndConsistent) {
  constexpr size_t kCapacity = 1000;
  SigCache cache(kCapacity);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (uint64_t i = 0; i < 2000; ++i) {
        const uint64_t id = t * 100000 + i;
        cache.Insert(H(id), H(id, 'a'));
        // Whatever other threads do, a wrong digest is never a hit.
        EXPECT_FALSE(cache.Contains(H(id), H(id, 'b')));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(cache.size(), kCapacity);
}

}  // namespace
}  // namespace consortia::mempool
