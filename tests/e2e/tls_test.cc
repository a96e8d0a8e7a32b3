// End-to-end: the api of a real node on HTTPS (--api_tls_cert_file,
// --api_tls_key_file), the CLI submitting over https with a private CA
// (--tls-ca-file), and the certificate replaced while the api runs:
// `kill -HUP <api pid>` makes new connections get the new one.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/testing/test_certs.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "node_harness.h"

namespace consortia::testing {
namespace {

TEST(TlsE2eTest, CliOverHttpsAndCertificateReloadOnSighup) {
  TempDir dir;
  const std::string ca_file = dir.path() + "/ca.pem";
  const std::string cert_file = dir.path() + "/api-cert.pem";
  const std::string key_file = dir.path() + "/api-key.pem";
  TestCertificateAuthority ca("e2e private CA");
  TestCert first = ca.Issue("api first", 101);
  ASSERT_TRUE(WriteTestFile(ca_file, ca.cert_pem()).ok());
  ASSERT_TRUE(WriteTestFile(cert_file, first.cert_pem).ok());
  ASSERT_TRUE(WriteTestFile(key_file, first.key_pem).ok());

  NodeHarnessOptions opts;
  opts.api_tls_ca_file = ca_file;
  opts.extra_flags["consortia-api"] = {"--api_tls_cert_file=" + cert_file,
                                       "--api_tls_key_file=" + key_file};
  NodeHarness node(dir.path() + "/node", opts);
  ASSERT_TRUE(node.Start().ok()) << node.LogTail();
  auto r = node.Get("/v1/blocks/latest");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peer_cert_sha256, first.sha256);

  // The CLI over https, trusting the private CA.
  const std::string api = absl::StrCat("https://localhost:", node.api().port);
  auto [kcode, kout] =
      RunCli(dir.path(), {"keygen", "--out", dir.path() + "/client.json"});
  ASSERT_EQ(kcode, 0) << kout;
  auto [code, out] =
      RunCli(dir.path(), {"submit", "--api", api, "--tls-ca-file", ca_file,
                          "--genesis", dir.path() + "/node/genesis.json",
                          "--key", dir.path() + "/client.json", "--app", "kv",
                          "--method", "set", "--wait", "greeting", "over-tls"});
  ASSERT_EQ(code, 0) << out << node.LogTail();
  EXPECT_TRUE(absl::StrContains(out, "tx_hash")) << out;

  // Without the CA the CLI refuses the certificate and says how to trust it.
  auto [ucode, uout] =
      RunCli(dir.path(), {"get", "block", "latest", "--api", api});
  EXPECT_EQ(ucode, 1) << uout;
  EXPECT_TRUE(absl::StrContains(uout, "certificate verify failed")) << uout;
  EXPECT_TRUE(absl::StrContains(uout, "--tls-ca-file")) << uout;

  // Replace the pair and send SIGHUP: new connections get the new one.
  TestCert second = ca.Issue("api second", 102);
  ASSERT_TRUE(WriteTestFile(cert_file, second.cert_pem).ok());
  ASSERT_TRUE(WriteTestFile(key_file, second.key_pem).ok());
  const pid_t api_pid = node.pid("consortia-api");
  ASSERT_GT(api_pid, 0);
  ASSERT_EQ(::kill(api_pid, SIGHUP), 0);
  std::string served;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto got = node.Get("/healthz");
    if (got.ok()) served = got->peer_cert_sha256;
    if (served == second.sha256) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(served, second.sha256) << node.LogTail();

  // The api is still the same process and serves the CLI.
  auto [gcode, gout] = RunCli(dir.path(), {"get", "block", "latest", "--api",
                                           api, "--tls-ca-file", ca_file});
  EXPECT_EQ(gcode, 0) << gout;
  auto metrics = HttpCall(node.ops().at("consortia-api"), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      metrics->body, "consortia_api_tls_reloads_total{result=\"ok\"} 1"))
      << metrics->body;
  EXPECT_TRUE(node.Stop().ok()) << node.LogTail();
}

}  // namespace
}  // namespace consortia::testing
