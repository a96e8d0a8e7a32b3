// End-to-end (issue 13, "Done means"): the integration guide of docs/api.md
// runs. Its `sh e2e=NAME` blocks ("Quick start") are run in order with
// /bin/sh -e and Debian's curl against a real node with a key file, and the
// key parts of each answer are checked: a tx hash comes back, the tx
// commits, the event stream and a resume with Last-Event-ID show it. A
// wrong example in the guide fails this test.
//
// And `consortia submit --wait` follows the event stream rather than polling
// GET /v1/txs/{hash}: the api's consortia_api_requests_total by route,
// before and after one `submit --wait`.
#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

std::string SecretIn(const std::string& out) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "csk_")) return std::string(line);
  }
  return "";
}

std::string Url(const HttpTarget& t) {
  return absl::StrCat("http://", t.host, ":", t.port, t.base_path);
}

// The first line of `out` that is a JSON object (curl's own messages, on
// stderr, come in the same log).
json JsonLineIn(const std::string& out) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "{")) {
      return json::parse(line, nullptr, false);
    }
  }
  return json::value_t::discarded;
}

TEST(ApiGuideE2eTest, CurlExamplesOfDocsApiMdRunInOrder) {
  const std::string guide_path =
      std::string(CONSORTIA_SOURCE_DIR) + "/docs/api.md";
  const std::vector<DocExample> examples = DocExamples(ReadAll(guide_path));
  std::vector<std::string> names;
  for (const DocExample& e : examples) names.push_back(e.name);
  ASSERT_EQ(names, (std::vector<std::string>{"reach", "sign", "submit",
                                             "committed", "events", "resume"}))
      << "the runnable examples of " << guide_path;

  TempDir dir;
  const std::string keys = dir.path() + "/api_keys.json";
  ProgramRun org = RunCli(
      dir.path(), {"apikey", "set-quota", "--file", keys, "--org", "acme"});
  ASSERT_EQ(org.code, 0) << org.out;
  ProgramRun created =
      RunCli(dir.path(), {"apikey", "create", "--file", keys, "--org", "acme",
                          "--scopes", "read,submit"});
  ASSERT_EQ(created.code, 0) << created.out;
  const std::string secret = SecretIn(created.out);
  ASSERT_FALSE(secret.empty()) << created.out;

  NodeHarnessOptions o;
  // Short heartbeats: a `curl | head` ends at the first write after head
  // has gone.
  o.extra_flags["consortia-api"] = {"--api_keys_file=" + keys,
                                    "--api_events_heartbeat_ms=500"};
  NodeHarness node(dir.path() + "/node", o);
  absl::Status started = node.Start();
  ASSERT_TRUE(started.ok()) << started << "\n" << node.LogTail();
  ASSERT_TRUE(node.CurrentHeight().ok()) << node.LogTail();

  // The reader's working directory holds the chain's genesis.json.
  const std::string work = dir.path() + "/work";
  ASSERT_EQ(RunProgram(dir.path(), {"/bin/mkdir", "-p", work}).code, 0);
  WriteAll(work + "/genesis.json", ReadAll(dir.path() + "/node/genesis.json"));

  std::string tx_hash;
  std::string tx_height;
  for (const DocExample& e : examples) {
    SCOPED_TRACE(absl::StrCat("docs/api.md:", e.line, " (e2e=", e.name, ")"));
    const std::string script = absl::StrCat(work, "/", e.name, ".sh");
    WriteAll(script,
             absl::StrCat("cd '", work, "'\n", "PATH='", BinDir(),
                          "':/usr/bin:/bin\n", "export CONSORTIA_API='",
                          Url(node.api()), "'\n", "export CONSORTIA_API_KEY='",
                          secret, "'\n", "TX_HASH='", tx_hash, "'\n",
                          "TX_HEIGHT='", tx_height, "'\n", e.code));
    ProgramRun r =
        RunProgram(dir.path(), {"/bin/sh", "-e", script}, absl::Seconds(120));
    ASSERT_EQ(r.code, 0) << "the example failed:\n"
                         << e.code << "its output:\n"
                         << r.out;

    if (e.name == "reach") {
      json j = JsonLineIn(r.out);
      ASSERT_TRUE(j.is_object()) << r.out;
      EXPECT_EQ(j["header"]["chain_id"], node.genesis().chain_id) << r.out;
    } else if (e.name == "sign") {
      json tx = json::parse(ReadAll(work + "/tx.json"), nullptr, false);
      ASSERT_TRUE(tx.is_object()) << ReadAll(work + "/tx.json");
      EXPECT_EQ(tx.value("app", ""), "kv");
      EXPECT_EQ(tx.value("method", ""), "set");
    } else if (e.name == "submit") {
      std::smatch m;
      ASSERT_TRUE(std::regex_search(
          r.out, m, std::regex("\"tx_hash\":\"([0-9a-f]{64})\"")))
          << r.out;
      tx_hash = m[1];
      EXPECT_NE(r.out.find("\"status\":\"pending\""), std::string::npos)
          << r.out;
    } else if (e.name == "committed") {
      json j = JsonLineIn(r.out);
      ASSERT_TRUE(j.is_object()) << r.out;
      EXPECT_EQ(j.value("tx_hash", ""), tx_hash) << r.out;
      EXPECT_EQ(j["receipt"]["code"], 0) << r.out;
      ASSERT_TRUE(j["height"].is_number_unsigned()) << r.out;
      tx_height = std::to_string(j["height"].get<uint64_t>());
    } else if (e.name == "events") {
      EXPECT_TRUE(absl::StartsWith(
          r.out, absl::StrCat("id: ", tx_height, "-0\nevent: block\n")))
          << r.out;
      EXPECT_NE(r.out.find(absl::StrCat("id: ", tx_height, "-1\nevent: tx\n")),
                std::string::npos)
          << r.out;
      EXPECT_NE(r.out.find(absl::StrCat("\"tx_hash\":\"", tx_hash, "\"")),
                std::string::npos)
          << r.out;
    } else if (e.name == "resume") {
      EXPECT_TRUE(absl::StartsWith(
          r.out, absl::StrCat("id: ", tx_height, "-1\nevent: tx\n")))
          << r.out;
      EXPECT_NE(r.out.find(absl::StrCat("\"tx_hash\":\"", tx_hash, "\"")),
                std::string::npos)
          << r.out;
    }
  }
  absl::Status stopped = node.Stop();
  EXPECT_TRUE(stopped.ok()) << stopped << "\n" << node.LogTail();
}

