#include "api_metrics.h"

#include <string>
#include <vector>

namespace consortia::api {
namespace {

std::vector<double> BatchBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
}

}  // namespace

ApiMetrics::ApiMetrics(MetricsRegistry* registry) : registry_(registry) {
  if (registry_ == nullptr) return;
  batch_size_ = registry_->GetHistogram(
      "consortia_api_submit_batch_size",
      "Transactions per Submit call to the mempool.", BatchBuckets());
  queue_ = registry_->GetGauge(
      "consortia_api_submit_queue_txs",
      "Submitted transactions waiting for their batch to leave.");
  open_connections_ = registry_->GetGauge("consortia_api_open_connections",
                                          "Open HTTP connections.");
  query_pool_full_ = registry_->GetCounter(
      "consortia_api_query_pool_full_total",
      "Queries answered 503 because the query queue was full.");
  submit_queue_full_ = registry_->GetCounter(
      "consortia_api_submit_queue_full_total",
      "Transactions answered 429 because the submit queue was full.");
  dropped_closed_ = registry_->GetCounter(
      "consortia_api_dropped_closed_total",
      "Queued queries not run because their connection had closed.");
  log_suppressed_ =
      registry_->GetCounter("consortia_api_log_lines_suppressed_total",
                            "Log lines held back by the per-client log limit.");
  const char* reloads_help = "Reloads of the API key file, by result.";
  reloads_ok_ = registry_->GetCounter("consortia_api_key_file_reloads_total",
                                      reloads_help, {{"result", "ok"}});
  reloads_failed_ =
      registry_->GetCounter("consortia_api_key_file_reloads_total",
                            reloads_help, {{"result", "failed"}});
  keys_ = registry_->GetGauge("consortia_api_keys",
                              "API keys in the key file in force.");
  audit_lines_ = registry_->GetCounter("consortia_api_audit_lines_total",
                                       "Audit log lines written (durable).");
  audit_write_errors_ =
      registry_->GetCounter("consortia_api_audit_write_errors_total",
                            "Audit log lines that could not be written.");
  audit_unavailable_ = registry_->GetCounter(
      "consortia_api_audit_unavailable_total",
      "Submissions refused 503 because the audit log could not take them.");
  open_streams_ = registry_->GetGauge("consortia_api_open_streams",
                                      "Open event streams (GET /v1/events).");
  stream_events_ =
      registry_->GetCounter("consortia_api_stream_events_total",
                            "Events (block and tx) sent on event streams.");
  const char* cutoffs_help = "Event streams cut off by the api, by reason.";
  cutoff_too_slow_ =
      registry_->GetCounter("consortia_api_stream_cutoffs_total", cutoffs_help,
                            {{"reason", "too_slow"}});
  cutoff_shutdown_ =
      registry_->GetCounter("consortia_api_stream_cutoffs_total", cutoffs_help,
                            {{"reason", "shutdown"}});
  const char* tls_help =
      "Reloads of the TLS certificate and key (SIGHUP), by result.";
  tls_reloads_ok_ = registry_->GetCounter("consortia_api_tls_reloads_total",
                                          tls_help, {{"result", "ok"}});
  tls_reloads_failed_ = registry_->GetCounter("consortia_api_tls_reloads_total",
                                              tls_help, {{"result", "failed"}});
  const char* invoice_help =
      "Reads of invoice data refused to a key of neither party nor an "
      "auditor (--api_invoice_reads=parties): refused = answered 403, "
      "redacted = an invoice tx withheld from a block answer or an event.";
  invoice_refused_ =
      registry_->GetCounter("consortia_api_invoice_reads_refused_total",
                            invoice_help, {{"answer", "refused"}});
  invoice_redacted_ =
      registry_->GetCounter("consortia_api_invoice_reads_refused_total",
                            invoice_help, {{"answer", "redacted"}});
  tls_handshake_failures_ = registry_->GetCounter(
      "consortia_api_tls_handshake_failures_total",
      "Connections closed because their TLS handshake failed or timed out "
      "(plain HTTP to the HTTPS port, an untrusted client, a slow one).");
  const char* changes_help =
      "Validator-set changes added to answers with a proof, by source: "
      "cache = the api's cache, storage = a ListValidatorChanges call.";
  validator_changes_cache_ =
      registry_->GetCounter("consortia_api_validator_changes_total",
                            changes_help, {{"source", "cache"}});
  validator_changes_storage_ =
      registry_->GetCounter("consortia_api_validator_changes_total",
                            changes_help, {{"source", "storage"}});
}

void ApiMetrics::OpenStreams(size_t n) {
  open_streams_.Set(static_cast<double>(n));
}
void ApiMetrics::StreamEvents(size_t n) {
  stream_events_.Inc(static_cast<double>(n));
}
void ApiMetrics::StreamCutoff(const char* reason) {
  if (std::string(reason) == "shutdown") {
    cutoff_shutdown_.Inc();
  } else {
    cutoff_too_slow_.Inc();
  }
}

