// Storage's metrics (consortia_storage_*). Default-constructed = no-op, for
// tests; Create() registers the series in a registry. Thread-safe.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_STORAGE_METRICS_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_STORAGE_METRICS_H_

#include <string>

#include "consortia/metrics.h"

namespace consortia::storage {

struct StorageMetrics {
  // seconds, validation + execution + write; label backend=rocksdb|redis
  Histogram commit_duration;
  // commit_phase_seconds{phase}: where a commit's time goes, one phase after
  // the other. validate = decoding the block, checks, tx root and
  // certificate; execute = reads and apps; tree = state tree (the block's
  // records are encoded alongside, on another core); write = the atomic
  // batch (synced).
  Histogram commit_validate;
  Histogram commit_execute;
  Histogram commit_tree;
  Histogram commit_write;
  Histogram commit_batch_bytes;
  Gauge block_height;
  Counter txs_committed;
  // query_duration_seconds{kind}
  Histogram query_block;
  Histogram query_tx;
  Histogram query_state;
  Histogram query_committed;
  Histogram query_members;
  Histogram query_chain_state;
  // errors_total{kind}
  Counter error_rejected_block;  // a block that does not extend the chain
  Counter error_store;           // the KvStore failed a read or a write
  Counter error_corrupt;         // a stored record did not decode

  // `backend` labels the series that depend on the KvStore backend.
  static StorageMetrics Create(MetricsRegistry& registry,
                               const std::string& backend = "rocksdb");
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_STORAGE_METRICS_H_
