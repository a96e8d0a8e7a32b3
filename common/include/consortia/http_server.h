// An asynchronous HTTP/1.1 server on Boost.Beast and Asio: a few threads serve
// many connections (keep-alive, idle connections cost no thread). Used by the
// api service and by every service's operations endpoint (metrics, health).
// A handler may answer with a stream (HttpResponse::on_stream): a body sent
// in pieces over time, such as Server-Sent Events.
#ifndef CONSORTIA_COMMON_HTTP_SERVER_H_
#define CONSORTIA_COMMON_HTTP_SERVER_H_

#include <atomic>
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

namespace boost::asio::ssl {
class context;
}

namespace consortia {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, as sent (not decoded)
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;  // peer address, "ip:port"
  // The client's IP address: the peer's, or, when the peer is one of
  // HttpServerOptions::trusted_proxies, the nearest address in
  // X-Forwarded-For that is not a trusted proxy (the header is ignored from
  // any other peer).
  std::string client;
  // Turns true once the connection that carried the request has closed (the
  // client went away, a timeout, the server stopped): a handler may then
  // drop work it has queued for it. Set by HttpServer; null otherwise.
  std::shared_ptr<const std::atomic<bool>> closed;

  bool ConnectionClosed() const {
    return closed != nullptr && closed->load(std::memory_order_relaxed);
  }
};

// The body of a streamed response, written piece by piece as the handler
// sends it (chunked for HTTP/1.1; the connection closes when it ends). Each
// stream has a bounded write queue: a client that reads slowly fills it and
// Send refuses, so a slow reader never holds a server thread, nor memory
// beyond the bound. A stream is exempt from the idle timeout (it may stay
// quiet as long as the handler likes); only a write that makes no progress
// for HttpServerOptions::idle_timeout closes it. Thread-safe.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // Queues `data` to be written as it is. False, and nothing queued, once
  // the stream is closed, or when the queue would exceed
  // HttpServerOptions::max_stream_queue_bytes (the stream stays open: the
  // handler decides, usually Close with a last word).
  virtual bool Send(std::string data) = 0;
  // Queues `last` (even beyond the queue bound), then ends the response and
  // closes the connection once everything queued is written. Later calls
  // and Sends are ignored.
  virtual void Close(std::string last = "") = 0;
  // True once Close was called or the connection ended (the client went
  // away, a stalled write, the server stopped).
  virtual bool closed() const = 0;
  // Pieces (Send calls) and bytes queued but not yet written to the socket.
  virtual size_t queued() const = 0;
  virtual size_t queued_bytes() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the response is a stream: the status line and headers are sent
  // at once (body is ignored), then on_stream is called once, on a server
  // thread, with the stream through which the body follows. It must not
  // block. Not called when the connection has gone meanwhile.
  std::function<void(std::shared_ptr<HttpStream>)> on_stream;
};

// An RFC 9457 problem+json response: {"type","title","status","detail"}.
HttpResponse Problem(int status, std::string type, std::string title,
                     std::string detail);

// What the server refused or cut short, for the owner's metrics.
enum class HttpEvent {
  kRefusedTotal,      // a new connection closed at once: max_connections
  kRefusedPerClient,  // ... max_connections_per_client
  kHeaderTimeout,     // a request header not complete within header_timeout
  kHeaderTooLarge,    // a request header over max_header_bytes (431)
  kClientGone,        // a connection closed while its handler had not answered
  kTlsHandshakeFailed,  // a TLS connection whose handshake failed or timed out
};

// Called on the server's threads; must be quick and must not block. Either
// may be empty.
struct HttpServerHooks {
  std::function<void(HttpEvent)> on_event;
  // The number of open connections, after every change.
  std::function<void(size_t open)> on_open_connections;
  // The number of open streams (HttpStream), after every change.
  std::function<void(size_t open)> on_open_streams;
};

// Counters since the server started (for tests and diagnostics).
struct HttpServerStats {
  size_t open_connections = 0;
  uint64_t refused_total = 0;
  uint64_t refused_per_client = 0;
  uint64_t header_timeouts = 0;
  uint64_t headers_too_large = 0;
  uint64_t clients_gone = 0;
  size_t open_streams = 0;       // streams whose connection is open
  uint64_t streams_started = 0;  // responses that became streams
  uint64_t stream_refusals = 0;  // Sends refused: the queue was full
  uint64_t stream_stalls = 0;    // streams closed by a write without progress
  uint64_t tls_handshake_failures = 0;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port (see port())
  size_t threads = 2;
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  // Request line plus header fields; larger gets 431 and the connection
  // closes.
  size_t max_header_bytes = 16 * 1024;
  // From the first byte of a request until its header is complete; slower
  // and the connection closes without an answer (HttpEvent::kHeaderTimeout).
  absl::Duration header_timeout = absl::Seconds(10);
  // A connection with no request under way this long (after it opened, or
  // after the last answer: keep-alive), a request body that takes longer to
  // arrive, or a handler that has not answered within it, is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Open connections at most, in total and per client IP address (the
  // peer's address; connections from a trusted proxy count against the
  // total only). A connection over either cap is closed as soon as it is
  // accepted, before anything is read. 0 means no cap.
  size_t max_connections = 10000;
  size_t max_connections_per_client = 256;
  // Bytes a stream may have queued but not yet written (HttpStream::Send).
  size_t max_stream_queue_bytes = 4 << 20;
  // IP addresses (not names, not ranges) of reverse proxies whose
  // X-Forwarded-For is believed; see HttpRequest::client.
  std::vector<std::string> trusted_proxies;
  // When set, the port speaks HTTPS only: each accepted connection first
  // does a TLS handshake with the context this returns (called once per
  // connection, on a server thread; must be quick and never return null,
  // e.g. TlsServerCredentials::Context of consortia/tls.h). The handshake
  // must complete within header_timeout; one that fails or is late closes
  // the connection (HttpEvent::kTlsHandshakeFailed), as does plain HTTP.
  std::function<std::shared_ptr<boost::asio::ssl::context>()> tls_context;
  HttpServerHooks hooks;
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
  virtual HttpServerStats stats() const = 0;
};

// Decodes %XX escapes; with plus_is_space (query strings, form encoding) a
// '+' becomes a space. InvalidArgument for a truncated or non-hex escape.
absl::StatusOr<std::string> PercentDecode(std::string_view in,
                                          bool plus_is_space = false);

// Unavailable if the address cannot be bound, InvalidArgument if a trusted
// proxy is not an IP address. Malformed HTTP gets 400, an over-long header
// 431, an over-long body 413 (all problem+json) without calling the handler.
absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(
    const HttpServerOptions& options, HttpServer::Handler handler);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_HTTP_SERVER_H_
