#include "mempool_metrics.h"

#include <string>

namespace consortia::mempool {

MempoolMetrics MempoolMetrics::Create(MetricsRegistry& registry) {
  MempoolMetrics m;
  m.pool_txs = registry.GetGauge("consortia_mempool_pool_txs",
                                 "Transactions pending in the mempool.");
  m.pool_bytes =
      registry.GetGauge("consortia_mempool_pool_bytes",
                        "Encoded bytes of the transactions pending.");
  m.applied_height = registry.GetGauge(
      "consortia_mempool_applied_height",
      "Height of the last block.committed event the mempool applied.");
  m.admitted = registry.GetCounter("consortia_mempool_admitted_total",
                                   "Transactions admitted into the mempool.");
  for (size_t i = 1; i < kAdmissionCount; ++i) {
    m.rejected[i] = registry.GetCounter(
        "consortia_mempool_rejected_total",
        "Transactions not admitted, by reason.",
        {{"reason", std::string(AdmissionName(static_cast<Admission>(i)))}});
  }
  m.verify_duration = registry.GetHistogram(
      "consortia_mempool_verify_duration_seconds",
      "Time to verify the signatures of one submitted batch.",
      LatencyBuckets());
  m.verify_batch_size = registry.GetHistogram(
      "consortia_mempool_verify_batch_size",
      "Signatures verified per submitted batch.",
      {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000});
  m.evicted_committed = registry.GetCounter(
      "consortia_mempool_evicted_total",
      "Pending transactions removed from the pool, by reason.",
      {{"reason", "committed"}});
  m.evicted_expired = registry.GetCounter(
      "consortia_mempool_evicted_total",
      "Pending transactions removed from the pool, by reason.",
      {{"reason", "expired"}});
  m.reaped_txs = registry.GetCounter("consortia_mempool_reaped_txs_total",
                                     "Transactions handed to consensus.");
  m.commit_gaps = registry.GetCounter(
      "consortia_mempool_commit_gaps_total",
      "Times commit events were missed and fetched from storage.");
  m.bad_events = registry.GetCounter(
      "consortia_mempool_bad_events_total",
      "block.committed events that did not decode and were dropped.");
  return m;
}

}  // namespace consortia::mempool
