// The HTTP server over TLS (HttpServerOptions::tls_context with the
// credentials of consortia/tls.h) and the HTTP client's https, with a CA
// and certificates made for the test.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "consortia/http_client.h"
#include "consortia/http_server.h"
#include "consortia/testing/test_certs.h"
#include "consortia/tls.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using testing::TestCert;
using testing::TestCertificateAuthority;
using testing::WriteTestFile;

std::string MakeTempDir() {
  std::string tmpl = ::testing::TempDir() + "/http_tls_XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  return dir == nullptr ? std::string() : std::string(dir);
}

class HttpTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    ca_file_ = dir_ + "/ca.pem";
    cert_file_ = dir_ + "/cert.pem";
    key_file_ = dir_ + "/key.pem";
    ASSERT_TRUE(WriteTestFile(ca_file_, ca_.cert_pem()).ok());
    first_ = ca_.Issue("api one", 1001);
    ASSERT_TRUE(Install(first_).ok());
    auto creds = TlsServerCredentials::Load(cert_file_, key_file_);
    ASSERT_TRUE(creds.ok()) << creds.status();
    creds_ = *std::move(creds);
    HttpServerOptions opts;
    std::shared_ptr<TlsServerCredentials> c = creds_;
    opts.tls_context = [c] { return c->Context(); };
    auto server =
        StartHttpServer(opts, [](HttpRequest req, HttpServer::Respond respond) {
          HttpResponse r;
          r.content_type = "text/plain";
          r.body = "hello " + req.path;
          respond(std::move(r));
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  absl::Status Install(const TestCert& cert) {
    if (absl::Status s = WriteTestFile(cert_file_, cert.cert_pem); !s.ok()) {
      return s;
    }
    return WriteTestFile(key_file_, cert.key_pem);
  }

  HttpTarget Https(const std::string& host = "127.0.0.1") const {
    HttpTarget t{host, server_->port(), ""};
    t.tls = true;
    t.tls_ca_file = ca_file_;
    return t;
  }

  TestCertificateAuthority ca_{"consortia test CA"};
  std::string dir_, ca_file_, cert_file_, key_file_;
  TestCert first_;
  std::shared_ptr<TlsServerCredentials> creds_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpTlsTest, AnswersHttpsWithItsCertificate) {
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto r = HttpCall(Https(host), "GET", "/x");
    ASSERT_TRUE(r.ok()) << host << ": " << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello /x");
    EXPECT_EQ(r->peer_cert_sha256, first_.sha256);
  }
  EXPECT_EQ(creds_->Fingerprint(), first_.sha256);
  EXPECT_EQ(server_->stats().tls_handshake_failures, 0u);
}

TEST_F(HttpTlsTest, PlainHttpToTheTlsPortFailsAndTheServerStaysUp) {
  HttpTarget plain{"127.0.0.1", server_->port(), ""};
  for (int i = 0; i < 3; ++i) {
    auto r = HttpCall(plain, "GET", "/x", "", "", absl::Seconds(5));
    EXPECT_FALSE(r.ok()) << "plain HTTP was answered: " << r->status;
  }
  // Counted before the connection closes, so already seen here.
  EXPECT_EQ(server_->stats().tls_handshake_failures, 3u);
  auto r = HttpCall(Https(), "GET", "/after");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "hello /after");
}

