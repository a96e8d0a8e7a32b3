#include "consortia/mempool/mempool_service.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "commit_follower.h"
#include "consortia/bus.h"
#include "consortia/bus_metrics.h"
#include "consortia/genesis_file.h"
#include "consortia/log.h"
#include "consortia/peer_net.h"
#include "consortia/peer_net_start.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "gossip.h"
#include "mempool.h"
#include "mempool_metrics.h"
#include "zmq.hpp"

namespace consortia::mempool {
namespace {

// Threads that run Submit and Reap calls off the bus I/O thread. A Reap may
// wait for a commit event, so these are apart from the verify pool.
constexpr size_t kRpcThreads = 4;

// Gossip batches queued per peer in PeerNet, each way.
constexpr int kGossipSendHwm = 100;

class MempoolServiceImpl final : public MempoolService {
 public:
  ~MempoolServiceImpl() override {
    // Stop in reverse order of start: no new requests, no new events, then
    // the follower, the running calls, and the objects they use.
    server_.reset();
    // Gossip: its threads first (they use the PeerNet), then the PeerNet
    // (whose handlers use the gossip) with its authenticator and context.
    if (gossip_ != nullptr) gossip_->Stop();
    net_.reset();
    gossip_.reset();
    gossip_api_.reset();
    subscriber_.reset();
    follower_.reset();
    rpc_pool_.reset();
    history_.reset();
    storage_client_.reset();
    mempool_.reset();
    verify_pool_.reset();
  }

  bool Ready() const override {
    return mempool_ != nullptr && mempool_->ready();
  }

  absl::Status Init(const NodeConfig& node, const MempoolOptions& opts,
                    zmq::context_t& ctx, MetricsRegistry& registry) {
    absl::StatusOr<Genesis> genesis = LoadGenesis(node.genesis_path);
    if (!genesis.ok()) return genesis.status();
    absl::StatusOr<const CryptoSuite*> suite =
        GetCryptoSuite(genesis->crypto_suite);
    if (!suite.ok()) return suite.status();

    // Gossip's files are read before anything starts, so that a bad key or
    // peers file fails the start at once.
    std::optional<P2pFiles> gossip_files;
    if (!opts.p2p_endpoint.empty()) {
      absl::StatusOr<P2pFiles> files =
          LoadP2pFiles(opts.p2p_key_path, opts.peers_path);
      if (!files.ok()) return files.status();
      gossip_files = *std::move(files);
    }

    // The replay window is a chain rule, the same on every node.
    MempoolOptions with_rules = opts;
    with_rules.replay_window = genesis->rules.replay_window;
    MempoolMetrics metrics = MempoolMetrics::Create(registry);
    bus_metrics_ = NewBusMetrics(registry, "mempool");
    verify_pool_ = std::make_unique<ThreadPool>(opts.verify_threads);
    mempool_ = std::make_unique<Mempool>(with_rules, genesis->chain_id, **suite,
                                         verify_pool_.get(), metrics);

    const std::string sender = absl::StrCat("mempool@", node.node_name);
    absl::StatusOr<std::unique_ptr<BusClient>> client = ConnectBusClient(
        ctx, node.storage_endpoint, sender, bus_metrics_.get());
    if (!client.ok()) return client.status();
    storage_client_ = *std::move(client);
    history_ = MakeRemoteCommitHistory(storage_client_.get(), node.bus_timeout);

    CommitFollower::Options follow;
    if (genesis->consortium.has_value()) {
      follow.genesis_members.emplace();
      for (const ConsortiumOrg& org : genesis->consortium->orgs) {
        for (const ConsortiumMember& m : org.members) {
          follow.genesis_members->push_back(m.public_key);
        }
      }
    }
    follower_ = std::make_unique<CommitFollower>(follow, mempool_.get(),
                                                 history_.get(), metrics);
    CommitFollower* follower = follower_.get();
    absl::StatusOr<std::unique_ptr<Subscriber>> subscriber = StartSubscriber(
        ctx, node.storage_events, {kTopicBlockCommitted},
        [follower](std::string_view, const Envelope&, Bytes payload,
                   uint64_t missed) { follower->OnEvent(payload, missed); },
        bus_metrics_.get());
    if (!subscriber.ok()) return subscriber.status();
    subscriber_ = *std::move(subscriber);
    // Subscribe before rebuilding, so no event falls between the two.
    follower_->Start();

    MempoolApi* served = mempool_.get();
    if (gossip_files) {
      if (absl::Status s = StartGossip(opts, *gossip_files, registry);
          !s.ok()) {
        return s;
      }
      served = gossip_api_.get();
    }

    rpc_pool_ = std::make_unique<ThreadPool>(kRpcThreads);
    absl::StatusOr<std::unique_ptr<BusServer>> server = StartBusServer(
        ctx, node.mempool_endpoint, sender,
        ServeMempool(served, rpc_pool_->AsExecutor()), bus_metrics_.get());
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    spdlog::info("mempool serving on {}; following {}", node.mempool_endpoint,
                 node.storage_events);
    return absl::OkStatus();
  }

