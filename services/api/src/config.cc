// The api's options: each declared once here (see consortia/options.h) and
// checked in Validate().
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/ip/address.hpp"
#include "consortia/api/api_service.h"
#include "consortia/options.h"
#include "invoice_access.h"

CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_host, "127.0.0.1",
    "Address the api's HTTP server binds (0.0.0.0 for all; non-empty).");
CONSORTIA_OPTION("api", int32_t, api_port, 26657, 0, 65535,
                 "TCP port of the api's HTTP server (0 = any free port).");
CONSORTIA_OPTION("api", uint32_t, api_http_threads, 2, 1, 64,
                 "Threads serving HTTP connections (connections do not need "
                 "a thread each).");
CONSORTIA_OPTION("api", uint64_t, api_max_body_bytes, 1 << 20, 1024,
                 int64_t{64} << 20,
                 "Largest request body accepted, in bytes; larger gets 413.");
CONSORTIA_OPTION("api", int32_t, api_submit_batch_max, 512, 1, 10000,
                 "Most transactions the api hands the mempool in one call.");
CONSORTIA_OPTION("api", uint32_t, api_batch_max_txs, 1000, 1, 10000,
                 "Most transactions in one POST /v1/txs:batch request; more "
                 "get 413 (batch-too-large). The request body stays within "
                 "--api_max_body_bytes.");
CONSORTIA_OPTION("api", int64_t, api_submit_batch_delay_us, 500, 0, 1'000'000,
                 "Microseconds the first transaction of a submit batch waits "
                 "for others before the batch is sent anyway.");
CONSORTIA_OPTION("api", uint32_t, api_query_threads, 8, 1, 256,
                 "Threads running storage queries (each waits at most the bus "
                 "timeout).");
CONSORTIA_OPTION("api", uint32_t, api_query_queue_max, 4096, 1, 1'000'000,
                 "Queries waiting for a query thread at most; more are "
                 "answered 503 (overloaded, Retry-After) at once.");
CONSORTIA_OPTION("api", uint32_t, api_submit_queue_max, 16384, 1, 1'000'000,
                 "Submitted transactions waiting for their batch at most; "
                 "more are answered 429 (submit-queue-full, Retry-After).");
CONSORTIA_OPTION("api", uint32_t, api_max_connections, 10000, 1, 1'000'000,
                 "Open HTTP connections at most; a new connection over the "
                 "cap is closed at once. Needs as many file descriptors (the "
                 "api raises its soft RLIMIT_NOFILE to the hard limit).");
CONSORTIA_OPTION("api", uint32_t, api_max_connections_per_client, 256, 1,
                 1'000'000,
                 "Open HTTP connections per client IP address at most (at "
                 "most --api_max_connections; connections from a trusted "
                 "proxy count against the total only).");
CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_trusted_proxies, "",
    "Comma-separated IP addresses (not names or ranges) of reverse proxies "
    "(an ingress) whose X-Forwarded-For header names the client; the header "
    "is ignored from any other peer.");
CONSORTIA_OPTION("api", uint32_t, api_max_header_bytes, 16 * 1024, 1024,
                 1 << 20,
                 "Largest request line plus header accepted, in bytes; larger "
                 "gets 431.");
CONSORTIA_OPTION("api", int64_t, api_header_timeout_ms, 10000, 100, 600'000,
                 "Milliseconds from a request's first byte until its header "
                 "must be complete; slower connections are closed.");
CONSORTIA_OPTION("api", int64_t, api_idle_timeout_ms, 60000, 100, 3'600'000,
                 "Milliseconds an idle keep-alive connection, a request body "
                 "or a pending answer may take before the connection is "
                 "closed.");
CONSORTIA_OPTION("api", uint32_t, api_log_lines_per_client, 10, 1, 1'000'000,
                 "Log lines for 4xx answers (and shed load) per client "
                 "address per interval; the rest are counted and summed up "
                 "later.");
CONSORTIA_OPTION(
    "api", int64_t, api_log_interval_s, 60, 1, 3600,
    "Seconds of the per-client log interval (api_log_lines_per_client).");

CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_keys_file, "",
    "API key file (organisations, quotas, hashed keys; written by `consortia "
    "apikey`), re-read when it changes; empty = no keys: every route is "
    "open.");
CONSORTIA_OPTION_UNBOUNDED(
    "api", bool, api_reads_need_key, false,
    "Reads need an API key with scope read as well (needs --api_keys_file; "
    "submissions always need one with scope submit).");
CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_invoice_reads, "open",
    "Who reads invoice records, and invoice txs in tx and block answers and "
    "events: open = every reader; parties = a key of the invoice's seller or "
    "buyer organisation, or with scope audit (needs --api_reads_need_key).");
CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_audit_log, "",
    "Audit log: one hash-chained JSON line per submission, on disk before "
    "the answer (one file per api process); empty = none.");
CONSORTIA_OPTION("api", uint64_t, api_audit_log_max_bytes, 0, 0,
                 uint64_t{1} << 50,
                 "Rotate the audit log when its file reaches this many bytes: "
                 "it is renamed to FILE.NNNNNN and the chain continues in a "
                 "new FILE (consortia audit verify FILE.* FILE); 0 = never.");
CONSORTIA_OPTION("api", int64_t, api_events_heartbeat_ms, 15000, 10, 3'600'000,
                 "Milliseconds between heartbeat comments on an idle event "
                 "stream (GET /v1/events).");
CONSORTIA_OPTION("api", uint32_t, api_events_max_lag, 10000, 1, 10'000'000,
                 "Events an event stream may have waiting to be written to "
                 "its client; a client further behind is cut off (event "
                 "cutoff, reason too_slow) and may resume from its last id.");
CONSORTIA_OPTION("api", int64_t, api_events_poll_ms, 200, 10, 60'000,
                 "Milliseconds between the event stream's reads of storage's "
                 "chain tip (new blocks reach the streams this late at "
                 "most).");

CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_tls_cert_file, "",
    "PEM certificate (then any intermediate CA certificates) for HTTPS on the "
    "api port; with --api_tls_key_file the port speaks HTTPS only. Both are "
    "re-read on SIGHUP. Empty = plain HTTP.");
CONSORTIA_OPTION_UNBOUNDED(
    "api", std::string, api_tls_key_file, "",
    "PEM private key (unencrypted) of --api_tls_cert_file; set both or "
    "neither.");

namespace consortia::api {
namespace {

constexpr int64_t kMaxSubmitThreads = 64;

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    absl::string_view t = absl::StripAsciiWhitespace(part);
    if (!t.empty()) out.emplace_back(t.data(), t.size());
  }
  return out;
}

}  // namespace

ApiOptions ApiOptions::FromFlags() {
  ApiOptions o;
  o.host = absl::GetFlag(FLAGS_api_host);
  o.port = absl::GetFlag(FLAGS_api_port);
  o.http_threads = absl::GetFlag(FLAGS_api_http_threads);
  o.max_body_bytes = absl::GetFlag(FLAGS_api_max_body_bytes);
  o.submit_batch_max = absl::GetFlag(FLAGS_api_submit_batch_max);
  o.batch_max_txs = absl::GetFlag(FLAGS_api_batch_max_txs);
  o.submit_batch_delay =
      absl::Microseconds(absl::GetFlag(FLAGS_api_submit_batch_delay_us));
  o.query_threads = absl::GetFlag(FLAGS_api_query_threads);
  o.query_queue_max = absl::GetFlag(FLAGS_api_query_queue_max);
  o.submit_queue_max = absl::GetFlag(FLAGS_api_submit_queue_max);
  o.max_connections = absl::GetFlag(FLAGS_api_max_connections);
  o.max_connections_per_client =
      absl::GetFlag(FLAGS_api_max_connections_per_client);
  o.trusted_proxies = SplitList(absl::GetFlag(FLAGS_api_trusted_proxies));
  o.max_header_bytes = absl::GetFlag(FLAGS_api_max_header_bytes);
  o.header_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_api_header_timeout_ms));
  o.idle_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_api_idle_timeout_ms));
  o.log_lines_per_client = absl::GetFlag(FLAGS_api_log_lines_per_client);
  o.log_interval = absl::Seconds(absl::GetFlag(FLAGS_api_log_interval_s));
  o.keys_file = absl::GetFlag(FLAGS_api_keys_file);
  o.reads_need_key = absl::GetFlag(FLAGS_api_reads_need_key);
  o.invoice_reads = absl::GetFlag(FLAGS_api_invoice_reads);
  o.audit_log = absl::GetFlag(FLAGS_api_audit_log);
  o.audit_log_max_bytes = absl::GetFlag(FLAGS_api_audit_log_max_bytes);
  o.events_heartbeat =
      absl::Milliseconds(absl::GetFlag(FLAGS_api_events_heartbeat_ms));
  o.events_max_lag = absl::GetFlag(FLAGS_api_events_max_lag);
  o.events_poll = absl::Milliseconds(absl::GetFlag(FLAGS_api_events_poll_ms));
  o.tls_cert_file = absl::GetFlag(FLAGS_api_tls_cert_file);
  o.tls_key_file = absl::GetFlag(FLAGS_api_tls_key_file);
  return o;
}

