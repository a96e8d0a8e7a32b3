// End-to-end, issue 11 point 4 ("the HTTP edge holds"): a real node (one
// consortia-node process) whose api is attacked from 127.0.0.2 and up with
// 5,000 idle connections and a flood of GET /v1/txs/{random} from
// connections that close without waiting, while an honest client on
// 127.0.0.1 keeps getting /healthz answers and a signed tx committed.
//
// Asserts progress and counters only. The /healthz latencies with and
// without the attack are measured and printed (RecordProperty and stdout),
// never asserted.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using nlohmann::json;

constexpr int kIdleConnections = 5000;
// Idle attackers use 127.0.0.2..11, flooders 127.0.0.12..20.
constexpr int kIdleAddresses = 10;
constexpr int kFirstFloodAddress = 12;
constexpr int kLastFloodAddress = 20;
constexpr int kPerClientCap = 200;
constexpr int kFloodThreads = 3;
constexpr int kHealthzProbes = 100;
// The attack lasts until the flooders have sent this many requests (or 60 s
// have passed), while the honest client keeps probing.
constexpr uint64_t kFloodRequests = 20000;

std::string Loopback(int last) { return absl::StrCat("127.0.0.", last); }

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit.
uint64_t RaiseFiles() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

// The value of the metric line starting with `name_and_labels` in a
// Prometheus text page (0 when absent).
double Metric(const std::string& page, const std::string& name_and_labels) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.size() > name_and_labels.size() &&
        line.substr(0, name_and_labels.size()) == name_and_labels &&
        line[name_and_labels.size()] == ' ') {
      return std::stod(std::string(line.substr(name_and_labels.size() + 1)));
    }
  }
  return 0;
}

struct Latencies {
  int answered = 0;
  std::vector<double> ms;
  std::string Describe() {
    if (ms.empty()) return "no answers";
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) {
      return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
    };
    return absl::StrCat("n=", ms.size(), " p50=", at(0.5), "ms p99=", at(0.99),
                        "ms max=", ms.back(), "ms");
  }
};

