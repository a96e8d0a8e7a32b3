// End-to-end (issue 11, point 0): a node restarted after a heavy load comes
// back. A single-validator node, four real processes on loopback, commits
// more txs within its replay window (1,000 heights) than storage puts in one
// GetCommitted answer (kMaxCommittedTxsPerCall, 100,000), with the pool near
// full on the way; then it is stopped and started again on its data. Before
// the paging fix its mempool never became ready ("storage returned commit
// events up to height X, expected Y" forever).
//
// The load (121,600 kv txs from 64 senders, signed in bulk beforehand) is
// posted over a few keep-alive HTTP connections, each with many requests in
// flight (the api has no batch route), in two parts of at most 99,000 while
// consensus is paused, so that each part waits in the pool and is committed
// in blocks of 5,000. The phases' durations are printed (not asserted):
// about 40 s in all on 2 shared cores.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "consortia/http_client.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

// storage's GetCommitted limit (services/storage/src/ledger.h).
constexpr uint64_t kStorageTxsPerAnswer = 100000;
// The load: enough that the replay window holds more txs than one answer.
constexpr size_t kSenders = 64;           // the pool allows 10,000 per sender
constexpr size_t kTxsPerSender = 1900;    // 121,600 txs in all
constexpr uint64_t kReplayWindow = 1000;  // the mempool's default

// One HTTP/1.1 keep-alive connection to 127.0.0.1 that sends requests in
// pipelined rounds. Not thread-safe; test-only (no TLS, no chunked bodies).
class KeepAliveConn {
 public:
  explicit KeepAliveConn(uint16_t port) : port_(port) {}
  ~KeepAliveConn() { Close(); }

  // POSTs each body to `path` in one write and reads the answers in order:
  // their status codes, or an empty vector when the connection failed (the
  // caller sends the round again).
  std::vector<int> PostAll(const std::string& path,
                           const std::vector<const std::string*>& bodies) {
    if (fd_ < 0 && !Connect()) return {};
    std::string out;
    for (const std::string* b : bodies) {
      absl::StrAppend(&out, "POST ", path,
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: ",
                      b->size(), "\r\n\r\n", *b);
    }
    for (size_t sent = 0; sent < out.size();) {
      ssize_t n =
          ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        Close();
        return {};
      }
      sent += static_cast<size_t>(n);
    }
    std::vector<int> codes;
    for (size_t i = 0; i < bodies.size(); ++i) {
      int code = ReadResponse();
      if (code <= 0) {
        Close();
        return {};
      }
      codes.push_back(code);
    }
    return codes;
  }

 private:
  bool Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    buf_.clear();
    return true;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  bool Fill() {
    char tmp[64 * 1024];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  // The status of the next response (its body is skipped); 0 on failure.
  int ReadResponse() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return 0;
    }
    const std::string head = buf_.substr(0, end);
    int status = 0;
    size_t length = 0;
    bool first = true;
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      if (first) {
        first = false;
        std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
        if (parts.size() < 2 || !absl::SimpleAtoi(parts[1], &status)) return 0;
        continue;
      }
      const size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      if (name == "content-length") {
        absl::string_view v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        if (!absl::SimpleAtoi(v, &length)) return 0;
      }
    }
    while (buf_.size() < end + 4 + length) {
      if (!Fill()) return 0;
    }
    buf_.erase(0, end + 4 + length);
    return status;
  }

  const uint16_t port_;
  int fd_ = -1;
  std::string buf_;
};

double Seconds(absl::Time since) {
  return absl::ToDoubleSeconds(absl::Now() - since);
}

uint64_t LatestHeight(const NodeHarness& node) {
  auto r = node.Get("/v1/blocks/latest");
  if (!r.ok() || r->status != 200) return 0;
  return json::parse(r->body)["header"]["height"].get<uint64_t>();
}

// Txs committed in heights [from, to], summed from GET /v1/blocks pages.
uint64_t TxsCommittedIn(const NodeHarness& node, uint64_t from, uint64_t to) {
  uint64_t txs = 0;
  for (uint64_t next = from; next <= to;) {
    auto r = node.Get(absl::StrCat("/v1/blocks?limit=100&from=", next));
    if (!r.ok() || r->status != 200) {
      ADD_FAILURE() << "cannot list blocks from " << next;
      return txs;
    }
    json j = json::parse(r->body);
    for (const json& b : j["blocks"]) {
      if (b["height"].get<uint64_t>() <= to) {
        txs += b["tx_count"].get<uint64_t>();
      }
    }
    if (j["next_from"].is_null()) break;
    next = j["next_from"].get<uint64_t>();
  }
  return txs;
}

