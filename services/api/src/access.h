// The api's gate for API keys and quotas (issue 13): which requests need a
// key, whose key it is, and whether its quota allows the request. The
// handler asks it once per request (not for /healthz, /readyz and
// /v1/openapi.json) and answers its refusal as it is.
#ifndef CONSORTIA_API_ACCESS_H_
#define CONSORTIA_API_ACCESS_H_

#include <functional>
#include <optional>

#include "absl/time/time.h"
#include "api_metrics.h"
#include "auth.h"
#include "consortia/http_server.h"
#include "quota.h"

namespace consortia::api {

// What AccessControl::Check decided about one request.
struct Access {
  bool allowed = true;
  // The key's caller, when the request presented a known key (also when it
  // was refused for being revoked, expired, out of scope or over quota).
  std::optional<Caller> caller;
  // The answer when not allowed: 401/403 (src/problem.cc) or 429
  // quota-exceeded with Retry-After.
  HttpResponse refusal;
};

// Thread-safe (its parts are).
class AccessControl {
 public:
  // `auth` null: no key file, every request is allowed as before (no
  // caller, no quota). Submissions need a key with scope `submit`; reads
  // need one with scope `read` only when `reads_need_key`, otherwise a key
  // is optional there (and checked when presented). `clock` gives the time
  // for expiry and the buckets. None owned; all must outlive this.
  AccessControl(const Authenticator* auth, QuotaLimiter* quotas,
                bool reads_need_key, ApiMetrics* metrics,
                std::function<absl::Time()> clock);

  // `submit`: the request submits transactions (its body's bytes count
  // against the tx bytes quota). Counts auth failures and quota refusals.
  Access Check(const HttpRequest& req, bool submit) const;

 private:
  const Authenticator* const auth_;
  QuotaLimiter* const quotas_;
  const bool reads_need_key_;
  ApiMetrics* const metrics_;
  const std::function<absl::Time()> clock_;
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_ACCESS_H_
