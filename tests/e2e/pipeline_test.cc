// End-to-end: the four real service processes on loopback ports, driven over
// HTTP the way an enterprise client would drive them.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/service_api.h"
#include "consortia/tx_json.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

// The chain's current height (waits for block 1); a failure if none came.
uint64_t CurrentHeight(const NodeHarness& node) {
  absl::StatusOr<uint64_t> h = node.CurrentHeight();
  if (!h.ok()) ADD_FAILURE() << h.status();
  return h.value_or(0);
}

// Polls GET /v1/txs/{hash} until the tx is committed and its receipt is
// certified by the next block; returns the decoded proof bundle.
absl::StatusOr<TxRecord> WaitCommitted(const NodeHarness& node,
                                       const Hash32& hash) {
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string last;
  while (absl::Now() < deadline) {
    auto r = node.Get("/v1/txs/" + ToHex(hash));
    if (r.ok() && r->status == 200) {
      json j = json::parse(r->body);
      auto bytes = FromHex(j["proof"]["hex"].get<std::string>());
      if (!bytes.ok()) return bytes.status();
      auto rec = DecodeTxRecord(*bytes);
      if (!rec.ok()) return rec.status();
      if (rec->next_header.has_value()) return rec;
    } else if (r.ok()) {
      last = r->body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("tx ", ToHex(hash), " not committed; last answer: ", last));
}

void ExpectProblem(const absl::StatusOr<HttpResult>& r, int status,
                   const std::string& what) {
  ASSERT_TRUE(r.ok()) << what << ": " << r.status();
  EXPECT_EQ(r->status, status) << what << ": " << r->body;
  EXPECT_TRUE(absl::StartsWith(r->content_type, "application/problem+json"))
      << what << ": content type " << r->content_type;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << what << ": " << r->body;
  EXPECT_EQ(j.value("status", 0), status) << what;
  EXPECT_FALSE(j.value("title", "").empty()) << what;
  EXPECT_FALSE(j.value("type", "").empty()) << what;
}

class PipelineTest : public ::testing::Test {
 protected:
  // The chain's crypto suite (PipelineSuiteTest runs on each).
  virtual std::string SuiteName() const { return "ed25519-sha256"; }

  void SetUp() override {
    NodeHarnessOptions options;
    options.crypto_suite = SuiteName();
    node_ = std::make_unique<NodeHarness>(dir_.path(), options);
    client_ = TestKey(7, node_->suite());
    absl::Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s;
    chain_ = node_->genesis().chain_id;
  }
  void TearDown() override {
    if (node_) {
      absl::Status s = node_->Stop();
      EXPECT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    }
  }

  TempDir dir_;
  std::unique_ptr<NodeHarness> node_;
  std::string chain_;
  KeyPair client_;
};

// The core scenario on every crypto suite: commit, proof, `consortia verify`.
class PipelineSuiteTest : public PipelineTest,
                          public ::testing::WithParamInterface<std::string> {
 protected:
  std::string SuiteName() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Suites, PipelineSuiteTest,
                         ::testing::ValuesIn(AllCryptoSuites()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return SuiteTestName(info.param);
                         });

TEST_P(PipelineSuiteTest, SignedTxsAreCommittedAndProvable) {
  const CryptoSuite& suite = node_->suite();
  uint64_t h = CurrentHeight(*node_);
  std::vector<Hash32> hashes;
  for (int i = 0; i < 20; ++i) {
    Transaction tx =
        SignedTx(client_, chain_, 1000 + i, h + 100, "kv", "set",
                 {absl::StrCat("key-", i), absl::StrCat("v", i)}, suite);
    auto r = node_->Post("/v1/txs", TxToJson(tx));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 202) << r->body;
    json j = json::parse(r->body);
    Hash32 hash = TxHash(suite, tx);
    EXPECT_EQ(j["tx_hash"].get<std::string>(), ToHex(hash));
    hashes.push_back(hash);
  }
  for (const Hash32& hash : hashes) {
    auto rec = WaitCommitted(*node_, hash);
    ASSERT_TRUE(rec.ok()) << rec.status() << "\n" << node_->LogTail();
    EXPECT_EQ(rec->receipt.code, ExecCode::kOk) << rec->receipt.log;
    // The proof checks out against nothing but the genesis.
    EXPECT_TRUE(VerifyTxRecord(suite, node_->genesis(), *rec, hash).ok());
    // A tampered bundle does not.
    TxRecord bad = *rec;
    bad.raw_tx.back() ^= 1;
    EXPECT_FALSE(VerifyTxRecord(suite, node_->genesis(), bad, hash).ok());
  }
  auto state = node_->Get("/v1/state/kv/key-3");
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->status, 200) << state->body;
  EXPECT_EQ(json::parse(state->body)["value"].get<std::string>(), "v3");

  // The CLI verifies the same proof offline from the genesis file.
  auto cli = ChildProcess::Start(
      {BinDir() + "/consortia", "verify", "--api",
       absl::StrCat("http://127.0.0.1:", node_->api().port), "--genesis",
       dir_.path() + "/genesis.json", ToHex(hashes[0])},
      dir_.path() + "/cli.log");
  ASSERT_TRUE(cli.ok());
  auto status = cli->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  // The committed tx carries a key and a signature of the chain's suite.
  ASSERT_FALSE(hashes.empty());
  auto rec = WaitCommitted(*node_, hashes[0]);
  ASSERT_TRUE(rec.ok());
  absl::StatusOr<Transaction> tx = DecodeTx(rec->raw_tx);
  ASSERT_TRUE(tx.ok());
  EXPECT_EQ(tx->sender.size(), suite.public_key_size());
  EXPECT_EQ(tx->signature.size(), suite.max_signature_size());
}

