// The api's options: each declared once here (name, default, doc) and
// bounded in Validate().
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
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

namespace consortia::api {
namespace {

constexpr int64_t kMaxHttpThreads = 64;
constexpr int64_t kMinBodyBytes = 1024;
constexpr int64_t kMaxBodyBytes = int64_t{64} << 20;
constexpr int64_t kMaxBatch = 10000;
constexpr int64_t kMaxQueryThreads = 256;
constexpr int64_t kMaxSubmitThreads = 64;

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
  if (idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout must be positive");
  }
  if (probe_interval <= absl::ZeroDuration() ||
      probe_valid_for < probe_interval) {
    return absl::InvalidArgumentError(
        "probe_interval must be positive and at most probe_valid_for");
  }
  return absl::OkStatus();
}

}  // namespace consortia::api