// The sum over codes and organisations of consortia_api_requests_total for
// one route template; -1 when /metrics cannot be read.
double RequestsOf(const HttpTarget& ops, const std::string& route) {
  absl::StatusOr<HttpResult> r = HttpCall(ops, "GET", "/metrics");
  if (!r.ok() || r->status != 200) return -1;
  const std::string label = absl::StrCat("route=\"", route, "\"");
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (!absl::StartsWith(line, "consortia_api_requests_total{") ||
        !absl::StrContains(line, label)) {
      continue;
    }
    double v = 0;
    size_t space = line.rfind(' ');
    if (space != absl::string_view::npos &&
        absl::SimpleAtod(line.substr(space + 1), &v)) {
      sum += v;
    }
  }
  return sum;
}

TEST(SubmitWaitE2eTest, FollowsTheEventStreamInsteadOfPolling) {
  TempDir dir;
  NodeHarnessOptions o;
  // Blocks come at most once a second, so that a client that polled
  // GET /v1/txs/{hash} (every 100 ms) would do so several times.
  o.extra_flags["consortia-consensus"] = {
      "--consensus_block_poll_interval_ms=1000",
      "--consensus_empty_block_interval_ms=1000"};
  NodeHarness node(dir.path() + "/node", o);
  absl::Status started = node.Start();
  ASSERT_TRUE(started.ok()) << started << "\n" << node.LogTail();
  ASSERT_TRUE(node.CurrentHeight().ok()) << node.LogTail();
  const HttpTarget& ops = node.ops().at("consortia-api");

  const std::string key = dir.path() + "/client.json";
  ASSERT_EQ(RunCli(dir.path(), {"keygen", "--out", key}).code, 0);

  const double events_before = RequestsOf(ops, "/v1/events");
  const double gets_before = RequestsOf(ops, "/v1/txs/{hash}");
  ASSERT_GE(events_before, 0);
  ASSERT_GE(gets_before, 0);

  ProgramRun r = RunCli(
      dir.path(), {"submit", "--api", Url(node.api()), "--genesis",
                   dir.path() + "/node/genesis.json", "--key", key, "--app",
                   "kv", "--method", "set", "--wait", "waited", "yes"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"receipt\""), std::string::npos) << r.out;

  const double events = RequestsOf(ops, "/v1/events") - events_before;
  const double gets = RequestsOf(ops, "/v1/txs/{hash}") - gets_before;
  // One stream opened; after the tx's event, one read of the tx (two at
  // most, should storage answer the read a moment behind the stream).
  EXPECT_EQ(events, 1) << "submit --wait opened no event stream";
  EXPECT_GE(gets, 1);
  EXPECT_LE(gets, 2) << "submit --wait polled GET /v1/txs/{hash} " << gets
                     << " times";
  absl::Status stopped = node.Stop();
  EXPECT_TRUE(stopped.ok()) << stopped << "\n" << node.LogTail();
}

}  // namespace
}  // namespace consortia::testing
