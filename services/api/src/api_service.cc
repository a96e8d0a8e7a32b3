// Assembles the api service: bus clients (Start only), submit batcher, query
// and batch pools, readiness prober, handler and HTTP server; stops them in
// reverse.
#include "consortia/api/api_service.h"

#include <sys/resource.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <zmq.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "access.h"
#include "api_handler.h"
#include "api_metrics.h"
#include "audit_log.h"
#include "auth.h"
#include "consortia/bus.h"
#include "consortia/bus_metrics.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"
#include "consortia/http_server.h"
#include "consortia/thread_pool.h"
#include "consortia/tls.h"
#include "events.h"
#include "invoice_access.h"
#include "log_limiter.h"
#include "quota.h"
#include "spdlog/spdlog.h"
#include "submit_batcher.h"
#include "validator_changes_cache.h"

namespace consortia::api {
namespace {

// Deadline of one readiness probe (at most the bus timeout).
constexpr absl::Duration kProbeTimeout = absl::Seconds(1);
// File descriptors the api needs besides its connections (bus sockets,
// logs, the ops endpoint, ...).
constexpr uint64_t kSpareFiles = 256;
// At shutdown, how long the event streams may take to write their cutoff.
constexpr absl::Duration kStreamsCloseGrace = absl::Milliseconds(500);

const char* EventReason(HttpEvent e) {
  switch (e) {
    case HttpEvent::kRefusedTotal:
      return "max_connections";
    case HttpEvent::kRefusedPerClient:
      return "max_connections_per_client";
    case HttpEvent::kHeaderTimeout:
      return "header_timeout";
    case HttpEvent::kHeaderTooLarge:
      return "header_too_large";
    case HttpEvent::kClientGone:
      return "client_gone";
    case HttpEvent::kTlsHandshakeFailed:
      return "tls_handshake";
  }
  return "unknown";
}

// Calls both upstreams every `interval` on its own thread: Submit of an empty
// batch to the mempool, GetChainTip to storage (which answers only when its
// store does: a storage whose Redis is down is not reached). Thread-safe.
class Prober {
 public:
  Prober(MempoolApi* mempool, ChainQueries* chain, absl::Duration interval,
         absl::Duration valid_for, ApiMetrics* metrics)
      : mempool_(mempool),
        chain_(chain),
        interval_(interval),
        valid_for_(valid_for),
        metrics_(metrics),
        thread_([this] { Loop(); }) {}

  ~Prober() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  bool Ready() const {
    absl::Time now = absl::Now();
    absl::MutexLock l(&mu_);
    return now - mempool_ok_ <= valid_for_ && now - storage_ok_ <= valid_for_;
  }

  std::string Describe() const {
    absl::Time now = absl::Now();
    absl::MutexLock l(&mu_);
    auto state = [&](absl::Time t) {
      return now - t <= valid_for_ ? "reached" : "not reached recently";
    };
    return absl::StrCat("mempool ", state(mempool_ok_), ", storage ",
                        state(storage_ok_));
  }

 private:
  void Loop() {
    bool was_ready = false;
    while (true) {
      absl::StatusOr<std::vector<SubmitResult>> m = mempool_->Submit({});
      absl::StatusOr<ChainTip> s = chain_->GetChainTip();
      const bool storage_ok = s.ok();
      if (!m.ok()) metrics_->UpstreamError("mempool");
      if (!storage_ok) metrics_->UpstreamError("storage");
      {
        absl::MutexLock l(&mu_);
        absl::Time now = absl::Now();
        if (m.ok()) mempool_ok_ = now;
        if (storage_ok) storage_ok_ = now;
      }
      bool ready = Ready();
      if (ready != was_ready) {
        if (ready) {
          spdlog::info("api: ready (mempool and storage reached)");
        } else {
          spdlog::warn("api: not ready: mempool {}, storage {}",
                       m.ok() ? "ok" : m.status().ToString(),
                       storage_ok ? "ok" : s.status().ToString());
        }
        was_ready = ready;
      }
      absl::MutexLock l(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), interval_)) return;
    }
  }

  MempoolApi* const mempool_;
  ChainQueries* const chain_;
  const absl::Duration interval_;
  const absl::Duration valid_for_;
  ApiMetrics* const metrics_;
  mutable absl::Mutex mu_;
  absl::Time mempool_ok_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time storage_ok_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after everything above exists
};

class ApiServiceImpl : public ApiService {
 public:
  explicit ApiServiceImpl(MetricsRegistry& registry) : metrics_(&registry) {}

