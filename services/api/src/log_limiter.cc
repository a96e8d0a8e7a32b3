#include "log_limiter.h"

#include <algorithm>

namespace consortia::api {

LogLimiter::LogLimiter(size_t lines, absl::Duration interval,
                       size_t max_clients)
    : lines_(std::max<size_t>(1, lines)),
      interval_(std::max(interval, absl::Milliseconds(1))),
      max_clients_(std::max<size_t>(1, max_clients)) {}

LogLimiter::Verdict LogLimiter::Allow(const std::string& client,
                                      absl::Time now) {
  Verdict v;
  absl::MutexLock l(&mu_);
  if (now - last_sweep_ >= interval_) {
    last_sweep_ = now;
    for (auto it = clients_.begin(); it != clients_.end();) {
      if (it->first != client && now - it->second.start >= interval_) {
        if (it->second.suppressed > 0) {
          v.summaries.emplace_back(it->first, it->second.suppressed);
        }
        it = clients_.erase(it);
      } else {
        ++it;
      }
    }
  }
  auto it = clients_.find(client);
  if (it == clients_.end()) {
    const std::string& key =
        clients_.size() < max_clients_ ? client : std::string("other");
    it = clients_.try_emplace(key, Window{now, 0, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start >= interval_) {
    // A new window: what the old one held back is reported with this line.
    v.suppressed_before = w.suppressed;
    w = Window{now, 0, 0};
  }
  if (w.logged < lines_) {
    ++w.logged;
    v.log = true;
    return v;
  }
  ++w.suppressed;
  ++suppressed_total_;
  v.log = false;
  v.suppressed_before = 0;
  return v;
}

uint64_t LogLimiter::suppressed() const {
  absl::MutexLock l(&mu_);
  return suppressed_total_;
}

}  // namespace consortia::api
