// Test-only: reads what monitoring/ ships (Grafana dashboards, Prometheus
// alert rules) for the static check (tests/monitoring_static_test.cc) and the
// end-to-end test against a real Prometheus (tests/e2e/monitoring_test.cc).
#ifndef CONSORTIA_TESTS_SUPPORT_MONITORING_FILES_H_
#define CONSORTIA_TESTS_SUPPORT_MONITORING_FILES_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace consortia::testing {

// The monitoring/ directory of the source tree (set by CMake).
std::string MonitoringDir();
// docs/operations.md of the source tree.
std::string OperationsDocPath();

struct Dashboard {
  std::string file;  // e.g. "network.json"
  nlohmann::json json;
};
// Every monitoring/dashboards/*.json, parsed, sorted by file name; an error
// names a file that does not parse.
absl::StatusOr<std::vector<Dashboard>> LoadDashboards();

struct PanelQuery {
  std::string panel;  // the panel's title
  std::string expr;   // as written, with Grafana variables
};
// Every target expression of every panel (rows' nested panels too).
std::vector<PanelQuery> PanelQueries(const nlohmann::json& dashboard);

// The Grafana variables the dashboards use, replaced by what Grafana would
// send with every node selected ($node -> .*, $__rate_interval -> `rate`).
std::string ExpandVariables(const std::string& expr,
                            const std::string& rate = "30s");

// Metric names in a PromQL expression: the consortia_* identifiers and `up`.
std::set<std::string> MetricNames(const std::string& expr);

// The expression with every comparison against a number removed
// (`x > 0.8 or y < 3` -> `x or y`), so that it returns what it compares.
std::string WithoutThresholds(const std::string& expr);

// One `- alert:` entry of monitoring/alerts.yml, read line by line (the file
// keeps one key per line): its name, and the values of `severity:`,
// `summary:` and `runbook_url:` (unquoted), empty when missing.
struct AlertEntry {
  std::string name;
  std::string severity;
  std::string summary;
  std::string runbook_url;
};
absl::StatusOr<std::vector<AlertEntry>> ReadAlertEntries(
    const std::string& path);

// The GitHub anchors of the headings of a Markdown file ("### Foo Bar" ->
// "foo-bar").
std::set<std::string> MarkdownAnchors(const std::string& path);

}  // namespace consortia::testing

#endif  // CONSORTIA_TESTS_SUPPORT_MONITORING_FILES_H_
