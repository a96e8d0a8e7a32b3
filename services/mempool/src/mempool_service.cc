#include "consortia/mempool/mempool_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "commit_follower.h"
#include "consortia/bus.h"
#include "consortia/log.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "mempool.h"
#include "mempool_metrics.h"

namespace consortia::mempool {
namespace {

// Threads that run Submit and Reap calls off the bus I/O thread. A Reap may
// wait for a commit event, so these are apart from the verify pool.
constexpr size_t kRpcThreads = 4;

class MempoolServiceImpl final : public MempoolService {
 public:
  ~MempoolServiceImpl() override {
    // Stop in reverse order of start: no new requests, no new events, then
    // the follower, the running calls, and the objects they use.
    server_.reset();
    subscriber_.reset();
    follower_.reset();
    rpc_pool_.reset();
    query_.reset();
    storage_client_.reset();
    mempool_.reset();
    verify_pool_.reset();
  }

  bool Ready() const override {
    return mempool_ != nullptr && mempool_->ready();
  }

  absl::Status Init(const NodeConfig& node, const MempoolOptions& opts,
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

    MempoolMetrics metrics = MempoolMetrics::Create(registry);
    verify_pool_ = std::make_unique<ThreadPool>(opts.verify_threads);
    mempool_ = std::make_unique<Mempool>(opts, genesis->chain_id, **suite,
                                         verify_pool_.get(), metrics);

    const std::string sender = absl::StrCat("mempool@", node.node_name);
    absl::StatusOr<std::unique_ptr<BusClient>> client =
        ConnectBusClient(ctx, node.storage_endpoint, sender);
    if (!client.ok()) return client.status();
    storage_client_ = *std::move(client);
    query_ = MakeRemoteQuery(storage_client_.get(), node.bus_timeout);

    CommitFollower::Options follow;
    follow.replay_window = opts.replay_window;
    follower_ = std::make_unique<CommitFollower>(follow, mempool_.get(),
                                                 query_.get(), metrics);
    CommitFollower* follower = follower_.get();
    absl::StatusOr<std::unique_ptr<Subscriber>> subscriber = StartSubscriber(
        ctx, node.storage_events, {kTopicBlockCommitted},
        [follower](std::string_view, const Envelope&, Bytes payload,
                   uint64_t missed) { follower->OnEvent(payload, missed); });
    if (!subscriber.ok()) return subscriber.status();
    subscriber_ = *std::move(subscriber);
    // Subscribe before rebuilding, so no event falls between the two.
    follower_->Start();

    rpc_pool_ = std::make_unique<ThreadPool>(kRpcThreads);
    absl::StatusOr<std::unique_ptr<BusServer>> server =
        StartBusServer(ctx, node.mempool_endpoint, sender,
                       ServeMempool(mempool_.get(), rpc_pool_->AsExecutor()));
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    spdlog::info("mempool serving on {}; following {}", node.mempool_endpoint,
                 node.storage_events);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<ThreadPool> verify_pool_;
  std::unique_ptr<Mempool> mempool_;
  std::unique_ptr<BusClient> storage_client_;
  std::unique_ptr<QueryApi> query_;
  std::unique_ptr<CommitFollower> follower_;
  std::unique_ptr<Subscriber> subscriber_;
  std::unique_ptr<ThreadPool> rpc_pool_;
  std::unique_ptr<BusServer> server_;
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
