#include "api_handler.h"

#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api_routes.h"
#include "app_reads.h"
#include "consortia/tx_json.h"
#include "consortia/types.h"
#include "explorer.h"
#include "invoice_access.h"
#include "openapi.h"
#include "problem.h"
#include "spdlog/spdlog.h"
#include "tx_batch.h"
#include "views.h"

namespace consortia::api {
namespace {

// The `route` label of a request that matched no route.
constexpr char kRouteUnknown[] = "unknown";

constexpr size_t kMaxHeightDigits = 20;
// Page size of the list routes when the client names none.
constexpr uint32_t kDefaultPageLimit = 20;

std::string NewTraceId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t id = rng();
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, id >>= 4) out[i] = kDigits[id & 0xF];
  return out;
}

// One request in flight: answers exactly once (HttpServer guards that too),
// records the metrics, and logs one line when the answer is an error (for
// 4xx and shed load at most as often as the per-client log limit allows).
class Call {
 public:
  Call(const HttpRequest& req, HttpServer::Respond respond, ApiMetrics* metrics,
       LogLimiter* log_limiter)
      : method_(req.method),
        path_(req.path),
        client_(req.client),
        closed_(req.closed),
        trace_(NewTraceId()),
        start_(absl::Now()),
        respond_(std::move(respond)),
        metrics_(metrics),
        log_limiter_(log_limiter) {}

  const std::string& trace() const { return trace_; }
  const std::string& client() const { return client_; }
  void set_route(const char* route) { route_ = route; }
  // "POST /v1/txs": the method and the route template (the audit log's
  // route).
  std::string MethodAndRoute() const {
    return absl::StrCat(method_, " ", route_);
  }
  // The organisation of the caller's key (the `org` label of the metrics);
  // ApiMetrics::kAnonymous until set.
  void set_org(std::string org) { org_ = std::move(org); }
  void set_quiet() { quiet_ = true; }
  // The answer sheds load (a full queue): logged like a 4xx, rate-limited.
  void set_shed() { shed_ = true; }
  // True once the client's connection has closed: nobody waits for the
  // answer any more.
  bool ClientGone() const {
    return closed_ != nullptr && closed_->load(std::memory_order_relaxed);
  }

  // `log_detail` is for the log only (may name internals the client must not
  // see).
  void Finish(HttpResponse r, std::string_view log_detail = "") {
    r.headers.emplace_back("X-Trace-Id", trace_);
    if (quiet_) {
      // Expected answers that are polled (readiness): metrics only.
    } else if (r.status >= 500 && !shed_) {
      spdlog::error("api: {} {} -> {} client={} trace={} {}", method_, path_,
                    r.status, client_, trace_, log_detail);
    } else if (r.status >= 400) {
      LogLimited(r.status, log_detail);
    }
    metrics_->Request(route_, r.status, org_,
                      absl::ToDoubleSeconds(absl::Now() - start_));
    respond_(std::move(r));
  }

 private:
  void LogLimited(int status, std::string_view log_detail) {
    if (log_limiter_ == nullptr) {
      spdlog::info("api: {} {} -> {} client={} trace={} {}", method_, path_,
                   status, client_, trace_, log_detail);
      return;
    }
    LogLimiter::Verdict v = log_limiter_->Allow(client_, absl::Now());
    for (const auto& [client, n] : v.summaries) {
      spdlog::info("api: suppressed {} log lines for client {}", n, client);
    }
    if (!v.log) {
      metrics_->LogLinesSuppressed(1);
      return;
    }
    if (v.suppressed_before > 0) {
      spdlog::info("api: suppressed {} log lines for client {}",
                   v.suppressed_before, client_);
    }
    spdlog::info("api: {} {} -> {} client={} trace={} {}", method_, path_,
                 status, client_, trace_, log_detail);
  }

  const std::string method_;
  const std::string path_;
  const std::string client_;
  const std::shared_ptr<const std::atomic<bool>> closed_;
  const std::string trace_;
  const absl::Time start_;
  HttpServer::Respond respond_;
  ApiMetrics* const metrics_;
  LogLimiter* const log_limiter_;
  const char* route_ = kRouteUnknown;
  std::string org_ = ApiMetrics::kAnonymous;
  bool quiet_ = false;
  bool shed_ = false;
};

// Runs f; an exception (a bug: nothing here should throw) becomes a 500
// rather than ending the process.
template <typename F>
void Guarded(const std::shared_ptr<Call>& call, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    call->Finish(ApiProblem(ApiError::kInternal, "the request failed"),
                 e.what());
  }
}

HttpResponse JsonOk(std::string body) {
  HttpResponse r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path[0] != '/') return parts;
  path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::optional<uint64_t> ParseHeight(std::string_view s) {
  if (s.empty() || s.size() > kMaxHeightDigits) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(std::string(s), &v)) return std::nullopt;
  return v;
}

