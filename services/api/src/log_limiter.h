// Per-client rate limit for the api's log lines about bad requests, so that
// one client sending garbage cannot flood the log (or the disk under it).
#ifndef CONSORTIA_API_LOG_LIMITER_H_
#define CONSORTIA_API_LOG_LIMITER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace consortia::api {

// Each client address may log `lines` lines per `interval` (a fixed window
// that starts with its first line); further lines are suppressed and
// counted. The count is reported once: with the client's next allowed line,
// or by the sweep that forgets clients whose window has ended (see Allow).
// At most `max_clients` addresses are tracked; beyond that, new addresses
// share one bucket named "other".
//
// Thread-safe.
class LogLimiter {
 public:
  struct Verdict {
    bool log = false;  // write this line
    // Lines of this client suppressed since its last written line: to be
    // mentioned with this one (0 when none, or when !log).
    uint64_t suppressed_before = 0;
    // Other clients whose window ended with suppressed lines: (address,
    // count), to be summed up in the log now.
    std::vector<std::pair<std::string, uint64_t>> summaries;
  };

  LogLimiter(size_t lines, absl::Duration interval, size_t max_clients = 10000);

  // May `client` log a line at `now`? Sweeps expired windows at most once
  // per interval.
  Verdict Allow(const std::string& client, absl::Time now);

  // Lines suppressed since construction.
  uint64_t suppressed() const;

 private:
  struct Window {
    absl::Time start;
    size_t logged = 0;
    uint64_t suppressed = 0;
  };

  const size_t lines_;
  const absl::Duration interval_;
  const size_t max_clients_;
  mutable absl::Mutex mu_;
  std::unordered_map<std::string, Window> clients_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t suppressed_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_LOG_LIMITER_H_
