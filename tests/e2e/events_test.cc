// End-to-end (issue 13, point 3): the resumable event stream GET /v1/events
// on a real node (four processes).
//   - a client reads events, disconnects, resumes with Last-Event-ID and
//     gets exactly the events it missed: no gap, no duplicate, checked by
//     ids (every height's block event, every tx event of each block) and by
//     the hashes of the txs the test submitted; the same across a restart of
//     the api process;
//   - load: many idle keep-alive connections and 100 open streams while
//     submissions and queries still succeed (counts, never timing).
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

struct Event {
  std::string id;
  std::string event;
  std::string data;
};

// An SSE client over HTTP/1.0 (the body is then not chunked).
class SseClient {
 public:
  SseClient(uint16_t port, const std::string& target,
            const std::string& last_event_id = "") {
    fd_ = Connect(port);
    std::string req =
        absl::StrCat("GET ", target, " HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    if (!last_event_id.empty()) {
      absl::StrAppend(&req, "Last-Event-ID: ", last_event_id, "\r\n");
    }
    absl::StrAppend(&req, "\r\n");
    if (fd_ >= 0 && !SendAll(fd_, req)) Close();
  }
  ~SseClient() { Close(); }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool open() const { return fd_ >= 0; }

  // Reads until done(events) holds; false when the stream ends or `timeout`
  // passes first.
  template <typename F>
  bool ReadUntil(F done, absl::Duration timeout = absl::Seconds(40)) {
    absl::Time deadline = absl::Now() + timeout;
    while (!done(events_)) {
      if (fd_ < 0) return false;
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)));
      if (r <= 0) continue;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        Close();
        return done(events_);
      }
      raw_.append(buf, static_cast<size_t>(n));
      Parse();
    }
    return true;
  }

  const std::vector<Event>& events() const { return events_; }
  int status() const { return status_; }
  // The answer's status line and header fields, lower-cased.
  const std::string& head() const { return head_; }
  bool saw_heartbeat() const { return heartbeats_ > 0; }

 private:
  void Parse() {
    if (!header_done_) {
      size_t end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      std::string head = raw_.substr(0, end);
      head_ = absl::AsciiStrToLower(head);
      std::vector<std::string> words = absl::StrSplit(head, ' ');
      if (words.size() >= 2) (void)absl::SimpleAtoi(words[1], &status_);
      raw_.erase(0, end + 4);
      header_done_ = true;
    }
    size_t end;
    while ((end = raw_.find("\n\n")) != std::string::npos) {
      std::string block = raw_.substr(0, end);
      raw_.erase(0, end + 2);
      Event e;
      bool any = false;
      for (absl::string_view line : absl::StrSplit(block, '\n')) {
        if (absl::StartsWith(line, ":")) {
          ++heartbeats_;
        } else if (absl::StartsWith(line, "id: ")) {
          e.id = std::string(line.substr(4));
          any = true;
        } else if (absl::StartsWith(line, "event: ")) {
          e.event = std::string(line.substr(7));
          any = true;
        } else if (absl::StartsWith(line, "data: ")) {
          e.data = std::string(line.substr(6));
        }
      }
      if (any) events_.push_back(std::move(e));
    }
  }

  int fd_ = -1;
  std::string raw_;
  bool header_done_ = false;
  std::string head_;
  int status_ = 0;
  int heartbeats_ = 0;
  std::vector<Event> events_;
};

std::pair<uint64_t, uint64_t> SplitId(const std::string& id) {
  std::vector<std::string> p = absl::StrSplit(id, '-');
  uint64_t h = 0, i = 0;
  if (p.size() == 2) {
    (void)absl::SimpleAtoi(p[0], &h);
    (void)absl::SimpleAtoi(p[1], &i);
  }
  return {h, i};
}

// The tx hashes among `events`.
std::set<std::string> TxHashes(const std::vector<Event>& events) {
  std::set<std::string> out;
  for (const Event& e : events) {
    if (e.event == "tx") out.insert(json::parse(e.data)["tx_hash"]);
  }
  return out;
}