using Query = std::map<std::string, std::string>;

// Whether a request's invoice reads are limited to the invoices of its key's
// organisation (--api_invoice_reads=parties, not an auditor's key), and
// whose key it is.
struct InvoiceLimit {
  bool on = false;
  std::optional<Caller> caller;
  const Caller* who() const { return caller.has_value() ? &*caller : nullptr; }
};

// The query parameter `name` as a decimal number in [min, max]; `def` when
// absent. nullopt (after answering 400) when it is malformed or out of range.
std::optional<uint64_t> NumberParam(const Query& query, const char* name,
                                    uint64_t def, uint64_t min, uint64_t max,
                                    Call* call) {
  auto it = query.find(name);
  if (it == query.end()) return def;
  std::optional<uint64_t> v = ParseHeight(it->second);
  if (!v.has_value() || *v < min || *v > max) {
    call->Finish(ApiProblem(
        ApiError::kBadRequest,
        absl::StrCat(name, " must be a decimal number in ", min, "..", max)));
    return std::nullopt;
  }
  return v;
}

// --------------------------------------------------------------- handlers
// Each answers through call->Finish exactly once.

// One audit line of a write request: the txs it names (none when they are
// not known) and the answer they got.
struct AuditedTxs {
  std::vector<std::string> tx_hashes;
  int status = 0;
  std::string outcome;
};

// Answers a write request through the audit log when there is one, one line
// per entry of `lines` (the answer leaves once all of them are on disk,
// src/audit_log.h), else at once.
void FinishAudited(const ApiHandlerDeps& deps,
                   const std::shared_ptr<Call>& call,
                   const std::optional<Caller>& caller,
                   std::vector<AuditedTxs> lines, HttpResponse r,
                   std::string log_detail = "") {
  if (deps.audit == nullptr || lines.empty()) {
    call->Finish(std::move(r), log_detail);
    return;
  }
  auto left = std::make_shared<std::atomic<size_t>>(lines.size());
  auto answer = std::make_shared<std::pair<HttpResponse, std::string>>(
      std::move(r), std::move(log_detail));
  const std::string route = call->MethodAndRoute();
  const absl::Time now = deps.clock();
  for (AuditedTxs& line : lines) {
    AuditRecord rec;
    rec.time = now;
    if (caller.has_value()) {
      rec.org = caller->org;
      rec.key_id = caller->key_id;
    }
    rec.client = call->client();
    rec.route = route;
    rec.tx_hashes = std::move(line.tx_hashes);
    rec.status = line.status;
    rec.outcome = std::move(line.outcome);
    rec.trace = call->trace();
    deps.audit->Append(rec, [call, left, answer] {
      if (left->fetch_sub(1) != 1) return;
      Guarded(call,
              [&] { call->Finish(std::move(answer->first), answer->second); });
    });
  }
}

// Answers a submission of POST /v1/txs (or a batch refused as a whole before
// its txs were read): one audit line naming `tx_hashes`.
void FinishSubmit(const ApiHandlerDeps& deps, const std::shared_ptr<Call>& call,
                  const std::optional<Caller>& caller,
                  std::vector<std::string> tx_hashes, HttpResponse r,
                  std::string log_detail = "") {
  std::vector<AuditedTxs> lines;
  if (deps.audit != nullptr) {
    lines.push_back(AuditedTxs{std::move(tx_hashes), r.status, OutcomeOf(r)});
  }
  FinishAudited(deps, call, caller, std::move(lines), std::move(r),
                std::move(log_detail));
}

// True (and answered 503 audit-unavailable) when the audit log cannot take
// a submission now: it is not sent to the mempool unlogged.
bool AuditRefuses(const ApiHandlerDeps& deps,
                  const std::shared_ptr<Call>& call) {
  if (deps.audit == nullptr || deps.audit->Accepting()) return false;
  deps.metrics->AuditUnavailable();
  call->set_shed();
  call->Finish(ApiProblem(ApiError::kAuditUnavailable,
                          "the audit log cannot take the submission; retry "
                          "later"));
  return true;
}

