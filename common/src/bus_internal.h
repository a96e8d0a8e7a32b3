// Internals of bus.cc shared with its tests. Not part of the public API.
#ifndef CONSORTIA_COMMON_SRC_BUS_INTERNAL_H_
#define CONSORTIA_COMMON_SRC_BUS_INTERNAL_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace consortia::bus_internal {

// Send and receive high-water mark of every bus socket, in messages.
//
// ZeroMQ's default (1000) makes a PUB socket drop events and a ROUTER drop
// replies silently during a burst, which turns a short stall into gaps and
// timeouts. Bus messages carry batches, so 100000 queued messages is already
// far beyond normal load; memory stays bounded in practice by the callers'
// own limits (request deadlines, mempool and block size bounds) rather than by
// this mark.
inline constexpr int kHighWaterMark = 100000;

// How fast a DEALER/SUB reconnects after its peer went away: first retry
// after 100 ms, backing off to at most one attempt per second.
inline constexpr int kReconnectIvlMs = 100;
inline constexpr int kReconnectIvlMaxMs = 1000;

// Per-topic sequence tracking of a Subscriber: the gap rule as a pure
// function, so tests can drive it without sockets. Not thread-safe.
class SeqTracker {
 public:
  // Records that `seq` arrived on `topic` and returns how many sequence
  // numbers were skipped before it:
  //   - the first event of a topic: 0;
  //   - seq == last + 1: 0;
  //   - seq > last + 1: seq - last - 1;
  //   - seq <= last: the publisher restarted (its sequences start again at
  //     1), so the event is accepted, the topic's history is reset, and 0 is
  //     returned.
  uint64_t Observe(std::string_view topic, uint64_t seq) {
    auto it = last_.find(topic);
    if (it == last_.end()) {
      last_.emplace(std::string(topic), seq);
      return 0;
    }
    uint64_t last = it->second;
    it->second = seq;
    if (seq > last && seq - last > 1) return seq - last - 1;
    return 0;
  }

  // Forgets every topic (the next event of each reports 0 missed).
  void Reset() { last_.clear(); }

 private:
  std::map<std::string, uint64_t, std::less<>> last_;
};

}  // namespace consortia::bus_internal

#endif  // CONSORTIA_COMMON_SRC_BUS_INTERNAL_H_
