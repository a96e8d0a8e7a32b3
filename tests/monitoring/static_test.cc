// Static checks of what monitoring/ ships (no Prometheus needed): the
// Grafana dashboards are importable as they are (valid JSON, a fixed uid, a
// data source variable, no __inputs) and cover what an SRE needs, and every
// alert rule has a severity, a summary and a runbook link that resolves in
// docs/operations.md. promtool checks and unit-tests the rules themselves
// (tests/CMakeLists.txt: monitoring_rules_check, monitoring_rules_test).
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitoring_files.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

// Walks panels, rows' nested panels included.
void ForEachPanel(const json& panels,
                  const std::function<void(const json&)>& f) {
  if (!panels.is_array()) return;
  for (const json& p : panels) {
    f(p);
    if (p.contains("panels")) ForEachPanel(p["panels"], f);
  }
}

bool UsesDatasourceVariable(const json& j) {
  return j.is_object() && j.value("uid", std::string()) == "${datasource}";
}

TEST(MonitoringStaticTest, DashboardsAreImportableAsTheyAre) {
  absl::StatusOr<std::vector<Dashboard>> dashboards = LoadDashboards();
  ASSERT_TRUE(dashboards.ok()) << dashboards.status();
  ASSERT_FALSE(dashboards->empty());
  std::set<std::string> uids;
  for (const Dashboard& d : *dashboards) {
    SCOPED_TRACE(d.file);
    const json& j = d.json;
    ASSERT_TRUE(j.is_object());
    // Provisioned or imported as is: no export-for-sharing placeholders.
    EXPECT_FALSE(j.contains("__inputs"));
    EXPECT_FALSE(j.contains("__requires"));
    EXPECT_FALSE(absl::StrContains(j.dump(), "${DS_"));
    const std::string uid = j.value("uid", std::string());
    EXPECT_TRUE(absl::StartsWith(uid, "consortia-")) << uid;
    EXPECT_LE(uid.size(), 40u);  // Grafana's limit
    EXPECT_TRUE(uids.insert(uid).second) << "uid used twice: " << uid;
    EXPECT_FALSE(j.value("title", std::string()).empty());
    EXPECT_TRUE(j.contains("schemaVersion"));
    EXPECT_TRUE(j.contains("id") == false || j["id"].is_null());

    // A data source variable, and the node variable.
    ASSERT_TRUE(j.contains("templating") && j["templating"].contains("list"));
    std::map<std::string, json> vars;
    for (const json& v : j["templating"]["list"]) {
      vars[v.value("name", std::string())] = v;
    }
    ASSERT_TRUE(vars.count("datasource"));
    EXPECT_EQ(vars["datasource"].value("type", std::string()), "datasource");
    EXPECT_EQ(vars["datasource"].value("query", std::string()), "prometheus");
    ASSERT_TRUE(vars.count("node"));
    EXPECT_TRUE(UsesDatasourceVariable(vars["node"]["datasource"]));

    std::set<int> ids;
    int queries = 0;
    ForEachPanel(j["panels"], [&](const json& p) {
      const std::string title = p.value("title", std::string());
      SCOPED_TRACE(title);
      EXPECT_FALSE(title.empty());
      ASSERT_TRUE(p.contains("id") && p["id"].is_number_integer());
      EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "panel id twice";
      ASSERT_TRUE(p.contains("gridPos"));
      for (const char* k : {"h", "w", "x", "y"}) {
        EXPECT_TRUE(p["gridPos"].contains(k)) << k;
      }
      EXPECT_LE(p["gridPos"].value("x", 0) + p["gridPos"].value("w", 0), 24);
      if (p.value("type", std::string()) == "row") return;
      EXPECT_TRUE(UsesDatasourceVariable(p["datasource"]));
      ASSERT_TRUE(p.contains("targets") && !p["targets"].empty());
      for (const json& t : p["targets"]) {
        EXPECT_TRUE(UsesDatasourceVariable(t["datasource"]));
        const std::string expr = t.value("expr", std::string());
        EXPECT_FALSE(expr.empty());
        EXPECT_FALSE(t.value("refId", std::string()).empty());
        // Only the variables the end-to-end test knows how to expand.
        EXPECT_FALSE(absl::StrContains(ExpandVariables(expr), "$")) << expr;
        EXPECT_FALSE(MetricNames(expr).empty()) << expr;
        ++queries;
      }
    });
    EXPECT_GT(queries, 0);
  }
}