  ~ApiServiceImpl() override {
    // Event streams get their cutoff (reason shutdown), and a moment to
    // write it, before the server goes.
    if (events_ != nullptr) events_->Stop();
    if (http_ != nullptr) {
      absl::Time give_up = absl::Now() + kStreamsCloseGrace;
      while (http_->stats().open_streams > 0 && absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
    // No new requests; pending Respond callables become no-ops.
    http_.reset();
    prober_.reset();
    key_watcher_.reset();
    // Queued queries answer at once (to nobody), then the upstream clients.
    if (handler_ != nullptr) handler_->Stop();
    query_pool_.reset();
    // Queued batches answer 503 without calling the mempool.
    batch_pool_.reset();
    batcher_.reset();
    // After the batcher, whose answers go through it: writes what is queued.
    audit_.reset();
    handler_.reset();
    events_.reset();
    access_.reset();
    authenticator_.reset();
    state_remote_.reset();
    chain_remote_.reset();
    mempool_remote_.reset();
    chain_probe_.reset();
    mempool_probe_.reset();
    storage_client_.reset();
    mempool_client_.reset();
  }

  // The prober uses its own interfaces when given (Start gives it clients
  // with a short deadline, so a dead upstream cannot slow shutdown), else
  // the service's.
  absl::Status Init(const ApiOptions& opts, const Genesis& genesis,
                    MempoolApi* mempool, ChainQueries* chain,
                    StateQueries* state, MempoolApi* probe_mempool = nullptr,
                    ChainQueries* probe_chain = nullptr) {
    absl::Status valid = opts.Validate();
    if (!valid.ok()) return valid;
    if (mempool == nullptr || chain == nullptr || state == nullptr) {
      return absl::InvalidArgumentError(
          "api: no mempool, chain or state query interface");
    }
    absl::StatusOr<const CryptoSuite*> suite =
        GetCryptoSuite(genesis.crypto_suite);
    if (!suite.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "api: genesis crypto suite: ", suite.status().message()));
    }
    suite_ = *suite;
    spdlog::info("api: chain {}, crypto suite {}", genesis.chain_id,
                 genesis.crypto_suite);

    uint64_t files = RaiseFileLimit();
    if (files < opts.max_connections + kSpareFiles) {
      spdlog::warn(
          "api: RLIMIT_NOFILE is {}, below --api_max_connections={} plus {} "
          "spare: accepts will fail before the connection cap is reached "
          "(raise the hard limit, e.g. ulimit -Hn or LimitNOFILE=)",
          files, opts.max_connections, kSpareFiles);
    }

    batcher_ = std::make_unique<SubmitBatcher>(
        mempool, static_cast<size_t>(opts.submit_batch_max),
        opts.submit_batch_delay, opts.submit_threads, &metrics_,
        opts.submit_queue_max);
    query_pool_ =
        std::make_unique<ThreadPool>(opts.query_threads, opts.query_queue_max);
    // Batch requests waiting for a thread hold at most about as many txs as
    // the submit queue (--api_submit_queue_max).
    batch_pool_ = std::make_unique<ThreadPool>(
        opts.submit_threads,
        std::max<size_t>(1, opts.submit_queue_max / opts.batch_max_txs));
    log_limiter_ = std::make_unique<LogLimiter>(opts.log_lines_per_client,
                                                opts.log_interval);
    prober_ = std::make_unique<Prober>(
        probe_mempool != nullptr ? probe_mempool : mempool,
        probe_chain != nullptr ? probe_chain : chain, opts.probe_interval,
        opts.probe_valid_for, &metrics_);

    if (absl::Status st = StartAccess(opts); !st.ok()) return st;

    EventHubOptions events;
    events.heartbeat = opts.events_heartbeat;
    events.max_lag = opts.events_max_lag;
    events.poll = opts.events_poll;
    events_ = std::make_unique<EventHub>(chain, suite_, events, &metrics_);

    validator_changes_ =
        std::make_unique<ValidatorChangesCache>(chain, &metrics_);

    ApiHandlerDeps deps;
    deps.suite = suite_;
    deps.chain = chain;
    deps.state = state;
    deps.validator_changes = validator_changes_.get();
    deps.access = access_.get();
    deps.audit = audit_.get();
    deps.batcher = batcher_.get();
    deps.mempool = mempool;
    deps.batch_pool = batch_pool_.get();
    deps.batch_max_txs = opts.batch_max_txs;
    deps.query_pool = query_pool_.get();
    deps.metrics = &metrics_;
    deps.log_limiter = log_limiter_.get();
    deps.events = events_.get();
    // Validate() checked the name.
    deps.invoice_parties_only =
        ParseInvoiceReads(opts.invoice_reads).value_or(InvoiceReads::kOpen) ==
        InvoiceReads::kParties;
    Prober* prober = prober_.get();
    deps.ready = [prober] { return prober->Ready(); };
    deps.readiness = [prober] { return prober->Describe(); };
    handler_ = std::make_unique<ApiHandler>(std::move(deps));

    HttpServerOptions http;
    http.host = opts.host;
    http.port = static_cast<uint16_t>(opts.port);
    http.threads = opts.http_threads;
    http.max_body_bytes = opts.max_body_bytes;
    http.max_header_bytes = opts.max_header_bytes;
    http.header_timeout = opts.header_timeout;
    http.idle_timeout = opts.idle_timeout;
    http.max_connections = opts.max_connections;
    http.max_connections_per_client = opts.max_connections_per_client;
    http.trusted_proxies = opts.trusted_proxies;
    if (!opts.tls_cert_file.empty()) {
      absl::StatusOr<std::shared_ptr<TlsServerCredentials>> tls =
          TlsServerCredentials::Load(opts.tls_cert_file, opts.tls_key_file);
      if (!tls.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--api_tls_cert_file/--api_tls_key_file: ",
                         tls.status().message()));
      }
      tls_ = *std::move(tls);
      spdlog::info("api: HTTPS with {}", tls_->Describe());
      std::shared_ptr<TlsServerCredentials> creds = tls_;
      http.tls_context = [creds] { return creds->Context(); };
    }
    ApiMetrics* metrics = &metrics_;
    http.hooks.on_event = [metrics](HttpEvent e) {
      if (e == HttpEvent::kTlsHandshakeFailed) {
        metrics->TlsHandshakeFailed();
      } else if (e == HttpEvent::kRefusedTotal ||
                 e == HttpEvent::kRefusedPerClient) {
        metrics->ConnectionRefused(EventReason(e));
      } else {
        metrics->ConnectionCut(EventReason(e));
      }
    };
    http.hooks.on_open_connections = [metrics](size_t n) {
      metrics->OpenConnections(n);
    };
    http.hooks.on_open_streams = [metrics](size_t n) {
      metrics->OpenStreams(n);
    };
    ApiHandler* handler = handler_.get();
    absl::StatusOr<std::unique_ptr<HttpServer>> server = StartHttpServer(
        http, [handler](HttpRequest req, HttpServer::Respond respond) {
          handler->Handle(std::move(req), std::move(respond));
        });
    if (!server.ok()) return server.status();
    http_ = *std::move(server);
    return absl::OkStatus();
  }

  // API keys (with the watcher that reloads them), quotas, the audit log.
  absl::Status StartAccess(const ApiOptions& opts) {
    if (!opts.keys_file.empty()) {
      absl::StatusOr<std::unique_ptr<KeyFileWatcher>> watcher =
          KeyFileWatcher::Start(
              opts.keys_file, opts.keys_poll_interval,
              [this](const ApiKeyFile& file) {
                if (authenticator_ == nullptr) {
                  authenticator_ = std::make_unique<Authenticator>(file);
                } else {
                  authenticator_->Replace(file);
                }
                std::set<std::string> ids;
                for (const ApiKeyEntry& k : file.keys) ids.insert(k.id);
                quotas_.Retain(ids);
              },
              &metrics_);
      if (!watcher.ok()) {
        return absl::Status(
            watcher.status().code(),
            absl::StrCat("--api_keys_file: ", watcher.status().message()));
      }
      key_watcher_ = *std::move(watcher);
    }
    access_ = std::make_unique<AccessControl>(authenticator_.get(), &quotas_,
                                              opts.reads_need_key, &metrics_,
                                              [] { return absl::Now(); });
    if (!opts.audit_log.empty()) {
      absl::StatusOr<std::unique_ptr<AuditLog>> audit =
          AuditLog::Open(opts.audit_log, opts.audit_queue_max, &metrics_,
                         opts.audit_log_max_bytes);
      if (!audit.ok()) {
        return absl::Status(
            audit.status().code(),
            absl::StrCat("--api_audit_log: ", audit.status().message()));
      }
      audit_ = *std::move(audit);
    }
    return absl::OkStatus();
  }

  bool Ready() const override { return prober_ != nullptr && prober_->Ready(); }

  absl::Status Reload() override {
    if (tls_ == nullptr) {
      spdlog::info("api: reload: no TLS certificate to re-read");
      return absl::OkStatus();
    }
    absl::Status st = tls_->Reload();
    metrics_.TlsReload(st.ok());
    if (!st.ok()) {
      spdlog::error(
          "api: TLS reload failed, the certificate in force stays: {}",
          st.ToString());
      return st;
    }
    spdlog::info("api: TLS reloaded: {}", tls_->Describe());
    return absl::OkStatus();
  }
  uint16_t port() const override {
    return http_ != nullptr ? http_->port() : 0;
  }

  // Start only: the bus clients and remote interfaces this service owns
  // (the metrics first: destroyed after the sockets that count into it).
  std::unique_ptr<BusMetrics> bus_metrics_;
  std::unique_ptr<BusClient> mempool_client_;
  std::unique_ptr<BusClient> storage_client_;
  std::unique_ptr<MempoolApi> mempool_remote_;
  std::unique_ptr<ChainQueries> chain_remote_;
  std::unique_ptr<StateQueries> state_remote_;
  std::unique_ptr<MempoolApi> mempool_probe_;
  std::unique_ptr<ChainQueries> chain_probe_;

 private:
  ApiMetrics metrics_;
  const CryptoSuite* suite_ = nullptr;
  std::unique_ptr<SubmitBatcher> batcher_;
  std::unique_ptr<ThreadPool> query_pool_;
  std::unique_ptr<ThreadPool> batch_pool_;  // POST /v1/txs:batch
  std::unique_ptr<LogLimiter> log_limiter_;
  std::unique_ptr<Prober> prober_;
  QuotaLimiter quotas_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<KeyFileWatcher> key_watcher_;
  std::unique_ptr<AccessControl> access_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<EventHub> events_;
  // Used by the handler's queries: destroyed after the query pool.
  std::unique_ptr<ValidatorChangesCache> validator_changes_;
  std::unique_ptr<ApiHandler> handler_;
  std::shared_ptr<TlsServerCredentials> tls_;  // null: plain HTTP
  std::unique_ptr<HttpServer> http_;
};

}  // namespace

