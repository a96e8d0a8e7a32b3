// Unit tests of the api's API keys, quotas and audit log (src/auth.h,
// src/quota.h, src/access.h, src/audit_log.h), on an injected clock.
#include "access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "api_metrics.h"
#include "audit_log.h"
#include "auth.h"
#include "consortia/api_keys.h"
#include "consortia/audit_chain.h"
#include "consortia/config.h"
#include "consortia/metrics.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quota.h"

namespace consortia::api {
namespace {

namespace fs = std::filesystem;

const absl::Time kT0 = absl::FromUnixSeconds(1'750'000'000);

// ------------------------------------------------------------ TokenBucket

TEST(TokenBucketTest, StartsFullRefillsAtItsRateAndCapsAtTheBurst) {
  TokenBucket b;
  // 2 per second, burst 3: three at once, then none.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b.Take(1, 2, 3, kT0), absl::ZeroDuration()) << i;
  }
  EXPECT_EQ(b.Take(1, 2, 3, kT0), absl::Milliseconds(500));
  // 250 ms later: half a token; the next one in 250 ms.
  EXPECT_EQ(b.Take(1, 2, 3, kT0 + absl::Milliseconds(250)),
            absl::Milliseconds(250));
  EXPECT_EQ(b.Take(1, 2, 3, kT0 + absl::Milliseconds(500)),
            absl::ZeroDuration());
  // An hour later the bucket holds the burst, not more.
  absl::Time later = kT0 + absl::Hours(1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b.Take(1, 2, 3, later), absl::ZeroDuration()) << i;
  }
  EXPECT_GT(b.Take(1, 2, 3, later), absl::ZeroDuration());
}

TEST(TokenBucketTest, CostAboveTheBurstPassesWhenFullAndIsPaidInFull) {
  TokenBucket b;
  // 100 bytes/s, burst 1000: a 3000-byte tx passes on a full bucket...
  EXPECT_EQ(b.Take(3000, 100, 1000, kT0), absl::ZeroDuration());
  EXPECT_DOUBLE_EQ(b.tokens(), -2000);
  // ...and the next byte waits until the debt and one byte are refilled.
  EXPECT_EQ(b.Take(1, 100, 1000, kT0), absl::Seconds(20.01));
  EXPECT_EQ(b.Take(1, 100, 1000, kT0 + absl::Seconds(21)),
            absl::ZeroDuration());
}

TEST(TokenBucketTest, ALowerBurstAfterAReloadAppliesAtOnce) {
  TokenBucket b;
  EXPECT_EQ(b.Take(1, 1, 100, kT0), absl::ZeroDuration());  // 99 left
  // The quota drops to burst 2: the balance is capped at 2.
  EXPECT_EQ(b.Take(1, 1, 2, kT0), absl::ZeroDuration());
  EXPECT_EQ(b.Take(1, 1, 2, kT0), absl::ZeroDuration());
  EXPECT_GT(b.Take(1, 1, 2, kT0), absl::ZeroDuration());
}

TEST(TokenBucketTest, RetryAfterIsWholeSecondsRoundedUpAtLeastOne) {
  EXPECT_EQ(RetryAfterSeconds(absl::ZeroDuration()), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::Milliseconds(1)), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::Seconds(1)), 1);
  EXPECT_EQ(RetryAfterSeconds(absl::Milliseconds(1001)), 2);
  EXPECT_EQ(RetryAfterSeconds(absl::Seconds(20.01)), 21);
  EXPECT_EQ(RetryAfterSeconds(absl::Hours(100)), 86400);
}

// ----------------------------------------------------------- QuotaLimiter

OrgQuotas Quotas(double rps, uint64_t burst, double bps, uint64_t bburst) {
  return OrgQuotas{rps, burst, bps, bburst};
}

TEST(QuotaLimiterTest, EachKeyHasItsOwnBuckets) {
  QuotaLimiter q;
  OrgQuotas quotas = Quotas(1, 2, 1e6, 1e6);
  EXPECT_TRUE(q.Admit("noisy", quotas, 0, kT0).ok);
  EXPECT_TRUE(q.Admit("noisy", quotas, 0, kT0).ok);
  QuotaVerdict v = q.Admit("noisy", quotas, 0, kT0);
  EXPECT_FALSE(v.ok);
  EXPECT_STREQ(v.quota, "requests");
  EXPECT_EQ(v.retry_after, absl::Seconds(1));
  // Another key of the same organisation is not affected.
  EXPECT_TRUE(q.Admit("quiet", quotas, 0, kT0).ok);
  EXPECT_TRUE(q.Admit("noisy", quotas, 0, kT0 + absl::Seconds(1)).ok);
}

