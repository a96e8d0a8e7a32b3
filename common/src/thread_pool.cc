#include "consortia/thread_pool.h"

#include <algorithm>
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

}  // namespace consortia
