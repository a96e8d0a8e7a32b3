// Drives the HTTP server with a real client over loopback.
#include "consortia/http_server.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Response = http::response<http::string_body>;

// A blocking client connection.
class Client {
 public:
  // Connects from `local` (a loopback address: tests that play an attacker
  // use 127.0.0.2 and up).
  explicit Client(uint16_t port, const std::string& local = "127.0.0.1")
      : socket_(ioc_) {
    socket_.open(tcp::v4());
    socket_.bind(tcp::endpoint(asio::ip::make_address(local), 0));
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  // The status of a GET, or 0 when the connection is closed instead.
  int TryGet(
      const std::string& target,
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    try {
      http::request<http::string_body> req(http::verb::get, target, 11);
      req.set(http::field::host, "127.0.0.1");
      for (const auto& [n, v] : headers) req.set(n, v);
      req.prepare_payload();
      http::write(socket_, req);
      return Read().result_int();
    } catch (const std::exception&) {
      return 0;
    }
  }

  Response Send(http::verb verb, const std::string& target,
                const std::string& body = "", bool keep_alive = true) {
    http::request<http::string_body> req(verb, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.body() = body;
    req.keep_alive(keep_alive);
    req.prepare_payload();
    http::write(socket_, req);
    return Read();
  }

  void SendRaw(const std::string& bytes) {
    asio::write(socket_, asio::buffer(bytes));
  }

  Response Read() {
    Response res;
    http::read(socket_, buffer_, res);
    return res;
  }

  // True when the server has closed the connection (reads end of stream).
  bool ReadsEof() {
    beast::error_code ec;
    char c;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  tcp::socket& socket() { return socket_; }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

std::unique_ptr<HttpServer> MustStart(HttpServerOptions opts,
                                      HttpServer::Handler handler) {
  auto server = StartHttpServer(opts, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Answers with a JSON echo of the request.
void Echo(HttpRequest req, HttpServer::Respond respond) {
  nlohmann::json j;
  j["method"] = req.method;
  j["path"] = req.path;
  j["query"] = req.query;
  j["body"] = req.body;
  j["remote"] = req.remote;
  j["x-test"] = req.headers.count("x-test") ? req.headers["x-test"] : "";
  HttpResponse r;
  r.status = req.path == "/created" ? 201 : 200;
  r.body = j.dump();
  r.headers.emplace_back("X-Reply", "yes");
  respond(std::move(r));
}

TEST(HttpServerTest, RoutesQueryHeadersAndBodyReachTheHandler) {
  auto server = MustStart({}, Echo);
  ASSERT_NE(server, nullptr);
  Client c(server->port());

  http::request<http::string_body> req(http::verb::post,
                                       "/a/b%2Fc?x=1&y=hello%20w+rld&flag", 11);
  req.set("X-Test", "value");
  req.body() = "payload";
  req.prepare_payload();
  http::write(c.socket(), req);
  Response res = c.Read();

  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res["X-Reply"], "yes");
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/a/b%2Fc");  // the path is left as sent
  EXPECT_EQ(j["query"]["x"], "1");
  EXPECT_EQ(j["query"]["y"], "hello w rld");
  EXPECT_EQ(j["query"]["flag"], "");
  EXPECT_EQ(j["body"], "payload");
  EXPECT_EQ(j["x-test"], "value");
  EXPECT_NE(j["remote"].get<std::string>().find("127.0.0.1:"),
            std::string::npos);

  Response created = c.Send(http::verb::get, "/created");
  EXPECT_EQ(created.result_int(), 201);
}

TEST(HttpServerTest, BadQueryEscapeIs400) {
  std::atomic<int> calls{0};
  auto server = MustStart({}, [&](HttpRequest req, HttpServer::Respond r) {
    ++calls;
    Echo(std::move(req), std::move(r));
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  Response res = c.Send(http::verb::get, "/x?a=%zz");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, OverLongBodyIs413WithoutCallingHandler) {
  std::atomic<int> calls{0};
  HttpServerOptions opts;
  opts.max_body_bytes = 100;
  auto server = MustStart(opts, [&](HttpRequest req, HttpServer::Respond r) {
    ++calls;
    Echo(std::move(req), std::move(r));
  });
  ASSERT_NE(server, nullptr);

  Client ok_client(server->port());
  EXPECT_EQ(ok_client.Send(http::verb::post, "/x", std::string(100, 'a'))
                .result_int(),
            200);
  EXPECT_EQ(calls.load(), 1);

  Client c(server->port());
  Response res = c.Send(http::verb::post, "/x", std::string(101, 'a'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["status"], 413);
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpServerTest, GarbageIs400ProblemAndConnectionCloses) {
  std::atomic<int> calls{0};
  auto server = MustStart({}, [&](HttpRequest req, HttpServer::Respond r) {
    ++calls;
    Echo(std::move(req), std::move(r));
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  c.SendRaw("THIS IS NOT\x01 HTTP AT ALL\r\n\r\n");
  Response res = c.Read();
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["status"], 400);
  EXPECT_EQ(j["title"], "Bad Request");
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_EQ(calls.load(), 0);

  // The server still serves others.
  Client good(server->port());
  EXPECT_EQ(good.Send(http::verb::get, "/").result_int(), 200);
}

TEST(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  absl::Mutex mu;
  std::vector<std::string> remotes;
  auto server = MustStart({}, [&](HttpRequest req, HttpServer::Respond r) {
    {
      absl::MutexLock l(&mu);
      remotes.push_back(req.remote);
    }
    Echo(std::move(req), std::move(r));
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  for (int i = 0; i < 5; ++i) {
    Response res = c.Send(http::verb::get, "/n?i=" + std::to_string(i));
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(nlohmann::json::parse(res.body())["query"]["i"],
              std::to_string(i));
  }
  absl::MutexLock l(&mu);
  ASSERT_EQ(remotes.size(), 5u);
  for (const std::string& r : remotes) EXPECT_EQ(r, remotes[0]);
}

TEST(HttpServerTest, ConnectionCloseIsHonoured) {
  auto server = MustStart({}, Echo);
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  Response res = c.Send(http::verb::get, "/", "", /*keep_alive=*/false);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.ReadsEof());
}

TEST(HttpServerTest, RespondFromAnotherThreadOnceOnly) {
  absl::Mutex mu;
  std::vector<HttpServer::Respond> pending;
  auto server = MustStart({}, [&](HttpRequest, HttpServer::Respond r) {
    absl::MutexLock l(&mu);
    pending.push_back(std::move(r));
  });
  ASSERT_NE(server, nullptr);

  std::thread responder([&] {
    for (int answered = 0; answered < 2;) {
      std::vector<HttpServer::Respond> batch;
      {
        absl::MutexLock l(&mu);
        mu.AwaitWithTimeout(absl::Condition(
                                +[](std::vector<HttpServer::Respond>* p) {
                                  return !p->empty();
                                },
                                &pending),
                            absl::Seconds(30));
        batch.swap(pending);
      }
      if (batch.empty()) return;
      for (auto& r : batch) {
        HttpResponse first;
        first.body = "first";
        r(first);
        HttpResponse second;
        second.status = 500;
        second.body = "second";
        r(second);  // ignored: exactly once
        ++answered;
      }
    }
  });

  Client c(server->port());
  Response a = c.Send(http::verb::get, "/one");
  EXPECT_EQ(a.result_int(), 200);
  EXPECT_EQ(a.body(), "first");
  // The ignored second answer must not leak into the next exchange.
  Response b = c.Send(http::verb::get, "/two");
  EXPECT_EQ(b.result_int(), 200);
  EXPECT_EQ(b.body(), "first");
  responder.join();
}

TEST(HttpServerTest, HandlerThatNeverRespondsTimesOutAndLateRespondIsHarmless) {
  absl::Mutex mu;
  std::vector<HttpServer::Respond> kept;
  HttpServerOptions opts;
  opts.idle_timeout = absl::Milliseconds(200);
  auto server = MustStart(opts, [&](HttpRequest, HttpServer::Respond r) {
    absl::MutexLock l(&mu);
    kept.push_back(std::move(r));
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  http::request<http::string_body> req(http::verb::get, "/never", 11);
  req.prepare_payload();
  http::write(c.socket(), req);
  EXPECT_TRUE(c.ReadsEof());  // closed by the idle timeout, not left hanging
  absl::MutexLock l(&mu);
  ASSERT_EQ(kept.size(), 1u);
  kept[0](HttpResponse{});  // the connection is gone: dropped quietly
}

TEST(HttpServerTest, IdleConnectionIsClosedAfterTimeout) {
  HttpServerOptions opts;
  opts.idle_timeout = absl::Milliseconds(200);
  auto server = MustStart(opts, Echo);
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  EXPECT_TRUE(c.ReadsEof());
}

TEST(HttpServerTest, HandlerExceptionBecomes500) {
  auto server = MustStart({}, [](HttpRequest, HttpServer::Respond) {
    throw std::runtime_error("boom");
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  Response res = c.Send(http::verb::get, "/");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
}

TEST(HttpServerTest, ManyIdleConnectionsDoNotBlockARequest) {
  constexpr size_t kIdle = 1000;
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  // Each connection costs two descriptors in this process (both ends).
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < 2 * kIdle + 200) {
    GTEST_SKIP() << "RLIMIT_NOFILE " << lim.rlim_cur << " too low";
  }
  HttpServerOptions opts;
  opts.threads = 2;
  opts.max_connections_per_client = 0;  // all come from 127.0.0.1
  auto server = MustStart(opts, Echo);
  ASSERT_NE(server, nullptr);

  asio::io_context ioc;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), server->port());
  for (size_t i = 0; i < kIdle; ++i) {
    auto s = std::make_unique<tcp::socket>(ioc);
    s->connect(ep);
    idle.push_back(std::move(s));
  }
  // One of them starts a request but never finishes it.
  asio::write(*idle[0], asio::buffer(std::string("GET / HTTP/1.1\r\nHo")));

  Client c(server->port());
  Response res = c.Send(http::verb::get, "/still-serving");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(res.body())["path"], "/still-serving");
}

TEST(HttpServerTest, InvalidStatusFromHandlerBecomes500) {
  auto server = MustStart({}, [](HttpRequest, HttpServer::Respond r) {
    HttpResponse bad;
    bad.status = 42;
    r(bad);
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  EXPECT_EQ(c.Send(http::verb::get, "/").result_int(), 500);
}

TEST(HttpServerTest, BindingAUsedPortIsUnavailable) {
  auto first = MustStart({}, Echo);
  ASSERT_NE(first, nullptr);
  HttpServerOptions opts;
  opts.port = first->port();
  auto second = StartHttpServer(opts, Echo);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpServerTest, DestroyingServerWithPendingRespondIsSafe) {
  absl::Mutex mu;
  std::vector<HttpServer::Respond> kept;
  auto server = MustStart({}, [&](HttpRequest, HttpServer::Respond r) {
    absl::MutexLock l(&mu);
    kept.push_back(std::move(r));
  });
  ASSERT_NE(server, nullptr);
  Client c(server->port());
  http::request<http::string_body> req(http::verb::get, "/", 11);
  req.prepare_payload();
  http::write(c.socket(), req);
  {
    absl::MutexLock l(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(
            +[](std::vector<HttpServer::Respond>* k) { return !k->empty(); },
            &kept),
        absl::Seconds(30)));
  }
  server.reset();
  absl::MutexLock l(&mu);
  kept[0](HttpResponse{});  // after the server is gone: a no-op
}

// Polls until cond holds, for at most 30 s.
template <typename F>
bool Eventually(F cond) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return cond();
}

// Counts the server's hook calls.
struct EventCounts {
  std::atomic<int> refused_total{0};
  std::atomic<int> refused_per_client{0};
  std::atomic<int> header_timeout{0};
  std::atomic<int> header_too_large{0};
  std::atomic<int> client_gone{0};
  std::atomic<size_t> open{0};

  HttpServerHooks Hooks() {
    HttpServerHooks h;
    h.on_event = [this](HttpEvent e) {
      switch (e) {
        case HttpEvent::kRefusedTotal:
          ++refused_total;
          break;
        case HttpEvent::kRefusedPerClient:
          ++refused_per_client;
          break;
        case HttpEvent::kHeaderTimeout:
          ++header_timeout;
          break;
        case HttpEvent::kHeaderTooLarge:
          ++header_too_large;
          break;
        case HttpEvent::kClientGone:
          ++client_gone;
          break;
        case HttpEvent::kTlsHandshakeFailed:  // no TLS here (http_tls_test)
          break;
      }
    };
    h.on_open_connections = [this](size_t n) { open = n; };
    return h;
  }
};

TEST(HttpServerLimitsTest, PerClientCapRefusesOneAddressNotTheOthers) {
  EventCounts events;  // before the server: its hooks outlive it
  HttpServerOptions opts;
  opts.max_connections_per_client = 3;
  opts.hooks = events.Hooks();
  auto server = MustStart(opts, Echo);
  ASSERT_NE(server, nullptr);

  std::vector<std::unique_ptr<Client>> attacker;
  for (int i = 0; i < 3; ++i) {
    attacker.push_back(std::make_unique<Client>(server->port(), "127.0.0.2"));
    ASSERT_EQ(attacker.back()->TryGet("/"), 200);
  }
  Client fourth(server->port(), "127.0.0.2");
  EXPECT_EQ(fourth.TryGet("/"), 0);  // closed before anything was read
  EXPECT_EQ(server->stats().refused_per_client, 1u);
  EXPECT_EQ(events.refused_per_client.load(), 1);
  EXPECT_EQ(server->stats().open_connections, 3u);

  // Another address is not affected.
  Client honest(server->port(), "127.0.0.1");
  EXPECT_EQ(honest.TryGet("/"), 200);
  Client other(server->port(), "127.0.0.3");
  EXPECT_EQ(other.TryGet("/"), 200);
  EXPECT_EQ(server->stats().refused_total, 0u);

  // A closed connection gives its slot back.
  attacker.pop_back();
  EXPECT_TRUE(Eventually([&] {
    Client again(server->port(), "127.0.0.2");
    return again.TryGet("/") == 200;
  }));
}

TEST(HttpServerLimitsTest, TotalCapRefusesAndCounts) {
  EventCounts events;
  HttpServerOptions opts;
  opts.max_connections = 2;
  opts.hooks = events.Hooks();
  auto server = MustStart(opts, Echo);
  ASSERT_NE(server, nullptr);
  Client a(server->port(), "127.0.0.2");
  Client b(server->port(), "127.0.0.3");
  ASSERT_EQ(a.TryGet("/"), 200);
  ASSERT_EQ(b.TryGet("/"), 200);
  EXPECT_EQ(events.open.load(), 2u);
  Client c(server->port(), "127.0.0.4");
  EXPECT_EQ(c.TryGet("/"), 0);
  EXPECT_EQ(server->stats().refused_total, 1u);
  EXPECT_EQ(events.refused_total.load(), 1);
  EXPECT_EQ(server->stats().refused_per_client, 0u);
}

TEST(HttpServerLimitsTest, ForwardedForIsBelievedFromTrustedProxiesOnly) {
  absl::Mutex mu;
  std::vector<std::string> clients;
  HttpServerOptions opts;
  opts.trusted_proxies = {"127.0.0.1"};
  opts.max_connections_per_client = 2;
  auto server = MustStart(opts, [&](HttpRequest req, HttpServer::Respond r) {
    {
      absl::MutexLock l(&mu);
      clients.push_back(req.client);
    }
    Echo(std::move(req), std::move(r));
  });
  ASSERT_NE(server, nullptr);

  // Through the proxy: the nearest untrusted hop is the client.
  Client proxy(server->port(), "127.0.0.1");
  ASSERT_EQ(proxy.TryGet("/", {{"X-Forwarded-For",
                                "10.9.9.9, 198.51.100.7, 127.0.0.1"}}),
            200);
  // Not a proxy: the header is ignored.
  Client direct(server->port(), "127.0.0.2");
  ASSERT_EQ(direct.TryGet("/", {{"X-Forwarded-For", "198.51.100.7"}}), 200);
  // A proxy without the header, or with garbage: the proxy itself.
  ASSERT_EQ(proxy.TryGet("/"), 200);
  ASSERT_EQ(proxy.TryGet("/", {{"X-Forwarded-For", "not-an-address"}}), 200);
  {
    absl::MutexLock l(&mu);
    EXPECT_EQ(clients, (std::vector<std::string>{"198.51.100.7", "127.0.0.2",
                                                 "127.0.0.1", "127.0.0.1"}));
  }

  // The per-client cap does not apply to the proxy's connections.
  std::vector<std::unique_ptr<Client>> via_proxy;
  for (int i = 0; i < 4; ++i) {
    via_proxy.push_back(std::make_unique<Client>(server->port(), "127.0.0.1"));
    EXPECT_EQ(via_proxy.back()->TryGet("/"), 200);
  }
  EXPECT_EQ(server->stats().refused_per_client, 0u);

  HttpServerOptions bad;
  bad.trusted_proxies = {"ingress.example"};
  EXPECT_EQ(StartHttpServer(bad, Echo).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerLimitsTest, OversizedHeaderIs431WithoutCallingHandler) {
  std::atomic<int> calls{0};
  HttpServerOptions opts;
  opts.max_header_bytes = 1024;
  auto server = MustStart(opts, [&](HttpRequest req, HttpServer::Respond r) {
    ++calls;
    Echo(std::move(req), std::move(r));
  });
  ASSERT_NE(server, nullptr);
  Client ok(server->port());
  EXPECT_EQ(ok.TryGet("/", {{"X-Small", std::string(200, 'a')}}), 200);

  Client c(server->port());
  http::request<http::string_body> req(http::verb::get, "/", 11);
  req.set("X-Big", std::string(2000, 'a'));
  req.prepare_payload();
  http::write(c.socket(), req);
  Response res = c.Read();
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  EXPECT_EQ(nlohmann::json::parse(res.body())["status"], 431);
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(server->stats().headers_too_large, 1u);
}

TEST(HttpServerLimitsTest, HeaderTimeoutIsSeparateFromIdleTimeout) {
  EventCounts events;
  HttpServerOptions opts;
  opts.header_timeout = absl::Milliseconds(200);
  opts.idle_timeout = absl::Seconds(60);
  opts.hooks = events.Hooks();
  auto server = MustStart(opts, Echo);
  ASSERT_NE(server, nullptr);

  Client idle(server->port());  // sends nothing for a while
  Client slow(server->port());
  slow.SendRaw("GET / HTTP/1.1\r\nHo");  // a header that never ends
  EXPECT_TRUE(slow.ReadsEof());
  // The stream's timer closes the socket just before the read completes.
  EXPECT_TRUE(Eventually([&] { return events.header_timeout.load() == 1; }));
  EXPECT_EQ(server->stats().header_timeouts, 1u);

  // The idle connection has waited longer than the header timeout and is
  // still served: idle time is bounded by the idle timeout only.
  EXPECT_EQ(idle.TryGet("/"), 200);
  EXPECT_EQ(idle.TryGet("/"), 200);  // and again after keep-alive
}

TEST(HttpServerLimitsTest, ClosedConnectionIsFlaggedWhileItsHandlerWorks) {
  EventCounts events;
  absl::Mutex mu;
  std::vector<HttpRequest> kept_requests;
  std::vector<HttpServer::Respond> kept;
  HttpServerOptions opts;
  opts.hooks = events.Hooks();
  auto server = MustStart(opts, [&](HttpRequest req, HttpServer::Respond r) {
    absl::MutexLock l(&mu);
    kept_requests.push_back(std::move(req));
    kept.push_back(std::move(r));
  });
  ASSERT_NE(server, nullptr);
  {
    Client c(server->port(), "127.0.0.2");
    http::request<http::string_body> req(http::verb::get, "/slow", 11);
    req.prepare_payload();
    http::write(c.socket(), req);
    ASSERT_TRUE(Eventually([&] {
      absl::MutexLock l(&mu);
      return !kept.empty();
    }));
    absl::MutexLock l(&mu);
    EXPECT_FALSE(kept_requests[0].ConnectionClosed());
  }  // the client goes away without waiting for the answer
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock l(&mu);
    return kept_requests[0].ConnectionClosed();
  }));
  EXPECT_TRUE(Eventually([&] { return server->stats().clients_gone == 1; }));
  EXPECT_EQ(events.client_gone.load(), 1);
  EXPECT_TRUE(
      Eventually([&] { return server->stats().open_connections == 0; }));
  absl::MutexLock l(&mu);
  kept[0](HttpResponse{});  // too late: a no-op
}

// ------------------------------------------------------------ streams

// Answers every request with a stream and keeps the streams for the test.
class StreamKeeper {
 public:
  HttpServer::Handler Handler() {
    return [this](HttpRequest, HttpServer::Respond respond) {
      HttpResponse r;
      r.content_type = "text/event-stream";
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.on_stream = [this](std::shared_ptr<HttpStream> s) {
        absl::MutexLock l(&mu_);
        streams_.push_back(std::move(s));
      };
      respond(std::move(r));
    };
  }
  // Waits for the n-th stream (0-based).
  std::shared_ptr<HttpStream> Get(size_t n) {
    absl::MutexLock l(&mu_);
    auto have = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return streams_.size() > n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&have), absl::Seconds(30));
    return streams_.size() > n ? streams_[n] : nullptr;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::shared_ptr<HttpStream>> streams_ ABSL_GUARDED_BY(mu_);
};

// Sends a GET and returns at once (the answer is read with ReadUntil).
void StartGet(Client& c, const std::string& target) {
  c.SendRaw("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

// Reads raw bytes until `what` has arrived; false if the connection ends
// first. Everything read is appended to *seen.
bool ReadUntil(Client& c, const std::string& what, std::string* seen) {
  while (seen->find(what) == std::string::npos) {
    char buf[4096];
    beast::error_code ec;
    size_t n = c.socket().read_some(asio::buffer(buf), ec);
    if (ec) return false;
    seen->append(buf, n);
  }
  return true;
}

TEST(HttpStreamTest, HeaderThenPiecesThenCloseAsChunkedBody) {
  StreamKeeper keeper;
  auto server = MustStart(HttpServerOptions{}, keeper.Handler());
  Client c(server->port());
  StartGet(c, "/events");
  std::shared_ptr<HttpStream> s = keeper.Get(0);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->Send("data: one\n\n"));
  EXPECT_TRUE(s->Send("data: two\n\n"));
  s->Close("event: bye\n\n");
  EXPECT_TRUE(s->closed());
  EXPECT_FALSE(s->Send("late"));
  Response res = c.Read();  // a chunked body, read to its end
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/event-stream");
  EXPECT_EQ(res[http::field::cache_control], "no-cache");
  EXPECT_EQ(res.body(), "data: one\n\ndata: two\n\nevent: bye\n\n");
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_TRUE(Eventually([&] { return server->stats().open_streams == 0; }));
  EXPECT_EQ(server->stats().streams_started, 1u);
}

TEST(HttpStreamTest, QuietStreamOutlivesTheIdleTimeout) {
  HttpServerOptions opts;
  opts.idle_timeout = absl::Milliseconds(100);
  StreamKeeper keeper;
  std::atomic<size_t> open_streams{0};
  opts.hooks.on_open_streams = [&](size_t n) { open_streams = n; };
  auto server = MustStart(opts, keeper.Handler());
  Client idle(server->port());  // a plain idle connection, for comparison
  Client c(server->port());
  StartGet(c, "/events");
  std::shared_ptr<HttpStream> s = keeper.Get(0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(open_streams.load(), 1u);
  // The idle connection is closed by the timeout; the quiet stream is not.
  EXPECT_TRUE(idle.ReadsEof());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(s->closed());
  ASSERT_TRUE(s->Send("data: still here\n\n"));
  std::string seen;
  EXPECT_TRUE(ReadUntil(c, "still here", &seen));
  EXPECT_EQ(server->stats().open_streams, 1u);
}

TEST(HttpStreamTest, SlowReaderIsRefusedWithoutHurtingOthers) {
  HttpServerOptions opts;
  opts.threads = 1;  // one thread: a blocked write would block everything
  opts.max_stream_queue_bytes = 64 * 1024;
  StreamKeeper keeper;
  auto server = MustStart(opts, keeper.Handler());
  Client slow(server->port());
  StartGet(slow, "/events");
  std::shared_ptr<HttpStream> s = keeper.Get(0);
  ASSERT_NE(s, nullptr);
  Client fast(server->port());
  StartGet(fast, "/events");
  std::shared_ptr<HttpStream> f = keeper.Get(1);
  ASSERT_NE(f, nullptr);

  // The slow client reads nothing: the kernel's buffers fill, then the
  // stream's queue, then Send refuses.
  const std::string piece(4096, 'x');
  bool refused = false;
  for (int i = 0; i < 100000 && !refused; ++i) {
    if (!s->Send(piece)) refused = true;
  }
  ASSERT_TRUE(refused);
  EXPECT_LE(s->queued_bytes(), opts.max_stream_queue_bytes);
  EXPECT_FALSE(s->closed());  // the handler decides what to do
  EXPECT_GE(server->stats().stream_refusals, 1u);

  // The other stream and plain requests go on.
  ASSERT_TRUE(f->Send("data: fast\n\n"));
  std::string seen;
  EXPECT_TRUE(ReadUntil(fast, "data: fast", &seen));
  EXPECT_EQ(server->stats().open_streams, 2u);

  // Closing the slow stream with a last word ends it once the client reads.
  s->Close("event: cutoff\n\n");
  std::string slow_seen;
  EXPECT_TRUE(ReadUntil(slow, "event: cutoff", &slow_seen));
  EXPECT_TRUE(Eventually([&] { return server->stats().open_streams == 1; }));
}

TEST(HttpStreamTest, ClientThatLeavesClosesTheStream) {
  StreamKeeper keeper;
  auto server = MustStart(HttpServerOptions{}, keeper.Handler());
  {
    Client c(server->port());
    StartGet(c, "/events");
    ASSERT_NE(keeper.Get(0), nullptr);
  }  // the client closes its end
  std::shared_ptr<HttpStream> s = keeper.Get(0);
  EXPECT_TRUE(Eventually([&] { return s->closed(); }));
  EXPECT_FALSE(s->Send("data: nobody\n\n"));
  EXPECT_TRUE(Eventually([&] { return server->stats().open_streams == 0; }));
}

TEST(HttpStreamTest, StreamOutlivingTheServerIsHarmless) {
  StreamKeeper keeper;
  auto server = MustStart(HttpServerOptions{}, keeper.Handler());
  Client c(server->port());
  StartGet(c, "/events");
  std::shared_ptr<HttpStream> s = keeper.Get(0);
  ASSERT_NE(s, nullptr);
  server.reset();
  EXPECT_FALSE(s->Send("data: after\n\n"));
  s->Close("");
  EXPECT_TRUE(s->closed());
}

TEST(ProblemTest, IsRfc9457Json) {
  HttpResponse r =
      Problem(422, "https://consortia.dev/problems/x", "Title", "the detail");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["type"], "https://consortia.dev/problems/x");
  EXPECT_EQ(j["title"], "Title");
  EXPECT_EQ(j["status"], 422);
  EXPECT_EQ(j["detail"], "the detail");

  // Invalid UTF-8 from a client cannot break the JSON.
  HttpResponse bad = Problem(400, "", "T", std::string("\xff\xfe"));
  auto jb = nlohmann::json::parse(bad.body);
  EXPECT_EQ(jb["type"], "about:blank");
}

TEST(PercentDecodeTest, DecodesAndRejects) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("%e4%B8%AD"), "\xe4\xb8\xad");
  EXPECT_FALSE(PercentDecode("%").ok());
  EXPECT_FALSE(PercentDecode("%4").ok());
  EXPECT_FALSE(PercentDecode("%4g").ok());
  EXPECT_EQ(*PercentDecode(""), "");
}

}  // namespace
}  // namespace consortia
