// HTTP/1.1 server on Boost.Beast: one acceptor, one Session per connection,
// each on its own strand of a shared io_context run by N threads.
//
// Life of a connection: accepted only while under the total and per-client
// caps (else closed at once) -> with TLS, the handshake (header timeout;
// http_transport.h) -> wait for the first byte of a request (idle
// timeout) -> read the header (header timeout, header size limit) -> read
// the body (idle timeout, body limit) -> call the handler -> wait for
// Respond (a timer closes the connection if it never comes; meanwhile a
// watch notices a client that closed its end) -> write -> wait for the next
// request (keep-alive) or close.
//
// Ownership: pending asynchronous operations hold the Session (shared_ptr);
// a Respond callable holds only a weak_ptr, so a handler that keeps Respond
// forever keeps nothing alive once the connection has timed out.
//
// Streams (HttpResponse::on_stream): the header is written, then the
// handler's pieces as they come (StreamImpl queues them, bounded; the session
// writes whatever is queued in one write at a time). Meanwhile a read on the
// socket notices the client going away. No idle or handler timer runs; a
// write that makes no progress for idle_timeout closes the connection. The
// stream ends with Close (the connection closes after the last piece) or
// with the connection. A StreamImpl holds its Session weakly, as Respond.
#include "consortia/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "http_transport.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace consortia {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using http_internal::HttpTransport;

// Lingering close after the last response: how long and how much input to
// discard at most.
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr size_t kMaxDrainBytes = 4 << 20;
// Pause after a failed accept (for example out of file descriptors) so the
// acceptor does not spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);
// Bytes read at once while waiting for the first byte of a request.
constexpr size_t kFirstReadBytes = 4096;

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  if (d == absl::InfiniteDuration() || d > absl::Hours(24 * 365)) {
    return std::chrono::hours(24 * 365);
  }
  if (d < absl::ZeroDuration()) return std::chrono::steady_clock::duration(0);
  return absl::ToChronoNanoseconds(d);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits "a=1&b=x%20y" into decoded pairs. A later repeat of a name wins.
absl::Status ParseQuery(std::string_view q,
                        std::map<std::string, std::string>* out) {
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view name = part.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    absl::StatusOr<std::string> n = PercentDecode(name, true);
    if (!n.ok()) return n.status();
    absl::StatusOr<std::string> v = PercentDecode(value, true);
    if (!v.ok()) return v.status();
    (*out)[*std::move(n)] = *std::move(v);
  }
  return absl::OkStatus();
}

bool HasCrLf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// An IPv4-mapped IPv6 address counts as the IPv4 address.
asio::ip::address Normalize(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::optional<asio::ip::address> ParseAddress(std::string_view s) {
  std::string t(
      absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size())));
  if (t.size() > 2 && t.front() == '[' && t.back() == ']') {
    t = t.substr(1, t.size() - 2);
  }
  boost::system::error_code ec;
  asio::ip::address a = asio::ip::make_address(t, ec);
  if (ec) return std::nullopt;
  return Normalize(a);
}

// State shared by the server, every Session and every Respond callable it
// handed out. Once `stopped` is set (under mu) nobody posts to the
// io_context again, so the server may destroy it.
struct ServerCore {
  HttpServer::Handler handler;
  size_t max_body_bytes = 0;
  size_t max_header_bytes = 0;
  std::chrono::steady_clock::duration header_timeout{};
  std::chrono::steady_clock::duration idle_timeout{};
  size_t max_connections = 0;
  size_t max_connections_per_client = 0;
  std::set<asio::ip::address> trusted_proxies;
  std::function<std::shared_ptr<asio::ssl::context>()> tls_context;
  HttpServerHooks hooks;

  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;

  // Connection accounting (conn_mu: taken on accept and on close only).
  mutable absl::Mutex conn_mu;
  size_t open ABSL_GUARDED_BY(conn_mu) = 0;
  std::map<asio::ip::address, size_t> per_client ABSL_GUARDED_BY(conn_mu);

  std::atomic<uint64_t> refused_total{0};
  std::atomic<uint64_t> refused_per_client{0};
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> headers_too_large{0};
  std::atomic<uint64_t> clients_gone{0};
  std::atomic<uint64_t> tls_handshake_failures{0};

