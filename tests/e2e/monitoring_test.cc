// End-to-end (issue 15, point 4): Debian's real Prometheus server scrapes a
// running 4-validator network on loopback, with monitoring/alerts.yml
// loaded, and through its HTTP API the test checks that
//   - every metric name a dashboard panel or an alert rule uses exists as a
//     series (a renamed metric fails here),
//   - every panel expression evaluates without error,
//   - every alert rule is healthy and its expression, thresholds removed,
//     evaluates without error (and returns series, but for the one that
//     needs 5xx answers);
// then it stops one validator and sees its targets go down, the matching
// real alerts go pending, and a test-only copy of the process-down rule with
// a short `for` fire. Prometheus runs as a child process of the test and is
// stopped by its pid; scrape and evaluation every second.
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "consortia/config.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/tx_json.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "monitoring_files.h"
#include "network_harness.h"
#include "nlohmann/json.hpp"

namespace consortia::testing {
namespace {

using nlohmann::json;

// The whole test stays under 90 s: every wait takes at most what is left of
// this budget (processes are stopped after it, by their pids).
const absl::Time& Deadline() {
  static const absl::Time d = absl::Now() + absl::Seconds(80);
  return d;
}
absl::Duration Budget(absl::Duration want) {
  return std::max(absl::ZeroDuration(),
                  std::min(want, Deadline() - absl::Now()));
}

std::string FormEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The Prometheus server: started by Start, stopped (SIGTERM, by its pid)
// by the destructor.
class Prometheus {
 public:
  absl::Status Start(const std::string& dir, const std::string& config) {
    dir_ = dir;
    absl::StatusOr<uint16_t> port = PickFreePort();
    if (!port.ok()) return port.status();
    target_ = HttpTarget{"127.0.0.1", *port, ""};
    absl::StatusOr<ChildProcess> p = ChildProcess::Start(
        {"/usr/bin/prometheus", "--config.file=" + config,
         "--storage.tsdb.path=" + dir + "/tsdb",
         absl::StrCat("--web.listen-address=127.0.0.1:", *port),
         "--web.enable-lifecycle", "--log.level=warn"},
        dir + "/prometheus.log");
    if (!p.ok()) return p.status();
    proc_.emplace(*std::move(p));
    const bool ready = NetworkHarness::WaitUntil(
        [&] {
          auto r = HttpCall(target_, "GET", "/-/ready");
          return r.ok() && r->status == 200;
        },
        Budget(absl::Seconds(30)));
    if (!ready) {
      return absl::UnavailableError("prometheus not ready:\n" + Log());
    }
    return absl::OkStatus();
  }
  ~Prometheus() {
    if (proc_.has_value()) proc_->Stop(absl::Seconds(10));
  }

  // GET an API path; the "data" member, or null (with the reason in
  // *error) when the call or the query failed.
  json Get(const std::string& path, std::string* error = nullptr) const {
    return Data(HttpCall(target_, "GET", path), error);
  }
  json Query(const std::string& promql, std::string* error = nullptr) const {
    return Data(HttpCall(target_, "POST", "/api/v1/query",
                         "query=" + FormEncode(promql),
                         "application/x-www-form-urlencoded"),
                error);
  }
  bool Reload() const {
    auto r = HttpCall(target_, "POST", "/-/reload", "", "text/plain");
    return r.ok() && r->status == 200;
  }
  std::string Log() const {
    std::string t = ReadAll(dir_ + "/prometheus.log");
    return t.size() > 3000 ? t.substr(t.size() - 3000) : t;
  }

 private:
  static json Data(const absl::StatusOr<HttpResult>& r, std::string* error) {
    std::string ignored;
    std::string& err = error != nullptr ? *error : ignored;
    if (!r.ok()) {
      err = std::string(r.status().message());
      return nullptr;
    }
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_object() || j.value("status", std::string()) != "success") {
      err = absl::StrCat("HTTP ", r->status, ": ", r->body);
      return nullptr;
    }
    return j["data"];
  }