// What issue 15 asks each dashboard to show, as the metrics its panels use.
TEST(MonitoringStaticTest, DashboardsShowWhatAnSreNeeds) {
  absl::StatusOr<std::vector<Dashboard>> dashboards = LoadDashboards();
  ASSERT_TRUE(dashboards.ok()) << dashboards.status();
  std::map<std::string, std::string> exprs;  // uid -> every expr, joined
  for (const Dashboard& d : *dashboards) {
    for (const PanelQuery& q : PanelQueries(d.json)) {
      exprs[d.json.value("uid", std::string())] += q.expr + "\n";
    }
  }
  const std::map<std::string, std::vector<std::string>> needs = {
      {"consortia-network",
       {"consortia_consensus_height",
        "consortia_consensus_block_interval_seconds_bucket",
        "consortia_storage_txs_committed_total",
        "histogram_quantile(0.5, sum by (node, le) "
        "(rate(consortia_consensus_commit_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (node, le) "
        "(rate(consortia_consensus_commit_duration_seconds_bucket",
        "up{", "consortia_consensus_missing_validators",
        "consortia_consensus_round",
        "consortia_consensus_rounds_per_height_bucket",
        "consortia_consensus_validators"}},
      {"consortia-mempool",
       {"consortia_mempool_pool_txs", "consortia_mempool_max_txs",
        "consortia_mempool_rejected_total",
        "consortia_mempool_gossip_txs_received_total"}},
      {"consortia-storage",
       {"consortia_storage_disk_free_bytes",
        "consortia_storage_disk_size_bytes",
        "consortia_storage_commit_duration_seconds_bucket",
        "consortia_storage_store_errors_total", "consortia_storage_store_up"}},
      {"consortia-api",
       {"consortia_api_requests_total", "code=~\"5..\"",
        "sum by (route, le) "
        "(rate(consortia_api_request_duration_seconds_bucket",
        "sum by (org, quota) (rate(consortia_api_quota_refusals_total"}},
  };
  for (const auto& [uid, wanted] : needs) {
    ASSERT_TRUE(exprs.count(uid)) << "no dashboard " << uid;
    for (const std::string& w : wanted) {
      EXPECT_TRUE(absl::StrContains(exprs[uid], w)) << uid << " lacks " << w;
    }
  }
}

TEST(MonitoringStaticTest, EveryAlertHasSeveritySummaryAndARunbookThatExists) {
  absl::StatusOr<std::vector<AlertEntry>> alerts =
      ReadAlertEntries(MonitoringDir() + "/alerts.yml");
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  const std::set<std::string> anchors = MarkdownAnchors(OperationsDocPath());
  std::set<std::string> names;
  for (const AlertEntry& a : *alerts) {
    SCOPED_TRACE(a.name);
    EXPECT_TRUE(names.insert(a.name).second) << "alert named twice";
    EXPECT_THAT(a.severity, ::testing::AnyOf("page", "critical", "warning"));
    EXPECT_FALSE(a.summary.empty());
    ASSERT_TRUE(absl::StartsWith(a.runbook_url, "docs/operations.md#"))
        << a.runbook_url;
    const std::string anchor =
        a.runbook_url.substr(a.runbook_url.find('#') + 1);
    EXPECT_TRUE(anchors.count(anchor))
        << "docs/operations.md has no heading for #" << anchor;
  }
  // The alerts issue 15 asks for.
  for (const char* want :
       {"ConsortiaChainHalted", "ConsortiaProcessDown",
        "ConsortiaValidatorMissingVotes", "ConsortiaMoreThanFValidatorsMissing",
        "ConsortiaEquivocation", "ConsortiaMempoolNearFull",
        "ConsortiaCommitLatencyHigh", "ConsortiaApiErrorRateHigh",
        "ConsortiaStorageErrors", "ConsortiaDiskFilling",
        "ConsortiaNodeBehind"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  // More than f validators missing pages.
  for (const AlertEntry& a : *alerts) {
    if (a.name == "ConsortiaMoreThanFValidatorsMissing") {
      EXPECT_EQ(a.severity, "page");
    }
  }
}

TEST(MonitoringStaticTest, ExpressionHelpers) {
  EXPECT_EQ(MetricNames("sum by (node) (rate(consortia_api_requests_total{"
                        "code=~\"5..\",x=\"consortia_no\"}[5m])) / up"),
            (std::set<std::string>{"consortia_api_requests_total", "up"}));
  EXPECT_EQ(WithoutThresholds("a / b > 0.8 or c / d > 0.8"), "a / b or c / d");
  EXPECT_EQ(WithoutThresholds("max(changes(x[3m])) == 0 or absent(x)"),
            "max(changes(x[3m])) or absent(x)");
  EXPECT_EQ(
      WithoutThresholds("predict_linear(f[6h], 86400) < 0 and f / s < 0.2"),
      "predict_linear(f[6h], 86400) and f / s");
  EXPECT_EQ(WithoutThresholds("scalar(max(h)) - h > 20"), "scalar(max(h)) - h");
  EXPECT_EQ(WithoutThresholds("min(n - 1 - p) - max(floor((n - 1) / 3)) > 0"),
            "min(n - 1 - p) - max(floor((n - 1) / 3))");
  EXPECT_EQ(ExpandVariables("rate(x{node=~\"$node\"}[$__rate_interval])"),
            "rate(x{node=~\".*\"}[30s])");
}

}  // namespace
}  // namespace consortia::testing
