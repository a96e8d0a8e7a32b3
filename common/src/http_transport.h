// The byte stream under an HTTP connection (http_server.cc, http_client.cc):
// plain TCP, or TLS over TCP, chosen when the connection is made. Both are a
// beast::tcp_stream underneath, which carries the timeouts
// (expires_after) and the socket; TLS adds a handshake that must complete
// before anything else is read or written.
//
// An asynchronous read and write stream (Beast's http::async_read and
// async_write take it). Not thread-safe: use it on one strand, as any
// Asio stream.
#ifndef CONSORTIA_COMMON_HTTP_TRANSPORT_H_
#define CONSORTIA_COMMON_HTTP_TRANSPORT_H_

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <utility>

#include "boost/asio/async_result.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/stream_base.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"

namespace consortia::http_internal {

class HttpTransport {
 public:
  using tcp = boost::asio::ip::tcp;
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  using executor_type = boost::beast::tcp_stream::executor_type;
  using HandshakeType = boost::asio::ssl::stream_base::handshake_type;

  // Plain TCP over `socket`.
  explicit HttpTransport(tcp::socket socket);
  // TLS over `socket` with `context` (kept alive as long as this stream);
  // call async_handshake first.
  HttpTransport(tcp::socket socket,
                std::shared_ptr<boost::asio::ssl::context> context);
  // Unconnected, for a client (connect lowest_layer() first).
  HttpTransport(const executor_type& executor,
                std::shared_ptr<boost::asio::ssl::context> context);

  bool tls() const { return tls_.has_value(); }
  // The OpenSSL connection (host name checks, the peer's certificate);
  // null for plain TCP.
  SSL* ssl() { return tls_.has_value() ? tls_->native_handle() : nullptr; }

  executor_type get_executor() { return lowest_layer().get_executor(); }
  // The TCP stream under it all: timeouts, the socket, close.
  boost::beast::tcp_stream& lowest_layer() {
    return tls_.has_value() ? boost::beast::get_lowest_layer(*tls_) : *plain_;
  }
  tcp::socket& socket() { return lowest_layer().socket(); }
  template <class Duration>
  void expires_after(Duration d) {
    lowest_layer().expires_after(d);
  }
  void expires_never() { lowest_layer().expires_never(); }
  void close() { lowest_layer().close(); }

  // The TLS handshake as `type` (server or client); for plain TCP it
  // completes at once, without error.
  template <class Token>
  auto async_handshake(HandshakeType type, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code)>(
        [this](auto handler, HandshakeType t) {
          if (tls_.has_value()) {
            tls_->async_handshake(t, std::move(handler));
          } else {
            boost::asio::post(get_executor(),
                              [h = std::move(handler)]() mutable {
                                h(boost::beast::error_code{});
                              });
          }
        },
        token, type);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code,
                                                   std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_.has_value()) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            plain_->async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code,
                                                   std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_.has_value()) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            plain_->async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<TlsStream> tls_;
};

}  // namespace consortia::http_internal

#endif  // CONSORTIA_COMMON_HTTP_TRANSPORT_H_
