// Gathers items into batches: the one batching mechanism of the services
// (the api's submit batching, the mempool's gossip to its peers).
//
// Items are added to numbered lanes (one lane, or one per destination such
// as a peer); a batch holds items of one lane only, in the order they were
// added. A lane's batch is due when the lane holds `max_items` items or
// `max_bytes` bytes, or when its oldest item has waited `linger`. A batch is
// cut from the front of the lane: at most `max_items` items and `max_bytes`
// bytes, except that a single item larger than `max_bytes` goes alone. The
// due batches are handed to the `flush` handler, lanes served round-robin.
//
// Example (one lane, flushes run on 2 threads):
//
//   BatcherOptions o;
//   o.max_items = 512;
//   o.linger = absl::Microseconds(500);
//   o.flush_threads = 2;
//   Batcher<Bytes>::Handlers h;
//   h.flush = [](size_t lane, std::vector<Bytes> batch) { Send(batch); };
//   Batcher<Bytes> b(o, std::move(h));
//   b.Start();
//   if (!b.Add(std::move(tx)).ok()) { ... refused: full or stopped ... }
#ifndef CONSORTIA_COMMON_BATCHER_H_
#define CONSORTIA_COMMON_BATCHER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consortia/thread_pool.h"

namespace consortia {

struct BatcherOptions {
  // A lane's batch is due when it holds this many items (at least 1) ...
  size_t max_items = 256;
  // ... or this many bytes (as the `bytes` handler counts them) ...
  size_t max_bytes = std::numeric_limits<size_t>::max();
  // ... or when its oldest item has waited this long (zero: at once).
  absl::Duration linger = absl::Milliseconds(1);
  // Most items waiting in one lane; Add refuses more.
  size_t max_queued = 16384;
  // 0: `flush` runs on the thread that cut the batch (the flusher thread, or
  // the caller of Tick), one batch at a time. n > 0: on a pool of n threads
  // of the batcher's own, with at most n batches in flight; while all n are
  // busy, no batch is cut and the items keep gathering (so a slow consumer
  // gets fuller batches rather than more of them).
  size_t flush_threads = 0;
  // Test hook: the clock that `linger` is measured on (nullptr: absl::Now).
  // The flusher thread still sleeps in real time; tests that move the clock
  // drive the batcher with Tick instead of Start.
  std::function<absl::Time()> test_only_clock;
};

// Thread-safe. Lifecycle: construct, Add (items wait), Start (the flusher
// thread cuts and delivers from now on; or call Tick), Stop (or destroy).
//
// Stop rule: Stop refuses later Adds, hands every item not yet cut to the
// `drop` handler at once (they are not flushed, so that shutdown never waits
// for a slow consumer to take more), then waits for the batches in flight.
// So every item added reaches exactly one of `flush` and `drop`.
template <typename T>
class Batcher {
 public:
  struct Handlers {
    // Required. Gets each batch: 1 to max_items items of lane `lane`. Runs
    // without the batcher's lock held; it may call Add.
    std::function<void(size_t lane, std::vector<T> batch)> flush;
    // The bytes an item counts against max_bytes (nullptr: 0 for every item).
    // Runs in Add, before the lock is taken.
    std::function<size_t(const T&)> bytes;
    // Gets the items of `lane` still waiting when Stop runs, on Stop's
    // thread (nullptr: they are destroyed).
    std::function<void(size_t lane, std::vector<T> items)> drop;
    // The number of waiting items over all lanes, each time it changes. Runs
    // under the batcher's lock (so the values arrive in order): keep it to
    // setting a gauge, and never call the batcher from it.
    std::function<void(size_t waiting)> waiting;
  };

  Batcher(const BatcherOptions& options, Handlers handlers)
      : options_(Normalized(options)),
        handlers_(std::move(handlers)),
        max_in_flight_(std::max<size_t>(1, options.flush_threads)),
        pool_(options.flush_threads > 0
                  ? std::make_unique<ThreadPool>(options.flush_threads)
                  : nullptr) {}
  // Stop(), then joins the threads.
  ~Batcher() { Stop(); }
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Starts the flusher thread, which delivers each batch as soon as it is
  // due. Without it, only Tick delivers. Does nothing when the thread runs
  // already or the batcher is stopping.
  void Start() {
    absl::MutexLock lock(&mu_);
    if (stopping_ || flusher_.joinable()) return;
    flusher_ = std::thread([this] { FlusherLoop(); });
  }

  // Queues `item` in lane `lane` (lanes are numbered from 0 and made on
  // first use: keep the numbers small and dense). OK when queued (the item
  // was moved from); on refusal `item` is left as it was, and the status is
  // ResourceExhausted when `max_queued` items already wait in the lane,
  // Unavailable when the batcher is stopping.
  absl::Status Add(size_t lane, T&& item) {
    const size_t bytes = handlers_.bytes ? handlers_.bytes(item) : 0;
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the batcher is stopping");
    if (lane >= lanes_.size()) lanes_.resize(lane + 1);
    Lane& l = lanes_[lane];
    if (l.entries.size() >= options_.max_queued) {
      return absl::ResourceExhaustedError(absl::StrCat(
          options_.max_queued, " items are already waiting in lane ", lane));
    }
    // The flusher has a new deadline to heed (the lane's first item) or a
    // batch to cut at once.
    if (l.entries.empty()) wake_ = true;
    l.entries.push_back(Entry{std::move(item), bytes, Now()});
    l.bytes += bytes;
    if (Full(l)) wake_ = true;
    ++waiting_;
    if (handlers_.waiting) handlers_.waiting(waiting_);
    return absl::OkStatus();
  }
  absl::Status Add(T&& item) { return Add(0, std::move(item)); }

