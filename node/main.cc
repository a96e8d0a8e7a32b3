// consortia-node: the composition root of the single-process form. It runs
// the four services of one node as threads of this process, talking over
// inproc:// endpoints on one ZeroMQ context: the same service code as the
// four separate binaries, with only the endpoints changed.
//
// Start order: storage, mempool, consensus, api (each depends only on the
// ones before it). Stop order: the reverse, on SIGINT or SIGTERM. SIGHUP
// reloads what the api re-reads (ApiService::Reload: its TLS certificate).
#include <cstdio>
#include <memory>
#include <zmq.hpp>

#include "absl/flags/flag.h"
#include "consortia/api/api_service.h"
#include "consortia/config.h"
#include "consortia/consensus/consensus_service.h"
#include "consortia/log.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/metrics.h"
#include "consortia/options.h"
#include "consortia/storage/storage_service.h"

CONSORTIA_OPTION_UNBOUNDED(
    "consortia-node", bool, all, true,
    "Run all four services in this process over inproc:// endpoints. (The "
    "only mode of consortia-node; the separate binaries consortia-storage, "
    "-mempool, -consensus and -api run one each.)");

namespace consortia {
namespace {

template <typename T>
T OrExit(absl::StatusOr<T> v, const char* what, int code) {
  if (!v.ok()) {
    std::fprintf(stderr, "consortia-node: %s: %s\n", what,
                 std::string(v.status().message()).c_str());
    std::exit(code);
  }
  return *std::move(v);
}

void CheckOrExit(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "consortia-node: %s: %s\n", what,
                 std::string(s.message()).c_str());
    std::exit(2);
  }
}

int Main(int argc, char** argv) {
  BlockTerminationSignals(/*hangup=*/true);
  ParseFlagsAndEnv(argc, argv,
                   "consortia-node --genesis=FILE --node_key=FILE "
                   "--data_dir=DIR [--api_port=N]: one node, one process");
  ConfigureServerRuntime();
  if (!absl::GetFlag(FLAGS_all)) {
    std::fprintf(stderr,
                 "consortia-node runs all services; start the separate "
                 "binaries to run them one per process\n");
    return 2;
  }
  NodeConfig node = NodeConfig::FromFlags();
  node.mempool_endpoint = "inproc://" + node.node_name + "-mempool";
  node.storage_endpoint = "inproc://" + node.node_name + "-storage";
  node.storage_events = "inproc://" + node.node_name + "-events";
  CheckOrExit(node.Validate(), "bad node option");
  auto storage_opts = storage::StorageOptions::FromFlags();
  CheckOrExit(storage_opts.Validate(), "bad storage option");
  auto mempool_opts = mempool::MempoolOptions::FromFlags();
  CheckOrExit(mempool_opts.Validate(), "bad mempool option");
  auto consensus_opts = consensus::ConsensusOptions::FromFlags();
  CheckOrExit(consensus_opts.Validate(), "bad consensus option");
  auto api_opts = api::ApiOptions::FromFlags();
  CheckOrExit(api_opts.Validate(), "bad api option");

  InitLogging("node", node.log_level);
  zmq::context_t ctx;
  MetricsRegistry metrics;

  auto storage =
      OrExit(storage::StorageService::Start(node, storage_opts, ctx, metrics),
             "storage", 1);
  auto mempool =
      OrExit(mempool::MempoolService::Start(node, mempool_opts, ctx, metrics),
             "mempool", 1);
  auto consensus = OrExit(
      consensus::ConsensusService::Start(node, consensus_opts, ctx, metrics),
      "consensus", 1);
  auto api_service =
      OrExit(api::ApiService::Start(node, api_opts, ctx, metrics), "api", 1);

  auto ready = [&] {
    return storage->Ready() && mempool->Ready() && consensus->Ready() &&
           api_service->Ready();
  };
  std::unique_ptr<OpsServer> ops;
  if (node.metrics_port != 0) {
    ops = OrExit(StartOpsServer(node.metrics_host,
                                static_cast<uint16_t>(node.metrics_port),
                                {&metrics}, ready),
                 "metrics endpoint", 1);
  }
  spdlog::info("node {} running all services; api on {}://{}:{}",
               node.node_name,
               api_opts.tls_cert_file.empty() ? "http" : "https", api_opts.host,
               api_service->port());

  WaitForTerminationSignal([&api_service] {
    spdlog::info("SIGHUP: reloading");
    (void)api_service->Reload();  // logs and counts its own failure
  });
  spdlog::info("stopping");
  ops.reset();
  api_service.reset();
  consensus.reset();
  mempool.reset();
  storage.reset();
  return 0;
}

}  // namespace
}  // namespace consortia

int main(int argc, char** argv) { return consortia::Main(argc, argv); }