void Submit(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
            const std::string& body, std::optional<Caller> caller) {
  if (AuditRefuses(deps, call)) return;
  // One encoding serves the size check, the hash and the mempool.
  absl::StatusOr<EncodedTx> tx = EncodeTxFromJson(body, *deps.suite);
  if (!tx.ok()) {
    FinishSubmit(
        deps, call, caller, {},
        ApiProblem(ApiError::kInvalidTx, std::string(tx.status().message())));
    return;
  }
  const Hash32 hash = tx->hash;
  std::string hash_hex = ToHex(ByteView(hash));
  ApiMetrics* metrics = deps.metrics;
  deps.batcher->Add(
      std::move(tx->raw), [&deps, call, caller = std::move(caller), hash,
                           hash_hex = std::move(hash_hex),
                           metrics](absl::StatusOr<SubmitResult> result) {
        Guarded(call, [&] {
          if (absl::IsResourceExhausted(result.status())) {
            call->set_shed();
            FinishSubmit(deps, call, caller, {hash_hex},
                         ApiProblem(ApiError::kSubmitQueueFull,
                                    std::string(result.status().message())));
            return;
          }
          if (!result.ok()) {
            metrics->UpstreamError("mempool");
            FinishSubmit(deps, call, caller, {hash_hex},
                         UpstreamProblem(result.status(), "mempool"),
                         result.status().ToString());
            return;
          }
          if (!IsZero(result->tx_hash) && result->tx_hash != hash) {
            spdlog::warn("api: mempool hashed tx {} as {} trace={}", hash_hex,
                         ToHex(ByteView(result->tx_hash)), call->trace());
          }
          FinishSubmit(deps, call, caller, {hash_hex},
                       AdmissionResponse(*result, hash_hex), result->detail);
        });
      });
}

// POST /v1/txs:batch on a thread of the batch pool: every tx decoded as
// POST /v1/txs decodes its body, the valid ones sent to the mempool in one
// Submit call, each answered in order (src/tx_batch.h), one audit line per
// tx. A batch that is not {"txs":[...]} is refused as a whole (400/413);
// so is one whose Submit call failed (nothing of it was admitted: 503 or
// 500, as POST /v1/txs answers a failed call).
void RunBatch(const ApiHandlerDeps& deps, const std::shared_ptr<Call>& call,
              std::string_view body, const std::optional<Caller>& caller) {
  absl::StatusOr<std::vector<std::string_view>> txs =
      SplitTxBatch(body, deps.batch_max_txs);
  if (!txs.ok()) {
    FinishSubmit(
        deps, call, caller, {},
        ApiProblem(absl::IsOutOfRange(txs.status()) ? ApiError::kBatchTooLarge
                                                    : ApiError::kInvalidBatch,
                   std::string(txs.status().message())));
    return;
  }
  std::vector<BatchTxAnswer> answers(txs->size());
  std::vector<Bytes> raws;        // the txs that decoded, in order
  std::vector<size_t> positions;  // their positions in the batch
  std::vector<Hash32> hashes;     // their hashes
  for (size_t i = 0; i < txs->size(); ++i) {
    absl::StatusOr<EncodedTx> tx = EncodeTxFromJson((*txs)[i], *deps.suite);
    if (!tx.ok()) {
      answers[i].response =
          ApiProblem(ApiError::kInvalidTx, std::string(tx.status().message()));
      continue;
    }
    answers[i].tx_hash = ToHex(ByteView(tx->hash));
    raws.push_back(std::move(tx->raw));
    positions.push_back(i);
    hashes.push_back(tx->hash);
  }
  auto audit_lines = [&](const HttpResponse* whole) {
    std::vector<AuditedTxs> lines;
    if (deps.audit == nullptr) return lines;
    for (const BatchTxAnswer& a : answers) {
      const HttpResponse& r =
          whole != nullptr && !a.tx_hash.empty() ? *whole : a.response;
      std::vector<std::string> tx_hashes;
      if (!a.tx_hash.empty()) tx_hashes.push_back(a.tx_hash);
      lines.push_back(AuditedTxs{std::move(tx_hashes), r.status, OutcomeOf(r)});
    }
    return lines;
  };
  if (!raws.empty()) {
    deps.metrics->SubmitBatch(raws.size());
    absl::StatusOr<std::vector<SubmitResult>> results =
        deps.mempool->Submit(raws);
    if (results.ok() && results->size() != raws.size()) {
      results = absl::InternalError(
          absl::StrCat("mempool answered ", results->size(), " results for ",
                       raws.size(), " txs"));
    }
    if (!results.ok()) {
      deps.metrics->UpstreamError("mempool");
      HttpResponse r = UpstreamProblem(results.status(), "mempool");
      std::vector<AuditedTxs> lines = audit_lines(&r);
      FinishAudited(deps, call, caller, std::move(lines), std::move(r),
                    results.status().ToString());
      return;
    }
    for (size_t k = 0; k < positions.size(); ++k) {
      const SubmitResult& result = (*results)[k];
      BatchTxAnswer& a = answers[positions[k]];
      if (!IsZero(result.tx_hash) && result.tx_hash != hashes[k]) {
        spdlog::warn("api: mempool hashed tx {} as {} trace={}", a.tx_hash,
                     ToHex(ByteView(result.tx_hash)), call->trace());
      }
      a.response = AdmissionResponse(result, a.tx_hash);
    }
  }
  std::vector<AuditedTxs> lines = audit_lines(nullptr);
  FinishAudited(deps, call, caller, std::move(lines),
                JsonOk(BatchResultsJson(answers)));
}

