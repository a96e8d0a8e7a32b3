// The one place where errors become HTTP statuses and problem types.
#include "problem.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace consortia::api {
namespace {

struct Mapping {
  int status;
  const char* slug;  // problem type = kProblemBase + slug
  const char* title;
  bool retry_after;  // add Retry-After: 1
  // The WWW-Authenticate header (RFC 6750) when not null.
  const char* www_authenticate = nullptr;
};

constexpr char kBearer[] = "Bearer realm=\"consortia\"";
constexpr char kBearerInvalid[] =
    "Bearer realm=\"consortia\", error=\"invalid_token\"";
constexpr char kBearerScope[] =
    "Bearer realm=\"consortia\", error=\"insufficient_scope\"";

Mapping AdmissionMapping(Admission a) {
  switch (a) {
    case Admission::kAccepted:
      return {202, "", "Accepted", false};
    case Admission::kAlreadyPending:
      return {200, "", "Already pending", false};
    case Admission::kMalformed:
      return {400, "malformed-tx", "Malformed transaction", false};
    case Admission::kTooLarge:
      return {413, "tx-too-large", "Transaction too large", false};
    case Admission::kWrongChain:
      return {422, "wrong-chain", "Transaction is for another chain", false};
    case Admission::kExpired:
      return {422, "expired", "Transaction expired", false};
    case Admission::kTooFarAhead:
      return {422, "too-far-ahead", "valid_until too far ahead", false};
    case Admission::kAlreadyCommitted:
      return {409, "already-committed", "Transaction already committed", false};
    case Admission::kBadSignature:
      return {422, "bad-signature", "Bad signature", false};
    case Admission::kPoolFull:
      return {429, "pool-full", "Mempool full", true};
    case Admission::kSenderLimit:
      return {429, "sender-limit", "Too many pending from this sender", true};
    case Admission::kUnregisteredSender:
      return {403, "unregistered-sender", "Sender is not a registered member",
              false};
  }
  // A verdict this build does not know (a newer mempool): not the client's
  // fault, and not retryable blindly.
  return {500, "internal", "Unknown admission verdict", false};
}

Mapping ErrorMapping(ApiError e) {
  switch (e) {
    case ApiError::kInvalidTx:
      return {400, "invalid-tx", "Invalid transaction JSON", false};
    case ApiError::kBadRequest:
      return {400, "bad-request", "Bad request", false};
    case ApiError::kRouteNotFound:
      return {404, "not-found", "No such route", false};
    case ApiError::kTxNotFound:
      return {404, "tx-not-found", "Transaction not found", false};
    case ApiError::kBlockNotFound:
      return {404, "block-not-found", "Block not found", false};
    case ApiError::kStateNotFound:
      return {404, "state-not-found", "State not found", false};
    case ApiError::kMethodNotAllowed:
      return {405, "method-not-allowed", "Method not allowed", false};
    case ApiError::kNotReady:
      return {503, "not-ready", "Not ready", false};
    case ApiError::kUpstreamUnavailable:
      return {503, "upstream-unavailable", "Upstream service unavailable",
              true};
    case ApiError::kOverloaded:
      return {503, "overloaded", "Too many queries waiting", true};
    case ApiError::kSubmitQueueFull:
      return {429, "submit-queue-full", "Too many submissions waiting", true};
    case ApiError::kInternal:
      return {500, "internal", "Internal error", false};
    case ApiError::kApiKeyMissing:
      return {401, "api-key-missing", "API key required", false, kBearer};
    case ApiError::kApiKeyUnknown:
      return {401, "api-key-unknown", "Unknown API key", false, kBearerInvalid};
    case ApiError::kApiKeyRevoked:
      return {403, "api-key-revoked", "API key revoked", false};
    case ApiError::kApiKeyExpired:
      return {403, "api-key-expired", "API key expired", false};
    case ApiError::kInsufficientScope:
      return {403, "insufficient-scope", "API key lacks the scope", false,
              kBearerScope};
    case ApiError::kInvoiceReadForbidden:
      return {403, "invoice-read-forbidden",
              "Invoice readable by its parties and auditors only", false};
    case ApiError::kQuotaExceeded:
      return {429, "quota-exceeded", "Quota exceeded", true};
    case ApiError::kAuditUnavailable:
      return {503, "audit-unavailable", "Audit log unavailable", true};
    case ApiError::kInvalidBatch:
      return {400, "invalid-batch", "Invalid batch", false};
    case ApiError::kBatchTooLarge:
      return {413, "batch-too-large", "Too many transactions in the batch",
              false};
  }
  return {500, "internal", "Internal error", false};
}

HttpResponse FromMapping(const Mapping& m, std::string detail) {
  HttpResponse r = Problem(m.status, absl::StrCat(kProblemBase, m.slug),
                           m.title, std::move(detail));
  if (m.retry_after) r.headers.emplace_back("Retry-After", "1");
  if (m.www_authenticate != nullptr) {
    r.headers.emplace_back("WWW-Authenticate", m.www_authenticate);
  }
  return r;
}

}  // namespace