TEST(QuotaLimiterTest, BytesAreLimitedAndARefusedRequestCostsNothing) {
  QuotaLimiter q;
  OrgQuotas quotas = Quotas(100, 100, 1000, 1000);
  EXPECT_TRUE(q.Admit("k", quotas, 800, kT0).ok);
  QuotaVerdict v = q.Admit("k", quotas, 400, kT0);
  EXPECT_FALSE(v.ok);
  EXPECT_STREQ(v.quota, "tx_bytes");
  EXPECT_EQ(v.retry_after, absl::Milliseconds(200));
  // The refused request took no request token and no bytes: 200 bytes
  // still pass now, and 99 requests remain.
  EXPECT_TRUE(q.Admit("k", quotas, 200, kT0).ok);
  for (int i = 0; i < 98; ++i) EXPECT_TRUE(q.Admit("k", quotas, 0, kT0).ok);
  EXPECT_FALSE(q.Admit("k", quotas, 0, kT0).ok);
}

TEST(QuotaLimiterTest, RetainForgetsRemovedKeys) {
  QuotaLimiter q;
  OrgQuotas quotas = Quotas(1, 1, 1, 1);
  q.Admit("a", quotas, 0, kT0);
  q.Admit("b", quotas, 0, kT0);
  EXPECT_EQ(q.size(), 2u);
  q.Retain({"b"});
  EXPECT_EQ(q.size(), 1u);
  // "a" is forgotten: a key with its id starts with a full bucket.
  EXPECT_TRUE(q.Admit("a", quotas, 0, kT0).ok);
  EXPECT_FALSE(q.Admit("b", quotas, 0, kT0).ok);
}

// ---------------------------------------------------------- Authenticator

struct TestKeys {
  ApiKeyFile file;
  std::string both, reader, submitter, revoked, expiring;
};

// An organisation with five keys; their secrets in the struct.
TestKeys MakeKeys() {
  TestKeys t;
  t.file.organisations.push_back(ApiOrganisation{"acme", OrgQuotas{}});
  std::vector<std::string> ids;
  auto add = [&](std::vector<ApiScope> scopes) {
    NewApiKey k = GenerateApiKey(ids);
    ids.push_back(k.id);
    ApiKeyEntry e;
    e.id = k.id;
    e.org = "acme";
    e.sha256 = ApiKeySecretHash(k.secret);
    e.scopes = std::move(scopes);
    e.created = kT0;
    t.file.keys.push_back(e);
    return k.secret;
  };
  t.both = add({ApiScope::kRead, ApiScope::kSubmit});
  t.reader = add({ApiScope::kRead});
  t.submitter = add({ApiScope::kSubmit});
  t.revoked = add({ApiScope::kSubmit});
  t.file.keys.back().revoked = true;
  t.file.keys.back().revoked_at = kT0;
  t.expiring = add({ApiScope::kSubmit});
  t.file.keys.back().expires_at = kT0 + absl::Hours(1);
  EXPECT_TRUE(ValidateApiKeyFile(t.file).ok());
  return t;
}

std::optional<std::string> Bearer(const std::string& secret) {
  return "Bearer " + secret;
}

