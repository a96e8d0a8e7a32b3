#include "submit_batcher.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace consortia::api {

SubmitBatcher::SubmitBatcher(MempoolApi* mempool, size_t batch_max,
                             absl::Duration delay, size_t threads,
                             ApiMetrics* metrics, size_t max_queued)
    : mempool_(mempool),
      batch_max_(std::max<size_t>(1, batch_max)),
      delay_(delay),
      max_in_flight_(std::max<size_t>(1, threads)),
      max_queued_(std::max<size_t>(1, max_queued)),
      metrics_(metrics),
      pool_(std::max<size_t>(1, threads)),
      flusher_([this] { FlushLoop(); }) {}

SubmitBatcher::~SubmitBatcher() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  flusher_.join();
  // pool_'s destructor then runs the batches still queued and joins.
}

void SubmitBatcher::Add(Bytes raw_tx, Done done) {
  absl::Status refused;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("api is shutting down");
    } else if (queue_.size() >= max_queued_) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          max_queued_, " transactions are already waiting for the mempool"));
    } else {
      queue_.push_back(Item{std::move(raw_tx), std::move(done), absl::Now()});
      metrics_->SubmitQueue(queue_.size());
    }
  }
  if (!refused.ok()) {
    if (absl::IsResourceExhausted(refused)) metrics_->SubmitQueueFull();
    done(refused);
  }
}

void SubmitBatcher::FlushLoop() {
  while (true) {
    std::vector<Item> batch;
    {
      absl::MutexLock l(&mu_);
      auto can_send = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return (!queue_.empty() && in_flight_ < max_in_flight_) || stopping_;
      };
      mu_.Await(absl::Condition(&can_send));
      if (stopping_) break;
      if (queue_.size() < batch_max_) {
        // Give the batch until its first tx has waited `delay` to fill up.
        auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return queue_.size() >= batch_max_ || stopping_;
        };
        mu_.AwaitWithDeadline(absl::Condition(&full),
                              queue_.front().enqueued + delay_);
        if (stopping_) break;
      }
      size_t n = std::min(batch_max_, queue_.size());
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      ++in_flight_;
      metrics_->SubmitQueue(queue_.size());
    }
    pool_.Run([this, batch = std::move(batch)]() mutable {
      SubmitBatch(std::move(batch));
    });
  }
  // Stopping: what has not left yet is refused rather than submitted, so
  // that shutdown does not wait for a slow mempool.
  std::deque<Item> left;
  {
    absl::MutexLock l(&mu_);
    left.swap(queue_);
    metrics_->SubmitQueue(0);
  }
  for (Item& item : left) {
    item.done(absl::UnavailableError("api is shutting down"));
  }
}

void SubmitBatcher::SubmitBatch(std::vector<Item> batch) {
  std::vector<Bytes> raws;
  raws.reserve(batch.size());
  for (Item& item : batch) raws.push_back(std::move(item.raw));
  metrics_->SubmitBatch(raws.size());

  absl::StatusOr<std::vector<SubmitResult>> results = mempool_->Submit(raws);
  {
    absl::MutexLock l(&mu_);
    --in_flight_;
  }
  if (results.ok() && results->size() != batch.size()) {
    results = absl::InternalError(absl::StrCat("mempool answered ",
                                               results->size(), " results for ",
                                               batch.size(), " txs"));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results.ok()) {
      batch[i].done(std::move((*results)[i]));
    } else {
      batch[i].done(results.status());
    }
  }
}

}  // namespace consortia::api
