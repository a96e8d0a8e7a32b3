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
  m.max_txs = registry.GetGauge("consortia_mempool_max_txs",
                                "Most transactions the pool holds.");
  m.max_bytes = registry.GetGauge("consortia_mempool_max_bytes",
                                  "Most encoded bytes the pool holds.");
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
      "Time to check one submitted batch on the verify pool (decoding, "
      "hashing, replay checks, signatures).",
      LatencyBuckets());
  m.verify_batch_size = registry.GetHistogram(
      "consortia_mempool_verify_batch_size",
      "Signatures verified per submitted batch (cache misses).",
      {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000});
  const char* const hits_help =
      "Signature checks skipped because the verified-signature cache held "
      "the tx with the same signature, by call.";
  const char* const misses_help =
      "Signature checks the verified-signature cache could not spare, by "
      "call.";
  m.sig_cache_hits_submit =
      registry.GetCounter("consortia_mempool_sig_cache_hits_total", hits_help,
                          {{"call", "submit"}});
  m.sig_cache_hits_proposal =
      registry.GetCounter("consortia_mempool_sig_cache_hits_total", hits_help,
                          {{"call", "check_proposal"}});
  m.sig_cache_misses_submit =
      registry.GetCounter("consortia_mempool_sig_cache_misses_total",
                          misses_help, {{"call", "submit"}});
  m.sig_cache_misses_proposal =
      registry.GetCounter("consortia_mempool_sig_cache_misses_total",
                          misses_help, {{"call", "check_proposal"}});
  m.sig_cache_entries =
      registry.GetGauge("consortia_mempool_sig_cache_entries",
                        "Entries held by the verified-signature cache.");
  const char* const proposal_help =
      "Transactions of proposed blocks checked, by verdict.";
  m.proposal_valid = registry.GetCounter("consortia_mempool_proposal_txs_total",
                                         proposal_help, {{"result", "valid"}});
  m.proposal_invalid =
      registry.GetCounter("consortia_mempool_proposal_txs_total", proposal_help,
                          {{"result", "invalid"}});
  m.proposal_check_duration = registry.GetHistogram(
      "consortia_mempool_proposal_check_duration_seconds",
      "Time to check the txs of one proposed block.", LatencyBuckets());
  m.evicted_committed = registry.GetCounter(
      "consortia_mempool_evicted_total",
      "Pending transactions removed from the pool, by reason.",
      {{"reason", "committed"}});
  m.evicted_expired = registry.GetCounter(
      "consortia_mempool_evicted_total",
      "Pending transactions removed from the pool, by reason.",
      {{"reason", "expired"}});
  m.evicted_unregistered = registry.GetCounter(
      "consortia_mempool_evicted_total",
      "Pending transactions removed from the pool, by reason.",
      {{"reason", "unregistered"}});
  m.members = registry.GetGauge(
      "consortia_mempool_members",
      "Member keys in the membership cache (registered senders of a "
      "permissioned chain).");
  m.permissioned = registry.GetGauge(
      "consortia_mempool_permissioned",
      "1 when the chain is permissioned (only registered member keys may "
      "send transactions), else 0.");
  m.reaped_txs = registry.GetCounter("consortia_mempool_reaped_txs_total",
                                     "Transactions handed to consensus.");
  m.commit_gaps = registry.GetCounter(
      "consortia_mempool_commit_gaps_total",
      "Times commit events were missed and fetched from storage.");
  m.bad_events = registry.GetCounter(
      "consortia_mempool_bad_events_total",
      "block.committed events that did not decode and were dropped.");
  m.bad_commit_pages = registry.GetCounter(
      "consortia_mempool_bad_commit_pages_total",
      "Pages of commit events from storage refused: a height missing or out "
      "of place.");
  return m;
}

}  // namespace consortia::mempool
