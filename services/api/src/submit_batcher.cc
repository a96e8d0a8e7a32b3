#include "submit_batcher.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace consortia::api {
namespace {

BatcherOptions Options(size_t batch_max, absl::Duration delay, size_t threads,
                       size_t max_queued) {
  BatcherOptions o;
  o.max_items = batch_max;
  o.linger = delay;
  o.max_queued = max_queued;
  o.flush_threads = std::max<size_t>(1, threads);
  return o;
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("api is shutting down");
}

}  // namespace

SubmitBatcher::SubmitBatcher(MempoolApi* mempool, size_t batch_max,
                             absl::Duration delay, size_t threads,
                             ApiMetrics* metrics, size_t max_queued)
    : mempool_(mempool),
      metrics_(metrics),
      max_queued_(std::max<size_t>(1, max_queued)),
      batcher_(Options(batch_max, delay, threads, max_queued_), Handlers()) {
  batcher_.Start();
}

Batcher<SubmitBatcher::Item>::Handlers SubmitBatcher::Handlers() {
  Batcher<Item>::Handlers h;
  h.flush = [this](size_t, std::vector<Item> batch) {
    SubmitBatch(std::move(batch));
  };
  // Stopping: what has not left yet is refused rather than submitted, so
  // that shutdown does not wait for a slow mempool.
  h.drop = [](size_t, std::vector<Item> items) {
    for (Item& item : items) item.done(ShuttingDown());
  };
  h.waiting = [metrics = metrics_](size_t n) { metrics->SubmitQueue(n); };
  return h;
}

void SubmitBatcher::Add(Bytes raw_tx, Done done) {
  Item item{std::move(raw_tx), std::move(done)};
  absl::Status s = batcher_.Add(std::move(item));
  if (s.ok()) return;
  // Refused: `item` is untouched.
  if (absl::IsResourceExhausted(s)) {
    metrics_->SubmitQueueFull();
    item.done(absl::ResourceExhaustedError(absl::StrCat(
        max_queued_, " transactions are already waiting for the mempool")));
  } else {
    item.done(ShuttingDown());
  }
}

void SubmitBatcher::SubmitBatch(std::vector<Item> batch) {
  std::vector<Bytes> raws;
  raws.reserve(batch.size());
  for (Item& item : batch) raws.push_back(std::move(item.raw));
  metrics_->SubmitBatch(raws.size());

  absl::StatusOr<std::vector<SubmitResult>> results = mempool_->Submit(raws);
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
