// Gathers transactions submitted by concurrent HTTP requests into batches for
// MempoolApi::Submit, so the bus carries one message per batch, not per tx.
#ifndef CONSORTIA_API_SUBMIT_BATCHER_H_
#define CONSORTIA_API_SUBMIT_BATCHER_H_

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api_metrics.h"
#include "consortia/batcher.h"
#include "consortia/bytes.h"
#include "consortia/service_api.h"

namespace consortia::api {

// A batch leaves when it holds `batch_max` txs, or when its first tx has
// waited `delay`, and only while fewer than `threads` batches are in flight:
// while the mempool is busy, new txs gather into bigger batches. The Submit
// calls run on the batcher's own threads, never on the caller's. At most
// `max_queued` txs wait for their batch; Add refuses more at once. The
// batching itself is a Batcher (consortia/batcher.h) with one lane; this
// class hands each tx its own verdict.
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
  // Unavailable when the batcher is stopping (the destructor answers the
  // txs still waiting the same way, on its own thread).
  using Done = std::function<void(absl::StatusOr<SubmitResult>)>;

  static constexpr size_t kDefaultMaxQueued = 16384;

  // `mempool` and `metrics` must outlive the batcher.
  SubmitBatcher(MempoolApi* mempool, size_t batch_max, absl::Duration delay,
                size_t threads, ApiMetrics* metrics,
                size_t max_queued = kDefaultMaxQueued);
  SubmitBatcher(const SubmitBatcher&) = delete;
  SubmitBatcher& operator=(const SubmitBatcher&) = delete;

  void Add(Bytes raw_tx, Done done);

 private:
  struct Item {
    Bytes raw;
    Done done;
  };

  Batcher<Item>::Handlers Handlers();
  void SubmitBatch(std::vector<Item> batch);

  MempoolApi* const mempool_;
  ApiMetrics* const metrics_;
  const size_t max_queued_;
  Batcher<Item> batcher_;  // last: its threads use the members above
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_SUBMIT_BATCHER_H_
