// consortia-storage: the storage service as its own process. Composition
// root: parse config, start, wait for SIGTERM, stop in reverse.
#include <cstdio>
#include <memory>
#include <zmq.hpp>

#include "consortia/config.h"
#include "consortia/log.h"
#include "consortia/metrics.h"
#include "consortia/storage/storage_service.h"

int main(int argc, char** argv) {
  consortia::BlockTerminationSignals();
  consortia::ParseFlagsAndEnv(
      argc, argv,
      "consortia-storage: executes and persists committed blocks, serves "
      "queries and proofs.\nUsage: consortia-storage --genesis=FILE "
      "--data_dir=DIR [flags]");

  consortia::NodeConfig node = consortia::NodeConfig::FromFlags();
  consortia::storage::StorageOptions opts =
      consortia::storage::StorageOptions::FromFlags();
  if (absl::Status s = node.Validate(); !s.ok()) {
    std::fprintf(stderr, "consortia-storage: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = opts.Validate(); !s.ok()) {
    std::fprintf(stderr, "consortia-storage: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  consortia::InitLogging("storage", node.log_level);

  zmq::context_t ctx;
  consortia::MetricsRegistry registry;
  absl::StatusOr<std::unique_ptr<consortia::storage::StorageService>> service =
      consortia::storage::StorageService::Start(node, opts, ctx, registry);
  if (!service.ok()) {
    spdlog::error("storage: cannot start: {}", service.status().ToString());
    std::fprintf(stderr, "consortia-storage: %s\n",
                 service.status().ToString().c_str());
    return 1;
  }

  std::unique_ptr<consortia::OpsServer> ops;
  if (node.metrics_port != 0) {
    consortia::storage::StorageService* svc = service->get();
    absl::StatusOr<std::unique_ptr<consortia::OpsServer>> started =
        consortia::StartOpsServer(node.metrics_host,
                                  static_cast<uint16_t>(node.metrics_port),
                                  {&registry}, [svc] { return svc->Ready(); });
    if (!started.ok()) {
      std::fprintf(stderr, "consortia-storage: ops endpoint: %s\n",
                   started.status().ToString().c_str());
      return 1;
    }
    ops = *std::move(started);
  }

  consortia::WaitForTerminationSignal();
  spdlog::info("storage: stopping");
  ops.reset();
  service->reset();
  return 0;
}