  size_t max_stream_queue_bytes = 0;
  std::atomic<size_t> open_streams{0};
  std::atomic<uint64_t> streams_started{0};
  std::atomic<uint64_t> stream_refusals{0};
  std::atomic<uint64_t> stream_stalls{0};

  void StreamOpened() {
    ++streams_started;
    size_t now = ++open_streams;
    if (hooks.on_open_streams) hooks.on_open_streams(now);
  }
  void StreamClosed() {
    size_t now = --open_streams;
    if (hooks.on_open_streams) hooks.on_open_streams(now);
  }

  bool Trusted(const asio::ip::address& a) const {
    return trusted_proxies.count(a) > 0;
  }

  void Event(HttpEvent e) {
    switch (e) {
      case HttpEvent::kRefusedTotal:
        ++refused_total;
        break;
      case HttpEvent::kRefusedPerClient:
        ++refused_per_client;
        break;
      case HttpEvent::kHeaderTimeout:
        ++header_timeouts;
        break;
      case HttpEvent::kHeaderTooLarge:
        ++headers_too_large;
        break;
      case HttpEvent::kClientGone:
        ++clients_gone;
        break;
      case HttpEvent::kTlsHandshakeFailed:
        ++tls_handshake_failures;
        break;
    }
    if (hooks.on_event) hooks.on_event(e);
  }

  // Takes a connection slot for `peer`; false (and counted) when a cap is
  // reached. Connections from a trusted proxy count against the total only.
  bool Admit(const asio::ip::address& peer, bool trusted) {
    std::optional<HttpEvent> refused;
    size_t now_open = 0;
    {
      absl::MutexLock l(&conn_mu);
      if (max_connections > 0 && open >= max_connections) {
        refused = HttpEvent::kRefusedTotal;
      } else if (!trusted && max_connections_per_client > 0) {
        auto it = per_client.find(peer);
        if (it != per_client.end() &&
            it->second >= max_connections_per_client) {
          refused = HttpEvent::kRefusedPerClient;
        }
      }
      if (!refused.has_value()) {
        ++open;
        if (!trusted) ++per_client[peer];
        now_open = open;
      }
    }
    if (refused.has_value()) {
      Event(*refused);
      return false;
    }
    if (hooks.on_open_connections) hooks.on_open_connections(now_open);
    return true;
  }

  void Release(const asio::ip::address& peer, bool trusted) {
    size_t now_open = 0;
    {
      absl::MutexLock l(&conn_mu);
      --open;
      if (!trusted) {
        auto it = per_client.find(peer);
        if (it != per_client.end() && --it->second == 0) per_client.erase(it);
      }
      now_open = open;
    }
    if (hooks.on_open_connections) hooks.on_open_connections(now_open);
  }

  size_t Open() const {
    absl::MutexLock l(&conn_mu);
    return open;
  }
};

class Session;

// The handler's side of a streamed response; the Session writes what it
// queues. `flushing` is true while the session has a write under way or
// posted: a Send then only queues, else it posts a flush.
class StreamImpl : public HttpStream {
 public:
  StreamImpl(std::weak_ptr<Session> session, std::shared_ptr<ServerCore> core)
      : session_(std::move(session)), core_(std::move(core)) {}

  bool Send(std::string data) override;
  void Close(std::string last) override;
  bool closed() const override {
    return closed_.load(std::memory_order_acquire);
  }
  size_t queued() const override {
    absl::MutexLock l(&mu_);
    return pieces_;
  }
  size_t queued_bytes() const override {
    absl::MutexLock l(&mu_);
    return bytes_;
  }

