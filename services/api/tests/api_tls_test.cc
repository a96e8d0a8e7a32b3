// HTTPS on the api port: --api_tls_cert_file / --api_tls_key_file, the
// reload (what SIGHUP calls) and its metrics, with a CA made for the test.
#include <stdlib.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "consortia/api/api_service.h"
#include "consortia/http_client.h"
#include "consortia/metrics.h"
#include "consortia/testing/fake_mempool.h"
#include "consortia/testing/fake_storage_queries.h"
#include "consortia/testing/test_certs.h"
#include "gtest/gtest.h"

namespace consortia::api {
namespace {

using consortia::testing::TestCert;
using consortia::testing::TestCertificateAuthority;
using consortia::testing::WriteTestFile;

Genesis TlsGenesis() {
  Genesis g;
  g.chain_id = "tls-test";
  g.crypto_suite = "ed25519-sha256";
  return g;
}

class ApiTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/api_tls_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(WriteTestFile(dir_ + "/ca.pem", ca_.cert_pem()).ok());
    first_ = ca_.Issue("api one", 11);
    Install(first_);
  }
  void TearDown() override {
    chain_.Release();
    mempool_.Release();
    api_.reset();
  }

  void Install(const TestCert& c) {
    ASSERT_TRUE(WriteTestFile(dir_ + "/cert.pem", c.cert_pem).ok());
    ASSERT_TRUE(WriteTestFile(dir_ + "/key.pem", c.key_pem).ok());
  }

  ApiOptions Options() const {
    ApiOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.tls_cert_file = dir_ + "/cert.pem";
    opts.tls_key_file = dir_ + "/key.pem";
    return opts;
  }

  absl::StatusOr<std::unique_ptr<ApiService>> Start(const ApiOptions& opts) {
    return ApiService::StartWith(opts, TlsGenesis(), &mempool_, &chain_,
                                 &state_, registry_);
  }

  absl::StatusOr<HttpResult> Get(const std::string& path, bool tls = true) {
    HttpTarget t{"localhost", api_->port(), ""};
    t.tls = tls;
    t.tls_ca_file = dir_ + "/ca.pem";
    return HttpCall(t, "GET", path, "", "", absl::Seconds(10));
  }

  bool MetricsContain(const std::string& needle) {
    return absl::StrContains(registry_.Serialize(), needle);
  }

  TestCertificateAuthority ca_{"api test CA"};
  std::string dir_;
  TestCert first_;
  MetricsRegistry registry_;
  consortia::testing::FakeMempool mempool_;
  consortia::testing::FakeChainQueries chain_;
  consortia::testing::FakeStateQueries state_;
  std::unique_ptr<ApiService> api_;
};

TEST_F(ApiTlsTest, ServesHttpsOnlyAndReloadsThePair) {
  auto s = Start(Options());
  ASSERT_TRUE(s.ok()) << s.status();
  api_ = *std::move(s);

  auto r = Get("/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->peer_cert_sha256, first_.sha256);

  // Plain HTTP is not answered; counted; the port goes on serving.
  EXPECT_FALSE(Get("/healthz", /*tls=*/false).ok());
  EXPECT_TRUE(MetricsContain("consortia_api_tls_handshake_failures_total 1"))
      << registry_.Serialize();

  TestCert second = ca_.Issue("api two", 12);
  Install(second);
  ASSERT_TRUE(api_->Reload().ok());
  r = Get("/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peer_cert_sha256, second.sha256);
  EXPECT_TRUE(
      MetricsContain("consortia_api_tls_reloads_total{result=\"ok\"} 1"));

  // A bad pair: logged, counted, the pair in force stays.
  ASSERT_TRUE(WriteTestFile(dir_ + "/key.pem", first_.key_pem).ok());
  EXPECT_FALSE(api_->Reload().ok());
  EXPECT_TRUE(
      MetricsContain("consortia_api_tls_reloads_total{result=\"failed\"} 1"));
  r = Get("/healthz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peer_cert_sha256, second.sha256);
}

TEST_F(ApiTlsTest, ABadPairAtStartIsAClearError) {
  ASSERT_TRUE(WriteTestFile(dir_ + "/key.pem", "nonsense\n").ok());
  auto s = Start(Options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "--api_tls_key_file"))
      << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), dir_ + "/key.pem"))
      << s.status();

  ApiOptions half = Options();
  half.tls_key_file = "";
  EXPECT_EQ(half.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ApiTlsTest, WithoutTlsReloadHasNothingToDo) {
  ApiOptions opts = Options();
  opts.tls_cert_file = opts.tls_key_file = "";
  auto s = Start(opts);
  ASSERT_TRUE(s.ok()) << s.status();
  api_ = *std::move(s);
  EXPECT_TRUE(api_->Reload().ok());
  auto r = Get("/healthz", /*tls=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace consortia::api
