// The member keys of a permissioned chain, in memory, for admission.
#ifndef CONSORTIA_MEMPOOL_SRC_MEMBERSHIP_CACHE_H_
#define CONSORTIA_MEMPOOL_SRC_MEMBERSHIP_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"
#include "consortia/metrics.h"
#include "consortia/storage_queries.h"

namespace consortia::mempool {

// The registered member keys (the admin app's `member/<hex>` records) and
// whether the chain is permissioned, as of one height. The CommitFollower
// keeps it current: at start it loads the whole set from storage
// (CommitHistory::ListMembers, page by page) and then applies the
// member_changes and permissioned flag of every block.committed event above
// the height it loaded at, in height order. Admission asks Admits() once per
// tx: one set lookup under a shared lock, never a storage round trip.
//
// Before any load it is empty and open (not permissioned): it admits every
// key, as a chain without a consortium does.
//
// Thread-safe.
class MembershipCache {
 public:
  // `members` and `permissioned` are gauges it keeps current (the number of
  // keys, and 1 when permissioned); default handles are no-ops.
  explicit MembershipCache(Gauge members = {}, Gauge permissioned = {});

  MembershipCache(const MembershipCache&) = delete;
  MembershipCache& operator=(const MembershipCache&) = delete;

  // Replaces everything with a fresh load: the keys (raw public key bytes)
  // and the flag, read from the state after block `height`.
  void Load(uint64_t height, bool permissioned,
            absl::flat_hash_set<std::string> keys);

  // Applies one commit event: its member changes and its permissioned flag.
  // Events at or below the height already reflected are ignored (a change
  // applied twice would be harmless anyway). The caller applies events in
  // height order without holes.
  void Apply(const CommittedEvent& event);

  // True when the chain is not permissioned, or `sender` is a registered
  // member key.
  bool Admits(ByteView sender) const;

  // The height whose state the cache reflects (0 before any load or event).
  uint64_t height() const;
  bool permissioned() const;
  size_t size() const;

 private:
  void UpdateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Gauge members_gauge_;
  Gauge permissioned_gauge_;
  mutable absl::Mutex mu_;
  uint64_t height_ ABSL_GUARDED_BY(mu_) = 0;
  bool permissioned_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_SRC_MEMBERSHIP_CACHE_H_