  // Session side, on its strand. Moves what is queued into `out`; `fin`
  // when Close was called and nothing else remains. False (and no longer
  // flushing) when there is nothing to write.
  bool Take(std::vector<std::string>* out, bool* fin) {
    absl::MutexLock l(&mu_);
    while (!queue_.empty()) {
      out->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    *fin = close_requested_ && !fin_taken_;
    if (*fin) fin_taken_ = true;
    if (out->empty() && !*fin) {
      flushing_ = false;
      return false;
    }
    return true;
  }
  void Written(size_t pieces, size_t bytes) {
    absl::MutexLock l(&mu_);
    pieces_ -= std::min(pieces_, pieces);
    bytes_ -= std::min(bytes_, bytes);
  }
  void MarkClosed() { closed_.store(true, std::memory_order_release); }

 private:
  // Queues under mu_; posts a flush unless one is under way.
  bool Enqueue(std::string data, bool last);

  const std::weak_ptr<Session> session_;
  const std::shared_ptr<ServerCore> core_;
  std::atomic<bool> closed_{false};
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t pieces_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool close_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool fin_taken_ ABSL_GUARDED_BY(mu_) = false;
  // The session owns the first write (the header): it flushes after it.
  bool flushing_ ABSL_GUARDED_BY(mu_) = true;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  friend class StreamImpl;

  // `peer` already holds a slot of core->Admit, given back on destruction.
  Session(HttpTransport stream, std::shared_ptr<ServerCore> core,
          asio::ip::address peer, uint16_t peer_port, bool trusted)
      : stream_(std::move(stream)),
        handler_timer_(stream_.get_executor()),
        core_(std::move(core)),
        peer_(peer),
        trusted_peer_(trusted),
        remote_(absl::StrCat(peer.to_string(), ":", peer_port)),
        closed_(std::make_shared<std::atomic<bool>>(false)) {}

  ~Session() {
    closed_->store(true);
    EndStream();
    core_->Release(peer_, trusted_peer_);
  }

  void Start() {
    asio::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&Session::Handshake, shared_from_this()));
  }

 private:
  // TLS only (plain TCP goes straight on): the handshake, within the header
  // timeout.
  void Handshake() {
    if (!stream_.tls()) {
      WaitForRequest();
      return;
    }
    stream_.expires_after(core_->header_timeout);
    stream_.async_handshake(
        asio::ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) {
          if (ec) {
            self->core_->Event(HttpEvent::kTlsHandshakeFailed);
            spdlog::debug("http: TLS handshake with {} failed: {}",
                          self->remote_, ec.message());
            self->Close();
            return;
          }
          self->WaitForRequest();
        });
  }

  // Idle: no request under way. Waits (idle timeout) for its first byte.
  void WaitForRequest() {
    if (buffer_.size() > 0) {  // a pipelined request is already here
      ReadHeader();
      return;
    }
    stream_.expires_after(core_->idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kFirstReadBytes),
        [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (ec) {
            self->Close();
            return;
          }
          self->buffer_.commit(n);
          self->ReadHeader();
        });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(core_->max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(core_->max_header_bytes, UINT32_MAX)));
    stream_.expires_after(core_->header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t /*bytes*/) {
    if (ec == beast::error::timeout) {
      core_->Event(HttpEvent::kHeaderTimeout);
      spdlog::debug("http: {} did not send a header in time; closing", remote_);
      Close();
      return;
    }
    if (ec) {
      OnRead(ec, 0);
      return;
    }
    if (parser_->is_done()) {
      OnRead(ec, 0);
      return;
    }
    stream_.expires_after(core_->idle_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t /*bytes*/) {
    if (ec == http::error::body_limit) {
      WriteResponse(Problem(413, "about:blank", "Payload Too Large",
                            absl::StrCat("request body exceeds ",
                                         core_->max_body_bytes, " bytes")),
                    /*keep_alive=*/false, 11);
      return;
    }
    if (ec == http::error::header_limit) {
      core_->Event(HttpEvent::kHeaderTooLarge);
      WriteResponse(
          Problem(431, "about:blank", "Request Header Fields Too Large",
                  absl::StrCat("request line and header exceed ",
                               core_->max_header_bytes, " bytes")),
          /*keep_alive=*/false, 11);
      return;
    }
    if (ec == http::error::end_of_stream) {
      Close();
      return;
    }
    if (ec) {
      // Errors of the HTTP parser are the client's fault: tell it. Socket
      // errors and timeouts just end the connection.
      if (ec.category() ==
          http::make_error_code(http::error::bad_target).category()) {
        WriteResponse(Problem(400, "about:blank", "Bad Request",
                              absl::StrCat("malformed HTTP: ", ec.message())),
                      /*keep_alive=*/false, 11);
      } else {
        Close();
      }
      return;
    }

    http::request<http::string_body> req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    version_ = req.version();

    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    size_t qmark = target.find('?');
    r.path = std::string(target.substr(0, qmark));
    if (qmark != std::string_view::npos) {
      absl::Status st = ParseQuery(target.substr(qmark + 1), &r.query);
      if (!st.ok()) {
        WriteResponse(Problem(400, "about:blank", "Bad Request",
                              absl::StrCat("bad query string: ", st.message())),
                      keep_alive_, version_);
        return;
      }
    }
    for (const auto& field : req) {
      std::string name(field.name_string().data(), field.name_string().size());
      absl::AsciiStrToLower(&name);
      std::string value(field.value().data(), field.value().size());
      auto [it, inserted] = r.headers.emplace(std::move(name), value);
      if (!inserted) absl::StrAppend(&it->second, ", ", value);
    }
    r.body = std::move(req.body());
    r.remote = remote_;
    r.client = ClientAddress(r.headers);
    r.closed = closed_;

    // Wait for the handler's answer, but not forever.
    waiting_ = true;
    ++request_seq_;
    handler_timer_.expires_after(core_->idle_timeout);
    handler_timer_.async_wait(
        [self = shared_from_this()](beast::error_code tec) {
          if (tec || !self->waiting_) return;
          self->waiting_ = false;
          spdlog::debug("http: handler did not answer {} in time; closing",
                        self->remote_);
          self->Close();
        });
    WatchForClose();

    HttpServer::Respond respond = MakeRespond();
    try {
      core_->handler(std::move(r), respond);
    } catch (const std::exception& e) {
      spdlog::error("http: handler threw: {}", e.what());
      respond(Problem(500, "about:blank", "Internal Server Error",
                      "the handler failed"));
    } catch (...) {
      spdlog::error("http: handler threw a non-standard exception");
      respond(Problem(500, "about:blank", "Internal Server Error",
                      "the handler failed"));
    }
  }

  // The peer's address, or for a trusted proxy the nearest untrusted address
  // of X-Forwarded-For (right to left; an entry that is not an address ends
  // the walk).
  std::string ClientAddress(const std::map<std::string, std::string>& h) {
    asio::ip::address client = peer_;
    if (trusted_peer_) {
      auto it = h.find("x-forwarded-for");
      if (it != h.end()) {
        std::vector<std::string> hops = absl::StrSplit(it->second, ',');
        for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
          std::optional<asio::ip::address> a = ParseAddress(*hop);
          if (!a.has_value()) break;
          client = *a;
          if (!core_->Trusted(*a)) break;
        }
      }
    }
    return client.to_string();
  }

  // While the handler works, notices a client that closed its end (reads
  // end of stream or an error), so that work queued for it can be dropped.
  // Pipelined input ends the watch: the next request is read after the
  // answer.
  void WatchForClose() {
    uint64_t seq = request_seq_;
    stream_.socket().async_wait(
        tcp::socket::wait_read,
        [self = shared_from_this(), seq](beast::error_code ec) {
          if (ec == asio::error::operation_aborted) return;
          if (!self->waiting_ || seq != self->request_seq_) return;
          if (!ec) {
            char c;
            ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1,
                               MSG_PEEK | MSG_DONTWAIT);
            if (n > 0) return;  // pipelined input
            if (n < 0 &&
                (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
              self->WatchForClose();
              return;
            }
          }
          self->core_->Event(HttpEvent::kClientGone);
          self->waiting_ = false;
          self->Close();
        });
  }

  HttpServer::Respond MakeRespond() {
    auto once = std::make_shared<std::atomic<bool>>(false);
    std::weak_ptr<Session> weak = weak_from_this();
    std::shared_ptr<ServerCore> core = core_;
    return [once, weak, core](HttpResponse resp) {
      if (once->exchange(true)) {
        spdlog::warn("http: a handler responded twice; ignored");
        return;
      }
      absl::MutexLock lock(&core->mu);
      if (core->stopped) return;
      std::shared_ptr<Session> self = weak.lock();
      if (self == nullptr) return;  // connection already gone
      auto executor = self->stream_.get_executor();
      asio::post(executor,
                 [self = std::move(self), resp = std::move(resp)]() mutable {
                   self->OnResponse(std::move(resp));
                 });
    };
  }

  void OnResponse(HttpResponse resp) {
    if (!waiting_) return;  // timed out or closed meanwhile
    waiting_ = false;
    handler_timer_.cancel();
    beast::error_code ec;
    stream_.socket().cancel(ec);  // ends WatchForClose
    if (resp.on_stream) {
      StartStream(std::move(resp));
      return;
    }
    WriteResponse(std::move(resp), keep_alive_, version_);
  }

  // ------------------------------------------------------------ streams

  void StartStream(HttpResponse resp) {
    chunked_ = version_ >= 11;
    unsigned status = static_cast<unsigned>(
        resp.status >= 200 && resp.status <= 599 ? resp.status : 200);
    std::string head = absl::StrCat(
        "HTTP/1.", version_ >= 11 ? "1" : "0", " ", status, " ",
        std::string(http::obsolete_reason(static_cast<http::status>(status))),
        "\r\nServer: consortia\r\n");
    if (!HasCrLf(resp.content_type)) {
      absl::StrAppend(&head, "Content-Type: ", resp.content_type, "\r\n");
    }
    for (const auto& [name, value] : resp.headers) {
      if (name.empty() || HasCrLf(name) || HasCrLf(value)) continue;
      absl::StrAppend(&head, name, ": ", value, "\r\n");
    }
    if (chunked_) absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n");
    absl::StrAppend(&head, "Connection: close\r\n\r\n");

    stream_obj_ = std::make_shared<StreamImpl>(weak_from_this(), core_);
    streaming_ = true;
    core_->StreamOpened();
    WatchStreamClose();
    auto buf = std::make_shared<std::string>(std::move(head));
    stream_.expires_after(core_->idle_timeout);
    asio::async_write(
        stream_, asio::buffer(*buf),
        [self = shared_from_this(), buf, on_stream = std::move(resp.on_stream)](
            beast::error_code ec, size_t) {
          if (ec) {
            self->Close();
            return;
          }
          try {
            on_stream(self->stream_obj_);
          } catch (const std::exception& e) {
            spdlog::error("http: stream handler threw: {}", e.what());
            self->stream_obj_->Close("");
          } catch (...) {
            spdlog::error("http: stream handler threw");
            self->stream_obj_->Close("");
          }
          self->FlushStream();
        });
  }

  // While streaming the client has nothing to say: input is discarded, and
  // its end (or an error) ends the stream.
  void WatchStreamClose() {
    stream_.socket().async_read_some(
        asio::buffer(drain_buf_),
        [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) {
            self->Close();
            return;
          }
          self->WatchStreamClose();
        });
  }

  // Writes everything queued, as one write; again until nothing is left.
  void FlushStream() {
    if (!streaming_) return;
    std::vector<std::string> pieces;
    bool fin = false;
    if (!stream_obj_->Take(&pieces, &fin)) return;
    auto buf = std::make_shared<std::string>();
    size_t bytes = 0;
    for (const std::string& p : pieces) {
      bytes += p.size();
      if (p.empty()) continue;  // an empty chunk would end the body
      if (chunked_) {
        absl::StrAppend(buf.get(), absl::Hex(p.size()), "\r\n", p, "\r\n");
      } else {
        absl::StrAppend(buf.get(), p);
      }
    }
    if (fin && chunked_) absl::StrAppend(buf.get(), "0\r\n\r\n");
    stream_.expires_after(core_->idle_timeout);
    asio::async_write(stream_, asio::buffer(*buf),
                      [self = shared_from_this(), buf, n = pieces.size(), bytes,
                       fin](beast::error_code ec, size_t) {
                        if (ec) {
                          if (ec == beast::error::timeout) {
                            ++self->core_->stream_stalls;
                            spdlog::debug(
                                "http: {} read nothing of its stream in time",
                                self->remote_);
                          }
                          self->Close();
                          return;
                        }
                        self->stream_obj_->Written(n, bytes);
                        if (fin) {
                          self->Close();
                          return;
                        }
                        self->FlushStream();
                      });
  }

  void EndStream() {
    if (!streaming_) return;
    streaming_ = false;
    stream_obj_->MarkClosed();
    core_->StreamClosed();
  }

  void WriteResponse(HttpResponse resp, bool keep_alive, unsigned version) {
    if (resp.status < 100 || resp.status > 599) {
      spdlog::error("http: handler gave invalid status {}", resp.status);
      resp = Problem(500, "about:blank", "Internal Server Error",
                     "invalid response status");
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    try {
      res->version(version);
      res->result(static_cast<unsigned>(resp.status));
      res->set(http::field::server, "consortia");
      if (!HasCrLf(resp.content_type)) {
        res->set(http::field::content_type, resp.content_type);
      }
      for (const auto& [name, value] : resp.headers) {
        if (name.empty() || HasCrLf(name) || HasCrLf(value)) continue;
        res->set(name, value);
      }
      res->body() = std::move(resp.body);
      res->keep_alive(keep_alive);
      res->prepare_payload();
    } catch (const std::exception& e) {
      spdlog::error("http: cannot build response: {}", e.what());
      Close();
      return;
    }
    stream_.expires_after(core_->idle_timeout);
    http::async_write(
        stream_, *res,
        [self = shared_from_this(), res](beast::error_code ec, size_t) {
          self->OnWrite(ec, res->keep_alive());
        });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    if (ec) {
      Close();
      return;
    }
    if (!keep_alive) {
      LingerClose();
      return;
    }
    WaitForRequest();
  }

  // Closing with unread input makes the kernel send a reset, which can
  // destroy the response before the client reads it (a 413 is sent while
  // the body is still arriving). So: stop sending, read and discard for a
  // bounded time and amount, then close.
  void LingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    stream_.expires_after(std::min(
        core_->idle_timeout, std::chrono::steady_clock::duration(kLingerTime)));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(
        asio::buffer(drain_buf_),
        [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->drained_ += n;
          if (ec || self->drained_ > kMaxDrainBytes) {
            self->Close();
            return;
          }
          self->Drain();
        });
  }

  // Ends the connection: pending operations complete (aborted) and release
  // the session, which gives its slot back.
  void Close() {
    closed_->store(true);
    EndStream();
    waiting_ = false;
    handler_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  HttpTransport stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer handler_timer_;
  std::shared_ptr<ServerCore> core_;
  const asio::ip::address peer_;
  const bool trusted_peer_;
  const std::string remote_;
  const std::shared_ptr<std::atomic<bool>> closed_;
  std::array<char, 4096> drain_buf_;
  size_t drained_ = 0;
  // Touched only on the session's strand.
  bool waiting_ = false;
  uint64_t request_seq_ = 0;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  // Set once the response became a stream.
  std::shared_ptr<StreamImpl> stream_obj_;
  bool streaming_ = false;
  bool chunked_ = true;
};

