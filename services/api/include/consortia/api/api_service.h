// The api service: the HTTP/JSON edge of a node. Clients submit transactions
// (POST /v1/txs) and read committed blocks, transactions with their offline
// proof bundle, and state (GET /v1/...). Errors are RFC 9457 problem+json.
//
// The service is stateless: it owns no ledger data and talks to the mempool
// (MempoolApi, for submissions) and to storage (ChainQueries and
// StateQueries, the api's read interfaces of consortia/storage_queries.h)
// only, through the remote clients of consortia/service_api.h. Submissions from
// concurrent requests are gathered into one MempoolApi::Submit call, and the
// txs of one POST /v1/txs:batch go in one call of their own, so the bus
// carries batches, never one message per transaction.
//
// This header is the service's whole public surface: node/ (the
// single-process form), main.cc and the tests build the service through
// ApiService::Start or StartWith. Everything else lives in services/api/src/.
#ifndef CONSORTIA_API_API_SERVICE_H_
#define CONSORTIA_API_API_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/config.h"
#include "consortia/metrics.h"
#include "consortia/service_api.h"
#include "consortia/types.h"

namespace zmq {
class context_t;
}

namespace consortia::api {

// Options of the api service. The fields marked "flag" are read from the
// api_* flags of services/api/src/config.cc (also CONSORTIA_API_<NAME> in the
// environment); the others are not operator settings and keep their
// defaults outside tests.
struct ApiOptions {
  // Address the HTTP server binds (flag api_host).
  std::string host = "127.0.0.1";
  // TCP port; 0 picks a free port, see ApiService::port() (flag api_port).
  int port = 26657;
  // Threads that run the HTTP connections, 1..64 (flag api_http_threads).
  size_t http_threads = 2;
  // Largest request body accepted; larger gets 413. 1 KiB..64 MiB
  // (flag api_max_body_bytes).
  size_t max_body_bytes = 1 << 20;
  // Most transactions handed to the mempool in one Submit call, 1..10000
  // (flag api_submit_batch_max).
  int submit_batch_max = 512;
  // Most transactions in one POST /v1/txs:batch request; more get 413
  // batch-too-large, 1..10000 (flag api_batch_max_txs). Such a request goes
  // to the mempool as one Submit call of its own, not through the batcher.
  size_t batch_max_txs = 1000;
  // How long the first transaction of a batch waits for others before the
  // batch is sent anyway, 0..1 s (flag api_submit_batch_delay_us).
  absl::Duration submit_batch_delay = absl::Microseconds(500);
  // Threads that run blocking storage queries, 1..256
  // (flag api_query_threads).
  size_t query_threads = 8;
  // Queries waiting for a query thread at most; more get 503 overloaded with
  // Retry-After, answered on the HTTP thread without waiting,
  // 1..1,000,000 (flag api_query_queue_max).
  size_t query_queue_max = 4096;
  // Submitted txs waiting for their batch to leave at most; more get 429
  // submit-queue-full with Retry-After, 1..1,000,000
  // (flag api_submit_queue_max).
  size_t submit_queue_max = 16384;

  // The HTTP edge (see HttpServerOptions in consortia/http_server.h).
  // Open connections at most, 1..1,000,000 (flag api_max_connections).
  size_t max_connections = 10000;
  // Open connections per client IP address at most, 1..max_connections
  // (flag api_max_connections_per_client).
  size_t max_connections_per_client = 256;
  // IP addresses of reverse proxies whose X-Forwarded-For names the client
  // (flag api_trusted_proxies, comma-separated; empty: none).
  std::vector<std::string> trusted_proxies;
  // Request line plus header fields at most; larger gets 431,
  // 1 KiB..1 MiB (flag api_max_header_bytes).
  size_t max_header_bytes = 16 * 1024;
  // From a request's first byte until its header is complete,
  // 100 ms..10 min (flag api_header_timeout_ms).
  absl::Duration header_timeout = absl::Seconds(10);
  // An idle keep-alive connection, a request body, or a request whose answer
  // takes longer, is closed after this, 100 ms..1 h
  // (flag api_idle_timeout_ms).
  absl::Duration idle_timeout = absl::Seconds(60);
  // Log lines for 4xx answers (and load shedding) per client address and
  // interval at most; the rest are counted and summed up in one line later,
  // 1..1,000,000 lines per 1..3600 s (flags api_log_lines_per_client,
  // api_log_interval_s).
  size_t log_lines_per_client = 10;
  absl::Duration log_interval = absl::Seconds(60);