struct PostStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> retried{0};  // answered 429 or 503, sent again
  std::atomic<uint64_t> refused{0};
};

// Posts bodies[begin, end) to /v1/txs over kConns keep-alive connections,
// kRound requests in flight on each. A tx answered 429 (pool full) or 503
// goes into a later round again.
void PostRange(const NodeHarness& node, const std::vector<std::string>& bodies,
               size_t begin, size_t end, PostStats* stats) {
  constexpr size_t kConns = 8;
  constexpr size_t kRound = 128;
  std::vector<std::thread> posters;
  for (size_t c = 0; c < kConns; ++c) {
    posters.emplace_back([&, c] {
      KeepAliveConn conn(node.api().port);
      std::vector<size_t> todo;
      for (size_t i = begin + c; i < end; i += kConns) todo.push_back(i);
      const absl::Time deadline = absl::Now() + absl::Seconds(240);
      size_t next = 0;
      std::vector<size_t> again;
      while ((next < todo.size() || !again.empty()) && absl::Now() < deadline) {
        std::vector<size_t> round;
        while (round.size() < kRound && !again.empty()) {
          round.push_back(again.back());
          again.pop_back();
        }
        while (round.size() < kRound && next < todo.size()) {
          round.push_back(todo[next++]);
        }
        std::vector<const std::string*> batch;
        for (size_t i : round) batch.push_back(&bodies[i]);
        std::vector<int> codes = conn.PostAll("/v1/txs", batch);
        if (codes.empty()) {  // connection lost: send the round again
          again.insert(again.end(), round.begin(), round.end());
          absl::SleepFor(absl::Milliseconds(100));
          continue;
        }
        bool full = false;
        for (size_t k = 0; k < round.size(); ++k) {
          if (codes[k] == 202 || codes[k] == 200) {
            stats->accepted.fetch_add(1);
          } else if (codes[k] == 429 || codes[k] == 503) {
            again.push_back(round[k]);
            stats->retried.fetch_add(1);
            full = true;
          } else if (stats->refused.fetch_add(1) == 0) {
            ADD_FAILURE() << "first refusal: HTTP " << codes[k];
          }
        }
        if (full) absl::SleepFor(absl::Milliseconds(50));
      }
    });
  }
  for (std::thread& t : posters) t.join();
}

