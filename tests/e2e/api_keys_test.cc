// End-to-end (issue 13, points 1 and 2): API keys, quotas and the audit log
// on a real node (four processes), with keys managed by the real CLI while
// the api runs:
//   - keys are created, used, expired and revoked without restarting the
//     api; a broken key file keeps the keys in force; the audit log's chain
//     verifies, and tampering with it (edit, delete, reorder) is found at
//     the right line by `consortia audit verify`;
//   - fairness: a quiet key gets no 429 while a noisy key, sending at ten
//     times its quota, gets 429s. Counts are asserted; latencies (p50/p99 of
//     both) are printed for the record, never asserted.
// And (issue 14) `consortia verify --state` with the key of an organisation
// that is no party of an invoice, when the certifying block holds an invoice
// tx the api withholds (--api_invoice_reads=parties).
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/tx_json.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

// The secret that `apikey create` printed (the line starting csk_).
std::string SecretIn(const std::string& out) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "csk_")) return std::string(line);
  }
  return "";
}

std::string IdOf(const std::string& secret) {
  std::vector<std::string> parts = absl::StrSplit(secret, '_');
  return parts.size() >= 3 ? parts[1] : "";
}

// The value of one series on a /metrics page (0 when absent).
double Metric(const HttpTarget& ops, const std::string& series) {
  auto r = HttpCall(ops, "GET", "/metrics");
  if (!r.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return 0;
}

// The chain's current height (waits for block 1); a failure if none came.
uint64_t CurrentHeight(const NodeHarness& node) {
  absl::StatusOr<uint64_t> h = node.CurrentHeight();
  if (!h.ok()) ADD_FAILURE() << h.status();
  return h.value_or(0);
}

// The api target with `Authorization: Bearer <key>` (none for "").
HttpTarget WithKey(HttpTarget t, const std::string& key) {
  if (!key.empty()) t.headers.emplace_back("Authorization", "Bearer " + key);
  return t;
}

std::string ProblemType(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string type = j.is_object() ? j.value("type", "") : "";
  const std::string base = "https://consortia.dev/problems/";
  return absl::StartsWith(type, base) ? type.substr(base.size()) : type;
}

class ApiKeysE2eTest : public ::testing::Test {
 protected:
  std::string keys() const { return dir_.path() + "/api_keys.json"; }
  std::string audit() const { return dir_.path() + "/audit.log"; }

  // Starts the node with the key file and the audit log.
  void StartNode() {
    NodeHarnessOptions o;
    o.extra_flags["consortia-api"] = {"--api_keys_file=" + keys(),
                                      "--api_audit_log=" + audit()};
    node_ = std::make_unique<NodeHarness>(dir_.path() + "/node", o);
    absl::Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    chain_ = node_->genesis().chain_id;
    height_ = CurrentHeight(*node_);
  }
  void TearDown() override {
    if (node_) {
      absl::Status s = node_->Stop();
      EXPECT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    }
  }

  ProgramRun Cli(std::vector<std::string> args) {
    return RunCli(dir_.path(), std::move(args), absl::Seconds(60));
  }

  // A new key of `org` with `scopes`: its secret.
  std::string CreateKey(const std::string& org, const std::string& scopes) {
    ProgramRun r = Cli({"apikey", "create", "--file", keys(), "--org", org,
                        "--scopes", scopes});
    EXPECT_EQ(r.code, 0) << r.out;
    std::string secret = SecretIn(r.out);
    EXPECT_FALSE(secret.empty()) << r.out;
    return secret;
  }

  absl::StatusOr<HttpResult> Submit(const std::string& key, uint64_t nonce,
                                    const KeyPair& signer) {
    Transaction tx = SignedTx(signer, chain_, nonce, height_ + 900, "kv", "set",
                              {absl::StrCat("k", nonce), "v"});
    return HttpCall(WithKey(node_->api(), key), "POST", "/v1/txs",
                    TxToJson(tx));
  }

  // Polls until a submission with `key` is answered `status` (the api
  // re-reads the key file about once a second).
  bool EventuallyStatus(const std::string& key, int status, uint64_t* nonce) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto r = Submit(key, (*nonce)++, signer_);
      if (r.ok() && r->status == status) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<NodeHarness> node_;
  std::string chain_;
  uint64_t height_ = 0;
  KeyPair signer_ = TestKey(21);
};

TEST_F(ApiKeysE2eTest, KeysCreatedUsedExpiredAndRevokedWithoutRestart) {
  ASSERT_EQ(
      Cli({"apikey", "set-quota", "--file", keys(), "--org", "acme"}).code, 0);
  const std::string first = CreateKey("acme", "read,submit");
  // The file holds the hash, never the secret.
  EXPECT_EQ(ReadAll(keys()).find(first), std::string::npos);
  StartNode();
  const HttpTarget ops = node_->ops().at("consortia-api");
  uint64_t nonce = 1;

  // Used.
  auto r = Submit(first, nonce++, signer_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 202) << r->body;
  r = Submit("", nonce++, signer_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(ProblemType(*r), "api-key-missing");
  // Reads stay public.
  EXPECT_EQ(node_->Get("/v1/blocks/latest")->status, 200);

  // Created while the api runs: unknown until the api has re-read the file.
  const std::string second = CreateKey("acme", "submit");
  EXPECT_TRUE(EventuallyStatus(second, 202, &nonce)) << node_->LogTail();
  // A read-only key may not submit.
  const std::string reader = CreateKey("acme", "read");
  EXPECT_TRUE(EventuallyStatus(reader, 403, &nonce));
  r = Submit(reader, nonce++, signer_);
  EXPECT_EQ(ProblemType(*r), "insufficient-scope") << r->body;

  // Expired.
  ProgramRun e =
      Cli({"apikey", "expire", "--file", keys(), "--id", IdOf(first)});
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_TRUE(EventuallyStatus(first, 403, &nonce));
  r = Submit(first, nonce++, signer_);
  EXPECT_EQ(ProblemType(*r), "api-key-expired") << r->body;

  // Revoked.
  ProgramRun v =
      Cli({"apikey", "revoke", "--file", keys(), "--id", IdOf(second)});
  ASSERT_EQ(v.code, 0) << v.out;
  EXPECT_TRUE(EventuallyStatus(second, 403, &nonce));
  r = Submit(second, nonce++, signer_);
  EXPECT_EQ(ProblemType(*r), "api-key-revoked") << r->body;

  // A broken key file (written by hand) keeps the keys in force; the CLI
  // refuses to touch it.
  const std::string good_file = ReadAll(keys());
  const double failed_before =
      Metric(ops, "consortia_api_key_file_reloads_total{result=\"failed\"}");
  WriteAll(keys(), "{\"version\": 1, \"organisations\": [");
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (
      Metric(ops, "consortia_api_key_file_reloads_total{result=\"failed\"}") <=
          failed_before &&
      absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(
      Metric(ops, "consortia_api_key_file_reloads_total{result=\"failed\"}"),
      failed_before);
  ProgramRun refused = Cli({"apikey", "create", "--file", keys(), "--org",
                            "acme", "--scopes", "read"});
  EXPECT_NE(refused.code, 0) << refused.out;
  EXPECT_NE(refused.out.find("is not a valid key file"), std::string::npos)
      << refused.out;
  r = Submit(second, nonce++, signer_);
  EXPECT_EQ(ProblemType(*r), "api-key-revoked") << r->body;
  r = Submit(first, nonce++, signer_);
  EXPECT_EQ(ProblemType(*r), "api-key-expired") << r->body;
  WriteAll(keys(), good_file);

  // The metrics saw it all.
  EXPECT_GE(Metric(ops, "consortia_api_key_file_reloads_total{result=\"ok\"}"),
            4);
  EXPECT_GE(Metric(ops, "consortia_api_auth_failures_total{kind=\"missing\"}"),
            1);
  EXPECT_GE(Metric(ops, "consortia_api_auth_failures_total{kind=\"expired\"}"),
            1);
  EXPECT_GE(Metric(ops, "consortia_api_auth_failures_total{kind=\"revoked\"}"),
            1);
  EXPECT_GE(Metric(ops, "consortia_api_auth_failures_total{kind=\"scope\"}"),
            1);

  // `apikey list` shows the states.
  ProgramRun list = Cli({"apikey", "list", "--file", keys()});
  ASSERT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find(IdOf(first)), std::string::npos);
  EXPECT_NE(list.out.find("expired"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("revoked"), std::string::npos) << list.out;

  // The audit log: stop the node (every line written), then verify.
  ASSERT_TRUE(node_->Stop().ok());
  node_.reset();
  ProgramRun ok = Cli({"audit", "verify", audit()});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("chain intact"), std::string::npos) << ok.out;
  std::vector<std::string> lines =
      absl::StrSplit(ReadAll(audit()), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 6u);
  // The first line: the first key's accepted submission.
  json line0 = json::parse(lines[0]);
  EXPECT_EQ(line0["org"], "acme");
  EXPECT_EQ(line0["key_id"], IdOf(first));
  EXPECT_EQ(line0["outcome"], "accepted");

  auto verify = [&](const std::vector<std::string>& ls) {
    std::string text;
    for (const std::string& l : ls) text += l + "\n";
    const std::string path = dir_.path() + "/tampered.log";
    WriteAll(path, text);
    return Cli({"audit", "verify", path});
  };
  // Edited: found at the edited line (line 3).
  std::vector<std::string> edited = lines;
  const size_t pos = edited[2].find("\"status\":");
  ASSERT_NE(pos, std::string::npos);
  edited[2].replace(pos, 9, "\"status\": ");
  ProgramRun bad = verify(edited);
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("line 3:"), std::string::npos) << bad.out;
  // Deleted (line 2): found where it was.
  std::vector<std::string> deleted = lines;
  deleted.erase(deleted.begin() + 1);
  bad = verify(deleted);
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("line 2:"), std::string::npos) << bad.out;
  // Reordered (lines 4 and 5): found at line 4.
  std::vector<std::string> reordered = lines;
  std::swap(reordered[3], reordered[4]);
  bad = verify(reordered);
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("line 4:"), std::string::npos) << bad.out;
}