ApiService::~ApiService() = default;

uint64_t RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX
                                       : static_cast<uint64_t>(lim.rlim_cur);
}

absl::StatusOr<std::unique_ptr<ApiService>> ApiService::StartWith(
    const ApiOptions& opts, const Genesis& genesis, MempoolApi* mempool,
    ChainQueries* chain, StateQueries* state, MetricsRegistry& metrics) {
  auto service = std::make_unique<ApiServiceImpl>(metrics);
  absl::Status st = service->Init(opts, genesis, mempool, chain, state);
  if (!st.ok()) return st;
  return std::unique_ptr<ApiService>(std::move(service));
}

absl::StatusOr<std::unique_ptr<ApiService>> ApiService::Start(
    const NodeConfig& node, const ApiOptions& opts, zmq::context_t& ctx,
    MetricsRegistry& metrics) {
  absl::StatusOr<Genesis> genesis = LoadGenesis(node.genesis_path);
  if (!genesis.ok()) return genesis.status();

  auto service = std::make_unique<ApiServiceImpl>(metrics);
  service->bus_metrics_ = NewBusMetrics(metrics, "api");
  std::string sender = absl::StrCat("api@", node.node_name);
  absl::StatusOr<std::unique_ptr<BusClient>> mempool_client = ConnectBusClient(
      ctx, node.mempool_endpoint, sender, service->bus_metrics_.get());
  if (!mempool_client.ok()) return mempool_client.status();
  service->mempool_client_ = *std::move(mempool_client);
  absl::StatusOr<std::unique_ptr<BusClient>> storage_client = ConnectBusClient(
      ctx, node.storage_endpoint, sender, service->bus_metrics_.get());
  if (!storage_client.ok()) return storage_client.status();
  service->storage_client_ = *std::move(storage_client);
  service->mempool_remote_ =
      MakeRemoteMempool(service->mempool_client_.get(), node.bus_timeout);
  service->chain_remote_ =
      MakeRemoteChainQueries(service->storage_client_.get(), node.bus_timeout);
  service->state_remote_ =
      MakeRemoteStateQueries(service->storage_client_.get(), node.bus_timeout);

  absl::Duration probe_timeout = std::min(node.bus_timeout, kProbeTimeout);
  service->mempool_probe_ =
      MakeRemoteMempool(service->mempool_client_.get(), probe_timeout);
  service->chain_probe_ =
      MakeRemoteChainQueries(service->storage_client_.get(), probe_timeout);

  absl::Status st =
      service->Init(opts, *genesis, service->mempool_remote_.get(),
                    service->chain_remote_.get(), service->state_remote_.get(),
                    service->mempool_probe_.get(), service->chain_probe_.get());
  if (!st.ok()) return st;
  return std::unique_ptr<ApiService>(std::move(service));
}

}  // namespace consortia::api