TEST(AuthenticatorTest, EachRefusalHasItsKind) {
  TestKeys t = MakeKeys();
  Authenticator auth(t.file);
  const auto submit = std::optional<ApiScope>(ApiScope::kSubmit);
  const auto read = std::optional<ApiScope>(ApiScope::kRead);
  auto failure = [&](std::optional<std::string> header,
                     std::optional<ApiScope> needed, absl::Time now = kT0) {
    return auth.Check(header, needed, now).failure;
  };
  EXPECT_EQ(failure(Bearer(t.both), submit), AuthFailure::kNone);
  EXPECT_EQ(failure(Bearer(t.both), read), AuthFailure::kNone);
  EXPECT_EQ(failure(std::nullopt, submit), AuthFailure::kMissing);
  EXPECT_EQ(failure("Basic dXNlcjpwYXNz", submit), AuthFailure::kMissing);
  EXPECT_EQ(failure("Bearer ", submit), AuthFailure::kMissing);
  EXPECT_EQ(failure(Bearer("csk_000000000000_abc"), submit),
            AuthFailure::kUnknown);
  EXPECT_EQ(failure(Bearer("not-a-key"), submit), AuthFailure::kUnknown);
  // The right id with a wrong secret (one digit changed) is unknown.
  std::string forged = t.both;
  forged.back() = forged.back() == '0' ? '1' : '0';
  EXPECT_EQ(failure(Bearer(forged), submit), AuthFailure::kUnknown);
  EXPECT_EQ(failure(Bearer(t.revoked), submit), AuthFailure::kRevoked);
  EXPECT_EQ(failure(Bearer(t.reader), submit), AuthFailure::kScope);
  EXPECT_EQ(failure(Bearer(t.submitter), read), AuthFailure::kScope);
  // The scheme is case-insensitive.
  EXPECT_EQ(failure("bearer " + t.both, submit), AuthFailure::kNone);
  EXPECT_EQ(failure("BEARER  " + t.both + " ", submit), AuthFailure::kNone);
}

TEST(AuthenticatorTest, ExpiryFollowsTheClock) {
  TestKeys t = MakeKeys();
  Authenticator auth(t.file);
  const auto submit = std::optional<ApiScope>(ApiScope::kSubmit);
  EXPECT_EQ(auth.Check(Bearer(t.expiring), submit, kT0).failure,
            AuthFailure::kNone);
  EXPECT_EQ(auth.Check(Bearer(t.expiring), submit,
                       kT0 + absl::Hours(1) - absl::Nanoseconds(1))
                .failure,
            AuthFailure::kNone);
  EXPECT_EQ(
      auth.Check(Bearer(t.expiring), submit, kT0 + absl::Hours(1)).failure,
      AuthFailure::kExpired);
  // Revocation wins over expiry.
  EXPECT_EQ(auth.Check(Bearer(t.revoked), submit, kT0 + absl::Hours(2)).failure,
            AuthFailure::kRevoked);
}

TEST(AuthenticatorTest, PublicRoutesPassWithoutAKeyButCheckOneGiven) {
  TestKeys t = MakeKeys();
  Authenticator auth(t.file);
  AuthResult anon = auth.Check(std::nullopt, std::nullopt, kT0);
  EXPECT_EQ(anon.failure, AuthFailure::kNone);
  EXPECT_FALSE(anon.caller.has_value());
  // A submit-only key reads a public route, as itself.
  AuthResult r = auth.Check(Bearer(t.submitter), std::nullopt, kT0);
  EXPECT_EQ(r.failure, AuthFailure::kNone);
  ASSERT_TRUE(r.caller.has_value());
  EXPECT_EQ(r.caller->org, "acme");
  EXPECT_EQ(auth.Check(Bearer(t.revoked), std::nullopt, kT0).failure,
            AuthFailure::kRevoked);
  EXPECT_EQ(auth.Check(Bearer("csk_x_y"), std::nullopt, kT0).failure,
            AuthFailure::kUnknown);
}

TEST(AuthenticatorTest, ReplaceRevokesAndAddsKeys) {
  TestKeys t = MakeKeys();
  Authenticator auth(t.file);
  const auto submit = std::optional<ApiScope>(ApiScope::kSubmit);
  ApiKeyFile next = t.file;
  next.keys[0].revoked = true;
  next.keys[0].revoked_at = kT0;
  next.keys.erase(next.keys.begin() + 2);  // the submitter
  auth.Replace(next);
  EXPECT_EQ(auth.Check(Bearer(t.both), submit, kT0).failure,
            AuthFailure::kRevoked);
  EXPECT_EQ(auth.Check(Bearer(t.submitter), submit, kT0).failure,
            AuthFailure::kUnknown);
  EXPECT_EQ(auth.KeyIds().size(), 4u);
}

// ---------------------------------------------------------- AccessControl

HttpRequest Req(std::optional<std::string> authorization,
                std::string body = "") {
  HttpRequest r;
  r.method = body.empty() ? "GET" : "POST";
  if (authorization.has_value()) r.headers["authorization"] = *authorization;
  r.body = std::move(body);
  return r;
}

