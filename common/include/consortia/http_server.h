// An asynchronous HTTP/1.1 server on Boost.Beast and Asio: a few threads serve
// many connections (keep-alive, idle connections cost no thread). Used by the
// api service and by every service's operations endpoint (metrics, health).
#ifndef CONSORTIA_COMMON_HTTP_SERVER_H_
#define CONSORTIA_COMMON_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace consortia {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, as sent (not decoded)
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;  // peer address
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// An RFC 9457 problem+json response: {"type","title","status","detail"}.
HttpResponse Problem(int status, std::string type, std::string title,
                     std::string detail);

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port (see port())
  size_t threads = 2;
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  // A connection idle this long (no request, or a handler that has not
  // answered yet) is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
};

// Thread-safe. A handler answers through `respond` exactly once, from any
// thread; it must not block the server's threads for long. Further calls of
// `respond`, and calls after the connection closed or the server was
// destroyed, are ignored. A handler that throws gets 500.
class HttpServer {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using Handler = std::function<void(HttpRequest, Respond)>;

  virtual ~HttpServer() = default;  // stops and joins its threads
  virtual uint16_t port() const = 0;
};

// Decodes %XX escapes; with plus_is_space (query strings, form encoding) a
// '+' becomes a space. InvalidArgument for a truncated or non-hex escape.
absl::StatusOr<std::string> PercentDecode(std::string_view in,
                                          bool plus_is_space = false);

// Unavailable if the address cannot be bound. Malformed HTTP gets 400,
// over-long bodies 413 (both problem+json) without calling the handler.
absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(
    const HttpServerOptions& options, HttpServer::Handler handler);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_HTTP_SERVER_H_
