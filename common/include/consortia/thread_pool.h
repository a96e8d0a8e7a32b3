// A fixed pool of worker threads with a bounded FIFO queue.
#ifndef CONSORTIA_COMMON_THREAD_POOL_H_
#define CONSORTIA_COMMON_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "consortia/service_api.h"

namespace consortia {

// Thread-safe. The destructor runs what is queued, then joins the threads.
class ThreadPool {
 public:
  // The default bound of the queue (tasks waiting for a thread).
  static constexpr size_t kDefaultMaxQueued = size_t{1} << 16;

  // threads == 0 means one per core; max_queued == 0 means the default.
  explicit ThreadPool(size_t threads, size_t max_queued = kDefaultMaxQueued);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues fn. From outside the pool it blocks while `max_queued` tasks are
  // waiting (back-pressure on the producer); from one of the pool's own
  // tasks it never blocks (that could deadlock the pool), so the queue may
  // briefly exceed the bound.
  void Run(std::function<void()> fn);
  // Queues fn unless `max_queued` tasks are already waiting (or the pool is
  // being destroyed); never blocks. False (and fn is dropped, not run) when
  // refused: for callers that must not wait, such as an I/O thread that
  // answers "busy, retry later" instead.
  bool TryRun(std::function<void()> fn);
  // Tasks waiting for a thread (not those running).
  size_t queued() const;
  // An Executor (service_api.h) that runs on this pool.
  Executor AsExecutor() {
    return [this](std::function<void()> fn) { Run(std::move(fn)); };
  }
  size_t size() const { return threads_.size(); }

 private:
  void Loop();

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// Calls fn(begin, end) over [0, n) in chunks of `grain` items, spread over
// `pool` (nullptr: the calling thread alone) and the calling thread, and
// returns when all chunks have run. Each thread claims the next unclaimed
// chunk until none is left, so a slow or busy core holds up at most one
// chunk. The caller claims chunks too and never waits for a queued task to
// start, so this cannot deadlock even when every worker of the pool is itself
// blocked in a ParallelFor.
void ParallelFor(ThreadPool* pool, size_t n, size_t grain,
                 const std::function<void(size_t, size_t)>& fn);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_THREAD_POOL_H_