// The mempool's pool size (consortia_mempool_pool_txs), or 0.
uint64_t PoolTxs(const NodeHarness& node) {
  auto r = HttpCall(node.ops().at("consortia-mempool"), "GET", "/metrics");
  if (!r.ok() || r->status != 200) return 0;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (!absl::ConsumePrefix(&line, "consortia_mempool_pool_txs ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return static_cast<uint64_t>(v);
  }
  return 0;
}

TEST(RestartLoadTest, NodeComesBackAfterAReplayWindowOverOneStorageAnswer) {
  TempDir dir;
  NodeHarness node(dir.path());
  ASSERT_TRUE(node.Start().ok()) << node.LogTail();
  const std::string chain = node.genesis().chain_id;
  const uint64_t h0 = std::max<uint64_t>(LatestHeight(node), 1);

  // Sign every tx beforehand, on two threads.
  const absl::Time sign_start = absl::Now();
  const size_t total = kSenders * kTxsPerSender;
  std::vector<std::string> bodies(total);
  {
    std::vector<std::thread> signers;
    for (int t = 0; t < 2; ++t) {
      signers.emplace_back([&, t] {
        for (size_t s = t; s < kSenders; s += 2) {
          const KeyPair key = TestKey(static_cast<uint8_t>(s + 1));
          for (size_t i = 0; i < kTxsPerSender; ++i) {
            // Interleaved by sender, so the pool fills evenly.
            Transaction tx = SignedTx(
                key, chain, i + 1, h0 + kReplayWindow - 100, "kv", "set",
                {absl::StrCat("load/", s, "/", i), absl::StrCat("value-", i)});
            bodies[i * kSenders + s] = TxToJson(tx);
          }
        }
      });
    }
    for (std::thread& t : signers) t.join();
  }
  const double sign_s = Seconds(sign_start);

  // A single validator makes its next block as soon as the last one is
  // committed, so a load posted at the api's pace would spread over
  // thousands of small blocks. To pack it into a few dozen heights, the way
  // a faster client would, consensus is paused (SIGKILL, then started again
  // on its WAL) while each part is posted: the pool fills up to nearly its
  // 100,000 txs, and consensus then drains it in blocks of 5,000.
  constexpr size_t kPart = 99000;  // under the pool's 100,000
  PostStats stats;
  uint64_t max_pool = 0;
  double post_s = 0;
  const absl::Time load_start = absl::Now();
  uint64_t tip = 0;
  uint64_t committed = 0;
  for (size_t begin = 0; begin < total; begin += kPart) {
    const size_t end = std::min(total, begin + kPart);
    ASSERT_TRUE(node.Kill({"consortia-consensus"}).ok()) << node.LogTail();
    const absl::Time post_start = absl::Now();
    PostRange(node, bodies, begin, end, &stats);
    post_s += Seconds(post_start);
    ASSERT_EQ(stats.refused.load(), 0u) << node.LogTail();
    ASSERT_EQ(stats.accepted.load(), end) << node.LogTail();
    max_pool = std::max(max_pool, PoolTxs(node));
    ASSERT_TRUE(node.Restart().ok()) << node.LogTail();
    // Wait until the part is committed.
    const absl::Time deadline = absl::Now() + absl::Seconds(180);
    while (absl::Now() < deadline) {
      tip = LatestHeight(node);
      committed = TxsCommittedIn(node, h0 + 1, tip);
      if (committed >= end) break;
      absl::SleepFor(absl::Milliseconds(250));
    }
    ASSERT_EQ(committed, end) << node.LogTail();
  }
  const double load_s = Seconds(load_start);
  // The premise: the replay window that the restarted mempool rebuilds
  // holds more txs than one storage answer, with the pool near full on the
  // way.
  const uint64_t in_window = TxsCommittedIn(
      node, tip > kReplayWindow ? tip - kReplayWindow + 1 : 1, tip);
  ASSERT_GT(in_window, kStorageTxsPerAnswer);
  EXPECT_GE(max_pool, kPart * 9 / 10);

  // Stop the node (a clean signal, as Ctrl-C), start it on its data.
  ASSERT_TRUE(node.Stop().ok()) << node.LogTail();
  const absl::Time restart_start = absl::Now();
  absl::Status started = node.Start(absl::Seconds(90));
  const double restart_s = Seconds(restart_start);
  ASSERT_TRUE(started.ok()) << started;

  // It keeps committing...
  const uint64_t after = LatestHeight(node);
  EXPECT_GE(after, tip);
  bool progressed = false;
  for (const absl::Time d = absl::Now() + absl::Seconds(60); absl::Now() < d;) {
    if (LatestHeight(node) >= after + 3) {
      progressed = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(progressed) << node.LogTail();

  // ...and remembers what it committed before the restart: the first and
  // the last txs posted (the last ones sit beyond storage's first answer)
  // are refused as already committed (409).
  std::vector<const std::string*> resend;
  for (size_t i = 0; i < 300; ++i) resend.push_back(&bodies[i]);
  for (size_t i = total - 300; i < total; ++i) resend.push_back(&bodies[i]);
  KeepAliveConn conn(node.api().port);
  std::vector<int> codes = conn.PostAll("/v1/txs", resend);
  ASSERT_EQ(codes.size(), resend.size());
  size_t already_committed = 0;
  for (int code : codes) already_committed += code == 409 ? 1 : 0;
  EXPECT_EQ(already_committed, resend.size());
  auto one = node.Post("/v1/txs", bodies[total - 1]);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->status, 409) << one->body;
  EXPECT_NE(one->body.find("already-committed"), std::string::npos)
      << one->body;

  std::printf(
      "restart under load: %zu txs committed in heights %llu..%llu (%llu in "
      "the last %llu); signing %.1f s, posting %.1f s, load in all %.1f s "
      "(%llu posts retried after 429/503, pool at most %llu txs), restart "
      "to ready %.1f s\n",
      total, static_cast<unsigned long long>(h0 + 1),
      static_cast<unsigned long long>(tip),
      static_cast<unsigned long long>(in_window),
      static_cast<unsigned long long>(kReplayWindow), sign_s, post_s, load_s,
      static_cast<unsigned long long>(stats.retried.load()),
      static_cast<unsigned long long>(max_pool), restart_s);
}

}  // namespace
}  // namespace consortia::testing
