// consortia-api: the api service as its own process. Composition root: parse
// the options, start in order, stop in reverse on SIGINT or SIGTERM.
#include <cstdio>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "consortia/api/api_service.h"
#include "consortia/config.h"
#include "consortia/log.h"
#include "consortia/metrics.h"
#include "spdlog/spdlog.h"

namespace consortia {
namespace {

int Main(int argc, char** argv) {
  BlockTerminationSignals();
  ParseFlagsAndEnv(argc, argv,
                   "consortia-api --genesis=FILE --mempool_endpoint=EP "
                   "--storage_endpoint=EP [--api_port=N]: the HTTP/JSON api "
                   "of one node");
  NodeConfig node = NodeConfig::FromFlags();
  if (absl::Status s = node.Validate(); !s.ok()) {
    std::fprintf(stderr, "consortia-api: %s\n", s.ToString().c_str());
    return 2;
  }
  api::ApiOptions opts = api::ApiOptions::FromFlags();
  if (absl::Status s = opts.Validate(); !s.ok()) {
    std::fprintf(stderr, "consortia-api: %s\n", s.ToString().c_str());
    return 2;
  }
  InitLogging("api", node.log_level);

  zmq::context_t ctx;
  MetricsRegistry registry;
  absl::StatusOr<std::unique_ptr<api::ApiService>> service =
      api::ApiService::Start(node, opts, ctx, registry);
  if (!service.ok()) {
    spdlog::error("api: cannot start: {}", service.status().ToString());
    return 1;
  }
  api::ApiService* api = service->get();
  std::unique_ptr<OpsServer> ops;
  if (node.metrics_port != 0) {
    absl::StatusOr<std::unique_ptr<OpsServer>> started = StartOpsServer(
        node.metrics_host, static_cast<uint16_t>(node.metrics_port),
        {&registry}, [api] { return api->Ready(); });
    if (!started.ok()) {
      spdlog::error("api: metrics endpoint: {}", started.status().ToString());
      return 1;
    }
    ops = *std::move(started);
  }
  spdlog::info("api listening on http://{}:{}", opts.host, api->port());

  WaitForTerminationSignal();
  spdlog::info("api: stopping");
  ops.reset();
  service->reset();
  return 0;
}

}  // namespace
}  // namespace consortia

int main(int argc, char** argv) { return consortia::Main(argc, argv); }