 private:
  // The gossip and its PeerNet (own context and ZAP handler, admitting the
  // keys of the peers file, connected to the entries' mempool endpoints).
  absl::Status StartGossip(const MempoolOptions& opts, const P2pFiles& files,
                           MetricsRegistry& registry) {
    GossipOptions go;
    go.flush_interval = opts.gossip_interval;
    go.max_batch_txs = opts.gossip_batch_txs;
    go.max_batch_bytes = opts.gossip_batch_bytes;
    go.queue_txs = opts.gossip_queue_txs;
    go.peer_queue_batches = opts.gossip_peer_queue_batches;
    go.peer_queue_bytes = opts.gossip_peer_queue_bytes;
    go.fail_threshold = opts.gossip_fail_threshold;
    go.fail_window = opts.gossip_fail_window;
    go.throttle = opts.gossip_throttle;
    go.max_throttle = opts.gossip_max_throttle;
    gossip_ = std::make_unique<Gossip>(go, mempool_.get(),
                                       GossipMetrics::Create(registry));
    gossip_api_ =
        std::make_unique<GossipingMempool>(mempool_.get(), gossip_.get());

    PeerNetOptions po;
    po.bind_endpoint = opts.p2p_endpoint;
    po.handlers = gossip_->Handlers();
    po.metrics = gossip_->net_metrics();
    // Batches, not txs: the gossip's own queues bound the txs; these bound
    // the batches in flight per peer.
    po.send_hwm = kGossipSendHwm;
    po.recv_hwm = kGossipSendHwm;
    po.max_message_bytes = kMaxGossipMessageBytes;
    absl::StatusOr<std::unique_ptr<PeerNet>> net =
        StartPeerNetFromFiles(files, PeersFileService::kMempool, std::move(po));
    if (!net.ok()) return net.status();
    net_ = *std::move(net);
    gossip_->Start(net_.get());
    spdlog::info("mempool gossip on {} as {}; {} peers", opts.p2p_endpoint,
                 files.node_id, net_->Peers().size());
    return absl::OkStatus();
  }

  // Before the sockets that count into it (destroyed after them).
  std::unique_ptr<BusMetrics> bus_metrics_;
  std::unique_ptr<ThreadPool> verify_pool_;
  std::unique_ptr<Mempool> mempool_;
  std::unique_ptr<BusClient> storage_client_;
  std::unique_ptr<CommitHistory> history_;
  std::unique_ptr<CommitFollower> follower_;
  std::unique_ptr<Subscriber> subscriber_;
  std::unique_ptr<ThreadPool> rpc_pool_;
  std::unique_ptr<BusServer> server_;
  // Gossip (when opts.p2p_endpoint is set).
  std::unique_ptr<Gossip> gossip_;
  std::unique_ptr<GossipingMempool> gossip_api_;
  std::unique_ptr<PeerNet> net_;
};

}  // namespace

MempoolService::~MempoolService() = default;

absl::StatusOr<std::unique_ptr<MempoolService>> MempoolService::Start(
    const NodeConfig& node, const MempoolOptions& opts, zmq::context_t& ctx,
    MetricsRegistry& metrics) {
  if (absl::Status s = opts.Validate(); !s.ok()) return s;
  auto service = std::make_unique<MempoolServiceImpl>();
  if (absl::Status s = service->Init(node, opts, ctx, metrics); !s.ok()) {
    return s;
  }
  return service;
}

}  // namespace consortia::mempool