// The p-th percentile (0..100) of `ms`, sorted in place.
double Percentile(std::vector<double>& ms, double p) {
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  size_t i =
      static_cast<size_t>(p / 100.0 * static_cast<double>(ms.size() - 1) + 0.5);
  return ms[std::min(i, ms.size() - 1)];
}

TEST_F(ApiKeysE2eTest, QuietKeyIsServedWhileANoisyKeyGets429s) {
  // Both organisations: 20 requests/s, burst 20.
  for (const char* org : {"quiet", "noisy"}) {
    ASSERT_EQ(Cli({"apikey", "set-quota", "--file", keys(), "--org", org,
                   "--requests-per-s", "20", "--requests-burst", "20"})
                  .code,
              0);
  }
  const std::string quiet = CreateKey("quiet", "submit");
  const std::string noisy = CreateKey("noisy", "submit");
  StartNode();
  const HttpTarget ops = node_->ops().at("consortia-api");
  // Txs valid for 900 blocks from here (the replay window is 1000).
  height_ = CurrentHeight(*node_);

  // For about 5 s: the quiet key sends 5 requests/s (a quarter of its
  // quota, never faster: it waits 200 ms after each answer), the noisy key
  // 200 requests/s (ten times its quota) from 4 threads.
  constexpr int kQuietRequests = 25;
  constexpr int kNoisyThreads = 4;
  constexpr int kNoisyPerThread = 250;
  struct Tally {
    absl::Mutex mu;
    std::vector<double> ms;
    std::vector<double> accepted_ms;      // of the 202s alone
    std::map<std::string, int> outcomes;  // status, and problem type
  };
  Tally quiet_tally, noisy_tally;
  auto send = [&](const std::string& key, const KeyPair& signer, uint64_t nonce,
                  Tally* t) {
    absl::Time start = absl::Now();
    auto r = Submit(key, nonce, signer);
    double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    std::string outcome = !r.ok() ? "transport error"
                          : r->status >= 400
                              ? absl::StrCat(r->status, " ", ProblemType(*r))
                              : std::to_string(r->status);
    absl::MutexLock l(&t->mu);
    t->ms.push_back(ms);
    if (outcome == "202") t->accepted_ms.push_back(ms);
    ++t->outcomes[outcome];
  };
  const KeyPair quiet_signer = TestKey(31);
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; i < kQuietRequests; ++i) {
      send(quiet, quiet_signer, 1 + i, &quiet_tally);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  for (int t = 0; t < kNoisyThreads; ++t) {
    threads.emplace_back([&, t] {
      const KeyPair signer = TestKey(static_cast<uint8_t>(40 + t));
      absl::Time next = absl::Now();
      for (int i = 0; i < kNoisyPerThread; ++i) {
        send(noisy, signer, 1 + i, &noisy_tally);
        next += absl::Milliseconds(20);  // 50/s per thread
        absl::SleepFor(std::max(absl::ZeroDuration(), next - absl::Now()));
      }
    });
  }
  for (auto& th : threads) th.join();
  const double elapsed_s = absl::ToDoubleSeconds(absl::Now() - start);

  auto count = [](Tally& t, const std::string& outcome) {
    absl::MutexLock l(&t.mu);
    auto it = t.outcomes.find(outcome);
    return it == t.outcomes.end() ? 0 : it->second;
  };
  auto describe = [](Tally& t) {
    absl::MutexLock l(&t.mu);
    std::string s;
    for (const auto& [k, v] : t.outcomes) absl::StrAppend(&s, k, ": ", v, "; ");
    return s;
  };
  // The quiet key: every request admitted, none refused.
  EXPECT_EQ(count(quiet_tally, "202"), kQuietRequests) << describe(quiet_tally);
  EXPECT_EQ(count(quiet_tally, "429 quota-exceeded"), 0)
      << describe(quiet_tally);
  // The noisy key: refused, and admitted no more than its buckets allow
  // (burst + rate x elapsed, the api's window lying inside the client's).
  const int noisy_ok = count(noisy_tally, "202");
  const int noisy_429 = count(noisy_tally, "429 quota-exceeded");
  EXPECT_GT(noisy_429, 0) << describe(noisy_tally);
  EXPECT_LE(noisy_ok, 20 + static_cast<int>(20 * elapsed_s) + 1)
      << describe(noisy_tally) << " in " << elapsed_s << " s";
  EXPECT_EQ(noisy_ok + noisy_429, kNoisyThreads * kNoisyPerThread)
      << describe(noisy_tally);
  // The metrics count the noisy organisation's refusals, and none of the
  // quiet one's.
  EXPECT_EQ(Metric(ops,
                   "consortia_api_quota_refusals_total{org=\"noisy\","
                   "quota=\"requests\"}"),
            noisy_429);
  EXPECT_EQ(Metric(ops,
                   "consortia_api_quota_refusals_total{org=\"quiet\","
                   "quota=\"requests\"}"),
            0);

  // For the closing note, not asserted.
  for (auto [name, tally] :
       {std::pair<const char*, Tally*>{"quiet", &quiet_tally},
        {"noisy", &noisy_tally}}) {
    const std::string outcomes = describe(*tally);
    absl::MutexLock l(&tally->mu);
    std::printf(
        "FAIRNESS %s key: %zu requests in %.1f s (%s) latency p50 %.2f ms, "
        "p99 %.2f ms; of the 202s p50 %.2f ms, p99 %.2f ms\n",
        name, tally->ms.size(), elapsed_s, outcomes.c_str(),
        Percentile(tally->ms, 50), Percentile(tally->ms, 99),
        Percentile(tally->accepted_ms, 50), Percentile(tally->accepted_ms, 99));
  }
}