// Hands a batch to the batch pool without ever blocking the HTTP thread: a
// full queue is answered 429 submit-queue-full at once.
void SubmitBatch(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                 std::string body, std::optional<Caller> caller) {
  if (AuditRefuses(deps, call)) return;
  auto shared_body = std::make_shared<const std::string>(std::move(body));
  bool queued = deps.batch_pool->TryRun([&deps, call, shared_body, caller] {
    Guarded(call, [&] {
      if (deps.stopping->load()) {
        FinishSubmit(
            deps, call, caller, {},
            UpstreamProblem(absl::UnavailableError("stopping"), "api"));
        return;
      }
      RunBatch(deps, call, *shared_body, caller);
    });
  });
  if (!queued) {
    deps.metrics->SubmitQueueFull();
    call->set_shed();
    FinishSubmit(deps, call, caller, {},
                 ApiProblem(ApiError::kSubmitQueueFull,
                            "too many batches are waiting for the mempool; "
                            "retry later"));
  }
}

// True (and answered) when the service is stopping.
bool ShuttingDown(const ApiHandlerDeps& deps,
                  const std::shared_ptr<Call>& call) {
  if (!deps.stopping->load()) return false;
  call->Finish(UpstreamProblem(absl::UnavailableError("stopping"), "api"));
  return true;
}

// A failed query: counted as an upstream error when storage did not answer.
void QueryFailed(const ApiHandlerDeps& deps, const std::shared_ptr<Call>& call,
                 const absl::Status& status, ApiError not_found) {
  if (IsUpstreamOutage(status)) deps.metrics->UpstreamError("storage");
  call->Finish(QueryProblem(status, not_found), status.ToString());
}

// Answers 403 invoice-read-forbidden (counted).
void InvoiceForbidden(const ApiHandlerDeps& deps,
                      const std::shared_ptr<Call>& call, std::string detail) {
  deps.metrics->InvoiceReadRefused(/*redacted=*/false);
  call->Finish(ApiProblem(ApiError::kInvoiceReadForbidden, std::move(detail)));
}

// Hands a query to the query pool without ever blocking the HTTP thread:
// when the pool's queue is full the request is answered 503 overloaded
// (Retry-After) at once. A query whose client has gone by the time a thread
// takes it is dropped (counted), not run; so is none during shutdown, which
// answers 503 without calling storage. `fn` answers through call->Finish.
template <typename F>
void RunQuery(const ApiHandlerDeps& deps, const std::shared_ptr<Call>& call,
              F fn) {
  bool queued = deps.query_pool->TryRun([&deps, call, fn = std::move(fn)] {
    if (call->ClientGone()) {
      deps.metrics->DroppedForClosedConnection();
      return;
    }
    Guarded(call, [&] {
      if (ShuttingDown(deps, call)) return;
      fn();
    });
  });
  if (!queued) {
    deps.metrics->QueryPoolFull();
    call->set_shed();
    call->Finish(ApiProblem(ApiError::kOverloaded,
                            "too many queries are waiting; retry later"));
  }
}

// The validator-set changes committed below `height` (what a verifier
// follows before it checks an answer of that height; from the cache when it
// covers them), or false when storage cannot say (the call is answered).
bool ValidatorChangesBelow(const ApiHandlerDeps& deps, Call* call,
                           uint64_t height, std::vector<StateRecord>* out) {
  if (height <= 2) return true;  // changes are of blocks 2 and up
  absl::StatusOr<std::vector<StateRecord>> changes =
      deps.validator_changes != nullptr
          ? deps.validator_changes->ChangesUpTo(height - 1)
          : deps.chain->ListValidatorChanges(height - 1);
  if (!changes.ok()) {
    if (IsUpstreamOutage(changes.status())) {
      deps.metrics->UpstreamError("storage");
    }
    call->Finish(UpstreamProblem(changes.status(), "storage"),
                 changes.status().ToString());
    return false;
  }
  *out = *std::move(changes);
  return true;
}