int AdmissionHttpStatus(Admission a) { return AdmissionMapping(a).status; }

std::string AdmissionProblemType(Admission a) {
  Mapping m = AdmissionMapping(a);
  if (m.slug[0] == '\0') return "";
  return absl::StrCat(kProblemBase, m.slug);
}

HttpResponse AdmissionResponse(const SubmitResult& result,
                               std::string_view tx_hash_hex) {
  Mapping m = AdmissionMapping(result.code);
  if (result.code == Admission::kAccepted ||
      result.code == Admission::kAlreadyPending) {
    nlohmann::json j;
    j["tx_hash"] = std::string(tx_hash_hex);
    j["status"] = "pending";
    HttpResponse r;
    r.status = m.status;
    r.body = j.dump();
    return r;
  }
  std::string detail = result.detail;
  if (detail.empty()) detail = std::string(AdmissionName(result.code));
  return FromMapping(m, std::move(detail));
}

int ApiErrorHttpStatus(ApiError e) { return ErrorMapping(e).status; }

HttpResponse ApiProblem(ApiError e, std::string detail) {
  return FromMapping(ErrorMapping(e), std::move(detail));
}

HttpResponse QuotaProblem(int64_t retry_after_s, std::string detail) {
  Mapping m = ErrorMapping(ApiError::kQuotaExceeded);
  m.retry_after = false;
  HttpResponse r = FromMapping(m, std::move(detail));
  r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return r;
}

std::string OutcomeOf(const HttpResponse& r) {
  if (r.status == 202) return "accepted";
  if (r.status == 200) return "already-pending";
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  std::string type = j.is_object() ? j.value("type", "") : "";
  if (type.rfind(kProblemBase, 0) == 0) {
    return type.substr(sizeof(kProblemBase) - 1);
  }
  return std::to_string(r.status);
}

bool IsUpstreamOutage(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kUnavailable;
}

HttpResponse UpstreamProblem(const absl::Status& s, std::string_view service) {
  if (IsUpstreamOutage(s)) {
    return ApiProblem(
        ApiError::kUpstreamUnavailable,
        absl::StrCat(std::string(service), " did not answer; retry later"));
  }
  // The upstream's own message may describe internals: keep it for the log.
  return ApiProblem(ApiError::kInternal,
                    absl::StrCat("the ", std::string(service), " call failed"));
}

HttpResponse QueryProblem(const absl::Status& s, ApiError not_found) {
  if (s.code() == absl::StatusCode::kNotFound) {
    return ApiProblem(not_found, std::string(s.message()));
  }
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    return ApiProblem(ApiError::kBadRequest, std::string(s.message()));
  }
  return UpstreamProblem(s, "storage");
}

}  // namespace consortia::api
