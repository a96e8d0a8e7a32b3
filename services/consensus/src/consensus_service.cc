#include "consortia/consensus/consensus_service.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clock.h"
#include "consensus_metrics.h"
#include "consortia/bus.h"
#include "consortia/bus_metrics.h"
#include "consortia/genesis_file.h"
#include "consortia/log.h"
#include "consortia/peer_net_start.h"
#include "consortia/peers_file.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "single_validator.h"
#include "tendermint_driver.h"
#include "zmq.hpp"

namespace consortia::consensus {
namespace {

// The deadline of the mempool's verdict on a proposed block.
constexpr absl::Duration kCheckTimeout = absl::Seconds(1);

// A vote is a few hundred bytes (a hash and a signature); a status message
// is one varint.
constexpr int64_t kMaxVoteMessageBytes = 4096;
constexpr int64_t kMaxStatusMessageBytes = 64;

// The largest proposal or commit message an honest peer sends: a full block
// under the genesis chain rules (tx bytes), plus a margin for the header, the
// txs' length prefixes, the signature and the certificate. The rules, not
// this node's options: another validator may propose larger blocks than
// this one does.
int64_t BlockMessageBytes(const ChainRules& rules, size_t validators) {
  return static_cast<int64_t>(rules.max_block_bytes) + 64 * 1024 +
         16 * int64_t{rules.max_block_txs} +
         256 * static_cast<int64_t>(validators);
}

class ConsensusServiceImpl final : public ConsensusService {
 public:
  ~ConsensusServiceImpl() override {
    // Reverse order of start: the loop first, then what it calls.
    validator_.reset();
    if (driver_ != nullptr) driver_->Stop();
    net_.reset();
    driver_.reset();
    mempool_.reset();
    ledger_.reset();
    mempool_client_.reset();
    storage_client_.reset();
  }

  bool Ready() const override {
    if (driver_ != nullptr) return driver_->Ready();
    return validator_ != nullptr && validator_->Ready();
  }

  absl::Status Init(const NodeConfig& node, const ConsensusOptions& opts,
                    zmq::context_t& ctx, MetricsRegistry& registry) {
    absl::StatusOr<Genesis> genesis = LoadGenesis(node.genesis_path);
    if (!genesis.ok()) return genesis.status();
    absl::StatusOr<const CryptoSuite*> suite =
        GetCryptoSuite(genesis->crypto_suite);
    if (!suite.ok()) return suite.status();
    absl::StatusOr<NodeKey> key = LoadNodeKey(node.node_key_path);
    if (!key.ok()) return key.status();
    if (absl::Status mode = CheckKeyFileMode(node.node_key_path); !mode.ok()) {
      spdlog::warn("node key {}: {}", node.node_key_path,
                   std::string(mode.message()));
    }
    bus_metrics_ = NewBusMetrics(registry, "consensus");

    const std::string sender = absl::StrCat("consensus@", node.node_name);
    absl::StatusOr<std::unique_ptr<BusClient>> storage = ConnectBusClient(
        ctx, node.storage_endpoint, sender, bus_metrics_.get());
    if (!storage.ok()) return storage.status();
    storage_client_ = *std::move(storage);
    absl::StatusOr<std::unique_ptr<BusClient>> mempool = ConnectBusClient(
        ctx, node.mempool_endpoint, sender, bus_metrics_.get());
    if (!mempool.ok()) return mempool.status();
    mempool_client_ = *std::move(mempool);
    ledger_ = MakeRemoteLedger(storage_client_.get(), node.bus_timeout);
    blocks_ = MakeRemoteBlockSource(storage_client_.get(), node.bus_timeout);
    mempool_ = MakeRemoteMempool(mempool_client_.get(), node.bus_timeout);
    // Judging a proposal must not wait out the whole bus deadline for a
    // mempool that does not answer: this node checks the txs itself then.
    check_mempool_ = MakeRemoteMempool(
        mempool_client_.get(), std::min(node.bus_timeout, kCheckTimeout));

    // n, for the alerts that compare missing validators with f (the
    // Tendermint driver keeps it current as the set changes).
    ConsensusMetrics::Create(registry).validators.Set(
        static_cast<double>(genesis->validators.size()));
    if (genesis->validators.size() > 1) {
      return StartTendermint(node, opts, *genesis, **suite, *key, registry);
    }
    ConsensusMetrics::Create(registry).is_validator.Set(1);
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
  absl::Status StartTendermint(const NodeConfig& node,
                               const ConsensusOptions& opts,
                               const Genesis& genesis, const CryptoSuite& suite,
                               const NodeKey& key, MetricsRegistry& registry) {
    if (opts.p2p_key_path.empty() || opts.peers_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the genesis has ", genesis.validators.size(),
          " validators: --consensus_p2p_key and --consensus_peers are "
          "required"));
    }
    absl::StatusOr<P2pFiles> files =
        LoadP2pFiles(opts.p2p_key_path, opts.peers_path);
    if (!files.ok()) return files.status();
    const std::filesystem::path dir =
        std::filesystem::path(node.data_dir) / "consensus";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
    }
    TendermintDriverOptions o;
    o.timeouts.propose = opts.timeout_propose;
    o.timeouts.propose_delta = opts.timeout_delta;
    o.timeouts.prevote = opts.timeout_prevote;
    o.timeouts.prevote_delta = opts.timeout_delta;
    o.timeouts.precommit = opts.timeout_precommit;
    o.timeouts.precommit_delta = opts.timeout_delta;
    o.commit_wait = opts.timeout_commit;
    o.gossip_interval = opts.gossip_interval;
    o.max_block_txs = opts.max_block_txs;
    o.max_block_bytes = opts.max_block_bytes;
    o.wal_dir = (dir / "wal").string();
    o.last_commit_path = (dir / "last_commit").string();
    for (const PeersFileEntry& e : files->entries) {
      if (e.observer) o.observer_peers.insert(e.id);
    }
    // A peer's inbound queue holds a few full blocks at least.
    o.max_inbound_bytes_per_peer =
        std::max<uint64_t>(o.max_inbound_bytes_per_peer,
                           4 * static_cast<uint64_t>(BlockMessageBytes(
                                   genesis.rules, genesis.validators.size())));
    const ConsensusMetrics metrics = ConsensusMetrics::Create(registry);
    absl::StatusOr<std::unique_ptr<TendermintDriver>> driver =
        TendermintDriver::Create(o, genesis, suite, key, mempool_.get(),
                                 ledger_.get(), blocks_.get(), &clock_, metrics,
                                 check_mempool_.get());
    if (!driver.ok()) return driver.status();
    driver_ = *std::move(driver);