// --api_invoice_reads=parties (issue 14): a block holding an invoice tx is
// answered without its raw record to a key of neither party, and
// `consortia verify --state` with that key still certifies the state from
// that block's header and certificate. Blocks come only with txs here, so
// the block that certifies the state is the invoice tx's.
TEST(InvoiceReadsE2eTest, VerifyStateCertifiesFromABlockWithAnInvoiceTx) {
  TempDir dir;
  const std::string keys = dir.path() + "/api_keys.json";
  auto cli = [&](std::vector<std::string> args) {
    return RunCli(dir.path(), std::move(args), absl::Seconds(60));
  };
  auto create = [&](const std::string& org, const std::string& scopes) {
    EXPECT_EQ(cli({"apikey", "set-quota", "--file", keys, "--org", org}).code,
              0);
    ProgramRun r = cli(
        {"apikey", "create", "--file", keys, "--org", org, "--scopes", scopes});
    EXPECT_EQ(r.code, 0) << r.out;
    return SecretIn(r.out);
  };
  const std::string ops_key = create("ops", "read,submit,audit");
  const std::string outsider = create("other-co", "read");
  NodeHarnessOptions o;
  o.extra_flags["consortia-api"] = {"--api_keys_file=" + keys,
                                    "--api_reads_need_key=true",
                                    "--api_invoice_reads=parties"};
  o.extra_flags["consortia-consensus"] = {
      "--consensus_empty_block_interval_ms=3600000"};
  NodeHarness node(dir.path() + "/node", o);
  absl::Status started = node.Start();
  ASSERT_TRUE(started.ok()) << started << "\n" << node.LogTail();
  const HttpTarget api = WithKey(node.api(), ops_key);
  const HttpTarget& ops = node.ops().at("consortia-api");
  const std::string chain = node.genesis().chain_id;
  auto commit = [&](uint64_t nonce, const std::string& app,
                    const std::string& method, std::vector<std::string> args) {
    const Transaction tx =
        SignedTx(TestKey(5), chain, nonce, 500, app, method, std::move(args));
    auto posted = HttpCall(api, "POST", "/v1/txs", TxToJson(tx));
    ASSERT_TRUE(posted.ok() && posted->status == 202)
        << (posted.ok() ? posted->body : posted.status().ToString());
    const std::string path = "/v1/txs/" + ToHex(TxHash(node.suite(), tx));
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto r = HttpCall(api, "GET", path);
      if (r.ok() && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << app << "." << method << " not committed";
  };
  ASSERT_NO_FATAL_FAILURE(commit(1, "kv", "set", {"greeting", "hello"}));
  // The requests of the outsider's key for a block that is not there yet.
  auto block_404s = [&] {
    auto r = HttpCall(ops, "GET", "/metrics");
    if (!r.ok()) return 0.0;
    double n = 0;
    for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
      if (absl::StartsWith(line, "consortia_api_requests_total{") &&
          absl::StrContains(line, "code=\"404\"") &&
          absl::StrContains(line, "org=\"other-co\"") &&
          absl::StrContains(line, "route=\"/v1/blocks/{height}\"")) {
        double v = 0;
        if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) n += v;
      }
    }
    return n;
  };
  ProgramRun verified;
  std::thread verify([&] {
    verified =
        cli({"verify", "--api",
             absl::StrCat("http://", node.api().host, ":", node.api().port),
             "--api-key", outsider, "--genesis",
             dir.path() + "/node/genesis.json", "--state", "kv", "greeting"});
  });
  // Once the CLI waits for the certifying block, an invoice tx makes it.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (block_404s() < 1 && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(block_404s(), 1);
  ASSERT_NO_FATAL_FAILURE(
      commit(2, "invoice", "issue",
             {"INV-1", "buyer-co", "100", "0", "CNY", std::string(64, 'a')}));
  verify.join();
  EXPECT_EQ(verified.code, 0) << verified.out;
  EXPECT_NE(verified.out.find("OK"), std::string::npos) << verified.out;
  EXPECT_GE(Metric(ops,
                   "consortia_api_invoice_reads_refused_total{answer="
                   "\"redacted\"}"),
            1);
}

}  // namespace
}  // namespace consortia::testing