void GetTx(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
           std::string_view hex, InvoiceLimit limit) {
  absl::StatusOr<Hash32> hash = HashFromHex(hex);
  if (hex.size() != 64 || !hash.ok()) {
    call->Finish(
        ApiProblem(ApiError::kBadRequest, "tx hash must be 64 hex digits"));
    return;
  }
  RunQuery(deps, call, [&deps, call, hash = *hash, limit = std::move(limit)] {
    absl::StatusOr<TxRecord> rec = deps.chain->GetTx(hash);
    if (!rec.ok()) {
      QueryFailed(deps, call, rec.status(), ApiError::kTxNotFound);
      return;
    }
    if (limit.on) {
      absl::StatusOr<Transaction> tx = DecodeTx(rec->raw_tx);
      if (tx.ok() && IsInvoiceApp(tx->app)) {
        absl::StatusOr<std::optional<std::string>> refused =
            RefuseInvoiceTx(deps.state, limit.who(), *tx, hash);
        if (!refused.ok()) {
          QueryFailed(deps, call, refused.status(), ApiError::kTxNotFound);
          return;
        }
        if (refused->has_value()) {
          InvoiceForbidden(deps, call, **std::move(refused));
          return;
        }
      }
    }
    std::vector<StateRecord> changes;
    if (!ValidatorChangesBelow(deps, call.get(), rec->height, &changes)) {
      return;
    }
    call->Finish(JsonOk(TxRecordView(*deps.suite, hash, *rec, changes)));
  });
}

// A block's answer; with `redact_invoices` its invoice txs are withheld
// (BlockRecordView), counted.
void FinishBlock(const ApiHandlerDeps& deps, const std::shared_ptr<Call>& call,
                 const BlockRecord& rec, bool redact_invoices) {
  std::vector<StateRecord> changes;
  if (!ValidatorChangesBelow(deps, call.get(), rec.block.header.height,
                             &changes)) {
    return;
  }
  size_t redacted = 0;
  std::string body =
      BlockRecordView(*deps.suite, rec, changes, redact_invoices, &redacted);
  if (redacted > 0) deps.metrics->InvoiceReadRefused(true, redacted);
  call->Finish(JsonOk(std::move(body)));
}

void GetCertifiedBlock(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                       std::string_view which, bool redact_invoices) {
  std::optional<uint64_t> height;
  if (which != "latest") {
    height = ParseHeight(which);
    if (!height.has_value()) {
      call->Finish(ApiProblem(ApiError::kBadRequest,
                              "height must be a decimal number or \"latest\""));
      return;
    }
  }
  RunQuery(deps, call, [&deps, call, height, redact_invoices] {
    absl::StatusOr<BlockRecord> rec = deps.chain->GetCertifiedBlock(height);
    if (!rec.ok()) {
      QueryFailed(deps, call, rec.status(), ApiError::kBlockNotFound);
      return;
    }
    FinishBlock(deps, call, *rec, redact_invoices);
  });
}

void GetCertifiedBlockByHash(const ApiHandlerDeps& deps,
                             std::shared_ptr<Call> call, std::string_view hex,
                             bool redact_invoices) {
  absl::StatusOr<Hash32> hash = HashFromHex(hex);
  if (hex.size() != 64 || !hash.ok()) {
    call->Finish(
        ApiProblem(ApiError::kBadRequest, "block hash must be 64 hex digits"));
    return;
  }
  RunQuery(deps, call, [&deps, call, hash = *hash, redact_invoices] {
    absl::StatusOr<BlockRecord> rec = deps.chain->GetCertifiedBlockByHash(hash);
    if (!rec.ok()) {
      QueryFailed(deps, call, rec.status(), ApiError::kBlockNotFound);
      return;
    }
    FinishBlock(deps, call, *rec, redact_invoices);
  });
}

void ListBlockSummaries(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                        const Query& query) {
  std::optional<uint64_t> from = NumberParam(
      query, "from", 1, 1, std::numeric_limits<uint64_t>::max(), call.get());
  if (!from.has_value()) return;
  std::optional<uint64_t> limit = NumberParam(
      query, "limit", kDefaultPageLimit, 1, kMaxBlockSummaries, call.get());
  if (!limit.has_value()) return;
  RunQuery(deps, call,
           [&deps, call, from = *from, limit = static_cast<uint32_t>(*limit)] {
             absl::StatusOr<std::vector<BlockSummary>> blocks =
                 deps.chain->ListBlockSummaries(from, limit);
             if (!blocks.ok()) {
               QueryFailed(deps, call, blocks.status(),
                           ApiError::kBlockNotFound);
               return;
             }
             // Storage may answer fewer than `limit` before the tip
             // (ChainQueries): any non-empty page may be followed by more;
             // only an empty one ends the list.
             std::optional<uint64_t> next;
             if (!blocks->empty() && blocks->back().header.height <
                                         std::numeric_limits<uint64_t>::max()) {
               next = blocks->back().header.height + 1;
             }
             call->Finish(JsonOk(BlockListView(*blocks, next)));
           });
}