std::string ProblemType(const HttpResponse& r) {
  return nlohmann::json::parse(r.body).value("type", "");
}

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(AccessControlTest, RefusalsAreProblemsAndCounted) {
  TestKeys t = MakeKeys();
  t.file.organisations[0].quotas = OrgQuotas{1, 2, 1e6, 100};
  Authenticator auth(t.file);
  QuotaLimiter quotas;
  MetricsRegistry registry;
  ApiMetrics metrics(&registry);
  absl::Time now = kT0;
  AccessControl access(&auth, &quotas, false, &metrics, [&] { return now; });
  const std::string base = "https://consortia.dev/problems/";

  Access a = access.Check(Req(std::nullopt, "{}"), true);
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(a.refusal.status, 401);
  EXPECT_EQ(ProblemType(a.refusal), base + "api-key-missing");
  EXPECT_EQ(Header(a.refusal, "WWW-Authenticate"),
            "Bearer realm=\"consortia\"");
  a = access.Check(Req(Bearer("csk_abc_def"), "{}"), true);
  EXPECT_EQ(a.refusal.status, 401);
  EXPECT_EQ(ProblemType(a.refusal), base + "api-key-unknown");
  EXPECT_FALSE(a.caller.has_value());
  a = access.Check(Req(Bearer(t.revoked), "{}"), true);
  EXPECT_EQ(a.refusal.status, 403);
  EXPECT_EQ(ProblemType(a.refusal), base + "api-key-revoked");
  EXPECT_TRUE(a.caller.has_value());  // known: the audit log names it
  a = access.Check(Req(Bearer(t.reader), "{}"), true);
  EXPECT_EQ(a.refusal.status, 403);
  EXPECT_EQ(ProblemType(a.refusal), base + "insufficient-scope");
  now = kT0 + absl::Hours(2);
  a = access.Check(Req(Bearer(t.expiring), "{}"), true);
  EXPECT_EQ(a.refusal.status, 403);
  EXPECT_EQ(ProblemType(a.refusal), base + "api-key-expired");

  // Reads are public: no key needed, no quota.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(access.Check(Req(std::nullopt), false).allowed);
  }
  // Quota: burst 2 requests, then 429 with Retry-After.
  EXPECT_TRUE(access.Check(Req(Bearer(t.both), "{}"), true).allowed);
  EXPECT_TRUE(access.Check(Req(Bearer(t.both)), false).allowed);
  a = access.Check(Req(Bearer(t.both), "{}"), true);
  EXPECT_EQ(a.refusal.status, 429);
  EXPECT_EQ(ProblemType(a.refusal), base + "quota-exceeded");
  EXPECT_EQ(Header(a.refusal, "Retry-After"), "1");
  // Bytes: a 150-byte body on a 100-byte burst at 1e6/s passes when full.
  now += absl::Seconds(10);
  EXPECT_TRUE(
      access.Check(Req(Bearer(t.submitter), std::string(150, 'x')), true)
          .allowed);

  std::string m = registry.Serialize();
  for (const char* kind :
       {"missing", "unknown", "revoked", "scope", "expired"}) {
    EXPECT_NE(m.find(std::string("consortia_api_auth_failures_total{kind=\"") +
                     kind + "\"} 1"),
              std::string::npos)
        << kind << "\n"
        << m;
  }
  EXPECT_NE(m.find("consortia_api_quota_refusals_total{org=\"acme\","
                   "quota=\"requests\"} 1"),
            std::string::npos)
      << m;
}

TEST(AccessControlTest, ReadsNeedAKeyWhenConfigured) {
  TestKeys t = MakeKeys();
  Authenticator auth(t.file);
  QuotaLimiter quotas;
  ApiMetrics metrics(nullptr);
  AccessControl access(&auth, &quotas, true, &metrics, [] { return kT0; });
  EXPECT_EQ(access.Check(Req(std::nullopt), false).refusal.status, 401);
  EXPECT_TRUE(access.Check(Req(Bearer(t.reader)), false).allowed);
  EXPECT_EQ(access.Check(Req(Bearer(t.submitter)), false).refusal.status, 403);
}

