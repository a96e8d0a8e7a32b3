// Routes HTTP requests to the api's handlers. Blocking upstream calls never
// run on the HTTP threads: submissions go through the SubmitBatcher, batch
// submissions (POST /v1/txs:batch) onto the batch pool, queries onto the
// query pool; the answer is sent from there through Respond.
#ifndef CONSORTIA_API_API_HANDLER_H_
#define CONSORTIA_API_API_HANDLER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "access.h"
#include "api_metrics.h"
#include "audit_log.h"
#include "consortia/crypto_suite.h"
#include "consortia/http_server.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "events.h"
#include "log_limiter.h"
#include "submit_batcher.h"
#include "validator_changes_cache.h"

namespace consortia::api {

// What the handler needs; none of it owned. All must outlive the handler
// and every task it queued (the service stops the HTTP server, then drains
// the pools, before destroying these).
struct ApiHandlerDeps {
  const CryptoSuite* suite = nullptr;
  ChainQueries* chain = nullptr;  // blocks, txs, evidence
  StateQueries* state = nullptr;  // state values and scans
  // The validator-set changes added to every answer with a proof (over
  // `chain`); null: each such answer asks `chain` itself.
  ValidatorChangesCache* validator_changes = nullptr;
  SubmitBatcher* batcher = nullptr;
  // POST /v1/txs:batch: each request is decoded on a thread of the batch
  // pool (through TryRun: a full queue is answered 429 submit-queue-full at
  // once) and its valid txs go to `mempool` in one Submit call from there,
  // not through the batcher. At most `batch_max_txs` txs per request.
  MempoolApi* mempool = nullptr;
  ThreadPool* batch_pool = nullptr;
  size_t batch_max_txs = 1000;
  // Queries go here through TryRun: a full queue is answered 503 at once.
  ThreadPool* query_pool = nullptr;
  ApiMetrics* metrics = nullptr;
  // Limits the log lines of 4xx answers and shed load per client address.
  LogLimiter* log_limiter = nullptr;
  // True when both upstreams answered recently; `readiness` says why not.
  std::function<bool()> ready;
  std::function<std::string()> readiness;
  // API keys and quotas: every route but /healthz, /readyz and
  // /v1/openapi.json asks it.
  const AccessControl* access = nullptr;
  // When set, every submission of an identified caller (or of anyone, when
  // the api checks no keys) is written to it before it is answered: one
  // line per request of POST /v1/txs, one per tx of POST /v1/txs:batch.
  AuditLog* audit = nullptr;
  // --api_invoice_reads=parties: invoice records, invoice txs and their
  // logs are readable only by the invoice's parties and auditors
  // (src/invoice_access.h); needs `access` with reads that need a key.
  bool invoice_parties_only = false;
  // Serves GET /v1/events; null: the route answers 503.
  EventHub* events = nullptr;
  // The time of audit records.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Set by ApiHandler::Stop; shared with the queued tasks.
  std::shared_ptr<std::atomic<bool>> stopping =
      std::make_shared<std::atomic<bool>>(false);
};

// Thread-safe: Handle runs on any HTTP thread.
class ApiHandler {
 public:
  explicit ApiHandler(ApiHandlerDeps deps);

  // The HttpServer::Handler. Never throws; answers every request exactly
  // once.
  void Handle(HttpRequest req, HttpServer::Respond respond);

  // From now on, queued queries answer 503 without calling storage, so that
  // draining the query pool at shutdown is quick.
  void Stop() { deps_.stopping->store(true); }

 private:
  ApiHandlerDeps deps_;
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_API_HANDLER_H_