void ListEvidence(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                  const Query& query) {
  std::optional<uint64_t> from = NumberParam(
      query, "from", 1, 1, std::numeric_limits<uint64_t>::max(), call.get());
  if (!from.has_value()) return;
  std::optional<uint64_t> limit = NumberParam(query, "limit", kDefaultPageLimit,
                                              1, kMaxListEvidence, call.get());
  if (!limit.has_value()) return;
  RunQuery(deps, call,
           [&deps, call, from = *from, limit = static_cast<uint32_t>(*limit)] {
             absl::StatusOr<std::vector<EvidenceRecord>> records =
                 deps.chain->ListEvidence(from, limit);
             if (!records.ok()) {
               QueryFailed(deps, call, records.status(), ApiError::kBadRequest);
               return;
             }
             // As for blocks: only an empty page ends the list.
             std::optional<uint64_t> next;
             if (!records->empty() &&
                 records->back().seq < std::numeric_limits<uint64_t>::max()) {
               next = records->back().seq + 1;
             }
             call->Finish(JsonOk(EvidenceListView(*records, next)));
           });
}

// A page of `app`'s records whose keys start with `prefix`, after ?cursor,
// at most ?limit. With `records` (the /v1/apps routes) each item also carries
// its value decoded as JSON.
void AnswerScan(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                std::string app, std::string prefix, const Query& query,
                bool records, const InvoiceLimit& limit_invoices) {
  if (limit_invoices.on && IsInvoiceApp(app)) {
    std::optional<std::string> refused =
        RefuseInvoiceScan(limit_invoices.who(), prefix);
    if (refused.has_value()) {
      InvoiceForbidden(deps, call, *std::move(refused));
      return;
    }
  }
  std::optional<uint64_t> limit = NumberParam(query, "limit", kDefaultPageLimit,
                                              1, kMaxScanState, call.get());
  if (!limit.has_value()) return;
  std::string cursor;
  if (auto it = query.find("cursor"); it != query.end()) {
    absl::StatusOr<Bytes> raw = FromHex(it->second);
    if (!raw.ok()) {
      call->Finish(ApiProblem(ApiError::kBadRequest,
                              "cursor must be the hex next_cursor of the "
                              "previous page"));
      return;
    }
    cursor = std::string(AsString(*raw));
  }
  RunQuery(deps, call,
           [&deps, call, app = std::move(app), prefix = std::move(prefix),
            cursor = std::move(cursor), limit = static_cast<uint32_t>(*limit),
            records] {
             absl::StatusOr<StatePage> page =
                 deps.state->ScanState(app, prefix, cursor, limit);
             if (!page.ok()) {
               QueryFailed(deps, call, page.status(), ApiError::kStateNotFound);
               return;
             }
             call->Finish(JsonOk(StatePageView(app, *page, records)));
           });
}

// parts = {"v1", "state", app}: a page of the app's records.
void ScanState(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
               const std::vector<std::string_view>& parts, const Query& query,
               const InvoiceLimit& limit) {
  absl::StatusOr<std::string> app = PercentDecode(parts[2]);
  if (!app.ok() || app->empty()) {
    call->Finish(ApiProblem(ApiError::kBadRequest,
                            "app must be non-empty and correctly "
                            "percent-encoded"));
    return;
  }
  std::string prefix;
  if (auto it = query.find("prefix"); it != query.end()) prefix = it->second;
  AnswerScan(deps, std::move(call), *std::move(app), std::move(prefix), query,
             /*records=*/false, limit);
}

// One record of `app` with its proof (of absence: a 404), after block
// `height` or the latest. With `record` (the /v1/apps routes) the answer also
// carries the value decoded as JSON.
void AnswerState(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                 std::string app, std::string key,
                 std::optional<uint64_t> height, bool record,
                 InvoiceLimit limit) {
  if (!IsInvoiceApp(app)) limit.on = false;
  RunQuery(
      deps, call,
      [&deps, call, app = std::move(app), key = std::move(key), height, record,
       limit = std::move(limit)] {
        absl::StatusOr<StateRecord> rec =
            height.has_value() ? deps.state->GetStateAt(app, key, *height)
                               : deps.state->GetState(app, key);
        if (!rec.ok()) {
          QueryFailed(deps, call, rec.status(), ApiError::kStateNotFound);
          return;
        }
        if (limit.on) {
          std::optional<ByteView> value;
          if (rec->found) value = ByteView(rec->value);
          std::optional<std::string> refused =
              RefuseInvoiceRecord(limit.who(), key, value);
          if (refused.has_value()) {
            InvoiceForbidden(deps, call, *std::move(refused));
            return;
          }
        }
        std::vector<StateRecord> changes;
        if (!ValidatorChangesBelow(deps, call.get(), rec->height, &changes)) {
          return;
        }
        if (!rec->found) {
          call->Finish(StateAbsentResponse(app, key, *rec, changes));
          return;
        }
        call->Finish(JsonOk(StateView(app, key, *rec, record, changes)));
      });
}

