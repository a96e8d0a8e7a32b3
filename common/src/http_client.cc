#include "consortia/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace consortia {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

absl::StatusOr<HttpTarget> ParseHttpUrl(const std::string& url) {
  constexpr char kScheme[] = "http://";
  if (!absl::StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL must start with http://: '", url, "'"));
  }
  std::string rest = url.substr(sizeof(kScheme) - 1);
  HttpTarget t;
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
    t.port = 80;
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
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
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
  resolver.async_resolve(
      target.host, std::to_string(target.port),
      [&](beast::error_code ec, tcp::resolver::results_type results) {
        if (ec) return fail(ec);
        stage = "connect";
        stream.async_connect(results, [&](beast::error_code ec,
                                          const tcp::endpoint&) {
          if (ec) return fail(ec);
          stage = "write";
          http::async_write(stream, req, [&](beast::error_code ec, size_t) {
            if (ec) return fail(ec);
            stage = "read";
            http::async_read(stream, buffer, parser,
                             [&](beast::error_code ec, size_t) { fail(ec); });
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
    return absl::UnavailableError(absl::StrCat(
        "HTTP ", method, " ", path, " to ", target.host, ":", target.port,
        " failed during ", stage, ": ", result->message()));
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
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

}  // namespace consortia