absl::Status ApiOptions::Validate() const {
  if (host.empty()) {
    return absl::InvalidArgumentError("--api_host must not be empty");
  }
  for (absl::Status s : {
           CheckOptionBounds(OPTION_api_port, int64_t{port}),
           CheckOptionBounds(OPTION_api_http_threads, http_threads),
           CheckOptionBounds(OPTION_api_max_body_bytes, max_body_bytes),
           CheckOptionBounds(OPTION_api_submit_batch_max,
                             int64_t{submit_batch_max}),
           CheckOptionBounds(OPTION_api_batch_max_txs, batch_max_txs),
           CheckOptionBounds(OPTION_api_submit_batch_delay_us,
                             absl::ToInt64Microseconds(submit_batch_delay)),
           CheckOptionBounds(OPTION_api_query_threads, query_threads),
       }) {
    if (!s.ok()) return s;
  }
  // Set by tests and the node, not a flag.
  if (submit_threads < 1 || submit_threads > kMaxSubmitThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("submit_threads ", submit_threads, " must be in [1, ",
                     kMaxSubmitThreads, "]"));
  }
  for (absl::Status s : {
           CheckOptionBounds(OPTION_api_query_queue_max, query_queue_max),
           CheckOptionBounds(OPTION_api_submit_queue_max, submit_queue_max),
           CheckOptionBounds(OPTION_api_max_connections, max_connections),
           CheckOptionBounds(OPTION_api_max_connections_per_client,
                             max_connections_per_client),
           CheckOptionRange(OPTION_api_max_connections_per_client,
                            static_cast<int64_t>(max_connections_per_client), 1,
                            static_cast<int64_t>(max_connections)),
       }) {
    if (!s.ok()) return s;
  }
  for (const std::string& proxy : trusted_proxies) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(proxy, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--api_trusted_proxies: \"", proxy, "\" is not an IP address"));
    }
  }
  for (absl::Status s : {
           CheckOptionBounds(OPTION_api_max_header_bytes, max_header_bytes),
           CheckOptionBounds(OPTION_api_header_timeout_ms,
                             absl::ToInt64Milliseconds(header_timeout)),
           CheckOptionBounds(OPTION_api_idle_timeout_ms,
                             absl::ToInt64Milliseconds(idle_timeout)),
           CheckOptionBounds(OPTION_api_log_lines_per_client,
                             log_lines_per_client),
           CheckOptionBounds(OPTION_api_log_interval_s,
                             absl::ToInt64Seconds(log_interval)),
           CheckOptionBounds(OPTION_api_events_heartbeat_ms,
                             absl::ToInt64Milliseconds(events_heartbeat)),
           CheckOptionBounds(OPTION_api_events_max_lag,
                             int64_t{events_max_lag}),
           CheckOptionBounds(OPTION_api_events_poll_ms,
                             absl::ToInt64Milliseconds(events_poll)),
       }) {
    if (!s.ok()) return s;
  }
  if (reads_need_key && keys_file.empty()) {
    return absl::InvalidArgumentError(
        "--api_reads_need_key needs --api_keys_file");
  }
  absl::StatusOr<InvoiceReads> invoices = ParseInvoiceReads(invoice_reads);
  if (!invoices.ok()) return invoices.status();
  if (*invoices == InvoiceReads::kParties && !reads_need_key) {
    return absl::InvalidArgumentError(
        "--api_invoice_reads=parties needs --api_reads_need_key (and so "
        "--api_keys_file): the parties of an invoice are known by their API "
        "keys");
  }
  if (tls_cert_file.empty() != tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--api_tls_cert_file and --api_tls_key_file go together: set both "
        "(HTTPS) or neither (HTTP)");
  }
  if (keys_poll_interval <= absl::ZeroDuration() || audit_queue_max < 1) {
    return absl::InvalidArgumentError(
        "keys_poll_interval must be positive and audit_queue_max at least 1");
  }
  if (probe_interval <= absl::ZeroDuration() ||
      probe_valid_for < probe_interval) {
    return absl::InvalidArgumentError(
        "probe_interval must be positive and at most probe_valid_for");
  }
  return absl::OkStatus();
}

}  // namespace consortia::api