// Optional ?height=H (0 and up); nullopt in *out when absent. False when it
// is malformed (the call is answered).
bool HeightParam(const Query& query, Call* call, std::optional<uint64_t>* out) {
  if (query.count("height") == 0) return true;
  *out = NumberParam(query, "height", 0, 0,
                     std::numeric_limits<uint64_t>::max(), call);
  return out->has_value();
}

// The /v1/apps/... routes: one record or a page, of the app the route names.
void AppReadRoute(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
                  RouteId id, const std::vector<std::string_view>& parts,
                  const Query& query, const InvoiceLimit& limit) {
  absl::StatusOr<AppRead> read = ResolveAppRead(id, parts, query);
  if (!read.ok()) {
    call->Finish(ApiProblem(ApiError::kBadRequest,
                            std::string(read.status().message())));
    return;
  }
  if (read->key_prefix.has_value()) {
    AnswerScan(deps, std::move(call), std::move(read->app),
               *std::move(read->key_prefix), query, /*records=*/true, limit);
    return;
  }
  std::optional<uint64_t> height;
  if (!HeightParam(query, call.get(), &height)) return;
  AnswerState(deps, std::move(call), std::move(read->app), std::move(read->key),
              height, /*record=*/true, limit);
}

// parts = {"v1", "state", app, key...}: the key is the rest of the path, so
// a '/' in it may come encoded (%2F) or not. ?height=H asks for the state
// after block H (one of the versions storage keeps).
void GetState(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
              const std::vector<std::string_view>& parts, const Query& query,
              const InvoiceLimit& limit) {
  absl::StatusOr<std::string> app = PercentDecode(parts[2]);
  std::string raw_key(parts[3]);
  for (size_t i = 4; i < parts.size(); ++i) {
    absl::StrAppend(&raw_key, "/", std::string(parts[i]));
  }
  absl::StatusOr<std::string> key = PercentDecode(raw_key);
  if (!app.ok() || !key.ok() || app->empty() || key->empty()) {
    call->Finish(ApiProblem(ApiError::kBadRequest,
                            "app and key must be non-empty and correctly "
                            "percent-encoded"));
    return;
  }
  std::optional<uint64_t> height;
  if (!HeightParam(query, call.get(), &height)) return;
  AnswerState(deps, std::move(call), *std::move(app), *std::move(key), height,
              /*record=*/false, limit);
}

// GET /v1/events: Server-Sent Events from `from_height` or after the
// Last-Event-ID (which wins), filtered by app, method and sender.
void Events(const ApiHandlerDeps& deps, std::shared_ptr<Call> call,
            const HttpRequest& req, bool redact_invoices) {
  if (deps.events == nullptr || deps.events->stopping()) {
    call->Finish(UpstreamProblem(absl::UnavailableError("stopping"), "api"));
    return;
  }
  const Query& query = req.query;
  std::optional<EventId> after;
  if (query.count("from_height") > 0) {
    std::optional<uint64_t> h =
        NumberParam(query, "from_height", 1, 0,
                    std::numeric_limits<uint64_t>::max(), call.get());
    if (!h.has_value()) return;
    after = *h == 0 ? EventId{0, kBlockDone} : EventId{*h - 1, kBlockDone};
  }
  if (auto it = req.headers.find("last-event-id");
      it != req.headers.end() &&
      !absl::StripAsciiWhitespace(it->second).empty()) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(it->second);
    std::optional<EventId> id =
        ParseEventId(std::string_view(trimmed.data(), trimmed.size()));
    if (!id.has_value()) {
      call->Finish(
          ApiProblem(ApiError::kBadRequest,
                     "Last-Event-ID must be an event id: <height>-<index>"));
      return;
    }
    after = id;
  }
  EventFilter filter;
  if (auto it = query.find("app"); it != query.end()) filter.app = it->second;
  if (auto it = query.find("method"); it != query.end()) {
    filter.method = it->second;
  }
  if (auto it = query.find("sender"); it != query.end()) {
    if (it->second.empty() || !FromHex(it->second).ok()) {
      call->Finish(
          ApiProblem(ApiError::kBadRequest, "sender must be a hex public key"));
      return;
    }
    filter.sender = absl::AsciiStrToLower(it->second);
  }
  HttpResponse r;
  r.status = 200;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // proxies: do not buffer
  EventHub* hub = deps.events;
  r.on_stream = [hub, after, filter = std::move(filter),
                 redact_invoices](std::shared_ptr<HttpStream> stream) {
    hub->Add(std::move(stream), after, filter, redact_invoices);
  };
  call->Finish(std::move(r));
}

}  // namespace

ApiHandler::ApiHandler(ApiHandlerDeps deps) : deps_(std::move(deps)) {}

