#include "consortia/bus.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bus_test_util.h"
#include "consortia/bus_metrics.h"
#include "consortia/metrics.h"
#include "gtest/gtest.h"
#include "zmq.hpp"

namespace consortia {
namespace {

using ::consortia::testing::CountingMetrics;
using ::consortia::testing::FreeTcpEndpoint;
using ::consortia::testing::UniqueInproc;
using ::consortia::testing::WaitFor;

constexpr absl::Duration kLongTimeout = absl::Seconds(30);

// Answers every request with "echo:" + payload, synchronously.
BusServer::Handler EchoHandler() {
  return [](const Envelope&, Bytes payload, BusServer::Reply reply) {
    Bytes out = ToBytes("echo:");
    out.insert(out.end(), payload.begin(), payload.end());
    reply(std::move(out));
  };
}

// Keeps every Reply for the test to call later (or never).
class HoldingHandler {
 public:
  BusServer::Handler handler() {
    return [this](const Envelope& env, Bytes payload, BusServer::Reply reply) {
      absl::MutexLock l(&mu_);
      held_.push_back({env, std::move(payload), std::move(reply)});
    };
  }
  size_t count() {
    absl::MutexLock l(&mu_);
    return held_.size();
  }
  struct Held {
    Envelope env;
    Bytes payload;
    BusServer::Reply reply;
  };
  std::vector<Held> Take() {
    absl::MutexLock l(&mu_);
    return std::move(held_);
  }

