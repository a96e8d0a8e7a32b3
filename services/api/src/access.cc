#include "access.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "problem.h"

namespace consortia::api {
namespace {

HttpResponse AuthProblem(AuthFailure f, std::optional<ApiScope> needed) {
  switch (f) {
    case AuthFailure::kMissing:
      return ApiProblem(ApiError::kApiKeyMissing,
                        "this route needs an API key: send it as "
                        "Authorization: Bearer <key>");
    case AuthFailure::kUnknown:
      return ApiProblem(ApiError::kApiKeyUnknown,
                        "the API key is not known here");
    case AuthFailure::kRevoked:
      return ApiProblem(ApiError::kApiKeyRevoked, "the API key was revoked");
    case AuthFailure::kExpired:
      return ApiProblem(ApiError::kApiKeyExpired, "the API key has expired");
    case AuthFailure::kScope:
      return ApiProblem(
          ApiError::kInsufficientScope,
          absl::StrCat(
              "the API key lacks the scope \"",
              std::string(ApiScopeName(needed.value_or(ApiScope::kSubmit))),
              "\""));
    case AuthFailure::kNone:
      break;
  }
  return ApiProblem(ApiError::kInternal, "unexpected auth state");
}

}  // namespace

AccessControl::AccessControl(const Authenticator* auth, QuotaLimiter* quotas,
                             bool reads_need_key, ApiMetrics* metrics,
                             std::function<absl::Time()> clock)
    : auth_(auth),
      quotas_(quotas),
      reads_need_key_(reads_need_key),
      metrics_(metrics),
      clock_(std::move(clock)) {}

Access AccessControl::Check(const HttpRequest& req, bool submit) const {
  Access a;
  if (auth_ == nullptr) return a;
  std::optional<ApiScope> needed;
  if (submit) {
    needed = ApiScope::kSubmit;
  } else if (reads_need_key_) {
    needed = ApiScope::kRead;
  }
  std::optional<std::string> authorization;
  if (auto it = req.headers.find("authorization"); it != req.headers.end()) {
    authorization = it->second;
  }
  const absl::Time now = clock_();
  AuthResult r = auth_->Check(authorization, needed, now);
  a.caller = std::move(r.caller);
  if (r.failure != AuthFailure::kNone) {
    metrics_->AuthFailure(AuthFailureKind(r.failure));
    a.allowed = false;
    a.refusal = AuthProblem(r.failure, needed);
    return a;
  }
  if (!a.caller.has_value()) return a;  // a public read without a key
  const uint64_t bytes = submit ? req.body.size() : 0;
  QuotaVerdict v =
      quotas_->Admit(a.caller->key_id, a.caller->quotas, bytes, now);
  if (!v.ok) {
    metrics_->QuotaRefused(a.caller->org, v.quota);
    a.allowed = false;
    const int64_t retry = RetryAfterSeconds(v.retry_after);
    a.refusal = QuotaProblem(
        retry,
        absl::StrCat("organisation ", a.caller->org, "'s ", v.quota,
                     " quota for this key is used up; retry in ", retry, " s"));
  }
  return a;
}

}  // namespace consortia::api
