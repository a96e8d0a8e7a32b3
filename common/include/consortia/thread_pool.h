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
  // threads == 0 means one per core.
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Run(std::function<void()> fn);
  // An Executor (service_api.h) that runs on this pool.
  Executor AsExecutor() {
    return [this](std::function<void()> fn) { Run(std::move(fn)); };
  }
  size_t size() const { return threads_.size(); }

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// Calls fn(begin, end) over [0, n) in blocks of `grain` items, spread over
// `pool` (nullptr: the calling thread alone) and the calling thread, and
// returns when all blocks have run. Each thread claims the next unclaimed
// block until none is left, so a slow or busy core holds up at most one
// block. The caller claims blocks too and never waits for a queued task to
// start, so this cannot deadlock even when every worker of the pool is itself
// blocked in a ParallelFor.
void ParallelFor(ThreadPool* pool, size_t n, size_t grain,
                 const std::function<void(size_t, size_t)>& fn);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_THREAD_POOL_H_