bool HasAll(const std::vector<Event>& events,
            const std::vector<std::string>& hashes) {
  std::set<std::string> got = TxHashes(events);
  for (const std::string& h : hashes) {
    if (got.count(h) == 0) return false;
  }
  return true;
}

// The id of the last event that is a block or tx event.
std::string LastId(const std::vector<Event>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (!it->id.empty()) return it->id;
  }
  return "";
}

// Checks that `events` (concatenated streams) hold every event from height
// `first` through the last block seen, each once, in id order: per height
// the block event, then its tx_count tx events. Unfiltered streams only.
void ExpectComplete(const std::vector<Event>& events, uint64_t first) {
  std::vector<std::pair<uint64_t, uint64_t>> ids;
  std::map<uint64_t, uint64_t> tx_count;
  for (const Event& e : events) {
    if (e.id.empty()) continue;
    ids.push_back(SplitId(e.id));
    if (e.event == "block") {
      tx_count[ids.back().first] = json::parse(e.data)["tx_count"];
    }
  }
  ASSERT_FALSE(ids.empty());
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << "ids out of order or repeated at " << i;
  }
  std::vector<std::pair<uint64_t, uint64_t>> expected;
  const uint64_t last = ids.back().first;
  for (uint64_t h = first; h <= last; ++h) {
    ASSERT_EQ(tx_count.count(h), 1u) << "no block event for height " << h;
    for (uint64_t i = 0; i <= tx_count[h]; ++i) {
      if (h == last && std::make_pair(h, i) > ids.back()) break;
      expected.push_back({h, i});
    }
  }
  EXPECT_EQ(ids, expected);
}

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NodeHarnessOptions opts;
    opts.extra_flags["consortia-api"] = {
        "--api_events_poll_ms=50", "--api_events_heartbeat_ms=500",
        "--api_max_connections_per_client=2000"};
    node_ = std::make_unique<NodeHarness>(dir_.path(), opts);
    ASSERT_TRUE(node_->Start().ok()) << node_->LogTail();
    chain_ = node_->genesis().chain_id;
  }

  uint64_t Height() {
    auto h = node_->CurrentHeight();
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *h : 0;
  }

  // Submits n txs; their hashes.
  std::vector<std::string> Submit(int n) {
    uint64_t h = Height();
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      Transaction tx =
          SignedTx(client_, chain_, nonce_++, h + 100, "kv", "set",
                   {absl::StrCat("key-", nonce_), absl::StrCat("v", i)});
      auto r = node_->Post("/v1/txs", TxToJson(tx));
      EXPECT_TRUE(r.ok() && r->status == 202) << (r.ok() ? r->body : "");
      out.push_back(ToHex(TxHash(Ed25519Sha256(), tx)));
    }
    return out;
  }

  uint16_t port() const { return node_->api().port; }

  TempDir dir_;
  std::unique_ptr<NodeHarness> node_;
  std::string chain_;
  KeyPair client_ = TestKey(9);
  uint64_t nonce_ = 5000;
};