TEST_F(PipelineTest, BadInputGetsClear4xxAndChangesNothing) {
  uint64_t h = CurrentHeight(*node_);

  // A bad signature.
  Transaction forged =
      SignedTx(client_, chain_, 1, h + 100, "kv", "set", {"forged", "x"});
  forged.signature[0] ^= 0x01;
  ExpectProblem(node_->Post("/v1/txs", TxToJson(forged)), 422, "bad signature");

  // Malformed JSON, an unknown field, an oversized body.
  ExpectProblem(node_->Post("/v1/txs", "{\"chain_id\": "), 400,
                "malformed JSON");
  json extra = json::parse(TxToJson(
      SignedTx(client_, chain_, 2, h + 100, "kv", "set", {"extra", "x"})));
  extra["amount"] = 5;
  ExpectProblem(node_->Post("/v1/txs", extra.dump()), 400, "unknown field");
  std::string huge(2 * 1024 * 1024, 'x');
  ExpectProblem(node_->Post("/v1/txs", huge), 413, "oversized body");

  // A good tx, then the same tx replayed after its commit.
  Transaction good =
      SignedTx(client_, chain_, 3, h + 100, "kv", "set", {"replayed", "first"});
  auto first = node_->Post("/v1/txs", TxToJson(good));
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 202) << first->body;
  Hash32 hash = TxHash(Ed25519Sha256(), good);
  auto rec = WaitCommitted(*node_, hash);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ExpectProblem(node_->Post("/v1/txs", TxToJson(good)), 409, "replayed tx");

  // Nothing changed: the forged key never appeared, the replayed tx stays in
  // its first block, and its value is the first one.
  auto forged_state = node_->Get("/v1/state/kv/forged");
  ASSERT_TRUE(forged_state.ok());
  EXPECT_EQ(forged_state->status, 404);
  auto again = WaitCommitted(*node_, hash);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->height, rec->height);
  auto v = node_->Get("/v1/state/kv/replayed");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(json::parse(v->body)["value"].get<std::string>(), "first");

  // Bad paths.
  ExpectProblem(node_->Get("/v1/txs/not-a-hash"), 400, "bad tx hash");
  ExpectProblem(node_->Get("/v1/txs/" + std::string(64, '0')), 404,
                "unknown tx");
  ExpectProblem(node_->Get("/v1/blocks/99999999"), 404, "future block");
  ExpectProblem(node_->Get("/v1/nowhere"), 404, "unknown route");
}

