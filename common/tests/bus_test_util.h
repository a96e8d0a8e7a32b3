// Helpers shared by the bus tests: counting metrics, unique endpoints and a
// bounded wait.
#ifndef CONSORTIA_COMMON_TESTS_BUS_TEST_UTIL_H_
#define CONSORTIA_COMMON_TESTS_BUS_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consortia/bus.h"
#include "gtest/gtest.h"

namespace consortia::testing {

// BusMetrics that counts every call. Thread-safe.
class CountingMetrics : public BusMetrics {
 public:
  void MalformedDropped() override { malformed++; }
  void UnknownTypeDropped() override { unknown_type++; }
  void RequestTimedOut() override { timed_out++; }
  void EventGap(uint64_t missed) override {
    gaps++;
    missed_total += missed;
  }
  void LateReplyDropped() override { late++; }
  void RequestsLostToDisconnect(uint64_t n) override { lost += n; }
  void OversizedDropped() override { oversized++; }
  void ClientDisconnected() override { disconnected++; }

  std::atomic<int> malformed{0};
  std::atomic<int> unknown_type{0};
  std::atomic<int> timed_out{0};
  std::atomic<int> gaps{0};
  std::atomic<uint64_t> missed_total{0};
  std::atomic<uint64_t> lost{0};
  std::atomic<int> late{0};
  std::atomic<int> oversized{0};
  std::atomic<int> disconnected{0};
};

// Polls `cond` until it holds or 30 s pass; returns its last value.
inline bool WaitFor(const std::function<bool()>& cond,
                    absl::Duration limit = absl::Seconds(30)) {
  absl::Time end = absl::Now() + limit;
  while (!cond()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// An inproc endpoint no other test uses.
inline std::string UniqueInproc(std::string_view what) {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat("inproc://", info->test_suite_name(), ".", info->name(),
                      ".", std::string(what), ".", counter++);
}

// A tcp endpoint on 127.0.0.1 whose port was free a moment ago (the kernel
// picked it for a socket that is then closed).
inline std::string FreeTcpEndpoint() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return absl::StrCat("tcp://127.0.0.1:", ntohs(addr.sin_port));
}

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTS_BUS_TEST_UTIL_H_
