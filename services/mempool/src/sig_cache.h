// The verified-signature cache: which (tx, signature) pairs the mempool has
// already checked, so a tx that comes back inside a proposal (or is
// resubmitted after a "pool full") is not verified twice.
#ifndef CONSORTIA_MEMPOOL_SRC_SIG_CACHE_H_
#define CONSORTIA_MEMPOOL_SRC_SIG_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"

namespace consortia::mempool {

// A bounded set of verified signatures, keyed by the tx hash, each with the
// digest of the (sender key, signature) pair that was verified for it. The
// tx hash leaves the signature out (docs/adr/0002), so the digest is what
// makes a different signature for the same hash a miss, never a hit.
//
// Bounded: it holds at most `capacity` entries. It is split into shards by
// tx hash, each a ring in insertion order; when a shard is full the oldest
// entry makes room (first in, first out: a tx is typically verified once on
// submission and looked up once when a proposal carries it). Memory is about
// 110 bytes per entry. A capacity of 0 disables the cache (every lookup
// misses, nothing is stored).
//
// Thread-safe: every method may be called from any thread; each shard has
// its own lock, so concurrent verify workers rarely wait for one another.
class SigCache {
 public:
  explicit SigCache(size_t capacity);

  SigCache(const SigCache&) = delete;
  SigCache& operator=(const SigCache&) = delete;

  // True iff Insert(tx_hash, auth) happened and the entry has not been
  // pushed out since.
  bool Contains(const Hash32& tx_hash, const Hash32& auth) const;
  // Remembers that the signature with digest `auth` verified for tx_hash.
  // A later Insert for the same hash replaces the digest (a re-signed tx).
  void Insert(const Hash32& tx_hash, const Hash32& auth);

  // Entries held now; at most capacity().
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  size_t capacity() const { return capacity_; }

 private:
  struct Shard {
    mutable absl::Mutex mu;
    size_t capacity = 0;
    absl::flat_hash_map<Hash32, Hash32> map ABSL_GUARDED_BY(mu);
    // Keys in insertion order; once full, `next` is the oldest.
    std::vector<Hash32> ring ABSL_GUARDED_BY(mu);
    size_t next ABSL_GUARDED_BY(mu) = 0;
  };

  size_t ShardIndex(const Hash32& tx_hash) const;

  const size_t capacity_;
  size_t shard_count_ = 0;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<size_t> size_{0};
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_SRC_SIG_CACHE_H_
