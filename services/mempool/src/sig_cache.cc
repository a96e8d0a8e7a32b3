#include "sig_cache.h"

#include <algorithm>
#include <cstring>

namespace consortia::mempool {
namespace {

constexpr size_t kMaxShards = 16;

}  // namespace

SigCache::SigCache(size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) return;
  shard_count_ = std::min(kMaxShards, capacity_);
  shards_ = std::make_unique<Shard[]>(shard_count_);
  // Spread the capacity exactly: the first `capacity % shards` shards take
  // one more entry.
  for (size_t i = 0; i < shard_count_; ++i) {
    shards_[i].capacity =
        capacity_ / shard_count_ + (i < capacity_ % shard_count_ ? 1 : 0);
  }
}

size_t SigCache::ShardIndex(const Hash32& tx_hash) const {
  // Tx hashes are digests: any 8 of their bytes are uniformly spread.
  uint64_t v;
  std::memcpy(&v, tx_hash.data(), sizeof(v));
  return v % shard_count_;
}

bool SigCache::Contains(const Hash32& tx_hash, const Hash32& auth) const {
  if (capacity_ == 0) return false;
  const Shard& shard = shards_[ShardIndex(tx_hash)];
  absl::MutexLock lock(&shard.mu);
  auto it = shard.map.find(tx_hash);
  return it != shard.map.end() && it->second == auth;
}

void SigCache::Insert(const Hash32& tx_hash, const Hash32& auth) {
  if (capacity_ == 0) return;
  Shard& shard = shards_[ShardIndex(tx_hash)];
  absl::MutexLock lock(&shard.mu);
  auto [it, inserted] = shard.map.try_emplace(tx_hash, auth);
  if (!inserted) {
    it->second = auth;
    return;
  }
  if (shard.ring.size() < shard.capacity) {
    shard.ring.push_back(tx_hash);
    size_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Full: the oldest entry makes room.
  shard.map.erase(shard.ring[shard.next]);
  shard.ring[shard.next] = tx_hash;
  shard.next = (shard.next + 1) % shard.capacity;
}

}  // namespace consortia::mempool
