// Drives the HTTP server with a real client over loopback.
#include "consortia/http_server.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
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
  explicit Client(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
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