TEST_F(PipelineTest, BatchOf100TxsIsCommittedInFull) {
  constexpr int kTxs = 100;
  uint64_t h = CurrentHeight(*node_);
  std::string body = "{\"txs\":[";
  std::vector<Hash32> hashes;
  for (int i = 0; i < kTxs; ++i) {
    Transaction tx =
        SignedTx(client_, chain_, 5000 + i, h + 100, "kv", "set",
                 {absl::StrCat("batch-", i), absl::StrCat("v", i)});
    if (i > 0) body += ",";
    body += TxToJson(tx);
    hashes.push_back(TxHash(Ed25519Sha256(), tx));
  }
  body += "]}";
  auto r = node_->Post("/v1/txs:batch", body);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  json results = json::parse(r->body)["results"];
  ASSERT_EQ(results.size(), static_cast<size_t>(kTxs));
  for (int i = 0; i < kTxs; ++i) {
    EXPECT_EQ(results[i].value("tx_hash", ""), ToHex(hashes[i])) << i;
    EXPECT_EQ(results[i].value("status", ""), "pending") << results[i];
  }
  // All 100 are committed, each with its proof.
  for (const Hash32& hash : hashes) {
    auto rec = WaitCommitted(*node_, hash);
    ASSERT_TRUE(rec.ok()) << rec.status() << "\n" << node_->LogTail();
    EXPECT_EQ(rec->receipt.code, ExecCode::kOk) << rec->receipt.log;
  }
  for (int i : {0, kTxs - 1}) {
    auto v = node_->Get(absl::StrCat("/v1/state/kv/batch-", i));
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v->status, 200) << v->body;
    EXPECT_EQ(json::parse(v->body)["value"].get<std::string>(),
              absl::StrCat("v", i));
  }

  // The CLI signs N txs and posts them as one batch, or posts a file.
  const std::string api = absl::StrCat("http://127.0.0.1:", node_->api().port);
  const std::string key = dir_.path() + "/client_key.json";
  ASSERT_EQ(RunCli(dir_.path(), {"keygen", "--out", key}).code, 0);
  auto [code, out] =
      RunCli(dir_.path(),
             {"submit", "--api", api, "--genesis",
              dir_.path() + "/genesis.json", "--key", key, "--app", "kv",
              "--method", "set", "--count", "5", "--wait", "cli-{i}", "w{i}"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("committed 5 txs"), std::string::npos) << out;
  auto v = node_->Get("/v1/state/kv/cli-4");
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->status, 200) << v->body;
  EXPECT_EQ(json::parse(v->body)["value"].get<std::string>(), "w4");
  auto [dcode, batch_file] =
      RunCli(dir_.path(),
             {"submit", "--api", api, "--genesis",
              dir_.path() + "/genesis.json", "--key", key, "--app", "kv",
              "--method", "set", "--count", "3", "--dry-run", "file-{i}", "x"});
  ASSERT_EQ(dcode, 0) << batch_file;
  const std::string file = dir_.path() + "/batch.json";
  std::ofstream(file) << batch_file;
  auto [bcode, bout] =
      RunCli(dir_.path(), {"submit-batch", "--api", api, file});
  EXPECT_EQ(bcode, 0) << bout;
  json answer = json::parse(bout, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << bout;
  EXPECT_EQ(answer["results"].size(), 3u) << bout;
}

TEST_F(PipelineTest, EveryServiceServesValidMetrics) {
  // Some traffic first so that request counters exist.
  (void)node_->Get("/v1/blocks/latest");
  bool have_promtool = std::system("command -v promtool >/dev/null 2>&1") == 0;
  for (const auto& [binary, ops] : node_->ops()) {
    auto r = HttpCall(ops, "GET", "/metrics");
    ASSERT_TRUE(r.ok()) << binary << ": " << r.status();
    ASSERT_EQ(r->status, 200) << binary;
    std::string service = binary.substr(std::string("consortia-").size());
    EXPECT_NE(r->body.find("consortia_" + service + "_"), std::string::npos)
        << binary << " exposes no consortia_" << service << "_ metric";
    auto health = HttpCall(ops, "GET", "/healthz");
    ASSERT_TRUE(health.ok());
    EXPECT_EQ(health->status, 200);
    if (have_promtool) {
      std::string file = dir_.path() + "/" + binary + ".metrics";
      FILE* f = std::fopen(file.c_str(), "w");
      ASSERT_NE(f, nullptr);
      std::fwrite(r->body.data(), 1, r->body.size(), f);
      std::fclose(f);
      std::string cmd =
          "promtool check metrics < " + file + " > " + file + ".check 2>&1";
      EXPECT_EQ(std::system(cmd.c_str()), 0)
          << binary << " metrics fail promtool; see " << file << ".check";
    }
  }
}

TEST(SingleProcessNodeTest, CommitsOverInprocEndpoints) {
  TempDir dir;
  NodeHarness node(dir.path(), NodeHarnessOptions{.single_process = true,
                                                  .extra_flags = {}});
  absl::Status s = node.Start();
  ASSERT_TRUE(s.ok()) << s;
  uint64_t h = CurrentHeight(node);
  Transaction tx = SignedTx(TestKey(9), node.genesis().chain_id, 1, h + 100,
                            "kv", "set", {"single", "process"});
  auto r = node.Post("/v1/txs", TxToJson(tx));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 202) << r->body;
  auto rec = WaitCommitted(node, TxHash(Ed25519Sha256(), tx));
  ASSERT_TRUE(rec.ok()) << rec.status() << "\n" << node.LogTail();
  EXPECT_TRUE(VerifyTxRecord(Ed25519Sha256(), node.genesis(), *rec,
                             TxHash(Ed25519Sha256(), tx))
                  .ok());
  EXPECT_TRUE(node.Stop().ok()) << node.LogTail();
}

}  // namespace
}  // namespace consortia::testing
