// The proposer's view of time, behind an interface so that tests control it.
#ifndef CONSORTIA_CONSENSUS_SRC_CLOCK_H_
#define CONSORTIA_CONSENSUS_SRC_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace consortia::consensus {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system's wall clock.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_CLOCK_H_
