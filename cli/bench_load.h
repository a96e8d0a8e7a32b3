// The parts of `consortia bench` (bench.cc) that do not depend on its
// options: a keep-alive HTTP/1.1 connection, a follower of the api's event
// stream, the CPU time and peak memory of a process from /proc, and the
// machine's signature-verification rate. Client side only: no service code.
#ifndef CONSORTIA_CLI_BENCH_LOAD_H_
#define CONSORTIA_CLI_BENCH_LOAD_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/crypto_suite.h"

namespace consortia::cli {

// One keep-alive HTTP/1.1 connection to host:port (plain TCP), reopened
// when the server closed it. Not thread-safe: one per load thread.
class KeepAliveConnection {
 public:
  struct Response {
    int status = 0;
    std::string body;
  };
  KeepAliveConnection(std::string host, uint16_t port,
                      std::vector<std::pair<std::string, std::string>> headers)
      : host_(std::move(host)), port_(port), headers_(std::move(headers)) {}
  KeepAliveConnection(const KeepAliveConnection&) = delete;
  KeepAliveConnection& operator=(const KeepAliveConnection&) = delete;
  ~KeepAliveConnection() { Close(); }

  // Sends one request and reads its whole answer (Content-Length or
  // chunked). A connection the server had closed before the request is
  // reopened once; Unavailable when that fails too.
  absl::StatusOr<Response> Call(std::string_view method, std::string_view path,
                                std::string_view body);
  // How many times a connection was opened (1 for a connection kept alive
  // throughout).
  uint64_t connects() const { return connects_; }

 private:
  absl::Status Open();
  void Close();
  absl::StatusOr<Response> Exchange(const std::string& request);

  std::string host_;
  uint16_t port_;
  std::vector<std::pair<std::string, std::string>> headers_;
  int fd_ = -1;
  bool fresh_ = false;  // opened for this request
  std::string buf_;
  uint64_t connects_ = 0;
};

// A connected TCP socket to host:port (IPv4; "localhost" is 127.0.0.1),
// with TCP_NODELAY and 60 s send and receive timeouts, or -1.
int ConnectTcp(const std::string& host, uint16_t port);

// One event of GET /v1/events: its type ("block", "tx", "cutoff"), id and
// data (JSON text).
struct StreamEvent {
  std::string type;
  std::string id;
  std::string data;
};

// Follows GET /v1/events on host:port from `from_height`, calling on_event
// for each event, until `stop` is set. A stream that ends or is cut off is
// resumed after its last id (Last-Event-ID), so no event is missed or seen
// twice. Returns how many times it had to resume.
uint64_t FollowEvents(const std::string& host, uint16_t port,
                      uint64_t from_height, const std::atomic<bool>& stop,
                      const std::function<void(const StreamEvent&)>& on_event);

// CPU seconds (user + system) and peak resident set (VmHWM, KiB) of a
// process, from /proc/<pid>/stat and /proc/<pid>/status. NotFound when the
// process is gone.
struct ProcUsage {
  double cpu_s = 0;
  uint64_t peak_rss_kb = 0;
  uint64_t rss_kb = 0;
};
absl::StatusOr<ProcUsage> ReadProcUsage(pid_t pid);

// Signatures of `suite` verified per second by `threads` threads, each
// checking pre-made signatures (of distinct keys and messages) for about
// `seconds`.
struct VerifyRate {
  double per_s = 0;
  // Per CPU-second of the verifying threads (their own CPU time): what one
  // verification costs, whatever else the machine runs.
  double per_cpu_s = 0;
  uint64_t threads = 0;
  uint64_t verified = 0;
  double seconds = 0;
};
VerifyRate MeasureVerifyRate(const CryptoSuite& suite, uint64_t threads,
                             double seconds);

// The q-quantile (0..1, nearest rank) of `v`, which it sorts; 0 if empty.
double Quantile(std::vector<double>& v, double q);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_BENCH_LOAD_H_