TEST(AccessControlTest, WithoutAKeyFileEverythingIsOpen) {
  QuotaLimiter quotas;
  ApiMetrics metrics(nullptr);
  AccessControl access(nullptr, &quotas, false, &metrics, [] { return kT0; });
  Access a = access.Check(Req(std::nullopt, "{}"), true);
  EXPECT_TRUE(a.allowed);
  EXPECT_FALSE(a.caller.has_value());
  EXPECT_TRUE(access.Check(Req(Bearer("csk_whatever_x"), "{}"), true).allowed);
}

// --------------------------------------------------------- KeyFileWatcher

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/api_access_testXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

using KeyFileWatcherTest = TempDirTest;

TEST_F(KeyFileWatcherTest, ReloadsChangesAndKeepsTheOldKeysOnABadFile) {
  TestKeys t = MakeKeys();
  const std::string path = dir_ + "/keys.json";
  ASSERT_TRUE(WriteFileAtomic(path, ApiKeyFileToJson(t.file)).ok());
  MetricsRegistry registry;
  ApiMetrics metrics(&registry);
  std::atomic<int> loads{0};
  ApiKeyFile current;
  auto watcher = KeyFileWatcher::Start(
      path, absl::Hours(1),
      [&](const ApiKeyFile& f) {
        current = f;
        ++loads;
      },
      &metrics);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(current, t.file);

  // Unchanged: nothing is read again.
  (*watcher)->PollNowForTest();
  EXPECT_EQ(loads, 1);

  // A new file renamed over the old one (what the CLI does).
  ApiKeyFile next = t.file;
  next.keys.pop_back();
  ASSERT_TRUE(WriteFileAtomic(path, ApiKeyFileToJson(next)).ok());
  (*watcher)->PollNowForTest();
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(current, next);

  // A malformed file: the keys stay, the failure is counted once.
  ASSERT_TRUE(WriteFileAtomic(path, "{\"version\": 1, \"keys\": [").ok());
  (*watcher)->PollNowForTest();
  (*watcher)->PollNowForTest();
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(current, next);
  // A missing file too.
  fs::remove(path);
  (*watcher)->PollNowForTest();
  EXPECT_EQ(loads, 2);
  // Fixed again.
  ASSERT_TRUE(WriteFileAtomic(path, ApiKeyFileToJson(t.file)).ok());
  (*watcher)->PollNowForTest();
  EXPECT_EQ(loads, 3);
  EXPECT_EQ(current, t.file);

  std::string m = registry.Serialize();
  EXPECT_NE(m.find("consortia_api_key_file_reloads_total{result=\"ok\"} 2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("consortia_api_key_file_reloads_total{result=\"failed\"} 2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("consortia_api_keys 5"), std::string::npos) << m;
}

// A Kubernetes Secret volume: keys.json -> ..data/keys.json, ..data -> a
// timestamped directory; an update writes a new directory and renames a new
// ..data symlink over the old one.
TEST_F(KeyFileWatcherTest, FollowsAKubernetesSecretSymlinkSwap) {
  TestKeys t = MakeKeys();
  fs::create_directory(dir_ + "/..2025_01_01_a");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/..2025_01_01_a/keys.json",
                              ApiKeyFileToJson(t.file))
                  .ok());
  fs::create_directory_symlink("..2025_01_01_a", dir_ + "/..data");
  fs::create_symlink("..data/keys.json", dir_ + "/keys.json");
  ApiMetrics metrics(nullptr);
  absl::Mutex mu;
  ApiKeyFile current;
  // Polled by its own thread every 10 ms.
  auto watcher = KeyFileWatcher::Start(
      dir_ + "/keys.json", absl::Milliseconds(10),
      [&](const ApiKeyFile& f) {
        absl::MutexLock l(&mu);
        current = f;
      },
      &metrics);
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  ApiKeyFile next = t.file;
  next.keys[0].revoked = true;
  next.keys[0].revoked_at = kT0;
  fs::create_directory(dir_ + "/..2025_01_01_b");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/..2025_01_01_b/keys.json",
                              ApiKeyFileToJson(next))
                  .ok());
  fs::create_directory_symlink("..2025_01_01_b", dir_ + "/..data_tmp");
  fs::rename(dir_ + "/..data_tmp", dir_ + "/..data");
  fs::remove_all(dir_ + "/..2025_01_01_a");
  // Waits (at most 30 s) for the watcher's thread to load it.
  absl::MutexLock l(&mu);
  auto loaded = [&]() { return current == next; };
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&loaded), absl::Seconds(30)));
}

