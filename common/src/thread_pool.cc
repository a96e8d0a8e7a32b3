#include "consortia/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

namespace consortia {
namespace {

// The pool whose worker runs on this thread, if any.
thread_local const ThreadPool* current_pool = nullptr;

}  // namespace

ThreadPool::ThreadPool(size_t threads, size_t max_queued)
    : max_queued_(max_queued == 0 ? kDefaultMaxQueued : max_queued) {
  if (threads == 0) {
    threads = std::max<size_t>(1, std::thread::hardware_concurrency());
  }
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::Run(std::function<void()> fn) {
  absl::MutexLock l(&mu_);
  if (current_pool != this) {
    auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queue_.size() < max_queued_;
    };
    mu_.Await(absl::Condition(&has_room));
  }
  queue_.push_back(std::move(fn));
}

bool ThreadPool::TryRun(std::function<void()> fn) {
  absl::MutexLock l(&mu_);
  if (stopping_ || queue_.size() >= max_queued_) return false;
  queue_.push_back(std::move(fn));
  return true;
}

size_t ThreadPool::queued() const {
  absl::MutexLock l(&mu_);
  return queue_.size();
}

void ThreadPool::Loop() {
  current_pool = this;
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      // Stopping still drains the queue first, as the destructor promises.
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

void ParallelFor(ThreadPool* pool, size_t n, size_t grain,
                 const std::function<void(size_t, size_t)>& fn) {
  grain = std::max<size_t>(1, grain);
  const size_t chunks = (n + grain - 1) / grain;
  auto run_chunk = [&fn, n, grain](size_t chunk) {
    const size_t begin = chunk * grain;
    fn(begin, std::min(n, begin + grain));
  };
  if (pool == nullptr || chunks <= 1) {
    for (size_t b = 0; b < chunks; ++b) run_chunk(b);
    return;
  }
  struct Shared {
    explicit Shared(size_t b) : total(b) {}
    const size_t total;
    std::atomic<size_t> next{0};
    absl::Mutex mu;
    size_t done ABSL_GUARDED_BY(mu) = 0;
  };
  auto shared = std::make_shared<Shared>(chunks);
  // A helper that starts after every chunk was claimed touches only
  // `shared`, never `run_chunk` (which lives on the caller's stack).
  auto drain = [shared, run = &run_chunk]() {
    size_t ran = 0;
    for (size_t b = shared->next.fetch_add(1); b < shared->total;
         b = shared->next.fetch_add(1)) {
      (*run)(b);
      ++ran;
    }
    if (ran > 0) {
      absl::MutexLock lock(&shared->mu);
      shared->done += ran;
    }
  };
  const size_t helpers = std::min(pool->size(), chunks - 1);
  for (size_t i = 0; i < helpers; ++i) pool->Run(drain);
  drain();
  absl::MutexLock lock(&shared->mu);
  Shared* s = shared.get();
  auto all_done = [s]() { return s->done == s->total; };
  shared->mu.Await(absl::Condition(&all_done));
}

}  // namespace consortia
