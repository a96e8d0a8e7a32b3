#include "monitoring_files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace consortia::testing {
namespace {

absl::StatusOr<std::string> Slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CollectQueries(const nlohmann::json& panels,
                    std::vector<PanelQuery>* out) {
  if (!panels.is_array()) return;
  for (const nlohmann::json& p : panels) {
    if (!p.is_object()) continue;
    const std::string title = p.value("title", std::string());
    if (p.contains("targets") && p["targets"].is_array()) {
      for (const nlohmann::json& t : p["targets"]) {
        if (t.is_object() && t.contains("expr") && t["expr"].is_string()) {
          out->push_back({title, t["expr"].get<std::string>()});
        }
      }
    }
    if (p.contains("panels")) CollectQueries(p["panels"], out);
  }
}

std::string Unquote(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') &&
      v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

}  // namespace

std::string MonitoringDir() {
  return std::string(CONSORTIA_SOURCE_DIR) + "/monitoring";
}

std::string OperationsDocPath() {
  return std::string(CONSORTIA_SOURCE_DIR) + "/docs/operations.md";
}

absl::StatusOr<std::vector<Dashboard>> LoadDashboards() {
  std::vector<Dashboard> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(
           MonitoringDir() + "/dashboards", ec)) {
    if (e.path().extension() != ".json") continue;
    absl::StatusOr<std::string> text = Slurp(e.path().string());
    if (!text.ok()) return text.status();
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.path().string(), " is not valid JSON"));
    }
    out.push_back({e.path().filename().string(), std::move(j)});
  }
  if (ec) return absl::NotFoundError(ec.message());
  std::sort(out.begin(), out.end(), [](const Dashboard& a, const Dashboard& b) {
    return a.file < b.file;
  });
  return out;
}

std::vector<PanelQuery> PanelQueries(const nlohmann::json& dashboard) {
  std::vector<PanelQuery> out;
  if (dashboard.contains("panels")) CollectQueries(dashboard["panels"], &out);
  return out;
}

std::string ExpandVariables(const std::string& expr, const std::string& rate) {
  return absl::StrReplaceAll(
      expr, {{"$__rate_interval", rate}, {"${node}", ".*"}, {"$node", ".*"}});
}

std::set<std::string> MetricNames(const std::string& expr) {
  // Label values and matchers are quoted; names are not. Drop the quoted
  // parts first so that a label value never reads as a name.
  const std::string unquoted =
      std::regex_replace(expr, std::regex("\"[^\"]*\""), "\"\"");
  std::set<std::string> names;
  static const std::regex kName(
      "(^|[^a-zA-Z0-9_:])(consortia_[a-z0-9_]+|up)"
      "(?=[^a-zA-Z0-9_:(]|$)");
  for (auto it = std::sregex_iterator(unquoted.begin(), unquoted.end(), kName);
       it != std::sregex_iterator(); ++it) {
    names.insert((*it)[2].str());
  }
  return names;
}

std::string WithoutThresholds(const std::string& expr) {
  static const std::regex kThreshold(
      "\\s*(==|!=|>=|<=|>|<)\\s*(bool\\s+)?-?[0-9][0-9.eE+-]*"
      "(?=\\s+(and|or|unless)\\s|\\s*\\)|\\s*$)");
  return std::regex_replace(expr, kThreshold, "");
}

absl::StatusOr<std::vector<AlertEntry>> ReadAlertEntries(
    const std::string& path) {
  absl::StatusOr<std::string> text = Slurp(path);
  if (!text.ok()) return text.status();
  std::vector<AlertEntry> out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&l, "- alert:")) {
      out.push_back({Unquote(l), "", "", ""});
      continue;
    }
    if (out.empty()) continue;
    if (absl::ConsumePrefix(&l, "severity:")) out.back().severity = Unquote(l);
    if (absl::ConsumePrefix(&l, "summary:")) out.back().summary = Unquote(l);
    if (absl::ConsumePrefix(&l, "runbook_url:")) {
      out.back().runbook_url = Unquote(l);
    }
  }
  return out;
}

std::set<std::string> MarkdownAnchors(const std::string& path) {
  std::set<std::string> anchors;
  absl::StatusOr<std::string> text = Slurp(path);
  if (!text.ok()) return anchors;
  std::istringstream in(*text);
  std::string line;
  bool fenced = false;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "```")) fenced = !fenced;
    if (fenced || !absl::StartsWith(line, "#")) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find_first_not_of('#') != space) {
      continue;
    }
    absl::string_view h =
        absl::StripAsciiWhitespace(absl::string_view(line).substr(space + 1));
    std::string slug;
    for (char c : h) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (std::isalnum(u) || c == '-' || c == '_') {
        slug += static_cast<char>(std::tolower(u));
      } else if (c == ' ') {
        slug += '-';
      }
    }
    anchors.insert(slug);
  }
  return anchors;
}

}  // namespace consortia::testing
