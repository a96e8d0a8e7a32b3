// Fair quotas (issue 13): a token bucket per API key on requests and one on
// submitted tx bytes, at the rates of the key's organisation in the key file
// (consortia/api_keys.h, OrgQuotas). A key over either gets 429
// quota-exceeded with Retry-After; other keys are not affected.
//
// The buckets never read a clock: every call takes `now`, so tests drive them
// with an injected clock (the service passes its own).
#ifndef CONSORTIA_API_QUOTA_H_
#define CONSORTIA_API_QUOTA_H_

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "consortia/api_keys.h"

namespace consortia::api {

// A token bucket: holds at most `burst` tokens and gains `rate` per second.
// A cost is taken when the bucket holds at least min(cost, burst) tokens, so
// a cost larger than the bucket (a tx bigger than tx_bytes_burst) can pass
// when the bucket is full, and the balance goes below zero: the key then
// waits until the whole cost has been refilled. Rates and bursts are passed
// on every call, so a key file reload changes them at once (the balance is
// kept, capped at the new burst).
//
// Thread-compatible (QuotaLimiter locks around it).
class TokenBucket {
 public:
  // A new bucket is full.
  TokenBucket() = default;

  // Refills up to `now`, then takes `cost` if it may. Zero when taken;
  // otherwise how long until it could be (nothing is taken).
  absl::Duration Take(double cost, double rate, double burst, absl::Time now);
  // Refills up to `now` and says how long until `cost` could be taken (zero:
  // now), without taking it.
  absl::Duration WaitFor(double cost, double rate, double burst,
                         absl::Time now);
  // Takes `cost` unconditionally (after WaitFor said zero).
  void Spend(double cost) { tokens_ -= cost; }

  // The balance after the last call (may be negative, see above).
  double tokens() const { return tokens_; }

 private:
  void Refill(double rate, double burst, absl::Time now);

  bool started_ = false;
  double tokens_ = 0;
  absl::Time last_ = absl::InfinitePast();
};

// What QuotaLimiter::Admit decided.
struct QuotaVerdict {
  bool ok = true;
  // When refused: which quota ("requests" or "tx_bytes"; the first of the
  // two that refuses) and how long until the request would pass.
  const char* quota = "";
  absl::Duration retry_after = absl::ZeroDuration();
};

// The Retry-After header's value for a wait: whole seconds, rounded up, at
// least 1.
int64_t RetryAfterSeconds(absl::Duration wait);

// The buckets of every key seen. Thread-safe.
class QuotaLimiter {
 public:
  // One request of key `key_id` carrying `tx_bytes` bytes of submitted
  // transactions (0 for a read), under the quotas of the key's
  // organisation. Both buckets are checked first and charged only when both
  // allow it: a refused request costs nothing.
  QuotaVerdict Admit(const std::string& key_id, const OrgQuotas& quotas,
                     uint64_t tx_bytes, absl::Time now);
  // Forgets the buckets of keys not in `ids` (after a key file reload).
  void Retain(const std::set<std::string>& ids);
  // Keys with buckets.
  size_t size() const;

 private:
  struct Buckets {
    TokenBucket requests;
    TokenBucket bytes;
  };
  mutable absl::Mutex mu_;
  std::unordered_map<std::string, Buckets> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_QUOTA_H_
