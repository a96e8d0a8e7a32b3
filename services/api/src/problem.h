// Every way a request can fail, mapped to ONE HTTP status and ONE problem type
// here and nowhere else (RFC 9457 problem+json). The table is in
// services/api/README.md; problem.cc is its only implementation.
#ifndef CONSORTIA_API_PROBLEM_H_
#define CONSORTIA_API_PROBLEM_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "consortia/http_server.h"
#include "consortia/service_api.h"

namespace consortia::api {

// Problem type URIs are kProblemBase + a slug ("bad-signature").
inline constexpr char kProblemBase[] = "https://consortia.dev/problems/";

// Failures that are not a mempool admission verdict.
enum class ApiError {
  kInvalidTx,            // 400: body is not a valid tx JSON
  kBadRequest,           // 400: bad path parameter (hash, height, key)
  kRouteNotFound,        // 404: no such route
  kTxNotFound,           // 404
  kBlockNotFound,        // 404
  kStateNotFound,        // 404
  kMethodNotAllowed,     // 405 (caller adds Allow)
  kNotReady,             // 503: /readyz before both upstreams answered
  kUpstreamUnavailable,  // 503 + Retry-After: upstream timed out / down
  kOverloaded,           // 503 + Retry-After: the query queue is full
  kSubmitQueueFull,      // 429 + Retry-After: the submit queue is full
  kInternal,             // 500: anything else; logged with the trace id
  // API keys (src/auth.h): 401 + WWW-Authenticate: Bearer for the first
  // two, 403 for the others.
  kApiKeyMissing,      // 401: the route needs a key, none was presented
  kApiKeyUnknown,      // 401: not a key of the key file
  kApiKeyRevoked,      // 403
  kApiKeyExpired,      // 403
  kInsufficientScope,  // 403: the key lacks the route's scope
  // 403: --api_invoice_reads=parties and the key is of neither party of the
  // invoice, nor an auditor's (src/invoice_access.h).
  kInvoiceReadForbidden,
  kQuotaExceeded,     // 429 + Retry-After: use QuotaProblem for the wait
  kAuditUnavailable,  // 503 + Retry-After: the audit log cannot be written
  // POST /v1/txs:batch (the txs in it are answered one by one).
  kInvalidBatch,   // 400: not {"txs":[...]} with at least one tx
  kBatchTooLarge,  // 413: more txs than --api_batch_max_txs
};

// The HTTP status of a mempool verdict: 202 kAccepted, 200 kAlreadyPending,
// 4xx for the rejections.
int AdmissionHttpStatus(Admission a);
// Full problem type URI of a rejection ("" for the two successes).
std::string AdmissionProblemType(Admission a);

// The HTTP answer to one submitted tx: {"tx_hash","status":"pending"} for the
// two successes, problem+json otherwise (with Retry-After: 1 for pool full
// and sender limit).
HttpResponse AdmissionResponse(const SubmitResult& result,
                               std::string_view tx_hash_hex);

int ApiErrorHttpStatus(ApiError e);
HttpResponse ApiProblem(ApiError e, std::string detail);
// 429 quota-exceeded with Retry-After: `retry_after_s` (whole seconds).
HttpResponse QuotaProblem(int64_t retry_after_s, std::string detail);
// The slug of an answer's problem type ("bad-signature"); for a success
// "accepted" (202) or "already-pending" (200) (the audit log's outcome).
std::string OutcomeOf(const HttpResponse& r);

// The answer to a failed call to an upstream service: DeadlineExceeded and
// Unavailable are 503 upstream-unavailable with Retry-After: 1 (the client
// should retry), anything else 500 internal.
HttpResponse UpstreamProblem(const absl::Status& s, std::string_view service);
// The answer to a failed storage query: NotFound is `not_found` (404),
// InvalidArgument is 400 bad-request (storage refused the client's
// parameters), the rest as UpstreamProblem(s, "storage").
HttpResponse QueryProblem(const absl::Status& s, ApiError not_found);
// True when UpstreamProblem answers 503 for s.
bool IsUpstreamOutage(const absl::Status& s);

}  // namespace consortia::api

#endif  // CONSORTIA_API_PROBLEM_H_