TEST_F(KeyFileWatcherTest, ABadFileAtStartIsAnError) {
  ApiMetrics metrics(nullptr);
  auto missing = KeyFileWatcher::Start(
      dir_ + "/none.json", absl::Seconds(1), [](const ApiKeyFile&) {},
      &metrics);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad.json", "[]").ok());
  auto bad = KeyFileWatcher::Start(
      dir_ + "/bad.json", absl::Seconds(1), [](const ApiKeyFile&) {}, &metrics);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

// --------------------------------------------------------------- AuditLog

using AuditLogTest = TempDirTest;

AuditRecord Record(int i) {
  AuditRecord r;
  r.time = kT0 + absl::Milliseconds(i);
  r.org = "acme";
  r.key_id = "0123456789ab";
  r.client = "127.0.0.1";
  r.route = "POST /v1/txs";
  r.tx_hashes = {std::string(64, 'a')};
  r.status = 202;
  r.outcome = "accepted";
  r.trace = "00000000000000" + std::to_string(10 + i % 90);
  return r;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// Appends n records and waits until every one was answered.
void AppendAndWait(AuditLog& log, int from, int n) {
  std::atomic<int> done{0};
  absl::Notification all;
  for (int i = from; i < from + n; ++i) {
    log.Append(Record(i), [&] {
      if (++done == n) all.Notify();
    });
  }
  all.WaitForNotification();
}

TEST_F(AuditLogTest, LinesAreChainedAndTheChainContinuesAfterARestart) {
  const std::string path = dir_ + "/audit.log";
  MetricsRegistry registry;
  ApiMetrics metrics(&registry);
  {
    auto log = AuditLog::Open(path, 1000, &metrics);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->head(), AuditChainStart());
    AppendAndWait(**log, 0, 20);
    EXPECT_TRUE((*log)->Accepting());
  }
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 20u);
  nlohmann::json first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["org"], "acme");
  EXPECT_EQ(first["key_id"], "0123456789ab");
  EXPECT_EQ(first["outcome"], "accepted");
  EXPECT_EQ(first["status"], 202);
  EXPECT_EQ(first["time"], "2025-06-15T15:06:40.000Z");
  EXPECT_EQ(first["prev"], AuditChainStart());
  // Restarted: the chain goes on from the last line.
  {
    auto log = AuditLog::Open(path, 1000, &metrics);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->head(), CheckAuditLine(lines.back())->hash);
    AppendAndWait(**log, 20, 5);
  }
  absl::StatusOr<AuditReport> report = VerifyAuditLogFile(path);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->reason << " at " << report->bad_line;
  EXPECT_EQ(report->lines, 25u);
  EXPECT_NE(registry.Serialize().find("consortia_api_audit_lines_total 25"),
            std::string::npos);
}

