// Metrics handles, exposition, and the operations endpoint over loopback.
#include "consortia/metrics.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gtest/gtest.h"

namespace consortia {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

http::response<http::string_body> Get(uint16_t port, const std::string& target,
                                      http::verb verb = http::verb::get) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(verb, target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return res;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(MetricsTest, SerializesCountersGaugesAndHistograms) {
  MetricsRegistry reg;
  Counter c = reg.GetCounter("consortia_test_requests_total", "Requests.",
                             {{"route", "/v1/txs"}});
  c.Inc();
  c.Inc(2);
  Gauge g = reg.GetGauge("consortia_test_pending", "Pending txs.");
  g.Set(10);
  g.Add(-3);
  Histogram h = reg.GetHistogram("consortia_test_latency_seconds", "Latency.",
                                 LatencyBuckets());
  h.Observe(0.003);

  std::string text = reg.Serialize();
  EXPECT_TRUE(Contains(text, "# TYPE consortia_test_requests_total counter"));
  EXPECT_TRUE(
      Contains(text, "consortia_test_requests_total{route=\"/v1/txs\"} 3"));
  EXPECT_TRUE(Contains(text, "consortia_test_pending 7"));
  EXPECT_TRUE(
      Contains(text, "# TYPE consortia_test_latency_seconds histogram"));
  EXPECT_TRUE(Contains(text, "consortia_test_latency_seconds_count 1"));
  EXPECT_TRUE(
      Contains(text, "consortia_test_latency_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_TRUE(
      Contains(text, "consortia_test_latency_seconds_bucket{le=\"0.0025\"} 0"));
}

TEST(MetricsTest, SameNameAndLabelsIsTheSameSeries) {
  MetricsRegistry reg;
  reg.GetCounter("consortia_test_x_total", "X.", {{"k", "a"}}).Inc();
  reg.GetCounter("consortia_test_x_total", "X.", {{"k", "a"}}).Inc();
  reg.GetCounter("consortia_test_x_total", "X.", {{"k", "b"}}).Inc();
  std::string text = reg.Serialize();
  EXPECT_TRUE(Contains(text, "consortia_test_x_total{k=\"a\"} 2"));
  EXPECT_TRUE(Contains(text, "consortia_test_x_total{k=\"b\"} 1"));
}

TEST(MetricsTest, BadNamesAndDefaultHandlesAreNoOps) {
  MetricsRegistry reg;
  Counter bad = reg.GetCounter("not a valid name", "Bad.");
  bad.Inc();
  reg.GetCounter("consortia_test_dup", "As a counter.").Inc();
  Gauge clash = reg.GetGauge("consortia_test_dup", "As a gauge.");
  clash.Set(5);
  Counter c;
  c.Inc();
  Gauge g;
  g.Set(1);
  Histogram h;
  h.Observe(1);
  std::string text = reg.Serialize();
  EXPECT_FALSE(Contains(text, "not a valid name"));
  EXPECT_TRUE(Contains(text, "# TYPE consortia_test_dup counter"));
}

TEST(OpsServerTest, ServesMetricsHealthAndReadiness) {
  MetricsRegistry a;
  MetricsRegistry b;
  a.GetCounter("consortia_test_a_total", "A.").Inc(4);
  b.GetGauge("consortia_test_b", "B.").Set(9);
  std::atomic<bool> ready{false};
  auto ops =
      StartOpsServer("127.0.0.1", 0, {&a, &b}, [&] { return ready.load(); });
  ASSERT_TRUE(ops.ok()) << ops.status();
  uint16_t port = (*ops)->port();
  ASSERT_NE(port, 0);

  auto m = Get(port, "/metrics");
  EXPECT_EQ(m.result_int(), 200);
  EXPECT_EQ(m[http::field::content_type], "text/plain; version=0.0.4");
  EXPECT_TRUE(Contains(m.body(), "consortia_test_a_total 4"));
  EXPECT_TRUE(Contains(m.body(), "consortia_test_b 9"));

  EXPECT_EQ(Get(port, "/healthz").result_int(), 200);
  auto not_ready = Get(port, "/readyz");
  EXPECT_EQ(not_ready.result_int(), 503);
  EXPECT_EQ(not_ready[http::field::content_type], "application/problem+json");
  ready = true;
  EXPECT_EQ(Get(port, "/readyz").result_int(), 200);

  EXPECT_EQ(Get(port, "/nope").result_int(), 404);
  auto post = Get(port, "/metrics", http::verb::post);
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(post[http::field::allow], "GET");
}

TEST(OpsServerTest, ExpositionPassesPromtool) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed";
  }
  MetricsRegistry reg;
  reg.GetCounter("consortia_test_requests_total", "Requests served.",
                 {{"route", "/v1/txs"}, {"code", "202"}})
      .Inc();
  reg.GetGauge("consortia_test_pending_txs", "Pending txs.").Set(3);
  reg.GetHistogram("consortia_test_request_duration_seconds",
                   "Request latency.", LatencyBuckets(), {{"route", "x"}})
      .Observe(0.01);
  auto ops = StartOpsServer("127.0.0.1", 0, {&reg}, nullptr);
  ASSERT_TRUE(ops.ok()) << ops.status();
  auto m = Get((*ops)->port(), "/metrics");
  ASSERT_EQ(m.result_int(), 200);

  std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("consortia_metrics_" + std::to_string(getpid()) + ".txt");
  {
    std::ofstream out(file);
    out << m.body();
  }
  std::string cmd = "promtool check metrics < " + file.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) output += buf;
  int rc = pclose(p);
  std::filesystem::remove(file);
  EXPECT_EQ(rc, 0) << output << "\n--- exposition:\n" << m.body();
}

}  // namespace
}  // namespace consortia
