// Per-backend metrics of the ledger's key-value store, recorded by a KvStore
// decorator so that every backend is measured the same way:
//
//   consortia_storage_store_write_duration_seconds{backend}  histogram
//   consortia_storage_store_write_batch_ops{backend}         histogram
//   consortia_storage_store_write_batch_bytes{backend}       histogram
//   consortia_storage_store_size_bytes{backend}              gauge
//   consortia_storage_store_up{backend}                      gauge (1 / 0)
//   consortia_storage_store_errors_total{backend,kind}       counter, kind =
//       unavailable | timeout | full | corruption | internal
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_METERED_KV_STORE_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_METERED_KV_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "consortia/metrics.h"
#include "kv_store.h"

namespace consortia::storage {

// Default-constructed = no-op (tests); Create registers the series with a
// backend label. Thread-safe.
struct StoreMetrics {
  Histogram write_duration;
  Histogram write_batch_ops;
  Histogram write_batch_bytes;
  Gauge size_bytes;
  Gauge up;
  Counter error_unavailable;  // Unavailable: cannot reach the backend
  Counter error_timeout;      // DeadlineExceeded: it did not answer in time
  Counter error_full;         // ResourceExhausted: disk or memory full
  Counter error_corruption;   // DataLoss
  Counter error_internal;     // anything else

  static StoreMetrics Create(MetricsRegistry& registry,
                             const std::string& backend);
};

// The `kind` label of a store error ("unavailable", "timeout", "full",
// "corruption", "internal").
std::string_view StoreErrorKind(const absl::Status& s);

// Forwards every call to `inner` and records `metrics`: write latency and
// batch shape, errors of reads and writes by kind, up from Ping and from
// each call's outcome, and the store size (refreshed after a write at most
// once per `size_refresh`, and at creation). Errors pass through unchanged.
// Thread-safe as the inner store is.
std::unique_ptr<KvStore> WithStoreMetrics(
    std::unique_ptr<KvStore> inner, StoreMetrics metrics,
    absl::Duration size_refresh = absl::Seconds(10));

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_METERED_KV_STORE_H_