  // Cuts and delivers every batch due now (by the clock of the options),
  // while fewer than the in-flight limit are out: with flush_threads == 0
  // on this thread, before Tick returns; else on the pool. Returns the number
  // of batches delivered or handed to the pool. For tests, and for owners
  // that drive the batcher from a loop of their own.
  size_t Tick() {
    size_t delivered = 0;
    while (true) {
      Cut cut;
      {
        absl::MutexLock lock(&mu_);
        absl::Time next;
        if (!TakeDueLocked(&cut, &next)) break;
      }
      Deliver(std::move(cut));
      ++delivered;
    }
    return delivered;
  }

  // See the stop rule above. Idempotent; also run by the destructor.
  void Stop() {
    std::vector<std::pair<size_t, std::vector<T>>> left;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
      for (size_t i = 0; i < lanes_.size(); ++i) {
        Lane& l = lanes_[i];
        if (l.entries.empty()) continue;
        std::vector<T> items;
        items.reserve(l.entries.size());
        for (Entry& e : l.entries) items.push_back(std::move(e.item));
        l.entries.clear();
        l.bytes = 0;
        left.emplace_back(i, std::move(items));
      }
      waiting_ = 0;
      if (handlers_.waiting) handlers_.waiting(0);
    }
    for (auto& [lane, items] : left) {
      if (handlers_.drop) handlers_.drop(lane, std::move(items));
    }
    if (flusher_.joinable()) flusher_.join();
    absl::MutexLock lock(&mu_);
    auto idle = [this]()
                    ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }

  // Items waiting over all lanes (not those in batches already cut).
  size_t waiting() const {
    absl::MutexLock lock(&mu_);
    return waiting_;
  }

 private:
  struct Entry {
    T item;
    size_t bytes;
    absl::Time added;
  };
  struct Lane {
    std::deque<Entry> entries;
    size_t bytes = 0;
  };
  struct Cut {
    size_t lane = 0;
    std::vector<T> items;
  };

  static BatcherOptions Normalized(BatcherOptions o) {
    o.max_items = std::max<size_t>(1, o.max_items);
    o.max_queued = std::max<size_t>(1, o.max_queued);
    return o;
  }

  absl::Time Now() const {
    return options_.test_only_clock ? options_.test_only_clock() : absl::Now();
  }

  bool Full(const Lane& l) const {
    return l.entries.size() >= options_.max_items ||
           l.bytes >= options_.max_bytes;
  }

  // Cuts the batch of the next due lane (round-robin after the last one
  // served) into `cut` and counts it in flight; false when the in-flight
  // limit is reached, the batcher is stopping, or no lane is due, and then
  // `next` is the earliest time a lane falls due (InfiniteFuture if none).
  bool TakeDueLocked(Cut* cut, absl::Time* next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    *next = absl::InfiniteFuture();
    if (stopping_ || in_flight_ >= max_in_flight_) return false;
    const absl::Time now = Now();
    const size_t n = lanes_.size();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (cursor_ + k) % n;
      Lane& l = lanes_[i];
      if (l.entries.empty()) continue;
      const absl::Time due = l.entries.front().added + options_.linger;
      if (!Full(l) && now < due) {
        *next = std::min(*next, due);
        continue;
      }
      cursor_ = (i + 1) % n;
      cut->lane = i;
      size_t bytes = 0;
      while (!l.entries.empty() && cut->items.size() < options_.max_items &&
             (cut->items.empty() ||
              bytes + l.entries.front().bytes <= options_.max_bytes)) {
        bytes += l.entries.front().bytes;
        cut->items.push_back(std::move(l.entries.front().item));
        l.entries.pop_front();
      }
      l.bytes -= bytes;
      waiting_ -= cut->items.size();
      if (handlers_.waiting) handlers_.waiting(waiting_);
      ++in_flight_;
      return true;
    }
    return false;
  }

  // Hands `cut` to the flush handler (inline or on the pool), then counts it
  // out of flight.
  void Deliver(Cut cut) {
    if (pool_ == nullptr) {
      handlers_.flush(cut.lane, std::move(cut.items));
      Done();
      return;
    }
    // std::function needs a copyable task: the batch travels by pointer.
    auto shared = std::make_shared<Cut>(std::move(cut));
    pool_->Run([this, shared] {
      handlers_.flush(shared->lane, std::move(shared->items));
      Done();
    });
  }

  void Done() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    wake_ = true;
  }

  void FlusherLoop() {
    while (true) {
      Cut cut;
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          if (stopping_) return;
          wake_ = false;
          absl::Time next;
          if (TakeDueLocked(&cut, &next)) break;
          auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
            return wake_ || stopping_;
          };
          if (next == absl::InfiniteFuture()) {
            mu_.Await(absl::Condition(&woken));
          } else {
            mu_.AwaitWithTimeout(absl::Condition(&woken), next - Now());
          }
        }
      }
      Deliver(std::move(cut));
    }
  }

  const BatcherOptions options_;
  const Handlers handlers_;
  const size_t max_in_flight_;

  mutable absl::Mutex mu_;
  std::vector<Lane> lanes_ ABSL_GUARDED_BY(mu_);
  size_t waiting_ ABSL_GUARDED_BY(mu_) = 0;    // over all lanes
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // cut, flush not returned
  size_t cursor_ ABSL_GUARDED_BY(mu_) = 0;     // the next lane to serve
  // Set when the flusher should look again before its deadline: a lane got
  // its first item or a full batch, or a batch in flight returned.
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::unique_ptr<ThreadPool> pool_;  // after mu_: its tasks lock mu_
  std::thread flusher_;
};

}  // namespace consortia

#endif  // CONSORTIA_COMMON_BATCHER_H_
