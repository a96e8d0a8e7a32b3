// The composition root shared by the four service binaries: each main.cc is
// one call to RunServiceProcess. The single-process node (node/main.cc)
// composes the services itself.
#ifndef CONSORTIA_COMMON_SERVICE_MAIN_H_
#define CONSORTIA_COMMON_SERVICE_MAIN_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/config.h"
#include "consortia/log.h"
#include "consortia/metrics.h"

namespace consortia {

// Runs one service as its own process: parses flags and environment,
// validates NodeConfig and Options (exit code 2 with a message naming the
// option), starts Service::Start(node, options, ctx, registry) and the ops
// endpoint (exit code 1 if either fails), calls on_started, waits for SIGINT
// or SIGTERM, and stops in reverse order (exit code 0). A Service with
// `absl::Status Reload()` (the api) has it called on each SIGHUP; for the
// others SIGHUP keeps its default action.
//
// Service must have `static absl::StatusOr<std::unique_ptr<Service>>
// Start(const NodeConfig&, const Options&, zmq::context_t&, MetricsRegistry&)`
// and `bool Ready() const`; Options must have `static Options FromFlags()` and
// `absl::Status Validate() const`.
template <typename Service, typename Options>
int RunServiceProcess(
    int argc, char** argv, const std::string& name, const char* usage,
    std::function<void(Service&, const Options&)> on_started = nullptr) {
  constexpr bool kReloads = requires(Service & s) { s.Reload(); };
  BlockTerminationSignals(/*hangup=*/kReloads);
  ParseFlagsAndEnv(argc, argv, usage);
  ConfigureServerRuntime();
  const NodeConfig node = NodeConfig::FromFlags();
  const Options options = Options::FromFlags();
  for (const absl::Status& s : {node.Validate(), options.Validate()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "consortia-%s: %s\n", name.c_str(),
                   std::string(s.message()).c_str());
      return 2;
    }
  }
  InitLogging(name, node.log_level);

  zmq::context_t ctx;
  MetricsRegistry registry;
  absl::StatusOr<std::unique_ptr<Service>> service =
      Service::Start(node, options, ctx, registry);
  if (!service.ok()) {
    spdlog::error("cannot start {}: {}", name, service.status().ToString());
    return 1;
  }
  std::unique_ptr<OpsServer> ops;
  if (node.metrics_port != 0) {
    Service* svc = service->get();
    absl::StatusOr<std::unique_ptr<OpsServer>> started = StartOpsServer(
        node.metrics_host, static_cast<uint16_t>(node.metrics_port),
        {&registry}, [svc] { return svc->Ready(); });
    if (!started.ok()) {
      spdlog::error("cannot start the ops endpoint: {}",
                    started.status().ToString());
      return 1;
    }
    ops = *std::move(started);
  }
  spdlog::info("{} started", name);
  if (on_started) on_started(**service, options);
  if constexpr (kReloads) {
    Service* svc = service->get();
    WaitForTerminationSignal([svc, &name] {
      spdlog::info("{}: SIGHUP: reloading", name);
      (void)svc->Reload();  // logs and counts its own failure
    });
  } else {
    WaitForTerminationSignal();
  }
  spdlog::info("{} stopping", name);
  ops.reset();
  service->reset();
  return 0;
}

}  // namespace consortia

#endif  // CONSORTIA_COMMON_SERVICE_MAIN_H_