bool StreamImpl::Send(std::string data) {
  return Enqueue(std::move(data), false);
}

void StreamImpl::Close(std::string last) { Enqueue(std::move(last), true); }

bool StreamImpl::Enqueue(std::string data, bool last) {
  if (closed()) return false;
  bool post = false;
  {
    absl::MutexLock l(&mu_);
    if (close_requested_) return false;
    if (!last && bytes_ + data.size() > core_->max_stream_queue_bytes) {
      ++core_->stream_refusals;
      return false;
    }
    bytes_ += data.size();
    ++pieces_;
    queue_.push_back(std::move(data));
    if (last) close_requested_ = true;
    if (!flushing_) {
      flushing_ = true;
      post = true;
    }
  }
  if (last) closed_.store(true, std::memory_order_release);
  if (!post) return true;
  absl::MutexLock lock(&core_->mu);
  std::shared_ptr<Session> session = session_.lock();
  if (core_->stopped || session == nullptr) {
    closed_.store(true, std::memory_order_release);
    return false;
  }
  auto executor = session->stream_.get_executor();
  asio::post(executor,
             [session = std::move(session)] { session->FlushStream(); });
  return true;
}

class HttpServerImpl : public HttpServer {
 public:
  HttpServerImpl(const HttpServerOptions& options, Handler handler)
      : core_(std::make_shared<ServerCore>()),
        acceptor_(asio::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()),
        threads_count_(std::max<size_t>(1, options.threads)) {
    core_->handler = std::move(handler);
    core_->max_body_bytes = options.max_body_bytes;
    core_->max_header_bytes = options.max_header_bytes;
    core_->header_timeout = ToChrono(options.header_timeout);
    core_->idle_timeout = ToChrono(options.idle_timeout);
    core_->max_connections = options.max_connections;
    core_->max_connections_per_client = options.max_connections_per_client;
    core_->max_stream_queue_bytes = options.max_stream_queue_bytes;
    core_->tls_context = options.tls_context;
    core_->hooks = options.hooks;
  }

