// Metrics and the operations endpoint. Business code does not touch
// prometheus-cpp: each module has a small metrics struct built from a
// MetricsRegistry (or a no-op form for tests). Names follow
// consortia_<service>_<what>_<unit>.
#ifndef CONSORTIA_COMMON_METRICS_H_
#define CONSORTIA_COMMON_METRICS_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
}

namespace consortia {

// Thin handles; all thread-safe. A default-constructed handle is a no-op.
class Counter {
 public:
  Counter() = default;
  explicit Counter(void* impl) : impl_(impl) {}
  void Inc(double v = 1);

 private:
  void* impl_ = nullptr;
};
class Gauge {
 public:
  Gauge() = default;
  explicit Gauge(void* impl) : impl_(impl) {}
  void Set(double v);
  void Add(double v);

 private:
  void* impl_ = nullptr;
};
class Histogram {
 public:
  Histogram() = default;
  explicit Histogram(void* impl) : impl_(impl) {}
  void Observe(double v);

 private:
  void* impl_ = nullptr;
};

// Latency buckets in seconds, 100 µs to 10 s.
std::vector<double> LatencyBuckets();

// Owns a prometheus registry. Thread-safe.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();

  // name must be a valid Prometheus name; counters end in _total. Labels are
  // fixed per handle; asking again for the same name and labels returns the
  // same series.
  Counter GetCounter(const std::string& name, const std::string& help,
                     const std::map<std::string, std::string>& labels = {});
  Gauge GetGauge(const std::string& name, const std::string& help,
                 const std::map<std::string, std::string>& labels = {});
  Histogram GetHistogram(const std::string& name, const std::string& help,
                         const std::vector<double>& buckets,
                         const std::map<std::string, std::string>& labels = {});

  // The text exposition format (version 0.0.4).
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

// Serves GET /metrics, /healthz (200 while the process runs) and /readyz
// (200 when ready() is true, else 503 problem+json) on host:port.
class OpsServer {
 public:
  virtual ~OpsServer() = default;
  virtual uint16_t port() const = 0;
};
absl::StatusOr<std::unique_ptr<OpsServer>> StartOpsServer(
    const std::string& host, uint16_t port,
    std::vector<const MetricsRegistry*> registries,
    std::function<bool()> ready);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_METRICS_H_
