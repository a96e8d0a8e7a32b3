#include "consortia/consensus/consensus_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "clock.h"
#include "consensus_metrics.h"
#include "consortia/bus.h"
#include "consortia/log.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "single_validator.h"

namespace consortia::consensus {
namespace {

class ConsensusServiceImpl final : public ConsensusService {
 public:
  ~ConsensusServiceImpl() override {
    // Reverse order of start: the loop first, then what it calls.
    validator_.reset();
    mempool_.reset();
    ledger_.reset();
    mempool_client_.reset();
    storage_client_.reset();
  }

  bool Ready() const override {
    return validator_ != nullptr && validator_->Ready();
  }

  absl::Status Init(const NodeConfig& node, const ConsensusOptions& opts,
                    zmq::context_t& ctx, MetricsRegistry& registry) {
    absl::StatusOr<std::string> genesis_json = ReadFile(node.genesis_path);
    if (!genesis_json.ok()) return genesis_json.status();
    absl::StatusOr<Genesis> genesis = ParseGenesisJson(*genesis_json);
    if (!genesis.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "genesis ", node.genesis_path, ": ", genesis.status().message()));
    }
    absl::StatusOr<const CryptoSuite*> suite =
        GetCryptoSuite(genesis->crypto_suite);
    if (!suite.ok()) return suite.status();
    absl::StatusOr<NodeKey> key = LoadNodeKey(node.node_key_path);
    if (!key.ok()) return key.status();

    const std::string sender = absl::StrCat("consensus@", node.node_name);
    absl::StatusOr<std::unique_ptr<BusClient>> storage =
        ConnectBusClient(ctx, node.storage_endpoint, sender);
    if (!storage.ok()) return storage.status();
    storage_client_ = *std::move(storage);
    absl::StatusOr<std::unique_ptr<BusClient>> mempool =
        ConnectBusClient(ctx, node.mempool_endpoint, sender);
    if (!mempool.ok()) return mempool.status();
    mempool_client_ = *std::move(mempool);
    ledger_ = MakeRemoteLedger(storage_client_.get(), node.bus_timeout);
    mempool_ = MakeRemoteMempool(mempool_client_.get(), node.bus_timeout);

    absl::StatusOr<std::unique_ptr<SingleValidator>> validator =
        SingleValidator::Create(opts, *genesis, **suite, *key, mempool_.get(),
                                ledger_.get(), &clock_,
                                ConsensusMetrics::Create(registry));
    if (!validator.ok()) return validator.status();
    validator_ = *std::move(validator);
    validator_->Start();
    spdlog::info(
        "consensus started: chain {}, one validator; storage {}, "
        "mempool {}",
        genesis->chain_id, node.storage_endpoint, node.mempool_endpoint);
    return absl::OkStatus();
  }

 private:
  SystemClock clock_;
  std::unique_ptr<BusClient> storage_client_;
  std::unique_ptr<BusClient> mempool_client_;
  std::unique_ptr<LedgerApi> ledger_;
  std::unique_ptr<MempoolApi> mempool_;
  std::unique_ptr<SingleValidator> validator_;
};

}  // namespace

ConsensusService::~ConsensusService() = default;

absl::StatusOr<std::unique_ptr<ConsensusService>> ConsensusService::Start(
    const NodeConfig& node, const ConsensusOptions& opts, zmq::context_t& ctx,
    MetricsRegistry& metrics) {
  if (absl::Status s = opts.Validate(); !s.ok()) return s;
  auto service = std::make_unique<ConsensusServiceImpl>();
  if (absl::Status s = service->Init(node, opts, ctx, metrics); !s.ok()) {
    return s;
  }
  return service;
}

}  // namespace consortia::consensus
