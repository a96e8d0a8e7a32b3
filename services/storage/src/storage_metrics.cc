#include "storage_metrics.h"

#include <string>
#include <vector>

namespace consortia::storage {
namespace {

std::vector<double> ByteBuckets() {
  std::vector<double> b;
  for (double v = 1024; v <= 256.0 * 1024 * 1024; v *= 4) b.push_back(v);
  return b;
}

}  // namespace

StorageMetrics StorageMetrics::Create(MetricsRegistry& r,
                                      const std::string& backend) {
  StorageMetrics m;
  m.commit_duration =
      r.GetHistogram("consortia_storage_commit_duration_seconds",
                     "Time to validate, execute and persist one block",
                     LatencyBuckets(), {{"backend", backend}});
  const std::string ph = "consortia_storage_commit_phase_seconds";
  const std::string phh =
      "Time spent in each phase of a block commit: validate, execute (reads "
      "and apps), tree (state tree and roots), write (the atomic batch)";
  m.commit_validate = r.GetHistogram(
      ph, phh, LatencyBuckets(), {{"backend", backend}, {"phase", "validate"}});
  m.commit_execute = r.GetHistogram(
      ph, phh, LatencyBuckets(), {{"backend", backend}, {"phase", "execute"}});
  m.commit_tree = r.GetHistogram(ph, phh, LatencyBuckets(),
                                 {{"backend", backend}, {"phase", "tree"}});
  m.commit_write = r.GetHistogram(ph, phh, LatencyBuckets(),
                                  {{"backend", backend}, {"phase", "write"}});
  m.commit_batch_bytes = r.GetHistogram(
      "consortia_storage_commit_batch_bytes",
      "Bytes written in one block's atomic batch", ByteBuckets());
  m.block_height = r.GetGauge("consortia_storage_block_height",
                              "Height of the last committed block");
  m.txs_committed = r.GetCounter("consortia_storage_txs_committed_total",
                                 "Transactions in committed blocks");
  const std::string q = "consortia_storage_query_duration_seconds";
  const std::string qh = "Time to answer one query, by kind";
  m.query_block = r.GetHistogram(q, qh, LatencyBuckets(), {{"kind", "block"}});
  m.query_tx = r.GetHistogram(q, qh, LatencyBuckets(), {{"kind", "tx"}});
  m.query_state = r.GetHistogram(q, qh, LatencyBuckets(), {{"kind", "state"}});
  m.query_committed =
      r.GetHistogram(q, qh, LatencyBuckets(), {{"kind", "committed"}});
  m.query_members =
      r.GetHistogram(q, qh, LatencyBuckets(), {{"kind", "members"}});
  m.query_chain_state =
      r.GetHistogram(q, qh, LatencyBuckets(), {{"kind", "chain_state"}});
  const std::string e = "consortia_storage_errors_total";
  const std::string eh = "Failures, by kind";
  m.error_rejected_block = r.GetCounter(e, eh, {{"kind", "rejected_block"}});
  m.error_store = r.GetCounter(e, eh, {{"kind", "store"}});
  m.error_corrupt = r.GetCounter(e, eh, {{"kind", "corrupt"}});
  return m;
}

}  // namespace consortia::storage
