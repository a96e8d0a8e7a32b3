// Metrics handles over prometheus-cpp, and the operations endpoint.
#include "consortia/metrics.h"

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/http_server.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "spdlog/spdlog.h"

namespace consortia {

void Counter::Inc(double v) {
  if (impl_ != nullptr) static_cast<prometheus::Counter*>(impl_)->Increment(v);
}

void Gauge::Set(double v) {
  if (impl_ != nullptr) static_cast<prometheus::Gauge*>(impl_)->Set(v);
}

void Gauge::Add(double v) {
  if (impl_ != nullptr) static_cast<prometheus::Gauge*>(impl_)->Increment(v);
}

void Histogram::Observe(double v) {
  if (impl_ != nullptr) static_cast<prometheus::Histogram*>(impl_)->Observe(v);
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

MetricsRegistry::MetricsRegistry()
    : registry_(std::make_shared<prometheus::Registry>()) {}

MetricsRegistry::~MetricsRegistry() = default;

// prometheus-cpp throws on an invalid name or on a name already used by
// another metric type; that is a programming error, logged, and the caller
// gets a no-op handle rather than a crash.
Counter MetricsRegistry::GetCounter(
    const std::string& name, const std::string& help,
    const std::map<std::string, std::string>& labels) {
  try {
    auto& family =
        prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
    return Counter(&family.Add(labels));
  } catch (const std::exception& e) {
    spdlog::error("metrics: cannot register counter {}: {}", name, e.what());
    return Counter();
  }
}

Gauge MetricsRegistry::GetGauge(
    const std::string& name, const std::string& help,
    const std::map<std::string, std::string>& labels) {
  try {
    auto& family =
        prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
    return Gauge(&family.Add(labels));
  } catch (const std::exception& e) {
    spdlog::error("metrics: cannot register gauge {}: {}", name, e.what());
    return Gauge();
  }
}

Histogram MetricsRegistry::GetHistogram(
    const std::string& name, const std::string& help,
    const std::vector<double>& buckets,
    const std::map<std::string, std::string>& labels) {
  try {
    auto& family =
        prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
    return Histogram(
        &family.Add(labels, prometheus::Histogram::BucketBoundaries(buckets)));
  } catch (const std::exception& e) {
    spdlog::error("metrics: cannot register histogram {}: {}", name, e.what());
    return Histogram();
  }
}

std::string MetricsRegistry::Serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

namespace {

class OpsServerImpl : public OpsServer {
 public:
  explicit OpsServerImpl(std::unique_ptr<HttpServer> http)
      : http_(std::move(http)) {}
  uint16_t port() const override { return http_->port(); }

 private:
  std::unique_ptr<HttpServer> http_;
};

HttpResponse HandleOps(const HttpRequest& req,
                       const std::vector<const MetricsRegistry*>& registries,
                       const std::function<bool()>& ready) {
  if (req.path != "/metrics" && req.path != "/healthz" &&
      req.path != "/readyz") {
    return Problem(404, "about:blank", "Not Found",
                   absl::StrCat("no route ", req.path));
  }
  if (req.method != "GET") {
    HttpResponse r = Problem(405, "about:blank", "Method Not Allowed",
                             absl::StrCat(req.method, " ", req.path));
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  HttpResponse r;
  if (req.path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4";
    for (const MetricsRegistry* reg : registries) {
      if (reg != nullptr) r.body += reg->Serialize();
    }
    return r;
  }
  if (req.path == "/healthz") {
    r.body = R"({"status":"ok"})";
    return r;
  }
  if (ready && !ready()) {
    return Problem(503, "about:blank", "Service Unavailable", "not ready yet");
  }
  r.body = R"({"status":"ready"})";
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpsServer>> StartOpsServer(
    const std::string& host, uint16_t port,
    std::vector<const MetricsRegistry*> registries,
    std::function<bool()> ready) {
  HttpServerOptions opts;
  opts.host = host;
  opts.port = port;
  opts.threads = 1;
  opts.max_body_bytes = 4096;
  auto handler = [registries = std::move(registries), ready = std::move(ready)](
                     HttpRequest req, HttpServer::Respond respond) {
    respond(HandleOps(req, registries, ready));
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      StartHttpServer(opts, std::move(handler));
  if (!http.ok()) return http.status();
  return std::unique_ptr<OpsServer>(
      std::make_unique<OpsServerImpl>(*std::move(http)));
}

}  // namespace consortia
