#include "consortia/storage/storage_service.h"

#include <atomic>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "apps/app.h"
#include "consortia/bus.h"
#include "consortia/bus_metrics.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"
#include "consortia/log.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "disk_space.h"
#include "kv_store.h"
#include "ledger.h"
#include "metered_kv_store.h"
#include "storage_metrics.h"
#include "store_factory.h"

namespace consortia::storage {
namespace {

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// Members are declared in start order; the destructor stops in reverse.
class StorageServiceImpl : public StorageService {
 public:
  ~StorageServiceImpl() override {
    ready_ = false;
    {
      // From now on the bus thread runs calls itself, so that draining the
      // pool below cannot race with new work being queued on it.
      absl::MutexLock l(&gate_mu_);
      pool_open_ = false;
    }
    pool_.reset();    // finishes queued calls; their replies still go out
    server_.reset();  // unbinds the endpoint
    ledger_.reset();
    publisher_.reset();
    store_.reset();
  }

  // Serving, and the store answers (a Redis that is down makes the service
  // not ready until it returns).
  bool Ready() const override { return ready_.load() && store_->Ping().ok(); }

  absl::Status Init(const NodeConfig& node, const StorageOptions& opts,
                    zmq::context_t& ctx, MetricsRegistry& metrics) {
    absl::StatusOr<Genesis> genesis = LoadGenesis(node.genesis_path);
    if (!genesis.ok()) return genesis.status();
    genesis_ = *std::move(genesis);
    absl::StatusOr<const CryptoSuite*> suite =
        GetCryptoSuite(genesis_.crypto_suite);
    if (!suite.ok()) return Annotate(suite.status(), "genesis crypto_suite");
    suite_ = *suite;
    apps_ = AppRegistry::WithBuiltins(genesis_.rules);

    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenConfiguredStore(opts, node.data_dir);
    if (!store.ok()) return store.status();
    // Where the store is, for messages: the RocksDB path, or the Redis
    // address and key prefix.
    const std::string path =
        opts.backend == "rocksdb"
            ? (opts.path.empty() ? node.data_dir + "/ledger" : opts.path)
            : (*store)->Describe();
    store_ = WithStoreMetrics(*std::move(store),
                              StoreMetrics::Create(metrics, opts.backend));
    // The RocksDB directory's filesystem; with Redis, the data directory's.
    disk_ = std::make_unique<DiskSpaceMonitor>(
        opts.backend == "rocksdb" ? path : node.data_dir,
        DiskSpaceMetrics::Create(metrics));

    const std::string name =
        node.node_name.empty() ? "storage" : "storage@" + node.node_name;
    bus_metrics_ = NewBusMetrics(metrics, "storage");
    absl::StatusOr<std::unique_ptr<Publisher>> pub =
        StartPublisher(ctx, node.storage_events, name, bus_metrics_.get());
    if (!pub.ok()) {
      return Annotate(pub.status(),
                      absl::StrCat("publishing on ", node.storage_events));
    }
    publisher_ = *std::move(pub);

    Ledger::Options lo;
    lo.store = store_.get();
    lo.genesis = &genesis_;
    lo.suite = suite_;
    lo.apps = &apps_;
    lo.publisher = publisher_.get();
    lo.metrics = StorageMetrics::Create(metrics, opts.backend);
    lo.location = path;
    lo.state_versions = static_cast<uint64_t>(opts.state_versions);
    lo.tree_cache_nodes = static_cast<size_t>(opts.tree_cache_nodes);
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(lo);
    if (!ledger.ok()) return ledger.status();
    ledger_ = *std::move(ledger);

    pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(opts.threads));
    Executor exec = [this](std::function<void()> fn) {
      absl::ReaderMutexLock l(&gate_mu_);
      if (pool_open_) {
        pool_->Run(std::move(fn));
      } else {
        fn();
      }
    };
    absl::StatusOr<std::unique_ptr<BusServer>> server =
        StartBusServer(ctx, node.storage_endpoint, name,
                       ServeStorage({.ledger = ledger_.get(),
                                     .commit_history = ledger_.get(),
                                     .block_source = ledger_.get(),
                                     .chain_queries = ledger_.get(),
                                     .state_queries = ledger_.get()},
                                    std::move(exec)),
                       bus_metrics_.get());
    if (!server.ok()) {
      return Annotate(server.status(),
                      absl::StrCat("serving on ", node.storage_endpoint));
    }
    server_ = *std::move(server);

    absl::StatusOr<ChainState> chain = ledger_->GetChainState();
    spdlog::info("storage: serving {} on {}, events on {}, height {}", path,
                 node.storage_endpoint, node.storage_events,
                 chain.ok() ? chain->height : 0);
    ready_ = true;
    return absl::OkStatus();
  }

 private:
  Genesis genesis_;
  // Before the sockets that count into it (destroyed after them).
  std::unique_ptr<BusMetrics> bus_metrics_;
  const CryptoSuite* suite_ = nullptr;
  AppRegistry apps_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<DiskSpaceMonitor> disk_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<ThreadPool> pool_;
  absl::Mutex gate_mu_;
  bool pool_open_ ABSL_GUARDED_BY(gate_mu_) = true;
  std::unique_ptr<BusServer> server_;
  std::atomic<bool> ready_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<StorageService>> StorageService::Start(
    const NodeConfig& node, const StorageOptions& opts, zmq::context_t& ctx,
    MetricsRegistry& metrics) {
  if (absl::Status s = opts.Validate(); !s.ok()) return s;
  auto service = std::make_unique<StorageServiceImpl>();
  if (absl::Status s = service->Init(node, opts, ctx, metrics); !s.ok()) {
    return s;
  }
  return std::unique_ptr<StorageService>(std::move(service));
}

}  // namespace consortia::storage