  ~HttpServerImpl() override {
    {
      absl::MutexLock lock(&core_->mu);
      core_->stopped = true;
    }
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    beast::error_code ec;
    acceptor_.close(ec);
    // Sessions still referenced by pending operations are destroyed with
    // ioc_ (declared first, destroyed last).
  }

  absl::Status SetTrustedProxies(const std::vector<std::string>& proxies) {
    for (const std::string& p : proxies) {
      std::optional<asio::ip::address> a = ParseAddress(p);
      if (!a.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "http: trusted proxy \"", p, "\" is not an IP address"));
      }
      core_->trusted_proxies.insert(*a);
    }
    return absl::OkStatus();
  }

  absl::Status Listen(const std::string& host, uint16_t port) {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host, std::to_string(port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return absl::UnavailableError(
          absl::StrCat("http: cannot resolve ", host, ": ", ec.message()));
    }
    tcp::endpoint ep = results.begin()->endpoint();
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat(
          "http: cannot listen on ", host, ":", port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("http: no local endpoint: ", ec.message()));
    }
    asio::dispatch(acceptor_.get_executor(), [this] { Accept(); });
    threads_.reserve(threads_count_);
    for (size_t i = 0; i < threads_count_; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return absl::OkStatus();
  }

  uint16_t port() const override { return port_; }

  HttpServerStats stats() const override {
    HttpServerStats s;
    s.open_connections = core_->Open();
    s.refused_total = core_->refused_total.load();
    s.refused_per_client = core_->refused_per_client.load();
    s.header_timeouts = core_->header_timeouts.load();
    s.headers_too_large = core_->headers_too_large.load();
    s.clients_gone = core_->clients_gone.load();
    s.open_streams = core_->open_streams.load();
    s.streams_started = core_->streams_started.load();
    s.stream_refusals = core_->stream_refusals.load();
    s.stream_stalls = core_->stream_stalls.load();
    s.tls_handshake_failures = core_->tls_handshake_failures.load();
    return s;
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec,
                                                           tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        spdlog::warn("http: accept failed: {}", ec.message());
        retry_timer_.expires_after(kAcceptRetryDelay);
        retry_timer_.async_wait([this](beast::error_code tec) {
          if (!tec) Accept();
        });
        return;
      }
      OnAccepted(std::move(socket));
      Accept();
    });
  }

  void OnAccepted(tcp::socket socket) {
    beast::error_code ec;
    tcp::endpoint ep = socket.remote_endpoint(ec);
    if (ec) return;  // already gone; the socket closes here
    asio::ip::address peer = Normalize(ep.address());
    bool trusted = core_->Trusted(peer);
    if (!core_->Admit(peer, trusted)) {
      // Over a cap: closed before anything is read. The client sees the
      // connection end (or a reset if it had sent data).
      socket.close(ec);
      return;
    }
    std::shared_ptr<asio::ssl::context> tls;
    if (core_->tls_context) tls = core_->tls_context();
    HttpTransport stream =
        tls != nullptr ? HttpTransport(std::move(socket), std::move(tls))
                       : HttpTransport(std::move(socket));
    std::make_shared<Session>(std::move(stream), core_, peer, ep.port(),
                              trusted)
        ->Start();
  }

  asio::io_context ioc_;  // first: destroyed last
  std::shared_ptr<ServerCore> core_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  size_t threads_count_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace

HttpResponse Problem(int status, std::string type, std::string title,
                     std::string detail) {
  nlohmann::json j;
  j["type"] = type.empty() ? std::string("about:blank") : std::move(type);
  j["title"] = std::move(title);
  j["status"] = status;
  j["detail"] = std::move(detail);
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  // Replace invalid UTF-8 rather than throw: detail may quote client input.
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

absl::StatusOr<std::string> PercentDecode(std::string_view in,
                                          bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        return absl::InvalidArgumentError("truncated percent escape");
      }
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError("bad percent escape");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(
    const HttpServerOptions& options, HttpServer::Handler handler) {
  if (!handler) return absl::InvalidArgumentError("http: no handler");
  auto server = std::make_unique<HttpServerImpl>(options, std::move(handler));
  absl::Status st = server->SetTrustedProxies(options.trusted_proxies);
  if (!st.ok()) return st;
  st = server->Listen(options.host, options.port);
  if (!st.ok()) return st;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace consortia
