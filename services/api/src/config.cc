// The api's options: each declared once here (name, default, doc) and
// bounded in Validate().
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

ABSL_FLAG(std::string, api_host, "127.0.0.1",
          "Address the api's HTTP server binds (0.0.0.0 for all).");
ABSL_FLAG(int32_t, api_port, 26657,
          "TCP port of the api's HTTP server (0 = any free port).");
ABSL_FLAG(uint32_t, api_http_threads, 2,
          "Threads serving HTTP connections (connections do not need a "
          "thread each).");
ABSL_FLAG(uint64_t, api_max_body_bytes, 1 << 20,
          "Largest request body accepted, in bytes; larger gets 413.");
ABSL_FLAG(int32_t, api_submit_batch_max, 512,
          "Most transactions the api hands the mempool in one call.");
ABSL_FLAG(int64_t, api_submit_batch_delay_us, 500,
          "Microseconds the first transaction of a submit batch waits for "
          "others before the batch is sent anyway.");
ABSL_FLAG(uint32_t, api_query_threads, 8,
          "Threads running storage queries (each waits at most the bus "
          "timeout).");

ABSL_FLAG(uint32_t, api_query_queue_max, 4096,
          "Queries waiting for a query thread at most; more are answered "
          "503 (overloaded, Retry-After) at once.");
ABSL_FLAG(uint32_t, api_submit_queue_max, 16384,
          "Submitted transactions waiting for their batch at most; more are "
          "answered 429 (submit-queue-full, Retry-After).");
ABSL_FLAG(uint32_t, api_max_connections, 10000,
          "Open HTTP connections at most; a new connection over the cap is "
          "closed at once. Needs as many file descriptors (the api raises "
          "its soft RLIMIT_NOFILE to the hard limit).");
ABSL_FLAG(uint32_t, api_max_connections_per_client, 256,
          "Open HTTP connections per client IP address at most (connections "
          "from a trusted proxy count against the total only).");
ABSL_FLAG(std::string, api_trusted_proxies, "",
          "Comma-separated IP addresses of reverse proxies (an ingress) "
          "whose X-Forwarded-For header names the client; the header is "
          "ignored from any other peer.");
ABSL_FLAG(uint32_t, api_max_header_bytes, 16 * 1024,
          "Largest request line plus header accepted, in bytes; larger gets "
          "431.");
ABSL_FLAG(int64_t, api_header_timeout_ms, 10000,
          "Milliseconds from a request's first byte until its header must be "
          "complete; slower connections are closed.");
ABSL_FLAG(int64_t, api_idle_timeout_ms, 60000,
          "Milliseconds an idle keep-alive connection, a request body or a "
          "pending answer may take before the connection is closed.");
ABSL_FLAG(uint32_t, api_log_lines_per_client, 10,
          "Log lines for 4xx answers (and shed load) per client address per "
          "interval; the rest are counted and summed up later.");
ABSL_FLAG(int64_t, api_log_interval_s, 60,
          "Seconds of the per-client log interval (api_log_lines_per_client).");

namespace consortia::api {
namespace {

constexpr int64_t kMaxHttpThreads = 64;
constexpr int64_t kMinBodyBytes = 1024;
constexpr int64_t kMaxBodyBytes = int64_t{64} << 20;
constexpr int64_t kMaxBatch = 10000;
constexpr int64_t kMaxQueryThreads = 256;
constexpr int64_t kMaxSubmitThreads = 64;
constexpr int64_t kMaxQueue = 1'000'000;
constexpr int64_t kMaxConnections = 1'000'000;
constexpr int64_t kMinHeaderBytes = 1024;
constexpr int64_t kMaxHeaderBytes = 1 << 20;
constexpr int64_t kMinTimeoutMs = 100;
constexpr int64_t kMaxHeaderTimeoutMs = 600'000;
constexpr int64_t kMaxIdleTimeoutMs = 3'600'000;
constexpr int64_t kMaxLogLines = 1'000'000;
constexpr int64_t kMaxLogIntervalS = 3600;

bool InBounds(size_t v, int64_t lo, int64_t hi) {
  return v >= static_cast<uint64_t>(lo) && v <= static_cast<uint64_t>(hi);
}

bool InBoundsMs(absl::Duration d, int64_t lo_ms, int64_t hi_ms) {
  return d >= absl::Milliseconds(lo_ms) && d <= absl::Milliseconds(hi_ms);
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    absl::string_view t = absl::StripAsciiWhitespace(part);
    if (!t.empty()) out.emplace_back(t.data(), t.size());
  }
  return out;
}

absl::Status OutOfRange(const char* flag, int64_t value, int64_t lo,
                        int64_t hi) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "=", value, " is out of bounds [", lo, ", ", hi, "]"));
}

}  // namespace