  std::string dir_;
  HttpTarget target_;
  std::optional<ChildProcess> proc_;
};

std::string SecretIn(const std::string& out) {
  size_t at = out.find("csk_");
  if (at == std::string::npos) return "";
  size_t end = out.find_first_of(" \n", at);
  return out.substr(at, end == std::string::npos ? end : end - at);
}

// The alerting rules Prometheus loaded, by name.
std::map<std::string, json> AlertingRules(const Prometheus& prom) {
  std::map<std::string, json> out;
  json data = prom.Get("/api/v1/rules?type=alert");
  if (!data.is_object()) return out;
  for (const json& g : data["groups"]) {
    for (const json& r : g["rules"]) out[r.value("name", "")] = r;
  }
  return out;
}

// Whether an alert named `name` with node=`node` is in `state`
// ("pending" or "firing"; "" for either).
bool AlertIs(const Prometheus& prom, const std::string& name,
             const std::string& node, const std::string& state) {
  json data = prom.Get("/api/v1/alerts");
  if (!data.is_object()) return false;
  for (const json& a : data["alerts"]) {
    const json& l = a["labels"];
    if (l.value("alertname", "") != name) continue;
    if (!node.empty() && l.value("node", "") != node) continue;
    const std::string s = a.value("state", "");
    if (state.empty() ? (s == "pending" || s == "firing") : s == state) {
      return true;
    }
  }
  return false;
}

TEST(MonitoringE2eTest, PrometheusScrapesTheNetworkAndTheAlertsWork) {
  if (std::system("test -x /usr/bin/prometheus") != 0) {
    GTEST_SKIP() << "Debian's prometheus is not installed "
                    "(scripts/install-deps.sh)";
  }
  (void)Deadline();  // the budget starts now
  absl::StatusOr<std::vector<Dashboard>> dashboards = LoadDashboards();
  ASSERT_TRUE(dashboards.ok()) << dashboards.status();
  TempDir dir;

  // API keys with a tiny quota, so that the api's key and quota series
  // exist (they are created on first use).
  const std::string keys = dir.path() + "/api_keys.json";
  RunCli(dir.path(),
         {"apikey", "set-quota", "--file", keys, "--org", "acme",
          "--requests-per-s", "1", "--requests-burst", "1"},
         Budget(absl::Seconds(20)));
  const std::string secret =
      SecretIn(RunCli(dir.path(),
                      {"apikey", "create", "--file", keys, "--org", "acme",
                       "--scopes", "read,submit"},
                      Budget(absl::Seconds(20)))
                   .out);
  ASSERT_FALSE(secret.empty()) << ReadAll(keys);

  NetworkOptions o;
  o.extra_flags["consortia-api"] = {"--api_keys_file=" + keys};
  NetworkHarness net(o);
  ASSERT_TRUE(net.StartAll(Budget(absl::Seconds(40))).ok());
  const std::vector<std::string>& binaries = NetworkHarness::Binaries();

  // Scrape every process of every node (labels as in
  // monitoring/prometheus-localnet.yml); evaluate every second.
  const std::string short_rules = dir.path() + "/short-for";
  std::filesystem::create_directories(short_rules);
  std::string config = absl::StrCat(
      "global: {scrape_interval: 1s, scrape_timeout: 1s, "
      "evaluation_interval: 1s}\n"
      "rule_files: ['",
      MonitoringDir(), "/alerts.yml', '", short_rules,
      "/*.yml']\n"
      "scrape_configs:\n  - job_name: consortia-e2e\n    static_configs:\n");
  for (int i = 0; i < net.size(); ++i) {
    std::vector<std::string> targets;
    for (const std::string& b : binaries) {
      targets.push_back(absl::StrCat("127.0.0.1:", net.ops(i, b).port));
    }
    absl::StrAppend(&config, "      - targets: [", absl::StrJoin(targets, ", "),
                    "]\n        labels: {node: node", i, "}\n");
  }
  const std::string config_path = dir.path() + "/prometheus.yml";
  ASSERT_TRUE(WriteFileAtomic(config_path, config).ok());
  Prometheus prom;
  absl::Status started = prom.Start(dir.path(), config_path);
  ASSERT_TRUE(started.ok()) << started;

  // Traffic: txs with the key (202, then 429 over the quota), one without
  // (401), reads.
  HttpTarget api = net.api(0);
  api.headers.emplace_back("Authorization", "Bearer " + secret);
  int accepted = 0, refused = 0;
  for (uint64_t nonce = 1; nonce <= 6; ++nonce) {
    auto r = HttpCall(api, "POST", "/v1/txs", TxToJson(net.MakeTx(0, nonce)));
    ASSERT_TRUE(r.ok()) << r.status();
    accepted += r->status == 202;
    refused += r->status == 429;
  }
  EXPECT_GE(accepted, 1);
  EXPECT_GE(refused, 1);
  EXPECT_FALSE(net.SubmitTx(0, net.MakeTx(0, 100)).ok());  // no key: 401
  for (int i = 0; i < net.size(); ++i) {
    EXPECT_TRUE(NetworkHarness::WaitUntil([&] { return net.Height(i) > 0; },
                                          Budget(absl::Seconds(20))));
  }

  // Every target up, with a few samples each (rate() needs two).
  const int targets = net.size() * static_cast<int>(binaries.size());
  ASSERT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        json d = prom.Query(
            "count(min_over_time(up{job=\"consortia-e2e\"}[1m]) == 1 "
            "and count_over_time(up{job=\"consortia-e2e\"}[1m]) >= 4)");
        return d.is_object() && d["result"].size() == 1 &&
               d["result"][0]["value"][1] == std::to_string(targets);
      },
      Budget(absl::Seconds(40))))
      << prom.Log();

  // 1. Every metric name used exists as a series.
  std::set<std::string> present;
  json names =
      prom.Query("count by (__name__) ({__name__=~\"consortia_.+|up\"})");
  ASSERT_TRUE(names.is_object());
  for (const json& s : names["result"]) {
    present.insert(s["metric"].value("__name__", ""));
  }
  std::map<std::string, std::string> used;  // name -> where
  for (const Dashboard& d : *dashboards) {
    for (const PanelQuery& q : PanelQueries(d.json)) {
      for (const std::string& n : MetricNames(q.expr)) {
        used[n] = d.file + ": " + q.panel;
      }
    }
  }
  std::map<std::string, json> rules;
  ASSERT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        rules = AlertingRules(prom);
        for (const auto& [name, r] : rules) {
          if (absl::StartsWith(r.value("lastEvaluation", ""), "0001")) {
            return false;  // not evaluated yet
          }
        }
        return !rules.empty();
      },
      Budget(absl::Seconds(10))));
  for (const auto& [name, r] : rules) {
    for (const std::string& n : MetricNames(r.value("query", ""))) {
      used[n] = "alerts.yml: " + name;
    }
  }
  EXPECT_GT(used.size(), 40u);
  for (const auto& [name, where] : used) {
    EXPECT_TRUE(present.count(name))
        << name << " (used by " << where << ") is not exported";
  }

  // 2. Every panel expression evaluates.
  int panel_queries = 0;
  for (const Dashboard& d : *dashboards) {
    for (const PanelQuery& q : PanelQueries(d.json)) {
      std::string error;
      json r = prom.Query(ExpandVariables(q.expr), &error);
      EXPECT_TRUE(r.is_object())
          << d.file << ": " << q.panel << ": " << q.expr << "\n"
          << error;
      ++panel_queries;
    }
  }
  EXPECT_GT(panel_queries, 50);

  // 3. Every alert rule is healthy, and evaluates with its threshold
  // removed; only the 5xx ratio has nothing to divide in a healthy network.
  EXPECT_GE(rules.size(), 13u);
  for (const auto& [name, r] : rules) {
    EXPECT_EQ(r.value("health", ""), "ok") << name << ": " << r.dump();
    EXPECT_FALSE(r["labels"].value("severity", "").empty()) << name;
    EXPECT_FALSE(r["annotations"].value("summary", "").empty()) << name;
    EXPECT_TRUE(absl::StartsWith(r["annotations"].value("runbook_url", ""),
                                 "docs/operations.md#"))
        << name;
    const std::string bare = WithoutThresholds(r.value("query", ""));
    EXPECT_NE(bare, r.value("query", "")) << name << ": no threshold found";
    std::string error;
    json v = prom.Query(bare, &error);
    ASSERT_TRUE(v.is_object()) << name << ": " << bare << "\n" << error;
    if (name != "ConsortiaApiErrorRateHigh") {
      EXPECT_FALSE(v["result"].empty()) << name << ": " << bare;
    }
  }

  // 4. A validator stops: its targets go down, the real alerts go pending,
  // and a copy of the process-down rule with `for: 2s` fires. The copy is
  // written from the rule Prometheus loaded (JSON is YAML).
  ASSERT_TRUE(rules.count("ConsortiaProcessDown"));
  json rule = {{"alert", "E2eShortForConsortiaProcessDown"},
               {"expr", rules["ConsortiaProcessDown"]["query"]},
               {"for", "2s"},
               {"labels", {{"severity", "warning"}}}};
  json group = {{"name", "e2e-short-for"}, {"rules", json::array({rule})}};
  json short_file = {{"groups", json::array({group})}};
  ASSERT_TRUE(
      WriteFileAtomic(short_rules + "/short.yml", short_file.dump(2)).ok());
  ASSERT_TRUE(prom.Reload()) << prom.Log();
  ASSERT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        return AlertingRules(prom).count("E2eShortForConsortiaProcessDown");
      },
      Budget(absl::Seconds(10))));
  EXPECT_FALSE(AlertIs(prom, "ConsortiaProcessDown", "", ""));

  const absl::Time stopped_at = absl::Now();
  net.StopNode(3);
  EXPECT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        json d = prom.Get("/api/v1/targets?state=active");
        if (!d.is_object()) return false;
        int down = 0;
        for (const json& t : d["activeTargets"]) {
          const bool node3 = t["labels"].value("node", "") == "node3";
          if (node3 && t.value("health", "") == "down") ++down;
          if (!node3 && t.value("health", "") != "up") return false;
        }
        return down == static_cast<int>(binaries.size());
      },
      Budget(absl::Seconds(20))))
      << prom.Get("/api/v1/targets").dump();
  EXPECT_TRUE(NetworkHarness::WaitUntil(
      [&] { return AlertIs(prom, "ConsortiaProcessDown", "node3", "pending"); },
      Budget(absl::Seconds(15))))
      << prom.Get("/api/v1/alerts").dump();
  EXPECT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        return AlertIs(prom, "E2eShortForConsortiaProcessDown", "node3",
                       "firing");
      },
      Budget(absl::Seconds(15))))
      << prom.Get("/api/v1/alerts").dump();
  // The others decide heights without node3's votes.
  EXPECT_TRUE(NetworkHarness::WaitUntil(
      [&] {
        return AlertIs(prom, "ConsortiaValidatorMissingVotes", "", "pending");
      },
      Budget(absl::Seconds(20))))
      << prom.Get("/api/v1/alerts").dump();
  // Three of four validators still make blocks: no page.
  EXPECT_FALSE(AlertIs(prom, "ConsortiaMoreThanFValidatorsMissing", "", ""));
  std::cerr << "alerts pending/firing "
            << absl::ToInt64Milliseconds(absl::Now() - stopped_at)
            << " ms after node3 stopped\n";
}

}  // namespace
}  // namespace consortia::testing
