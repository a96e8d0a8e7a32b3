#include "consortia/http_client.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http_transport.h"

namespace consortia {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using http_internal::HttpTransport;

namespace {

// The client context of a target: TLS 1.2+, peer verification on, trusting
// the system's CAs or only those of ca_file.
absl::StatusOr<std::shared_ptr<ssl::context>> ClientContext(
    const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
    if (ec) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load CA certificates from ", ca_file, ": ", ec.message()));
    }
  }
  ERR_clear_error();
  return ctx;
}

// Asks OpenSSL to check that the certificate names `host` (an IP address
// or a DNS name; SNI is sent for a name).
void ExpectHost(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl, host.c_str());
  }
}

std::string PeerCertSha256(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  std::string out;
  if (X509_digest(cert, EVP_sha256(), md, &n) == 1) {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; ++i) {
      out.push_back(kDigits[md[i] >> 4]);
      out.push_back(kDigits[md[i] & 15]);
    }
  }
  X509_free(cert);
  return out;
}

}  // namespace

absl::StatusOr<HttpTarget> ParseHttpUrl(const std::string& url) {
  HttpTarget t;
  std::string rest;
  if (absl::StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (absl::StartsWith(url, "https://")) {
    rest = url.substr(8);
    t.tls = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("URL must start with http:// or https://: '", url, "'"));
  }
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) {
    t.base_path = rest.substr(slash);
    while (!t.base_path.empty() && t.base_path.back() == '/') {
      t.base_path.pop_back();
    }
  }
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    t.host = hostport;
    t.port = t.tls ? 443 : 80;
  } else {
    t.host = hostport.substr(0, colon);
    uint32_t port = 0;
    if (!absl::SimpleAtoi(hostport.substr(colon + 1), &port) || port == 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad port in URL '", url, "'"));
    }
    t.port = static_cast<uint16_t>(port);
  }
  if (t.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no host in URL '", url, "'"));
  }
  return t;
}

absl::StatusOr<HttpResult> HttpCall(const HttpTarget& target,
                                    const std::string& method,
                                    const std::string& path,
                                    const std::string& body,
                                    const std::string& content_type,
                                    absl::Duration timeout) {
  std::shared_ptr<ssl::context> tls;
  if (target.tls) {
    absl::StatusOr<std::shared_ptr<ssl::context>> ctx =
        ClientContext(target.tls_ca_file);
    if (!ctx.ok()) return ctx.status();
    tls = *std::move(ctx);
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  HttpTransport stream(ioc.get_executor(), tls);
  if (stream.tls()) ExpectHost(stream.ssl(), target.host);
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target.base_path + path);
  req.version(11);
  req.set(http::field::host, target.host);
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : target.headers) req.set(name, value);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);

  std::optional<beast::error_code> result;
  std::string stage = "resolve";
  auto fail = [&](beast::error_code ec) { result = ec; };
  stream.expires_after(absl::ToChronoMilliseconds(timeout));
  auto exchange = [&] {
    stage = "write";
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return fail(ec);
      stage = "read";
      http::async_read(stream, buffer, parser,
                       [&](beast::error_code ec, size_t) { fail(ec); });
    });
  };
  resolver.async_resolve(
      target.host, std::to_string(target.port),
      [&](beast::error_code ec, tcp::resolver::results_type results) {
        if (ec) return fail(ec);
        stage = "connect";
        stream.lowest_layer().async_connect(
            results, [&](beast::error_code ec, const tcp::endpoint&) {
              if (ec) return fail(ec);
              if (!stream.tls()) return exchange();
              stage = "TLS handshake";
              stream.async_handshake(ssl::stream_base::client,
                                     [&](beast::error_code ec) {
                                       if (ec) return fail(ec);
                                       exchange();
                                     });
            });
      });
  ioc.run_for(absl::ToChronoMilliseconds(timeout + absl::Seconds(1)));
  if (!result.has_value()) {
    return absl::DeadlineExceededError(
        absl::StrCat("HTTP ", method, " ", path, ": no answer during ", stage));
  }
  if (*result) {
    if (*result == beast::error::timeout) {
      return absl::DeadlineExceededError(absl::StrCat(
          "HTTP ", method, " ", path, ": timed out during ", stage));
    }
    std::string why = result->message();
    if (stream.tls() && stage == "TLS handshake") {
      long verify = SSL_get_verify_result(stream.ssl());
      if (verify != X509_V_OK) {
        why = absl::StrCat("certificate verify failed: ",
                           X509_verify_cert_error_string(verify),
                           " (the server's certificate was not accepted)");
      }
    }
    ERR_clear_error();
    return absl::UnavailableError(
        absl::StrCat("HTTP ", method, " ", path, " to ", target.host, ":",
                     target.port, " failed during ", stage, ": ", why));
  }
  auto& res = parser.get();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    out.headers[name] = std::string(field.value());
  }
  out.content_type = out.headers["content-type"];
  out.body = std::move(res.body());
  if (stream.tls()) out.peer_cert_sha256 = PeerCertSha256(stream.ssl());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

}  // namespace consortia