  // API keys, quotas and the audit log (docs/api.md, "API keys").
  // The key file (consortia/api_keys.h, written by `consortia apikey`),
  // re-read whenever it changes; empty: no keys, every route is open
  // (flag api_keys_file).
  std::string keys_file;
  // Reads need a key with scope `read` too (flag api_reads_need_key; needs
  // keys_file). Submissions always need a key with scope `submit` when
  // keys_file is set.
  bool reads_need_key = false;
  // Who reads invoice data (flag api_invoice_reads, docs/api.md "Invoice
  // reads"): "open", every reader; "parties", a key of the invoice's seller
  // or buyer organisation or one with scope `audit` (needs reads_need_key).
  std::string invoice_reads = "open";
  // Every submission is written here as a JSON line of a hash chain before
  // it is answered; empty: no audit log (flag api_audit_log).
  std::string audit_log;
  // A file of the audit log that has reached this many bytes is rotated
  // (renamed to audit_log.NNNNNN; the chain continues in a new file); 0:
  // never (flag api_audit_log_max_bytes).
  uint64_t audit_log_max_bytes = 0;
  // The event stream (GET /v1/events): the heartbeat comment's interval
  // (flag api_events_heartbeat_ms), how many events a stream may have
  // waiting to be written before it is cut off (api_events_max_lag), and how
  // often the tail reader asks storage for its tip (api_events_poll_ms).
  absl::Duration events_heartbeat = absl::Seconds(15);
  uint32_t events_max_lag = 10000;
  absl::Duration events_poll = absl::Milliseconds(200);

  // HTTPS on the api port (docs/operations.md, "TLS on the api port"): a
  // PEM certificate chain and its private key, both or neither; re-read by
  // ApiService::Reload (SIGHUP) (flags api_tls_cert_file,
  // api_tls_key_file).
  std::string tls_cert_file;
  std::string tls_key_file;

  // Not flags.
  // How often the key file is checked for changes.
  absl::Duration keys_poll_interval = absl::Seconds(1);
  // Audit lines waiting to be written at most; while the log is this far
  // behind, submissions get 503 audit-unavailable.
  size_t audit_queue_max = 65536;
  // Threads that run MempoolApi::Submit calls; also the most batches in
  // flight at once (while they are busy, new txs gather into bigger batches).
  size_t submit_threads = 2;
  // How often the readiness prober calls the mempool and storage, and how
  // long a successful probe counts.
  absl::Duration probe_interval = absl::Seconds(1);
  absl::Duration probe_valid_for = absl::Seconds(5);

  // Reads the api_* flags.
  static ApiOptions FromFlags();
  // Field by field (a test checks that ApiOptions{} is FromFlags() with
  // every flag at its declared default).
  bool operator==(const ApiOptions&) const = default;
  // InvalidArgument naming the first option out of bounds.
  absl::Status Validate() const;
};

// A running api service: an HTTP server on opts.host:opts.port, a submit
// batcher and a readiness prober. Destruction stops it: the HTTP server
// first (no new requests), then the prober, then pending queries and
// batches, then the bus clients.
//
// Routes (all JSON; errors are application/problem+json): submit a tx or
// a batch of txs, read committed txs with their proof bundles, blocks, state
// with its proofs, evidence, and /healthz, /readyz. They are declared once, in
// src/api_routes.cc; services/api/README.md gives each one's answer and the
// status mapping (a test checks that it lists them all).
//
// Thread-safe: Ready() and port() may be called from any thread.
class ApiService {
 public:
  // Loads the genesis from node.genesis_path (chain id and crypto suite),
  // connects bus clients to node.mempool_endpoint and node.storage_endpoint
  // (calls time out after node.bus_timeout) and starts serving. It does not
  // wait for the upstreams: Ready() turns true once both have answered.
  // NotFound / InvalidArgument for a missing or bad genesis or endpoint
  // or TLS certificate or key file, Unavailable if the HTTP address cannot
  // be bound. `ctx` and `metrics`
  // must outlive the service.
  static absl::StatusOr<std::unique_ptr<ApiService>> Start(
      const NodeConfig& node, const ApiOptions& opts, zmq::context_t& ctx,
      MetricsRegistry& metrics);

  // For tests and embedding: the same service over the given interfaces,
  // which it does not own and which must outlive it. Same errors as Start
  // (InvalidArgument for an unknown crypto suite in `genesis`).
  static absl::StatusOr<std::unique_ptr<ApiService>> StartWith(
      const ApiOptions& opts, const Genesis& genesis, MempoolApi* mempool,
      ChainQueries* chain, StateQueries* state, MetricsRegistry& metrics);

  virtual ~ApiService();

  // True while both the mempool and storage have answered a probe within
  // opts.probe_valid_for.
  virtual bool Ready() const = 0;
  // The bound TCP port (useful with opts.port = 0).
  virtual uint16_t port() const = 0;
  // What SIGHUP does (RunServiceProcess, node/main.cc): re-reads the TLS
  // certificate and key files when opts.tls_cert_file is set. New
  // connections get the new pair, open ones keep theirs; a pair that cannot
  // be loaded is logged and counted (consortia_api_tls_reloads_total
  // {result="failed"}) and the pair in force stays. Returns what the reload
  // gave (OK when there is nothing to reload).
  virtual absl::Status Reload() = 0;
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit (each open
// connection costs a descriptor) and returns the soft limit in force
// afterwards. ApiService::Start and StartWith call it and warn when it is
// below opts.max_connections plus a margin.
uint64_t RaiseFileLimit();

}  // namespace consortia::api

#endif  // CONSORTIA_API_API_SERVICE_H_
