// End-to-end: `consortia bench` (issue 16), short, as CI runs it. It starts
// its own one-validator network, loads it one tx per request and in batches
// for a few seconds, reads back for a second per query route (--reads 1),
// and writes its JSON result. Only that it works and loses nothing is
// asserted (no speed: CI machines vary).
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "consortia/process.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(BenchE2eTest, ShortBenchCommitsEverythingAndReportsEveryField) {
  TempDir dir;
  const std::string out = dir.path() + "/bench.json";
  const std::string log = dir.path() + "/bench.log";
  auto p = ChildProcess::Start({BinDir() + "/consortia",
                                "bench",
                                "--validators",
                                "1",
                                "--duration",
                                "3",
                                "--rate",
                                "300",
                                "--batch",
                                "20",
                                "--drain",
                                "30",
                                "--verify-seconds",
                                "0.5",
                                "--reads",
                                "1",
                                "--dir",
                                dir.path() + "/net",
                                "--out",
                                out},
                               log);
  ASSERT_TRUE(p.ok()) << p.status();
  auto status = p->Wait(absl::Seconds(120));
  ASSERT_TRUE(status.ok()) << "bench did not finish: " << ReadAll(log);
  ASSERT_TRUE(WIFEXITED(*status)) << ReadAll(log);
  EXPECT_EQ(WEXITSTATUS(*status), 0) << ReadAll(log);

  nlohmann::json j = nlohmann::json::parse(ReadAll(out), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ReadAll(out);
  for (const char* field : {"bench_version", "started_at", "machine", "suite",
                            "verify", "validators", "ceiling_tps", "config",
                            "runs", "split_over_single", "ok"}) {
    EXPECT_TRUE(j.contains(field)) << field;
  }
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["suite"], "ed25519-sha256");
  EXPECT_GT(j["verify"]["verifies_per_s"].get<double>(), 0);
  EXPECT_GT(j["verify"]["verifies_per_cpu_s"].get<double>(), 0);
  EXPECT_GT(j["ceiling_tps"].get<double>(), 0);
  for (const char* field :
       {"nproc", "cpu_model", "loadavg_before", "loadavg_after"}) {
    EXPECT_TRUE(j["machine"].contains(field)) << field;
  }
  ASSERT_TRUE(j["runs"].is_array());
  ASSERT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["runs"][0]["mode"], "single");
  EXPECT_EQ(j["runs"][1]["mode"], "batch");
  for (const nlohmann::json& r : j["runs"]) {
    for (const char* field : {"layout",
                              "mode",
                              "batch",
                              "offered_rate",
                              "duration_s",
                              "load_s",
                              "drain_s",
                              "connections",
                              "presigned_txs",
                              "txs_exhausted",
                              "requests",
                              "sent_txs",
                              "accepted_txs",
                              "refused_txs",
                              "refusals_by_reason",
                              "transport_errors",
                              "committed_txs",
                              "committed_seen_by_query_only",
                              "failed_results",
                              "lost_txs",
                              "lost_examples",
                              "committed_tps",
                              "ratio_to_ceiling",
                              "tps_windows",
                              "blocks",
                              "latency_ms",
                              "send_lag",
                              "event_stream_resumes",
                              "processes",
                              "replay_window",
                              "down",
                              "backend",
                              "reads"}) {
      EXPECT_TRUE(r.contains(field)) << r["mode"] << " " << field;
    }
    EXPECT_EQ(r["layout"], "split");
    EXPECT_EQ(r["down"], 0);
    EXPECT_EQ(r["backend"], "rocksdb");
    // --reads 1: each route read something of the run's, all answered 200.
    for (const char* route :
         {"/v1/txs/{hash}", "/v1/blocks/{height}", "/v1/state/kv/{key}"}) {
      ASSERT_TRUE(r["reads"].contains(route)) << r["reads"].dump(2);
      const nlohmann::json& x = r["reads"][route];
      for (const char* field : {"items", "reads", "seconds", "reads_per_s",
                                "latency_ms", "non_200", "non_200_by_status"}) {
        EXPECT_TRUE(x.contains(field)) << route << " " << field;
      }
      EXPECT_GT(x["items"].get<uint64_t>(), 0u) << route;
      EXPECT_GT(x["reads"].get<uint64_t>(), 0u) << route;
      EXPECT_EQ(x["non_200"].get<uint64_t>(), 0u) << route << " " << x.dump();
    }
    EXPECT_EQ(r["lost_txs"].get<uint64_t>(), 0u) << r.dump(2);
    EXPECT_GT(r["committed_txs"].get<uint64_t>(), 0u) << r.dump(2);
    EXPECT_EQ(r["committed_txs"], r["accepted_txs"]) << r.dump(2);
    EXPECT_EQ(r["failed_results"].get<uint64_t>(), 0u) << r.dump(2);
    EXPECT_GT(r["latency_ms"]["count"].get<uint64_t>(), 0u);
    for (const char* field : {"p50", "p99", "max"}) {
      EXPECT_TRUE(r["latency_ms"].contains(field)) << field;
    }
    for (const char* field : {"blocks_per_window", "windows", "steady_blocks",
                              "min", "median", "max"}) {
      EXPECT_TRUE(r["tps_windows"].contains(field)) << field;
    }
    for (const char* field :
         {"services_cpu_s", "services_cpu_ms_per_committed_tx",
          "verify_cpu_ms_per_tx_all_nodes", "verify_share_of_services_cpu",
          "client_cpu_s"}) {
      EXPECT_TRUE(r["cpu"].contains(field)) << field;
    }
    // The four service processes of the split node, each measured.
    ASSERT_EQ(r["processes"].size(), 4u) << r.dump(2);
    for (const nlohmann::json& proc : r["processes"]) {
      for (const char* field :
           {"name", "pid", "cpu_s", "peak_rss_mb", "cpu_ms_per_committed_tx"}) {
        EXPECT_TRUE(proc.contains(field)) << proc.dump();
      }
      EXPECT_GT(proc["peak_rss_mb"].get<double>(), 0) << proc.dump();
    }
  }
}

}  // namespace
}  // namespace consortia::testing
