// consortia-mempool: the mempool service as its own process.
#include <cstdio>
#include <memory>
#include <string>

#include "consortia/config.h"
#include "consortia/log.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/metrics.h"
#include "zmq.hpp"

int main(int argc, char** argv) {
  consortia::BlockTerminationSignals();
  consortia::ParseFlagsAndEnv(
      argc, argv,
      "consortia-mempool: admits transactions and hands them to consensus.");
  const consortia::NodeConfig node = consortia::NodeConfig::FromFlags();
  const consortia::mempool::MempoolOptions options =
      consortia::mempool::MempoolOptions::FromFlags();
  for (const absl::Status& s : {node.Validate(), options.Validate()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "consortia-mempool: %s\n",
                   std::string(s.message()).c_str());
      return 2;
    }
  }
  consortia::InitLogging("mempool", node.log_level);

  zmq::context_t ctx;
  consortia::MetricsRegistry registry;
  absl::StatusOr<std::unique_ptr<consortia::mempool::MempoolService>> service =
      consortia::mempool::MempoolService::Start(node, options, ctx, registry);
  if (!service.ok()) {
    spdlog::error("cannot start the mempool: {}", service.status().ToString());
    return 1;
  }
  std::unique_ptr<consortia::OpsServer> ops;
  if (node.metrics_port != 0) {
    consortia::mempool::MempoolService* svc = service->get();
    absl::StatusOr<std::unique_ptr<consortia::OpsServer>> started =
        consortia::StartOpsServer(node.metrics_host,
                                  static_cast<uint16_t>(node.metrics_port),
                                  {&registry}, [svc] { return svc->Ready(); });
    if (!started.ok()) {
      spdlog::error("cannot start the ops endpoint: {}",
                    started.status().ToString());
      return 1;
    }
    ops = *std::move(started);
  }
  spdlog::info("mempool started");
  consortia::WaitForTerminationSignal();
  spdlog::info("mempool stopping");
  ops.reset();
  service->reset();
  return 0;
}