void ApiMetrics::Request(const std::string& route, int code,
                         const std::string& org, double seconds) {
  if (registry_ == nullptr) return;
  Counter counter;
  Histogram duration;
  {
    absl::MutexLock l(&mu_);
    auto key = std::make_tuple(route, code, org);
    auto it = requests_.find(key);
    if (it == requests_.end()) {
      it = requests_
               .emplace(key, registry_->GetCounter(
                                 "consortia_api_requests_total",
                                 "HTTP requests answered, by route, status "
                                 "code and organisation of the API key.",
                                 {{"route", route},
                                  {"code", std::to_string(code)},
                                  {"org", org}}))
               .first;
    }
    counter = it->second;
    auto dit = durations_.find(route);
    if (dit == durations_.end()) {
      dit = durations_
                .emplace(route, registry_->GetHistogram(
                                    "consortia_api_request_duration_seconds",
                                    "Time from request to answer, by route.",
                                    LatencyBuckets(), {{"route", route}}))
                .first;
    }
    duration = dit->second;
  }
  counter.Inc();
  duration.Observe(seconds);
}

Counter ApiMetrics::LabelledCounter(std::map<std::string, Counter>* cache,
                                    const char* name, const char* help,
                                    const std::string& reason) {
  auto it = cache->find(reason);
  if (it == cache->end()) {
    it = cache
             ->emplace(reason,
                       registry_->GetCounter(name, help, {{"reason", reason}}))
             .first;
  }
  return it->second;
}

void ApiMetrics::ConnectionRefused(const char* reason) {
  if (registry_ == nullptr) return;
  Counter c;
  {
    absl::MutexLock l(&mu_);
    c = LabelledCounter(&refused_, "consortia_api_connections_refused_total",
                        "New HTTP connections closed at once, by the cap "
                        "they hit.",
                        reason);
  }
  c.Inc();
}

void ApiMetrics::ConnectionCut(const char* reason) {
  if (registry_ == nullptr) return;
  Counter c;
  {
    absl::MutexLock l(&mu_);
    c = LabelledCounter(&cut_, "consortia_api_connections_cut_total",
                        "HTTP connections closed early, by reason.", reason);
  }
  c.Inc();
}

void ApiMetrics::OpenConnections(size_t n) {
  open_connections_.Set(static_cast<double>(n));
}

void ApiMetrics::QueryPoolFull() { query_pool_full_.Inc(); }
void ApiMetrics::SubmitQueueFull() { submit_queue_full_.Inc(); }
void ApiMetrics::DroppedForClosedConnection() { dropped_closed_.Inc(); }
void ApiMetrics::LogLinesSuppressed(uint64_t n) {
  log_suppressed_.Inc(static_cast<double>(n));
}

void ApiMetrics::SubmitBatch(size_t txs) {
  batch_size_.Observe(static_cast<double>(txs));
}

void ApiMetrics::SubmitQueue(size_t txs) {
  queue_.Set(static_cast<double>(txs));
}

void ApiMetrics::UpstreamError(const std::string& service) {
  if (registry_ == nullptr) return;
  Counter c;
  {
    absl::MutexLock l(&mu_);
    auto it = upstream_errors_.find(service);
    if (it == upstream_errors_.end()) {
      it = upstream_errors_
               .emplace(service, registry_->GetCounter(
                                     "consortia_api_upstream_errors_total",
                                     "Failed calls to an upstream service.",
                                     {{"service", service}}))
               .first;
    }
    c = it->second;
  }
  c.Inc();
}

}  // namespace consortia::api

namespace consortia::api {

void ApiMetrics::AuthFailure(const char* kind) {
  if (registry_ == nullptr) return;
  Counter c;
  {
    absl::MutexLock l(&mu_);
    auto it = auth_failures_.find(kind);
    if (it == auth_failures_.end()) {
      it = auth_failures_
               .emplace(kind, registry_->GetCounter(
                                  "consortia_api_auth_failures_total",
                                  "Requests refused for their API key, by "
                                  "kind.",
                                  {{"kind", kind}}))
               .first;
    }
    c = it->second;
  }
  c.Inc();
}

void ApiMetrics::QuotaRefused(const std::string& org, const char* quota) {
  if (registry_ == nullptr) return;
  Counter c;
  {
    absl::MutexLock l(&mu_);
    auto key = std::make_pair(org, std::string(quota));
    auto it = quota_refusals_.find(key);
    if (it == quota_refusals_.end()) {
      it = quota_refusals_
               .emplace(key, registry_->GetCounter(
                                 "consortia_api_quota_refusals_total",
                                 "Requests answered 429 quota-exceeded, by "
                                 "organisation and quota.",
                                 {{"org", org}, {"quota", quota}}))
               .first;
    }
    c = it->second;
  }
  c.Inc();
}

void ApiMetrics::KeyFileReload(bool ok) {
  (ok ? reloads_ok_ : reloads_failed_).Inc();
}
void ApiMetrics::KeysLoaded(size_t n) { keys_.Set(static_cast<double>(n)); }
void ApiMetrics::AuditLines(size_t n) {
  audit_lines_.Inc(static_cast<double>(n));
}
void ApiMetrics::AuditWriteError(size_t lines) {
  audit_write_errors_.Inc(static_cast<double>(lines));
}
void ApiMetrics::AuditUnavailable() { audit_unavailable_.Inc(); }
void ApiMetrics::TlsReload(bool ok) {
  (ok ? tls_reloads_ok_ : tls_reloads_failed_).Inc();
}
void ApiMetrics::TlsHandshakeFailed() { tls_handshake_failures_.Inc(); }
void ApiMetrics::InvoiceReadRefused(bool redacted, size_t n) {
  (redacted ? invoice_redacted_ : invoice_refused_).Inc(static_cast<double>(n));
}

void ApiMetrics::ValidatorChanges(bool cached) {
  (cached ? validator_changes_cache_ : validator_changes_storage_).Inc();
}

}  // namespace consortia::api
