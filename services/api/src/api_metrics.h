// The api's metrics (consortia_api_*). Handlers record through this struct;
// nothing else in the api touches the metrics library.
#ifndef CONSORTIA_API_API_METRICS_H_
#define CONSORTIA_API_API_METRICS_H_

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "consortia/metrics.h"

namespace consortia::api {

// Thread-safe. With a null registry every method is a no-op.
class ApiMetrics {
 public:
  explicit ApiMetrics(MetricsRegistry* registry);

  // One finished request: requests_total{route,code,org} and
  // request_duration_seconds{route}. `route` is the route template
  // ("/v1/txs/{hash}"), never the concrete path, and `org` the organisation
  // of the caller's key (an organisation of the key file) or kAnonymous, so
  // the label set is bounded.
  void Request(const std::string& route, int code, const std::string& org,
               double seconds);
  // The `org` label of a request that presented no key of the key file.
  static constexpr char kAnonymous[] = "anonymous";
  // Size of one MempoolApi::Submit call.
  void SubmitBatch(size_t txs);
  // Txs waiting for a submit batch to leave.
  void SubmitQueue(size_t txs);
  // A call to "mempool" or "storage" that failed.
  void UpstreamError(const std::string& service);

  // The HTTP edge's load shedding (docs/operations.md).
  // A new connection closed at once: reason "max_connections" or
  // "max_connections_per_client".
  void ConnectionRefused(const char* reason);
  // A connection closed early: reason "header_timeout", "header_too_large"
  // or "client_gone" (the client closed while its answer was pending).
  void ConnectionCut(const char* reason);
  void OpenConnections(size_t n);
  // A query answered 503 because the query pool's queue was full.
  void QueryPoolFull();
  // A tx answered 429 because the submit batcher's queue was full.
  void SubmitQueueFull();
  // Queued work not run because its connection had closed.
  void DroppedForClosedConnection();
  // Log lines held back by the per-client log limit.
  void LogLinesSuppressed(uint64_t n);

  // API keys, quotas and the audit log (src/auth.h, quota.h, audit_log.h).
  // A request refused for its key: kind "missing", "unknown", "revoked",
  // "expired" or "scope" (auth_failures_total{kind}).
  void AuthFailure(const char* kind);
  // A request answered 429 quota-exceeded: the key's organisation and the
  // quota ("requests" or "tx_bytes") (quota_refusals_total{org,quota}).
  void QuotaRefused(const std::string& org, const char* quota);
  // --api_invoice_reads=parties: a read of invoice data refused 403
  // invoice-read-forbidden (answer "refused"), or an invoice tx redacted
  // from a block answer or an event (answer "redacted")
  // (invoice_reads_refused_total{answer}).
  void InvoiceReadRefused(bool redacted, size_t n = 1);
  // A reload of the key file after it changed (key_file_reloads_total
  // {result="ok"|"failed"}), and the keys now in force (keys).
  void KeyFileReload(bool ok);
  void KeysLoaded(size_t n);
  // Audit lines made durable, lines that could not be written, and
  // submissions refused 503 audit-unavailable.
  void AuditLines(size_t n);
  void AuditWriteError(size_t lines);
  void AuditUnavailable();

  // The event stream (GET /v1/events): open streams, events sent (block and
  // tx events), and streams cut off by reason ("too_slow", "shutdown").
  void OpenStreams(size_t n);
  void StreamEvents(size_t n);
  void StreamCutoff(const char* reason);
  // TLS on the api port: a reload of the certificate and key (SIGHUP;
  // tls_reloads_total{result="ok"|"failed"}) and a connection whose TLS
  // handshake failed or timed out (tls_handshake_failures_total).
  void TlsReload(bool ok);
  void TlsHandshakeFailed();
  // The validator-set changes of one answer with a proof, served from the
  // api's cache or asked of storage (also when storage then fails)
  // (validator_changes_total{source="cache"|"storage"};
  // src/validator_changes_cache.h).
  void ValidatorChanges(bool cached);

 private:
  Counter LabelledCounter(std::map<std::string, Counter>* cache,
                          const char* name, const char* help,
                          const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  MetricsRegistry* registry_;
  Histogram batch_size_;
  Gauge queue_;
  Gauge open_connections_;
  Counter query_pool_full_;
  Counter submit_queue_full_;
  Counter dropped_closed_;
  Counter log_suppressed_;
  Counter reloads_ok_;
  Counter reloads_failed_;
  Gauge keys_;
  Counter audit_lines_;
  Counter audit_write_errors_;
  Counter audit_unavailable_;
  Gauge open_streams_;
  Counter stream_events_;
  Counter cutoff_too_slow_;
  Counter cutoff_shutdown_;
  Counter tls_reloads_ok_;
  Counter tls_reloads_failed_;
  Counter tls_handshake_failures_;
  Counter invoice_refused_;
  Counter invoice_redacted_;
  Counter validator_changes_cache_;
  Counter validator_changes_storage_;
  absl::Mutex mu_;
  std::map<std::tuple<std::string, int, std::string>, Counter> requests_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> durations_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Counter> upstream_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Counter> refused_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Counter> cut_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Counter> auth_failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, Counter> quota_refusals_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_API_METRICS_H_