    PeerNetOptions po;
    po.bind_endpoint = opts.p2p_endpoint;
    po.handlers = driver_->Handlers();
    ApplyBudgets(o, genesis, &po);
    net_metrics_ =
        std::make_unique<ConsensusPeerNetMetrics>(metrics, o.observer_peers);
    po.metrics = net_metrics_.get();
    absl::StatusOr<std::unique_ptr<PeerNet>> net = StartPeerNetFromFiles(
        *files, PeersFileService::kConsensus, std::move(po));
    if (!net.ok()) return net.status();
    net_ = *std::move(net);
    driver_->Start(net_.get());
    spdlog::info(
        "consensus started: chain {}, {} validators, p2p {} as {}; storage "
        "{}, mempool {}",
        genesis.chain_id, genesis.validators.size(), opts.p2p_endpoint,
        files->node_id, node.storage_endpoint, node.mempool_endpoint);
    return absl::OkStatus();
  }

  // The consensus PeerNet's limits (docs/consensus.md, "Budgets"): each
  // message type is limited near what an honest peer can send (a proposal
  // or commit: a full block plus a small margin), and each peer gets a
  // budget per second well above what an honest peer sends, block sync to
  // a lagging node included.
  static void ApplyBudgets(const TendermintDriverOptions& o,
                           const Genesis& genesis, PeerNetOptions* po) {
    const size_t validators = genesis.validators.size();
    const int64_t block_message = BlockMessageBytes(genesis.rules, validators);
    po->max_message_bytes_by_type = {
        {static_cast<uint16_t>(MsgType::kConsensusProposal), block_message},
        {static_cast<uint16_t>(MsgType::kConsensusCommit), block_message},
        {static_cast<uint16_t>(MsgType::kConsensusVote), kMaxVoteMessageBytes},
        {static_cast<uint16_t>(MsgType::kConsensusStatus),
         kMaxStatusMessageBytes},
    };
    // Larger still closes the connection before it is even read.
    po->max_message_bytes = 2 * block_message;
    po->recv_hwm = 1000;
    const double per_second =
        absl::Seconds(1) / std::max(o.gossip_interval, absl::Milliseconds(1));
    po->budget.interval = absl::Seconds(1);
    po->budget.messages = 10'000 + 1'000 * static_cast<uint64_t>(validators);
    // Block sync answers (one per gossip interval at most), twice over,
    // and a few proposals.
    po->budget.bytes = static_cast<uint64_t>(
        2 * per_second *
            static_cast<double>(o.sync_batch_bytes + block_message) +
        4 * static_cast<double>(block_message));
    po->budget.abusive_intervals = 10;
    po->budget.back_off = absl::Seconds(30);
  }

  SystemClock clock_;
  // Before the sockets that count into it (destroyed after them).
  std::unique_ptr<BusMetrics> bus_metrics_;
  std::unique_ptr<BusClient> storage_client_;
  std::unique_ptr<BusClient> mempool_client_;
  std::unique_ptr<LedgerApi> ledger_;
  // Old blocks for block sync, and the replay window of a checked block.
  std::unique_ptr<BlockSource> blocks_;
  std::unique_ptr<MempoolApi> mempool_;
  std::unique_ptr<MempoolApi> check_mempool_;  // CheckProposal, short deadline
  std::unique_ptr<SingleValidator> validator_;
  // Several validators.
  std::unique_ptr<TendermintDriver> driver_;
  std::unique_ptr<ConsensusPeerNetMetrics> net_metrics_;
  std::unique_ptr<PeerNet> net_;
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