TEST_F(HttpTlsTest, ClientRefusesAnUnknownCaAndAWrongName) {
  TestCertificateAuthority other("another CA");
  std::string other_file = dir_ + "/other-ca.pem";
  ASSERT_TRUE(WriteTestFile(other_file, other.cert_pem()).ok());
  HttpTarget t = Https();
  t.tls_ca_file = other_file;
  auto r = HttpCall(t, "GET", "/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StrContains(r.status().message(), "certificate verify failed"))
      << r.status();
  // The system's CAs do not know the test CA either.
  t.tls_ca_file = "";
  r = HttpCall(t, "GET", "/x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(
      absl::StrContains(r.status().message(), "certificate verify failed"))
      << r.status();
  // A certificate of the trusted CA that names another host.
  ASSERT_TRUE(Install(ca_.Issue("api elsewhere", 1003,
                                "DNS:elsewhere.example,IP:10.9.8.7"))
                  .ok());
  ASSERT_TRUE(creds_->Reload().ok());
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    r = HttpCall(Https(host), "GET", "/x");
    ASSERT_FALSE(r.ok()) << host;
    EXPECT_TRUE(absl::StrContains(r.status().message(), "mismatch"))
        << r.status();
  }
  // A missing CA file is the caller's mistake.
  t.tls_ca_file = dir_ + "/missing.pem";
  r = HttpCall(t, "GET", "/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpTlsTest, ReloadServesTheNewPairToNewConnectionsAndKeepsItOnError) {
  TestCert second = ca_.Issue("api two", 1002);
  ASSERT_NE(second.sha256, first_.sha256);

  // A keep-alive connection opened before the reload.
  asio::io_context ioc;
  asio::ssl::context cctx(asio::ssl::context::tls_client);
  cctx.load_verify_file(ca_file_);
  cctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<asio::ip::tcp::socket> open(ioc, cctx);
  open.next_layer().connect(asio::ip::tcp::endpoint(
      asio::ip::make_address("127.0.0.1"), server_->port()));
  open.handshake(asio::ssl::stream_base::client);
  auto get = [&](const std::string& target) {
    http::request<http::string_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(open, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(open, buf, res);
    return res.body();
  };
  EXPECT_EQ(get("/before"), "hello /before");

  ASSERT_TRUE(Install(second).ok());
  ASSERT_TRUE(creds_->Reload().ok());
  EXPECT_EQ(creds_->Fingerprint(), second.sha256);
  auto r = HttpCall(Https(), "GET", "/x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peer_cert_sha256, second.sha256);

  // The connection opened before goes on, with the old certificate.
  EXPECT_EQ(get("/still"), "hello /still");
  X509* peer = SSL_get1_peer_certificate(open.native_handle());
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(X509_get_serialNumber(peer)), 1001);
  X509_free(peer);

  // A bad pair is refused; the pair in force stays.
  TestCert third = ca_.Issue("api three", 1003);
  ASSERT_TRUE(WriteTestFile(cert_file_, third.cert_pem).ok());  // key: second's
  absl::Status st = creds_->Reload();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.message(), "does not hold the private key"))
      << st;
  ASSERT_TRUE(WriteTestFile(cert_file_, "not a certificate\n").ok());
  st = creds_->Reload();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.message(), cert_file_)) << st;
  r = HttpCall(Https(), "GET", "/x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->peer_cert_sha256, second.sha256);
  EXPECT_EQ(creds_->Fingerprint(), second.sha256);
}

TEST(TlsServerCredentialsTest, LoadNamesTheBadFile) {
  std::string dir = MakeTempDir();
  TestCertificateAuthority ca("consortia test CA");
  TestCert a = ca.Issue("a", 1);
  TestCert b = ca.Issue("b", 2);
  ASSERT_TRUE(WriteTestFile(dir + "/a.pem", a.cert_pem).ok());
  ASSERT_TRUE(WriteTestFile(dir + "/a.key", a.key_pem).ok());
  ASSERT_TRUE(WriteTestFile(dir + "/b.key", b.key_pem).ok());
  // A chain: the server's certificate, then its CA's.
  ASSERT_TRUE(
      WriteTestFile(dir + "/chain.pem", a.cert_pem + ca.cert_pem()).ok());
  EXPECT_TRUE(TlsServerCredentials::Load(dir + "/a.pem", dir + "/a.key").ok());
  EXPECT_TRUE(
      TlsServerCredentials::Load(dir + "/chain.pem", dir + "/a.key").ok());
  auto missing = TlsServerCredentials::Load(dir + "/none.pem", dir + "/a.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "none.pem"));
  auto swapped = TlsServerCredentials::Load(dir + "/a.key", dir + "/a.pem");
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.status().code(), absl::StatusCode::kInvalidArgument);
  auto mismatch = TlsServerCredentials::Load(dir + "/a.pem", dir + "/b.key");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_TRUE(absl::StrContains(mismatch.status().message(),
                                "does not hold the private key"));
}

TEST(HttpUrlTest, ParsesHttps) {
  auto t = ParseHttpUrl("https://api.example:8443/base/");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->host, "api.example");
  EXPECT_EQ(t->port, 8443);
  EXPECT_EQ(t->base_path, "/base");
  t = ParseHttpUrl("https://api.example");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->port, 443);
  t = ParseHttpUrl("http://api.example");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->tls);
  EXPECT_EQ(t->port, 80);
  EXPECT_FALSE(ParseHttpUrl("ftp://x").ok());
}

}  // namespace
}  // namespace consortia