TEST_F(EventsTest, ResumeWithLastEventIdMissesNothingAcrossAnApiRestart) {
  const uint64_t start = Height() + 1;
  const std::string target = absl::StrCat("/v1/events?from_height=", start);
  std::vector<Event> all;

  // 1. Read the first batch's events, then go away.
  std::vector<std::string> batch1 = Submit(5);
  {
    SseClient a(port(), target);
    ASSERT_TRUE(a.ReadUntil([&](auto& ev) { return HasAll(ev, batch1); }))
        << node_->LogTail();
    EXPECT_EQ(a.status(), 200);
    // Nothing between the api and the client may cache or buffer it.
    EXPECT_NE(a.head().find("\r\ncache-control: no-cache"), std::string::npos)
        << a.head();
    EXPECT_NE(a.head().find("\r\nx-accel-buffering: no"), std::string::npos)
        << a.head();
    all = a.events();
  }
  const std::string last1 = LastId(all);

  // 2. Missed while away: the second batch. Resume after the last id.
  std::vector<std::string> batch2 = Submit(5);
  {
    SseClient b(port(), target, last1);
    ASSERT_TRUE(b.ReadUntil([&](auto& ev) { return HasAll(ev, batch2); }));
    ASSERT_FALSE(b.events().empty());
    EXPECT_GT(SplitId(b.events().front().id), SplitId(last1));
    all.insert(all.end(), b.events().begin(), b.events().end());
  }
  const std::string last2 = LastId(all);

  // 3. The api restarts (blocks go on meanwhile); resume again.
  ASSERT_TRUE(node_->Kill({"consortia-api"}).ok());
  ASSERT_TRUE(node_->Restart().ok()) << node_->LogTail();
  std::vector<std::string> batch3 = Submit(5);
  {
    SseClient c(port(), target, last2);
    ASSERT_TRUE(c.ReadUntil([&](auto& ev) { return HasAll(ev, batch3); }));
    EXPECT_GT(SplitId(c.events().front().id), SplitId(last2));
    // Heartbeats keep a quiet stream alive.
    EXPECT_TRUE(c.ReadUntil([&](auto&) { return c.saw_heartbeat(); }));
    all.insert(all.end(), c.events().begin(), c.events().end());
  }

  // No gap, no duplicate: every height's events once, in order, and each
  // submitted tx exactly once.
  ExpectComplete(all, start);
  std::vector<std::string> tx_hashes;
  for (const Event& e : all) {
    if (e.event == "tx") {
      json j = json::parse(e.data);
      tx_hashes.push_back(j["tx_hash"]);
      EXPECT_EQ(j["app"], "kv");
      EXPECT_EQ(j["result"]["code_name"], "ok") << e.data;
    }
  }
  std::vector<std::string> submitted = batch1;
  submitted.insert(submitted.end(), batch2.begin(), batch2.end());
  submitted.insert(submitted.end(), batch3.begin(), batch3.end());
  std::sort(tx_hashes.begin(), tx_hashes.end());
  std::sort(submitted.begin(), submitted.end());
  EXPECT_EQ(tx_hashes, submitted);
}

TEST_F(EventsTest, BadParametersAre400) {
  auto r = node_->Get("/v1/events?from_height=x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  r = node_->Get("/v1/events?sender=zz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
}

// Idle keep-alive connections and open streams cost no thread: requests
// still succeed while they are open, and every stream gets the new block.
TEST_F(EventsTest, IdleConnectionsAndOpenStreamsDoNotStopRequests) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  const size_t kIdle =
      std::min<size_t>(1000, lim.rlim_cur > 1400 ? 1000 : lim.rlim_cur / 2);
  constexpr size_t kStreams = 100;

  std::vector<int> idle;
  for (size_t i = 0; i < kIdle; ++i) {
    int fd = Connect(port());
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  std::vector<std::unique_ptr<SseClient>> streams;
  for (size_t i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<SseClient>(port(), "/v1/events"));
    ASSERT_TRUE(streams.back()->open());
  }
  // Submissions and queries succeed meanwhile.
  std::vector<std::string> hashes = Submit(10);
  for (int i = 0; i < 10; ++i) {
    auto r = node_->Get("/v1/blocks/latest");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  }
  // Every stream follows the chain: each gets the txs submitted.
  size_t complete = 0;
  for (auto& s : streams) {
    if (s->ReadUntil([&](auto& ev) { return HasAll(ev, hashes); })) {
      ++complete;
    }
  }
  EXPECT_EQ(complete, kStreams);
  // The idle connections are still open (not refused, not timed out).
  size_t still_open = 0;
  for (int fd : idle) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) ++still_open;  // nothing to read: no EOF
  }
  EXPECT_EQ(still_open, kIdle);
  for (int fd : idle) ::close(fd);
}

}  // namespace
}  // namespace consortia::testing