// /healthz `n` times from 127.0.0.1, one connection each.
Latencies ProbeHealthz(const NodeHarness& node, int n) {
  Latencies l;
  for (int i = 0; i < n; ++i) {
    absl::Time start = absl::Now();
    auto r = HttpCall(node.api(), "GET", "/healthz", "", "application/json",
                      absl::Seconds(30));
    if (r.ok() && r->status == 200) {
      ++l.answered;
      l.ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
  }
  return l;
}

TEST(HttpFloodTest, HealthzAndCommitsSurviveIdleConnectionsAndAQueryFlood) {
  uint64_t files = RaiseFiles();
  if (files < kIdleConnections + 2000) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << files << " too low";
  }
  TempDir dir;
  NodeHarnessOptions options;
  options.single_process = true;
  options.extra_flags["consortia-node"] = {
      absl::StrCat("--api_max_connections_per_client=", kPerClientCap),
      "--api_query_threads=2", "--api_query_queue_max=64",
      // Idle attackers are not timed out during the test: the caps alone
      // must hold them.
      "--api_idle_timeout_ms=600000"};
  NodeHarness node(dir.path(), options);
  ASSERT_TRUE(node.Start().ok()) << node.LogTail();
  const HttpTarget& ops = node.ops().at("consortia-node");
  auto metrics = [&] {
    auto r = HttpCall(ops, "GET", "/metrics");
    return r.ok() ? r->body : std::string();
  };

  Latencies calm = ProbeHealthz(node, kHealthzProbes);
  EXPECT_EQ(calm.answered, kHealthzProbes);

  // 5,000 idle connections, 500 from each of ten addresses.
  asio::io_context ioc;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  tcp::endpoint api(asio::ip::make_address("127.0.0.1"), node.api().port);
  int idle_opened = 0;
  for (int i = 0; i < kIdleConnections; ++i) {
    auto s = std::make_unique<tcp::socket>(ioc);
    boost::system::error_code ec;
    s->open(tcp::v4(), ec);
    if (!ec) {
      s->bind(tcp::endpoint(
                  asio::ip::make_address(Loopback(2 + i % kIdleAddresses)), 0),
              ec);
    }
    if (!ec) s->connect(api, ec);
    if (!ec) ++idle_opened;
    idle.push_back(std::move(s));
  }
  EXPECT_EQ(idle_opened, kIdleConnections);

  // The flood: ask for a random tx, hang up at once, again.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> flood_sent{0};
  std::vector<std::thread> flooders;
  for (int t = 0; t < kFloodThreads; ++t) {
    flooders.emplace_back([&, t] {
      asio::io_context fioc;
      std::mt19937_64 rng(t + 1);
      int address = kFirstFloodAddress + t;
      while (!stop.load()) {
        address =
            address >= kLastFloodAddress ? kFirstFloodAddress : address + 1;
        tcp::socket s(fioc);
        boost::system::error_code ec;
        s.open(tcp::v4(), ec);
        if (!ec) {
          s.bind(tcp::endpoint(asio::ip::make_address(Loopback(address)), 0),
                 ec);
        }
        if (!ec) s.connect(api, ec);
        if (ec) continue;
        Hash32 h;
        for (auto& b : h) b = static_cast<uint8_t>(rng());
        std::string req = absl::StrCat("GET /v1/txs/", ToHex(ByteView(h)),
                                       " HTTP/1.1\r\nHost: x\r\n\r\n");
        asio::write(s, asio::buffer(req), ec);
        if (!ec) ++flood_sent;
        s.close(ec);
      }
    });
  }
  auto stop_flood = [&] {
    stop = true;
    for (std::thread& t : flooders) t.join();
    flooders.clear();
  };

  // The honest client, under attack.
  Latencies attacked = ProbeHealthz(node, kHealthzProbes);
  uint64_t height = 1;
  if (auto r = node.Get("/v1/blocks/latest"); r.ok() && r->status == 200) {
    height = json::parse(r->body)["header"]["height"].get<uint64_t>();
  }
  Transaction tx = SignedTx(TestKey(9), node.genesis().chain_id, 1,
                            height + 1000, "kv", "set", {"flood", "survived"});
  Hash32 hash = TxHash(Ed25519Sha256(), tx);
  int submit_status = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && submit_status != 202) {
    auto r = node.Post("/v1/txs", TxToJson(tx));
    if (r.ok()) submit_status = r->status;
    if (submit_status != 202) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(submit_status, 202);
  // Committed: polled through the same api (a 503 "overloaded" is retried,
  // as Retry-After asks).
  bool committed = false;
  int overloaded_polls = 0;
  while (absl::Now() < deadline && !committed) {
    auto r = node.Get("/v1/txs/" + ToHex(ByteView(hash)));
    if (r.ok() && r->status == 200) committed = true;
    if (r.ok() && r->status == 503) ++overloaded_polls;
    if (!committed) absl::SleepFor(absl::Milliseconds(50));
  }
  // Keep probing while the flood goes on (it runs until stop_flood, so at
  // least one round of probes meets it even when the flood reached its
  // count before the commit).
  Latencies attacked_after;
  int after_probes = 0;
  do {
    Latencies more = ProbeHealthz(node, 10);
    after_probes += 10;
    attacked_after.answered += more.answered;
    attacked_after.ms.insert(attacked_after.ms.end(), more.ms.begin(),
                             more.ms.end());
    if (more.answered != 10) break;
  } while (flood_sent.load() < kFloodRequests && absl::Now() < deadline);
  std::string page = metrics();
  stop_flood();

  EXPECT_TRUE(committed) << node.LogTail();
  EXPECT_EQ(attacked.answered, kHealthzProbes);
  EXPECT_GT(after_probes, 0);
  EXPECT_EQ(attacked_after.answered, after_probes);
  EXPECT_GT(flood_sent.load(), 0u);

  double refused_per_client = Metric(
      page,
      "consortia_api_connections_refused_total{reason=\"max_connections_per_"
      "client\"}");
  double dropped = Metric(page, "consortia_api_dropped_closed_total");
  double pool_full = Metric(page, "consortia_api_query_pool_full_total");
  double gone = Metric(
      page, "consortia_api_connections_cut_total{reason=\"client_gone\"}");
  double open = Metric(page, "consortia_api_open_connections");
  // The per-address cap shed the idle attackers: each of the ten addresses
  // holds at most the cap.
  EXPECT_GE(refused_per_client,
            kIdleConnections - kIdleAddresses * kPerClientCap);
  EXPECT_GE(open, kIdleAddresses * kPerClientCap);
  // The flood was shed too: queued work for closed connections dropped, or
  // refused outright while the query queue was full.
  EXPECT_GT(dropped + pool_full + gone, 0);

  std::string report = absl::StrCat(
      "healthz calm: ", calm.Describe(),
      "; under attack: ", attacked.Describe(),
      "; under attack after the commit: ", attacked_after.Describe(),
      "; flood requests sent: ", flood_sent.load(),
      "; refused per client: ", refused_per_client, "; client gone: ", gone,
      "; dropped for closed connections: ", dropped,
      "; 503 pool full: ", pool_full, "; open connections: ", open,
      "; honest tx polls answered 503: ", overloaded_polls);
  std::printf("http flood: %s\n", report.c_str());
  ::testing::Test::RecordProperty("http_flood", report);

  idle.clear();
  absl::Status s = node.Stop();
  EXPECT_TRUE(s.ok()) << s << "\n" << node.LogTail();
}

}  // namespace
}  // namespace consortia::testing
