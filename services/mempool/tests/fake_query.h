// A fake of storage's QueryApi for the mempool's tests.
#ifndef CONSORTIA_MEMPOOL_TESTS_FAKE_QUERY_H_
#define CONSORTIA_MEMPOOL_TESTS_FAKE_QUERY_H_

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/service_api.h"
#include "test_util.h"

namespace consortia::mempool::testing {

// Storage's query side as the mempool sees it: commit events by height.
// Refuses GetCommitted ranges over 1000 heights, and, like the real one,
// stops a page after the height whose txs reach the per-call limit (see
// SetMaxTxsPerCall), saying where in next_height.
class FakeQuery : public QueryApi {
 public:
  void AddEvent(CommittedEvent e) {
    absl::MutexLock lock(&mu_);
    latest_ = std::max(latest_, e.height);
    events_[e.height] = std::move(e);
  }
  // Adds empty events for heights (latest, h].
  void GrowTo(uint64_t h) {
    uint64_t from;
    {
      absl::MutexLock lock(&mu_);
      from = latest_ + 1;
    }
    for (uint64_t i = from; i <= h; ++i) AddEvent({i, {}, {}});
  }
  void FailNext(int n) {
    absl::MutexLock lock(&mu_);
    failures_ = n;
  }
  // GetCommitted's tx limit per call (storage's kMaxCommittedTxsPerCall);
  // 0 = none.
  void SetMaxTxsPerCall(size_t n) {
    absl::MutexLock lock(&mu_);
    max_txs_per_call_ = n;
  }
  std::vector<std::pair<uint64_t, uint64_t>> committed_calls() {
    absl::MutexLock lock(&mu_);
    return committed_calls_;
  }

  absl::StatusOr<BlockRecord> GetBlock(
      std::optional<uint64_t> height) override {
    absl::MutexLock lock(&mu_);
    if (failures_ > 0) {
      --failures_;
      return absl::UnavailableError("storage is down");
    }
    if (height.has_value()) return absl::UnimplementedError("not in fake");
    if (latest_ == 0) return absl::NotFoundError("no block yet");
    BlockRecord r;
    r.block.header.chain_id = kChainId;
    r.block.header.height = latest_;
    return r;
  }
  absl::StatusOr<TxRecord> GetTx(const Hash32&) override {
    return absl::UnimplementedError("not in fake");
  }
  absl::StatusOr<StateRecord> GetState(const std::string&,
                                       const std::string&) override {
    return absl::UnimplementedError("not in fake");
  }
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override {
    absl::MutexLock lock(&mu_);
    committed_calls_.emplace_back(from, to);
    if (failures_ > 0) {
      --failures_;
      return absl::UnavailableError("storage is down");
    }
    if (to < from || to - from + 1 > 1000) {
      return absl::InvalidArgumentError("at most 1000 heights per call");
    }
    CommittedPage page;
    page.next_height = from;
    size_t txs = 0;
    for (auto it = events_.find(from);
         it != events_.end() && it->first == page.next_height &&
         it->first <= to;
         ++it) {
      page.events.push_back(it->second);
      page.next_height = it->first + 1;
      txs += it->second.txs.size();
      if (max_txs_per_call_ > 0 && txs >= max_txs_per_call_) break;
    }
    return page;
  }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, CommittedEvent> events_ ABSL_GUARDED_BY(mu_);
  uint64_t latest_ ABSL_GUARDED_BY(mu_) = 0;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_txs_per_call_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<uint64_t, uint64_t>> committed_calls_
      ABSL_GUARDED_BY(mu_);
};

// Polls cond until it holds or 30 s pass.
template <typename F>
bool WaitFor(F cond) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

}  // namespace consortia::mempool::testing

#endif  // CONSORTIA_MEMPOOL_TESTS_FAKE_QUERY_H_
