// The mempool's metrics. Business code calls these handles; only
// MempoolMetrics::Create knows the Prometheus names.
#ifndef CONSORTIA_MEMPOOL_SRC_MEMPOOL_METRICS_H_
#define CONSORTIA_MEMPOOL_SRC_MEMPOOL_METRICS_H_

#include <array>

#include "consortia/metrics.h"
#include "consortia/service_api.h"

namespace consortia::mempool {

// Number of Admission values (kAccepted .. kUnregisteredSender).
inline constexpr size_t kAdmissionCount = 12;

// A default-constructed MempoolMetrics is a no-op (for tests). Thread-safe.
struct MempoolMetrics {
  Gauge pool_txs;
  Gauge pool_bytes;
  // The pool's bounds (--mempool_max_txs, --mempool_max_bytes), set once,
  // so that "near full" is a ratio in Prometheus.
  Gauge max_txs;
  Gauge max_bytes;
  Gauge applied_height;
  Counter admitted;
  // Indexed by the Admission value; kAccepted's slot is unused.
  std::array<Counter, kAdmissionCount> rejected;
  // Time the verify pool spends on one Submit batch (decode, hash, state
  // checks, signatures), and the signatures it actually verified (cache
  // misses).
  Histogram verify_duration;
  Histogram verify_batch_size;
  // The verified-signature cache, by the call that looked it up.
  Counter sig_cache_hits_submit;
  Counter sig_cache_hits_proposal;
  Counter sig_cache_misses_submit;
  Counter sig_cache_misses_proposal;
  Gauge sig_cache_entries;
  // CheckProposal: verdicts and the time per call.
  Counter proposal_valid;
  Counter proposal_invalid;
  Histogram proposal_check_duration;
  Counter evicted_committed;
  Counter evicted_expired;
  // Pending txs whose sender a block unregistered (or that a block made
  // permissioned without registering it).
  Counter evicted_unregistered;
  // The membership cache: member keys held, and 1 on a permissioned chain.
  Gauge members;
  Gauge permissioned;
  Counter reaped_txs;
  Counter commit_gaps;
  Counter bad_events;
  // Pages of commit events from storage refused because they break the
  // GetCommitted contract (a height missing or out of place).
  Counter bad_commit_pages;

  // Registers consortia_mempool_* series in `registry`, which must outlive
  // the returned handles.
  static MempoolMetrics Create(MetricsRegistry& registry);
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_SRC_MEMPOOL_METRICS_H_
