// Gathers transactions submitted by concurrent HTTP requests into batches for
// MempoolApi::Submit, so the bus carries one message per batch, not per tx.
#ifndef CONSORTIA_API_SUBMIT_BATCHER_H_
#define CONSORTIA_API_SUBMIT_BATCHER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api_metrics.h"
#include "consortia/bytes.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"

namespace consortia::api {

// A batch leaves when it holds `batch_max` txs, or when its first tx has
// waited `delay`, and only while fewer than `threads` batches are in flight:
// while the mempool is busy, new txs gather into bigger batches. The Submit
// calls run on the batcher's own threads, never on the caller's. At most
// `max_queued` txs wait for their batch; Add refuses more at once.
//
// Thread-safe. The destructor answers what has not left yet with
// Unavailable, waits for the calls in flight, and so runs every callback
// exactly once.
class SubmitBatcher {
 public:
  // Runs exactly once per Add, on a batcher thread: the mempool's verdict
  // for that tx, or the status of the whole Submit call when it failed
  // (Internal if the mempool answered the wrong number of results). When
  // Add refuses the tx it runs on the caller's thread before Add returns:
  // ResourceExhausted when `max_queued` txs are already waiting,
  // Unavailable when the batcher is stopping.
  using Done = std::function<void(absl::StatusOr<SubmitResult>)>;

  static constexpr size_t kDefaultMaxQueued = 16384;

  // `mempool` and `metrics` must outlive the batcher.
  SubmitBatcher(MempoolApi* mempool, size_t batch_max, absl::Duration delay,
                size_t threads, ApiMetrics* metrics,
                size_t max_queued = kDefaultMaxQueued);
  ~SubmitBatcher();
  SubmitBatcher(const SubmitBatcher&) = delete;
  SubmitBatcher& operator=(const SubmitBatcher&) = delete;

  void Add(Bytes raw_tx, Done done);

 private:
  struct Item {
    Bytes raw;
    Done done;
    absl::Time enqueued;
  };

  void FlushLoop();
  void SubmitBatch(std::vector<Item> batch);

  MempoolApi* const mempool_;
  const size_t batch_max_;
  const absl::Duration delay_;
  const size_t max_in_flight_;
  const size_t max_queued_;
  ApiMetrics* const metrics_;

  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  ThreadPool pool_;
  std::thread flusher_;  // last: starts after everything above exists
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_SUBMIT_BATCHER_H_