// --api_audit_log_max_bytes: full files are renamed audit.log.000001, ...,
// and the chain runs on across them (and across a restart right after a
// rotation, when the current file is still empty).
TEST_F(AuditLogTest, RotatedFilesFormOneChain) {
  const std::string path = dir_ + "/audit.log";
  MetricsRegistry registry;
  ApiMetrics metrics(&registry);
  const uint64_t max_bytes = 1000;  // a line is ~330 bytes: 3 lines a file
  {
    auto log = AuditLog::Open(path, 1000, &metrics, max_bytes);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 10; ++i) AppendAndWait(**log, i, 1);
  }
  std::vector<std::string> files;
  for (int n = 1;
       fs::exists(absl::StrCat(path, ".", absl::Dec(n, absl::kZeroPad6)));
       ++n) {
    files.push_back(absl::StrCat(path, ".", absl::Dec(n, absl::kZeroPad6)));
  }
  ASSERT_GE(files.size(), 2u);
  size_t lines = 0;
  for (const std::string& f : files) {
    EXPECT_GE(fs::file_size(f), max_bytes) << f;
    EXPECT_LT(fs::file_size(f), 2 * max_bytes) << f;
    lines += Lines(f).size();
  }
  // Each file's first line carries the hash of the line before, in the
  // file before.
  EXPECT_EQ(nlohmann::json::parse(Lines(path).front())["prev"],
            CheckAuditLine(Lines(files.back()).back())->hash);
  EXPECT_EQ(lines + Lines(path).size(), 10u);

  // A restart right after a rotation (the new file not written yet): the
  // chain continues from the newest rotated file.
  const std::string head = CheckAuditLine(Lines(path).back())->hash;
  const std::string last =
      absl::StrCat(path, ".", absl::Dec(files.size() + 1, absl::kZeroPad6));
  fs::rename(path, last);
  files.push_back(last);
  {
    auto log = AuditLog::Open(path, 1000, &metrics, max_bytes);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->head(), head);
    AppendAndWait(**log, 10, 2);
  }
  files.push_back(path);
  absl::StatusOr<AuditReport> report = VerifyAuditLogFiles(files);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->bad_file << ":" << report->bad_line << ": "
                          << report->reason;
  EXPECT_EQ(report->total_lines, 12u);

  // A later file alone verifies only after the head it continues.
  report = VerifyAuditLogFiles({files[1]});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  report = VerifyAuditLogFiles({files[1]},
                               CheckAuditLine(Lines(files[0]).back())->hash);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->reason;

  // A removed file breaks the chain at the first line of the next one.
  std::vector<std::string> gap = files;
  gap.erase(gap.begin() + 1);
  report = VerifyAuditLogFiles(gap);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->bad_file, gap[1]);
  EXPECT_EQ(report->bad_line, 1u);
}

TEST_F(AuditLogTest, OneProcessPerFile) {
  const std::string path = dir_ + "/audit.log";
  ApiMetrics metrics(nullptr);
  auto first = AuditLog::Open(path, 10, &metrics);
  ASSERT_TRUE(first.ok());
  auto second = AuditLog::Open(path, 10, &metrics);
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
}

TEST_F(AuditLogTest, ATornLastLineIsCutOffAndATamperedOneRefused) {
  const std::string path = dir_ + "/audit.log";
  ApiMetrics metrics(nullptr);
  {
    auto log = AuditLog::Open(path, 10, &metrics);
    ASSERT_TRUE(log.ok());
    AppendAndWait(**log, 0, 3);
  }
  std::vector<std::string> lines = Lines(path);
  // A crash in the middle of a write.
  {
    std::ofstream out(path, std::ios::app);
    out << lines[1].substr(0, 40);
  }
  {
    auto log = AuditLog::Open(path, 10, &metrics);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->head(), CheckAuditLine(lines[2])->hash);
    AppendAndWait(**log, 3, 1);
  }
  absl::StatusOr<AuditReport> report = VerifyAuditLogFile(path);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->reason;
  EXPECT_EQ(report->lines, 4u);

  // A last line that is not sealed: the api does not start on it.
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"time\":\"x\"}\n";
  }
  auto refused = AuditLog::Open(path, 10, &metrics);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
}

TEST_F(AuditLogTest, AFullQueueIsNotAccepting) {
  const std::string path = dir_ + "/audit.log";
  ApiMetrics metrics(nullptr);
  auto log = AuditLog::Open(path, 2, &metrics);
  ASSERT_TRUE(log.ok());
  // Hold the writer: the first callback blocks until released.
  absl::Notification started, release;
  (*log)->Append(Record(0), [&] {
    started.Notify();
    release.WaitForNotification();
  });
  started.WaitForNotification();
  EXPECT_TRUE((*log)->Accepting());
  (*log)->Append(Record(1), nullptr);
  EXPECT_TRUE((*log)->Accepting());
  (*log)->Append(Record(2), nullptr);
  EXPECT_FALSE((*log)->Accepting());
  release.Notify();
}

TEST(AuditRecordTest, FieldsInTheDocumentedOrderAndNullsWithoutKeys) {
  AuditRecord r = Record(5);
  r.org.reset();
  r.key_id.reset();
  std::string json = AuditRecordJson(r);
  EXPECT_EQ(json.find("{\"time\":"), 0u) << json;
  EXPECT_NE(json.find("\"org\":null,\"key_id\":null,\"client\":"),
            std::string::npos)
      << json;
  EXPECT_LT(json.find("\"tx_hashes\""), json.find("\"outcome\""));
}

}  // namespace
}  // namespace consortia::api