void ApiHandler::Handle(HttpRequest req, HttpServer::Respond respond) {
  auto call = std::make_shared<Call>(req, std::move(respond), deps_.metrics,
                                     deps_.log_limiter);
  Guarded(call, [&] {
    std::vector<std::string_view> parts = SplitPath(req.path);
    const RouteSpec* match = MatchRoute(parts);
    if (match == nullptr) {
      call->Finish(ApiProblem(ApiError::kRouteNotFound,
                              absl::StrCat("no route for ", req.path)));
      return;
    }
    call->set_route(match->path);
    if (req.method != match->method) {
      HttpResponse r =
          ApiProblem(ApiError::kMethodNotAllowed,
                     absl::StrCat(match->path, " accepts ", match->method));
      r.headers.emplace_back("Allow", match->method);
      call->Finish(std::move(r));
      return;
    }
    // API keys and quotas (src/access.cc); /healthz, /readyz and
    // /v1/openapi.json stay open.
    std::optional<Caller> caller;
    // The explorer's static files are public too: the page asks for a key
    // before its own reads when the api needs one. So is the contract.
    const bool open_route =
        match->id == RouteId::kHealthz || match->id == RouteId::kReadyz ||
        match->id == RouteId::kOpenApi || match->id == RouteId::kExplorer ||
        match->id == RouteId::kExplorerFile;
    if (deps_.access != nullptr && !open_route) {
      const bool submit =
          match->id == RouteId::kSubmit || match->id == RouteId::kSubmitBatch;
      Access access = deps_.access->Check(req, submit);
      if (access.caller.has_value()) call->set_org(access.caller->org);
      if (!access.allowed) {
        if (access.refusal.status == 429) call->set_shed();
        // An identified caller's refused submission is audited too.
        if (submit && access.caller.has_value() && deps_.audit != nullptr) {
          FinishSubmit(deps_, call, access.caller, {},
                       std::move(access.refusal));
        } else {
          call->Finish(std::move(access.refusal));
        }
        return;
      }
      caller = std::move(access.caller);
    }
    // Every read that reveals invoice data asks src/invoice_access.h.
    InvoiceLimit invoices;
    invoices.on = deps_.invoice_parties_only &&
                  !ReadsAllInvoices(caller.has_value() ? &*caller : nullptr);
    if (invoices.on) invoices.caller = caller;
    switch (match->id) {
      case RouteId::kHealthz:
        call->Finish(JsonOk(R"({"status":"ok"})"));
        return;
      case RouteId::kReadyz:
        if (deps_.ready()) {
          call->Finish(JsonOk(R"({"status":"ready"})"));
        } else {
          call->set_quiet();
          call->Finish(ApiProblem(ApiError::kNotReady, deps_.readiness()));
        }
        return;
      case RouteId::kOpenApi:
        call->Finish(JsonOk(std::string(OpenApiDocument())));
        return;
      case RouteId::kSubmit:
        Submit(deps_, call, req.body, std::move(caller));
        return;
      case RouteId::kSubmitBatch:
        SubmitBatch(deps_, call, std::move(req.body), std::move(caller));
        return;
      case RouteId::kGetTx:
        GetTx(deps_, call, parts[2], invoices);
        return;
      case RouteId::kGetCertifiedBlock:
        GetCertifiedBlock(deps_, call, parts[2], invoices.on);
        return;
      case RouteId::kGetCertifiedBlockByHash:
        GetCertifiedBlockByHash(deps_, call, parts[3], invoices.on);
        return;
      case RouteId::kListBlockSummaries:
        ListBlockSummaries(deps_, call, req.query);
        return;
      case RouteId::kGetState:
        GetState(deps_, call, parts, req.query, invoices);
        return;
      case RouteId::kScanState:
        ScanState(deps_, call, parts, req.query, invoices);
        return;
      case RouteId::kListEvidence:
        ListEvidence(deps_, call, req.query);
        return;
      case RouteId::kEvents:
        Events(deps_, call, req, invoices.on);
        return;
      case RouteId::kGetInvoice:
      case RouteId::kListInvoices:
      case RouteId::kGetDocument:
      case RouteId::kListOrgs:
      case RouteId::kListMembers:
      case RouteId::kGetMember:
      case RouteId::kListProposals:
      case RouteId::kGetProposal:
        AppReadRoute(deps_, call, match->id, parts, req.query, invoices);
        return;
      case RouteId::kExplorer:
      case RouteId::kExplorerFile: {
        std::optional<HttpResponse> file = ExplorerFile(
            match->id == RouteId::kExplorer ? std::string_view() : parts[1]);
        if (!file.has_value()) {
          call->Finish(ApiProblem(ApiError::kRouteNotFound,
                                  absl::StrCat("no explorer file ", req.path)));
          return;
        }
        call->Finish(*std::move(file));
        return;
      }
    }
    call->Finish(ApiProblem(ApiError::kInternal, "unrouted request"));
  });
}

}  // namespace consortia::api