 private:
  absl::Mutex mu_;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
};

class BusTest : public ::testing::Test {
 protected:
  std::unique_ptr<BusServer> Serve(const std::string& endpoint,
                                   BusServer::Handler handler) {
    auto server = StartBusServer(ctx_, endpoint, "test-server",
                                 std::move(handler), &server_metrics_);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }
  std::unique_ptr<BusServer> ServeWith(const std::string& endpoint,
                                       BusServer::Handler handler,
                                       const BusOptions& options) {
    auto server = StartBusServer(ctx_, endpoint, "test-server",
                                 std::move(handler), &server_metrics_, options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }
  std::unique_ptr<BusClient> Connect(const std::string& endpoint,
                                     const BusOptions& options = {}) {
    auto client = ConnectBusClient(ctx_, endpoint, "test-client",
                                   &client_metrics_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Declared first: destroyed after every socket of the test body.
  zmq::context_t ctx_;
  CountingMetrics server_metrics_;
  CountingMetrics client_metrics_;
};

TEST(EnvelopeTest, RoundTrip) {
  Envelope e;
  e.kind = EnvelopeKind::kReply;
  e.type = 513;
  e.sender = "mempool@node0";
  e.trace_id = 0x0123456789abcdefULL;
  e.id = 42;
  e.status_code = static_cast<uint8_t>(absl::StatusCode::kNotFound);
  e.error = "no such block";
  Bytes wire = EncodeEnvelope(e);
  absl::StatusOr<Envelope> d = DecodeEnvelope(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->version, kProtocolVersion);
  EXPECT_EQ(d->kind, e.kind);
  EXPECT_EQ(d->type, e.type);
  EXPECT_EQ(d->sender, e.sender);
  EXPECT_EQ(d->trace_id, e.trace_id);
  EXPECT_EQ(d->id, e.id);
  EXPECT_EQ(d->status_code, e.status_code);
  EXPECT_EQ(d->error, e.error);
  EXPECT_EQ(EncodeEnvelope(*d), wire);
}

TEST(EnvelopeTest, RejectsMalformedInput) {
  Bytes wire = EncodeEnvelope(Envelope{});
  // Every strict prefix is truncated.
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(DecodeEnvelope(ByteView(wire.data(), n)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "prefix of " << n << " bytes";
  }
  Bytes trailing = wire;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeEnvelope(trailing).ok());

  Bytes future = wire;
  future[0] = kProtocolVersion + 1;
  absl::Status s = DecodeEnvelope(future).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("version"), absl::string_view::npos) << s;

  Bytes bad_kind = wire;
  bad_kind[1] = 9;
  EXPECT_FALSE(DecodeEnvelope(bad_kind).ok());

  Envelope e;
  e.status_code = 200;
  EXPECT_FALSE(DecodeEnvelope(EncodeEnvelope(e)).ok());
}

// A service restarted in the same process (tests, --single-process) binds
// the inproc name its previous instance held: the name must be free as soon
// as the old server is destroyed, not when ZMQ's reaper gets to it.
TEST_F(BusTest, RestartedServerRebindsItsInprocNameAtOnce) {
  const std::string ep = UniqueInproc("rebind");
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::unique_ptr<BusServer>> server =
        StartBusServer(ctx_, ep, "test-server", EchoHandler());
    ASSERT_TRUE(server.ok()) << "restart " << i << ": " << server.status();
  }
}

TEST_F(BusTest, RequestReplyOverInproc) {
  std::string ep = UniqueInproc("srv");
  absl::Mutex mu;
  Envelope seen;
  auto server = Serve(
      ep, [&](const Envelope& env, Bytes payload, BusServer::Reply reply) {
        {
          absl::MutexLock l(&mu);
          seen = env;
        }
        EchoHandler()(env, std::move(payload), std::move(reply));
      });
  auto client = Connect(ep);
  absl::StatusOr<Bytes> r =
      client->Call(7, ToBytes("hello"), kLongTimeout, /*trace_id=*/99);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "echo:hello");
  absl::MutexLock l(&mu);
  EXPECT_EQ(seen.type, 7);
  EXPECT_EQ(seen.trace_id, 99u);
  EXPECT_EQ(seen.sender, "test-client");
  EXPECT_EQ(seen.kind, EnvelopeKind::kRequest);
}

TEST_F(BusTest, RequestReplyOverTcpLoopback) {
  std::string ep = FreeTcpEndpoint();
  auto server = Serve(ep, EchoHandler());
  auto client = Connect(ep);
  for (int i = 0; i < 10; ++i) {
    std::string msg = absl::StrCat("m", i);
    absl::StatusOr<Bytes> r = client->Call(1, ToBytes(msg), kLongTimeout);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(AsString(*r), "echo:" + msg);
  }
  // An empty payload is a valid message too.
  absl::StatusOr<Bytes> r = client->Call(1, Bytes(), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "echo:");
}

TEST_F(BusTest, UnansweredRequestTimesOutAndLateReplyIsDropped) {
  std::string ep = UniqueInproc("srv");
  HoldingHandler holder;
  auto server = Serve(ep, holder.handler());
  auto client = Connect(ep);

  absl::StatusOr<Bytes> r =
      client->Call(1, ToBytes("x"), absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_metrics_.timed_out.load(), 1);

  // The server answers after the deadline: the client drops and counts it.
  ASSERT_TRUE(WaitFor([&] { return holder.count() == 1; }));
  for (auto& h : holder.Take()) h.reply(ToBytes("too late"));
  EXPECT_TRUE(WaitFor([&] { return client_metrics_.late.load() == 1; }));

  // The client still works afterwards.
  absl::Notification done;
  absl::StatusOr<Bytes> second;
  client->CallAsync(1, ToBytes("y"), kLongTimeout,
                    [&](absl::StatusOr<Bytes> res) {
                      second = std::move(res);
                      done.Notify();
                    });
  ASSERT_TRUE(WaitFor([&] { return holder.count() == 1; }));
  for (auto& h : holder.Take()) h.reply(ToBytes("in time"));
  done.WaitForNotification();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(AsString(*second), "in time");
}

TEST_F(BusTest, NoServerAtAllTimesOut) {
  auto tcp_client = Connect(FreeTcpEndpoint());
  EXPECT_EQ(tcp_client->Call(1, ToBytes("x"), absl::Milliseconds(100))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  auto inproc_client = Connect(UniqueInproc("nobody"));
  EXPECT_EQ(inproc_client->Call(1, ToBytes("x"), absl::Milliseconds(100))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  // A deadline already passed fails without waiting for anything.
  EXPECT_EQ(inproc_client->Call(1, ToBytes("x"), absl::ZeroDuration())
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(BusTest, RepliesOutOfOrderAreMatchedById) {
  std::string ep = UniqueInproc("srv");
  HoldingHandler holder;
  auto server = Serve(ep, holder.handler());
  auto client = Connect(ep);

  constexpr int kCalls = 5;
  absl::Mutex mu;
  std::vector<std::string> results(kCalls);
  std::atomic<int> completed{0};
  for (int i = 0; i < kCalls; ++i) {
    client->CallAsync(1, ToBytes(absl::StrCat("req", i)), kLongTimeout,
                      [&, i](absl::StatusOr<Bytes> r) {
                        absl::MutexLock l(&mu);
                        results[i] = r.ok() ? std::string(AsString(*r))
                                            : r.status().ToString();
                        completed++;
                      });
  }
  ASSERT_TRUE(WaitFor([&] { return holder.count() == kCalls; }));
  std::vector<HoldingHandler::Held> held = holder.Take();
  // Answer newest first, from another thread.
  std::thread replier([&] {
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      it->reply(ToBytes("ans-" + std::string(AsString(it->payload))));
    }
  });
  replier.join();
  ASSERT_TRUE(WaitFor([&] { return completed.load() == kCalls; }));
  absl::MutexLock l(&mu);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(results[i], absl::StrCat("ans-req", i));
  }
}

TEST_F(BusTest, ClientReconnectsAfterServerRestart) {
  std::string ep = FreeTcpEndpoint();
  auto client = Connect(ep);
  {
    auto first = Serve(ep, EchoHandler());
    absl::StatusOr<Bytes> r = client->Call(1, ToBytes("a"), kLongTimeout);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(AsString(*r), "echo:a");
  }
  // The old listener closes asynchronously: retry the bind for a while.
  std::unique_ptr<BusServer> second;
  ASSERT_TRUE(WaitFor([&] {
    auto s = StartBusServer(
        ctx_, ep, "second",
        [](const Envelope&, Bytes, BusServer::Reply reply) {
          reply(ToBytes("second"));
        },
        &server_metrics_);
    if (!s.ok()) return false;
    second = *std::move(s);
    return true;
  }));
  // A request sent while the client still held the old connection is lost
  // with it (Unavailable once the client sees the connection close, or a
  // timeout); the client must reconnect by itself, so a later request
  // succeeds without any new client.
  absl::StatusOr<Bytes> r;
  ASSERT_TRUE(WaitFor([&] {
    r = client->Call(1, ToBytes("b"), absl::Seconds(1));
    return r.ok();
  })) << r.status();
  EXPECT_EQ(AsString(*r), "second");
}

// A request in flight when the server goes (a storage process killed with
// a commit outstanding) fails at once with Unavailable, not at its deadline
// (30 s here: the test would fail with DeadlineExceeded), and the client
// reconnects by itself to a new server.
TEST_F(BusTest, RequestInFlightFailsWhenItsConnectionCloses) {
  std::string ep = FreeTcpEndpoint();
  auto client = Connect(ep);
  {
    HoldingHandler holder;
    auto server = Serve(ep, holder.handler());
    absl::Notification done;
    absl::Status status;
    client->CallAsync(7, ToBytes("x"), kLongTimeout,
                      [&](absl::StatusOr<Bytes> r) {
                        status = r.status();
                        done.Notify();
                      });
    ASSERT_TRUE(WaitFor([&] { return holder.count() == 1; }));
    server.reset();
    done.WaitForNotification();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_NE(status.message().find("message type 7"), absl::string_view::npos)
        << status;
    EXPECT_EQ(client_metrics_.lost.load(), 1u);
    EXPECT_EQ(client_metrics_.timed_out.load(), 0);
    holder.Take();
  }
  std::unique_ptr<BusServer> again;
  ASSERT_TRUE(WaitFor([&] {
    auto s = StartBusServer(ctx_, ep, "again", EchoHandler(), &server_metrics_);
    if (!s.ok()) return false;
    again = *std::move(s);
    return true;
  }));
  absl::StatusOr<Bytes> r = client->Call(1, ToBytes("y"), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "echo:y");
}

TEST_F(BusTest, ConcurrentCallsFromEightThreads) {
  std::string ep = UniqueInproc("srv");
  auto server = Serve(ep, EchoHandler());
  auto client = Connect(ep);
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 200;
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        std::string msg = absl::StrCat(t, "/", i);
        absl::StatusOr<Bytes> r = client->Call(1, ToBytes(msg), kLongTimeout);
        if (r.ok() && AsString(*r) == "echo:" + msg) {
          ok++;
        } else {
          wrong++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kCallsPerThread);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(BusTest, MalformedFramesAreCountedAndDropped) {
  std::string ep = UniqueInproc("srv");
  std::atomic<int> handled{0};
  auto server = Serve(
      ep, [&](const Envelope& env, Bytes payload, BusServer::Reply reply) {
        handled++;
        EchoHandler()(env, std::move(payload), std::move(reply));
      });

  zmq::socket_t raw(ctx_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(ep);
  auto send = [&](std::vector<Bytes> frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      raw.send(zmq::buffer(frames[i].data(), frames[i].size()),
               i + 1 < frames.size() ? zmq::send_flags::sndmore
                                     : zmq::send_flags::none);
    }
  };
  Envelope good;
  good.id = 1;
  Bytes good_wire = EncodeEnvelope(good);
  Bytes future_wire = good_wire;
  future_wire[0] = kProtocolVersion + 1;
  Envelope reply_kind;
  reply_kind.kind = EnvelopeKind::kReply;

  send({ToBytes("only one frame")});
  send({ToBytes("garbage envelope"), ToBytes("payload")});
  send({future_wire, ToBytes("payload")});
  send({EncodeEnvelope(reply_kind), ToBytes("payload")});
  send({good_wire, ToBytes("p"), ToBytes("extra"), ToBytes("frames")});
  EXPECT_TRUE(WaitFor([&] { return server_metrics_.malformed.load() == 5; }))
      << server_metrics_.malformed.load();
  EXPECT_EQ(handled.load(), 0);

  // The server keeps serving.
  auto client = Connect(ep);
  absl::StatusOr<Bytes> r = client->Call(1, ToBytes("still"), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "echo:still");
  EXPECT_EQ(handled.load(), 1);
}

TEST_F(BusTest, ServerErrorStatusPropagates) {
  std::string ep = UniqueInproc("srv");
  auto server =
      Serve(ep, [](const Envelope& env, Bytes, BusServer::Reply reply) {
        if (env.type == 404) {
          reply(absl::NotFoundError("no block at height 9"));
        } else {
          reply(absl::UnimplementedError("unknown type"));
        }
      });
  auto client = Connect(ep);
  absl::StatusOr<Bytes> r = client->Call(404, Bytes(), kLongTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no block at height 9");

  // Unimplemented answers are how handlers report unknown types: counted.
  r = client->Call(999, Bytes(), kLongTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(server_metrics_.unknown_type.load(), 1);
}

TEST_F(BusTest, ReplyCalledTwiceSendsOnce) {
  std::string ep = UniqueInproc("srv");
  auto server = Serve(ep, [](const Envelope&, Bytes, BusServer::Reply reply) {
    reply(ToBytes("first"));
    reply(ToBytes("second"));
  });
  auto client = Connect(ep);
  absl::StatusOr<Bytes> r = client->Call(1, Bytes(), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "first");
  r = client->Call(1, Bytes(), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "first");
  EXPECT_EQ(client_metrics_.late.load(), 0);
}

TEST_F(BusTest, DestroyedClientCancelsPendingCalls) {
  std::string ep = UniqueInproc("srv");
  HoldingHandler holder;
  auto server = Serve(ep, holder.handler());
  auto client = Connect(ep);
  absl::Notification done;
  absl::Status status;
  client->CallAsync(1, ToBytes("x"), absl::Hours(1),
                    [&](absl::StatusOr<Bytes> r) {
                      status = r.status();
                      done.Notify();
                    });
  ASSERT_TRUE(WaitFor([&] { return holder.count() == 1; }));
  client.reset();
  ASSERT_TRUE(done.HasBeenNotified());
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  // Answering a request whose client is gone is harmless.
  for (auto& h : holder.Take()) h.reply(ToBytes("nobody listens"));
}

TEST_F(BusTest, ReplyAfterServerIsGoneIsHarmless) {
  std::string ep = UniqueInproc("srv");
  HoldingHandler holder;
  auto server = Serve(ep, holder.handler());
  auto client = Connect(ep);
  absl::Notification done;
  absl::Status status;
  client->CallAsync(1, ToBytes("x"), absl::Milliseconds(300),
                    [&](absl::StatusOr<Bytes> r) {
                      status = r.status();
                      done.Notify();
                    });
  ASSERT_TRUE(WaitFor([&] { return holder.count() == 1; }));
  server.reset();
  for (auto& h : holder.Take()) h.reply(ToBytes("lost"));
  done.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(BusTest, BadEndpointsAreReported) {
  EXPECT_EQ(ConnectBusClient(ctx_, "bogus://x", "c").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectBusClient(ctx_, "tcp://no-port", "c").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string ep = UniqueInproc("srv");
  auto server = Serve(ep, EchoHandler());
  // The same endpoint cannot be bound twice.
  EXPECT_EQ(StartBusServer(ctx_, ep, "dup", EchoHandler()).status().code(),
            absl::StatusCode::kUnavailable);
}

// ------------------------------------------------ message size limit

// The smallest limit the bus takes, so that the oversized frames of these
// tests stay cheap.
BusOptions SmallLimit() {
  BusOptions o;
  o.max_message_bytes = kMinBusMaxMessageBytes;
  return o;
}

// Sends frames on a raw socket (a client that does not use the bus
// library, and so skips its checks).
void SendRaw(zmq::socket_t& raw, const std::vector<Bytes>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    raw.send(zmq::buffer(frames[i].data(), frames[i].size()),
             i + 1 < frames.size() ? zmq::send_flags::sndmore
                                   : zmq::send_flags::none);
  }
}

// Records the largest payload the handler was given, and echoes.
struct SizeRecordingHandler {
  std::atomic<size_t> largest{0};
  std::atomic<int> handled{0};
  BusServer::Handler handler() {
    return [this](const Envelope& env, Bytes payload, BusServer::Reply reply) {
      handled++;
      size_t seen = largest.load();
      while (payload.size() > seen &&
             !largest.compare_exchange_weak(seen, payload.size())) {
      }
      EchoHandler()(env, ToBytes("ok"), std::move(reply));
    };
  }
};

TEST_F(BusTest, OversizedRequestOverTcpCutsOffOnlyItsSender) {
  const std::string ep = FreeTcpEndpoint();
  SizeRecordingHandler h;
  auto server = ServeWith(ep, h.handler(), SmallLimit());
  ASSERT_NE(server, nullptr);
  auto honest = Connect(ep);
  ASSERT_TRUE(honest->Call(1, ToBytes("before"), kLongTimeout).ok());

  // A local process that ignores the limit sends a request one byte over
  // it, three times (it reconnects after each cut-off).
  zmq::socket_t raw(ctx_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(ep);
  Envelope env;
  env.id = 7;
  const Bytes huge(kMinBusMaxMessageBytes + 1, 0xab);
  for (int i = 0; i < 3; ++i) SendRaw(raw, {EncodeEnvelope(env), huge});
  // ZeroMQ dropped its connection: the server counts the disconnect.
  EXPECT_TRUE(WaitFor([&] { return server_metrics_.disconnected.load() >= 1; }))
      << server_metrics_.disconnected.load();

  // The honest client is served as before, with a payload at the limit.
  const Bytes at_limit(kMinBusMaxMessageBytes, 0x01);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Bytes> r = honest->Call(1, at_limit, kLongTimeout);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(AsString(*r), "echo:ok");
  }
  // The handler never saw the oversized request.
  EXPECT_EQ(h.largest.load(), kMinBusMaxMessageBytes);
  EXPECT_EQ(h.handled.load(), 4);
}

TEST_F(BusTest, OversizedRequestOverInprocIsDroppedAndCounted) {
  // inproc has no wire decoder, so ZeroMQ's limit does not apply there: the
  // server checks the size itself.
  const std::string ep = UniqueInproc("srv");
  SizeRecordingHandler h;
  auto server = ServeWith(ep, h.handler(), SmallLimit());
  zmq::socket_t raw(ctx_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(ep);
  Envelope env;
  env.id = 7;
  SendRaw(raw, {EncodeEnvelope(env), Bytes(kMinBusMaxMessageBytes + 1, 0)});
  EXPECT_TRUE(WaitFor([&] { return server_metrics_.oversized.load() == 1; }));
  auto client = Connect(ep);
  ASSERT_TRUE(client->Call(1, ToBytes("next"), kLongTimeout).ok());
  EXPECT_EQ(h.handled.load(), 1);
  EXPECT_EQ(h.largest.load(), 4u);
}

TEST_F(BusTest, ClientRefusesToSendAnOversizedRequest) {
  const std::string ep = FreeTcpEndpoint();
  SizeRecordingHandler h;
  auto server = ServeWith(ep, h.handler(), SmallLimit());
  auto client = Connect(ep, SmallLimit());
  absl::StatusOr<Bytes> r =
      client->Call(3, Bytes(kMinBusMaxMessageBytes + 1, 0), kLongTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("exceeds the limit"),
            absl::string_view::npos)
      << r.status();
  EXPECT_EQ(client_metrics_.oversized.load(), 1);
  // Nothing went out, and the connection is still good.
  ASSERT_TRUE(client->Call(3, ToBytes("small"), kLongTimeout).ok());
  EXPECT_EQ(h.handled.load(), 1);
  EXPECT_EQ(client_metrics_.lost.load(), 0u);
}

TEST_F(BusTest, OversizedReplyBecomesAnError) {
  const std::string ep = FreeTcpEndpoint();
  auto server = ServeWith(
      ep,
      [](const Envelope&, Bytes payload, BusServer::Reply reply) {
        if (AsString(payload) == "big") {
          reply(Bytes(kMinBusMaxMessageBytes + 1, 0));
        } else {
          reply(ToBytes("small"));
        }
      },
      SmallLimit());
  auto client = Connect(ep, SmallLimit());
  absl::StatusOr<Bytes> r = client->Call(5, ToBytes("big"), kLongTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status();
  EXPECT_EQ(server_metrics_.oversized.load(), 1);
  // The connection survived: no request was lost to a disconnect.
  r = client->Call(5, ToBytes("x"), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(client_metrics_.lost.load(), 0u);
}

TEST_F(BusTest, OversizedEventIsNotPublishedAndLeavesAGap) {
  const std::string ep = FreeTcpEndpoint();
  auto pub = StartPublisher(ctx_, ep, "pub", &server_metrics_, SmallLimit());
  ASSERT_TRUE(pub.ok()) << pub.status();
  absl::Mutex mu;
  std::vector<std::pair<uint64_t, uint64_t>> seen;  // (seq, missed)
  auto sub = StartSubscriber(
      ctx_, ep, {"t"},
      [&](std::string_view, const Envelope& env, Bytes, uint64_t missed) {
        absl::MutexLock l(&mu);
        seen.emplace_back(env.id, missed);
      },
      &client_metrics_, SmallLimit());
  ASSERT_TRUE(sub.ok()) << sub.status();
  // Publish until the subscription is up.
  ASSERT_TRUE(WaitFor([&] {
    (*pub)->Publish("t", 1, ToBytes("hello"));
    absl::MutexLock l(&mu);
    return !seen.empty();
  }));
  const uint64_t big =
      (*pub)->Publish("t", 1, Bytes(kMinBusMaxMessageBytes + 1, 0));
  const uint64_t after = (*pub)->Publish("t", 1, ToBytes("after"));
  EXPECT_EQ(server_metrics_.oversized.load(), 1);
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock l(&mu);
    return seen.back().first == after;
  }));
  absl::MutexLock l(&mu);
  EXPECT_EQ(seen.back().second, 1u);  // the oversized one is a gap
  EXPECT_EQ(after, big + 1);
}

TEST_F(BusTest, OptionsOutOfRangeAreRefused) {
  BusOptions tiny;
  tiny.max_message_bytes = kMinBusMaxMessageBytes - 1;
  EXPECT_EQ(ConnectBusClient(ctx_, UniqueInproc("c"), "c", nullptr, tiny)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      StartBusServer(ctx_, UniqueInproc("s"), "s", EchoHandler(), nullptr, tiny)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------ ipc file permissions

// A fresh directory under /tmp, removed with its content at the end.
class TempDirForIpc {
 public:
  TempDirForIpc() {
    char tmpl[] = "/tmp/consortia-bus-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDirForIpc() {
    for (const char* f : {"/srv.sock", "/pub.sock"}) {
      unlink((path_ + f).c_str());
    }
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST_F(BusTest, IpcSocketFilesAreOwnerOnly) {
  TempDirForIpc dir;
  // A permissive umask, as a container's default may be.
  const mode_t old_umask = umask(0);
  const std::string srv = dir.path() + "/srv.sock";
  const std::string pub_path = dir.path() + "/pub.sock";
  auto server = Serve("ipc://" + srv, EchoHandler());
  auto pub = StartPublisher(ctx_, "ipc://" + pub_path, "pub");
  umask(old_umask);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(ModeOf(srv), static_cast<mode_t>(0600)) << std::oct << ModeOf(srv);
  EXPECT_EQ(ModeOf(pub_path), static_cast<mode_t>(0600))
      << std::oct << ModeOf(pub_path);
  // The owner still connects.
  auto client = Connect("ipc://" + srv);
  absl::StatusOr<Bytes> r = client->Call(1, ToBytes("hi"), kLongTimeout);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "echo:hi");
}

// The Prometheus form of BusMetrics counts what the bus refuses, under the
// service's name.
TEST_F(BusTest, PrometheusBusMetricsCountRefusals) {
  MetricsRegistry registry;
  std::unique_ptr<BusMetrics> metrics = NewBusMetrics(registry, "storage");
  const std::string ep = FreeTcpEndpoint();
  auto server = StartBusServer(ctx_, ep, "srv", EchoHandler(), metrics.get(),
                               SmallLimit());
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectBusClient(ctx_, ep, "c", metrics.get(), SmallLimit());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)
                ->Call(1, Bytes(kMinBusMaxMessageBytes + 1, 0), kLongTimeout)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*client)->Call(1, ToBytes("x"), kLongTimeout).ok());
  client->reset();  // its connection closes: the server counts it
  ASSERT_TRUE(WaitFor([&] {
    return registry.Serialize().find(
               "consortia_storage_bus_client_disconnects_total 1") !=
           std::string::npos;
  })) << registry.Serialize();
  const std::string text = registry.Serialize();
  EXPECT_NE(
      text.find("consortia_storage_bus_dropped_total{reason=\"oversized\"} 1"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_storage_bus_timeouts_total 0"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace consortia