ApiOptions ApiOptions::FromFlags() {
  ApiOptions o;
  o.host = absl::GetFlag(FLAGS_api_host);
  o.port = absl::GetFlag(FLAGS_api_port);
  o.http_threads = absl::GetFlag(FLAGS_api_http_threads);
  o.max_body_bytes = absl::GetFlag(FLAGS_api_max_body_bytes);
  o.submit_batch_max = absl::GetFlag(FLAGS_api_submit_batch_max);
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
  return o;
}

absl::Status ApiOptions::Validate() const {
  if (host.empty()) {
    return absl::InvalidArgumentError("--api_host must not be empty");
  }
  if (port < 0 || port > 65535) {
    return OutOfRange("api_port", port, 0, 65535);
  }
  if (http_threads < 1 || http_threads > kMaxHttpThreads) {
    return OutOfRange("api_http_threads", static_cast<int64_t>(http_threads), 1,
                      kMaxHttpThreads);
  }
  if (max_body_bytes < static_cast<uint64_t>(kMinBodyBytes) ||
      max_body_bytes > static_cast<uint64_t>(kMaxBodyBytes)) {
    return OutOfRange("api_max_body_bytes",
                      static_cast<int64_t>(max_body_bytes), kMinBodyBytes,
                      kMaxBodyBytes);
  }
  if (submit_batch_max < 1 || submit_batch_max > kMaxBatch) {
    return OutOfRange("api_submit_batch_max", submit_batch_max, 1, kMaxBatch);
  }
  if (submit_batch_delay < absl::ZeroDuration() ||
      submit_batch_delay > absl::Seconds(1)) {
    return OutOfRange("api_submit_batch_delay_us",
                      absl::ToInt64Microseconds(submit_batch_delay), 0,
                      1'000'000);
  }
  if (query_threads < 1 || query_threads > kMaxQueryThreads) {
    return OutOfRange("api_query_threads", static_cast<int64_t>(query_threads),
                      1, kMaxQueryThreads);
  }
  if (submit_threads < 1 || submit_threads > kMaxSubmitThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("submit_threads ", submit_threads, " must be in [1, ",
                     kMaxSubmitThreads, "]"));
  }
  if (!InBounds(query_queue_max, 1, kMaxQueue)) {
    return OutOfRange("api_query_queue_max",
                      static_cast<int64_t>(query_queue_max), 1, kMaxQueue);
  }
  if (!InBounds(submit_queue_max, 1, kMaxQueue)) {
    return OutOfRange("api_submit_queue_max",
                      static_cast<int64_t>(submit_queue_max), 1, kMaxQueue);
  }
  if (!InBounds(max_connections, 1, kMaxConnections)) {
    return OutOfRange("api_max_connections",
                      static_cast<int64_t>(max_connections), 1,
                      kMaxConnections);
  }
  if (max_connections_per_client < 1 ||
      max_connections_per_client > max_connections) {
    return OutOfRange("api_max_connections_per_client",
                      static_cast<int64_t>(max_connections_per_client), 1,
                      static_cast<int64_t>(max_connections));
  }
  for (const std::string& proxy : trusted_proxies) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(proxy, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--api_trusted_proxies: \"", proxy, "\" is not an IP address"));
    }
  }
  if (!InBounds(max_header_bytes, kMinHeaderBytes, kMaxHeaderBytes)) {
    return OutOfRange("api_max_header_bytes",
                      static_cast<int64_t>(max_header_bytes), kMinHeaderBytes,
                      kMaxHeaderBytes);
  }
  if (!InBoundsMs(header_timeout, kMinTimeoutMs, kMaxHeaderTimeoutMs)) {
    return OutOfRange("api_header_timeout_ms",
                      absl::ToInt64Milliseconds(header_timeout), kMinTimeoutMs,
                      kMaxHeaderTimeoutMs);
  }
  if (!InBoundsMs(idle_timeout, kMinTimeoutMs, kMaxIdleTimeoutMs)) {
    return OutOfRange("api_idle_timeout_ms",
                      absl::ToInt64Milliseconds(idle_timeout), kMinTimeoutMs,
                      kMaxIdleTimeoutMs);
  }
  if (!InBounds(log_lines_per_client, 1, kMaxLogLines)) {
    return OutOfRange("api_log_lines_per_client",
                      static_cast<int64_t>(log_lines_per_client), 1,
                      kMaxLogLines);
  }
  if (log_interval < absl::Seconds(1) ||
      log_interval > absl::Seconds(kMaxLogIntervalS)) {
    return OutOfRange("api_log_interval_s", absl::ToInt64Seconds(log_interval),
                      1, kMaxLogIntervalS);
  }
  if (probe_interval <= absl::ZeroDuration() ||
      probe_valid_for < probe_interval) {
    return absl::InvalidArgumentError(
        "probe_interval must be positive and at most probe_valid_for");
  }
  return absl::OkStatus();
}

}  // namespace consortia::api
