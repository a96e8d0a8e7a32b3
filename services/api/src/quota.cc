#include "quota.h"

#include <algorithm>
#include <cmath>

namespace consortia::api {

void TokenBucket::Refill(double rate, double burst, absl::Time now) {
  if (!started_) {
    started_ = true;
    tokens_ = burst;
    last_ = now;
    return;
  }
  if (now > last_) {
    tokens_ += rate * absl::ToDoubleSeconds(now - last_);
    last_ = now;
  }
  // Also after a reload that lowered the burst.
  tokens_ = std::min(tokens_, burst);
}

absl::Duration TokenBucket::WaitFor(double cost, double rate, double burst,
                                    absl::Time now) {
  Refill(rate, burst, now);
  const double needed = std::min(cost, burst);
  if (tokens_ >= needed) return absl::ZeroDuration();
  return absl::Seconds((needed - tokens_) / rate);
}

absl::Duration TokenBucket::Take(double cost, double rate, double burst,
                                 absl::Time now) {
  absl::Duration wait = WaitFor(cost, rate, burst, now);
  if (wait == absl::ZeroDuration()) Spend(cost);
  return wait;
}

int64_t RetryAfterSeconds(absl::Duration wait) {
  const double s = std::ceil(absl::ToDoubleSeconds(wait));
  if (!(s >= 1)) return 1;
  // A day at most: a quota so small that a key waits longer is a
  // configuration mistake, and the header must stay a sane number.
  return static_cast<int64_t>(std::min(s, 86400.0));
}

QuotaVerdict QuotaLimiter::Admit(const std::string& key_id,
                                 const OrgQuotas& quotas, uint64_t tx_bytes,
                                 absl::Time now) {
  absl::MutexLock l(&mu_);
  Buckets& b = buckets_[key_id];
  const double req_burst = static_cast<double>(quotas.requests_burst);
  const double byte_burst = static_cast<double>(quotas.tx_bytes_burst);
  const double bytes = static_cast<double>(tx_bytes);
  QuotaVerdict v;
  absl::Duration req_wait =
      b.requests.WaitFor(1, quotas.requests_per_s, req_burst, now);
  absl::Duration byte_wait =
      tx_bytes == 0
          ? absl::ZeroDuration()
          : b.bytes.WaitFor(bytes, quotas.tx_bytes_per_s, byte_burst, now);
  if (req_wait > absl::ZeroDuration()) {
    v.ok = false;
    v.quota = "requests";
  } else if (byte_wait > absl::ZeroDuration()) {
    v.ok = false;
    v.quota = "tx_bytes";
  }
  if (!v.ok) {
    v.retry_after = std::max(req_wait, byte_wait);
    return v;
  }
  b.requests.Spend(1);
  if (tx_bytes > 0) b.bytes.Spend(bytes);
  return v;
}

void QuotaLimiter::Retain(const std::set<std::string>& ids) {
  absl::MutexLock l(&mu_);
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (ids.count(it->first) == 0) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t QuotaLimiter::size() const {
  absl::MutexLock l(&mu_);
  return buckets_.size();
}

}  // namespace consortia::api
