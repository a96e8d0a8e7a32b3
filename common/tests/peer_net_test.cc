#include "consortia/peer_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bus_test_util.h"
#include "consortia/process.h"
#include "gtest/gtest.h"
#include "zmq.hpp"

namespace consortia {
namespace {

using ::consortia::testing::WaitFor;

constexpr uint16_t kTypeVote = 300;
constexpr uint16_t kTypeGossip = 301;
constexpr uint16_t kTypePing = 302;
constexpr uint16_t kTypePong = 303;
constexpr uint16_t kTypeNobodyHandles = 999;

std::string Endpoint(uint16_t port) {
  return absl::StrCat("tcp://127.0.0.1:", port);
}

CurveKeyPair NewKeys() {
  absl::StatusOr<CurveKeyPair> k = GenerateCurveKeyPair();
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? *k : CurveKeyPair{};
}

uint16_t FreePort() {
  absl::StatusOr<uint16_t> p = PickFreePort();
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : 0;
}

// What a handler received.
struct Received {
  std::string peer;
  uint16_t type;
  std::string sender;  // the envelope's
  uint64_t trace_id;
  std::string payload;
};

// Collects messages from a PeerNet's handlers. Thread-safe.
class Inbox {
 public:
  PeerHandler Handler() {
    return [this](const std::string& peer, const Envelope& env, Bytes p) {
      absl::MutexLock l(&mu_);
      got_.push_back({peer, env.type, env.sender, env.trace_id,
                      std::string(p.begin(), p.end())});
    };
  }
  std::vector<Received> All() {
    absl::MutexLock l(&mu_);
    return got_;
  }
  bool Has(const std::string& peer, const std::string& payload) {
    absl::MutexLock l(&mu_);
    for (const Received& r : got_) {
      if (r.peer == peer && r.payload == payload) return true;
    }
    return false;
  }
  size_t CountFrom(const std::string& peer) {
    absl::MutexLock l(&mu_);
    size_t n = 0;
    for (const Received& r : got_) n += r.peer == peer ? 1 : 0;
    return n;
  }

 private:
  absl::Mutex mu_;
  std::vector<Received> got_ ABSL_GUARDED_BY(mu_);
};

// A node of a test network: its own context (one ZAP handler per context),
// authenticator and PeerNet. Members are destroyed in reverse order: the
// PeerNet, then the authenticator, then the context.
struct TestNode {
  std::string id;
  uint16_t port = 0;
  CurveKeyPair keys;
  PeerInfo info() const { return {id, Endpoint(port), keys.public_key}; }

  std::unique_ptr<zmq::context_t> ctx;
  Inbox inbox;
  std::shared_ptr<ZapAuthenticator> zap;
  std::unique_ptr<PeerNet> net;
  // Applied to the options of every StartNet (budgets, limits).
  std::function<void(PeerNetOptions&)> configure;

  // Starts (or restarts) the node with these peers and this allow-list.
  // Retries the bind for a while: a port released a moment ago by a
  // restarted node may still be closing.
  absl::Status Start(const std::vector<PeerInfo>& peers,
                     const std::vector<AllowedKey>& allowed,
                     int send_hwm = 10000, PeerNetMetrics* metrics = nullptr) {
    Stop();
    ctx = std::make_unique<zmq::context_t>();
    absl::StatusOr<std::shared_ptr<ZapAuthenticator>> z =
        StartZapAuthenticator(*ctx, allowed);
    if (!z.ok()) return z.status();
    zap = *z;
    return StartNet(peers, send_hwm, metrics);
  }

  // Starts only the PeerNet, in the node's existing context.
  absl::Status StartNet(const std::vector<PeerInfo>& peers,
                        int send_hwm = 10000,
                        PeerNetMetrics* metrics = nullptr) {
    net.reset();
    absl::Status last;
    absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      PeerNetOptions o;
      o.node_id = id;
      o.bind_endpoint = Endpoint(port);
      o.key_pair = keys;
      o.peers = peers;
      o.authenticator = zap;
      o.send_hwm = send_hwm;
      o.metrics = metrics;
      for (uint16_t t : {kTypeVote, kTypeGossip, kTypePing, kTypePong}) {
        o.handlers[t] = inbox.Handler();
      }
      if (configure) configure(o);
      absl::StatusOr<std::unique_ptr<PeerNet>> n =
          StartPeerNet(*ctx, std::move(o));
      if (n.ok()) {
        net = *std::move(n);
        return absl::OkStatus();
      }
      last = n.status();
      if (last.code() != absl::StatusCode::kUnavailable) return last;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return last;
  }

  void Stop() {
    net.reset();
    zap.reset();
    ctx.reset();
  }
};

// A network of n nodes that all know and allow each other.
class Network {
 public:
  explicit Network(int n) {
    for (int i = 0; i < n; ++i) {
      auto node = std::make_unique<TestNode>();
      node->id = absl::StrCat("node", i);
      node->port = FreePort();
      node->keys = NewKeys();
      nodes_.push_back(std::move(node));
    }
  }
  std::vector<PeerInfo> Peers() const {
    std::vector<PeerInfo> out;
    for (const auto& n : nodes_) out.push_back(n->info());
    return out;
  }
  absl::Status Start(int i) {
    return nodes_[i]->Start(Peers(), AllowListOf(Peers()));
  }
  absl::Status StartAll() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (absl::Status s = Start(static_cast<int>(i)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  TestNode& operator[](int i) { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<std::unique_ptr<TestNode>> nodes_;
};

// --------------------------------------------------------------------- keys

TEST(PeerNetKeys, Z85MatchesTheSpecAndRoundTrips) {
  // ZeroMQ RFC 32's example: 86 4F D2 6F B5 59 F7 5B is "HelloWorld".
  CurveKey key;
  const uint8_t hello[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
  for (size_t i = 0; i < key.size(); ++i) key[i] = hello[i % 8];
  EXPECT_EQ(CurveKeyToZ85(key), "HelloWorldHelloWorldHelloWorldHelloWorld");
  absl::StatusOr<CurveKey> back =
      CurveKeyFromZ85("HelloWorldHelloWorldHelloWorldHelloWorld");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, key);

  CurveKeyPair pair = NewKeys();
  EXPECT_NE(pair.public_key, pair.secret_key);
  std::string z = CurveKeyToZ85(pair.public_key);
  EXPECT_EQ(z.size(), kCurveKeyZ85Chars);
  back = CurveKeyFromZ85(z);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, pair.public_key);
  absl::StatusOr<CurveKey> derived = CurvePublicKeyOf(pair.secret_key);
  ASSERT_TRUE(derived.ok()) << derived.status();
  EXPECT_EQ(*derived, pair.public_key);
  EXPECT_NE(NewKeys().public_key, pair.public_key);
}

TEST(PeerNetKeys, Z85RejectsBadText) {
  std::string good = CurveKeyToZ85(NewKeys().public_key);
  for (const std::string& bad :
       {std::string(), good.substr(1), good + "0", good.substr(0, 39) + " ",
        good.substr(0, 39) + "\"", good.substr(0, 39) + "~",
        std::string(good.substr(0, 39)) + "\xc3",
        // 85^5 - 1 > 2^32 - 1: this group would wrap.
        std::string("########################################")}) {
    absl::StatusOr<CurveKey> k = CurveKeyFromZ85(bad);
    EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PeerNetKeys, KeyFileRoundTripsAndIsChecked) {
  CurveKeyPair pair = NewKeys();
  std::string json = CurveKeyPairToJson(pair);
  absl::StatusOr<CurveKeyPair> back = ParseCurveKeyPairJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->public_key, pair.public_key);
  EXPECT_EQ(back->secret_key, pair.secret_key);

  std::string pub = CurveKeyToZ85(pair.public_key);
  std::string sec = CurveKeyToZ85(pair.secret_key);
  std::string other_pub = CurveKeyToZ85(NewKeys().public_key);
  struct Case {
    std::string text;
    std::string error_mentions;
  };
  for (const Case& c : std::vector<Case>{
           {"not json", "malformed"},
           {"[]", "object"},
           {absl::StrCat(R"({"public_key":")", pub, R"(","secret_key":")", sec,
                         R"("})"),
            "key_type"},
           {absl::StrCat(R"({"key_type":"ed25519","public_key":")", pub,
                         R"(","secret_key":")", sec, R"("})"),
            "key_type"},
           {absl::StrCat(R"({"key_type":"curvezmq","secret_key":")", sec,
                         R"("})"),
            "public_key"},
           {absl::StrCat(R"({"key_type":"curvezmq","public_key":"abc",)",
                         R"("secret_key":")", sec, R"("})"),
            "public_key"},
           {absl::StrCat(R"({"key_type":"curvezmq","public_key":")", other_pub,
                         R"(","secret_key":")", sec, R"("})"),
            "does not belong"},
           {absl::StrCat(R"({"key_type":"curvezmq","public_key":")", pub,
                         R"(","public_key":")", pub, R"(","secret_key":")", sec,
                         R"("})"),
            "twice"},
       }) {
    absl::StatusOr<CurveKeyPair> r = ParseCurveKeyPairJson(c.text);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.error_mentions), std::string::npos)
        << r.status();
  }

  std::string path =
      absl::StrCat(::testing::TempDir(), "/peer_net_key_", getpid(), ".json");
  {
    std::ofstream f(path);
    f << json;
  }
  absl::StatusOr<CurveKeyPair> loaded = LoadCurveKeyPair(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->secret_key, pair.secret_key);
  std::remove(path.c_str());
  EXPECT_EQ(LoadCurveKeyPair(path).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------- ZAP

// Sends one ZAP request to the context's handler, as libzmq would, and
// returns the reply frames.
std::vector<std::string> AskZap(zmq::context_t& ctx,
                                const std::vector<std::string>& request) {
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 30000);
  req.connect("inproc://zeromq.zap.01");
  for (size_t i = 0; i < request.size(); ++i) {
    req.send(zmq::buffer(request[i]), i + 1 < request.size()
                                          ? zmq::send_flags::sndmore
                                          : zmq::send_flags::none);
  }
  std::vector<std::string> reply;
  while (true) {
    zmq::message_t m;
    if (!req.recv(m)) break;
    reply.push_back(m.to_string());
    if (!m.more()) break;
  }
  return reply;
}

std::vector<std::string> CurveRequest(const std::string& domain,
                                      const CurveKey& key) {
  return {"1.0",
          "req-7",
          domain,
          "127.0.0.1",
          "",
          "CURVE",
          std::string(key.begin(), key.end())};
}

TEST(PeerNetZap, AnswersByAllowList) {
  zmq::context_t ctx;
  CurveKey alice = NewKeys().public_key;
  CurveKey mallory = NewKeys().public_key;
  absl::StatusOr<std::shared_ptr<ZapAuthenticator>> zap =
      StartZapAuthenticator(ctx, {{"alice", alice}});
  ASSERT_TRUE(zap.ok()) << zap.status();

  std::vector<std::string> r = AskZap(ctx, CurveRequest(kPeerZapDomain, alice));
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0], "1.0");
  EXPECT_EQ(r[1], "req-7");  // the request id is echoed
  EXPECT_EQ(r[2], "200");
  EXPECT_EQ(r[4], "alice");  // User-Id

  r = AskZap(ctx, CurveRequest(kPeerZapDomain, mallory));
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[2], "400");
  EXPECT_EQ(r[4], "");

  // An allowed key in another domain, or another mechanism: refused.
  r = AskZap(ctx, CurveRequest("other.domain", alice));
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[2], "400");
  r = AskZap(ctx, {"1.0", "req-8", kPeerZapDomain, "127.0.0.1", "", "NULL"});
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[2], "400");
  // Not ZAP 1.0.
  r = AskZap(ctx, {"0.9", "req-9", kPeerZapDomain, "127.0.0.1", "", "CURVE"});
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[2], "500");

  EXPECT_EQ((*zap)->accepted(), 1u);
  EXPECT_EQ((*zap)->refused(), 4u);

  // The allow-list can change while running.
  ASSERT_TRUE(
      (*zap)->SetAllowList({{"alice", alice}, {"mallory", mallory}}).ok());
  r = AskZap(ctx, CurveRequest(kPeerZapDomain, mallory));
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[2], "200");
  EXPECT_EQ(r[4], "mallory");
  absl::StatusOr<std::string> id = (*zap)->NodeIdOf(mallory);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "mallory");

  // A key listed under two ids is rejected and the list stays.
  EXPECT_EQ((*zap)->SetAllowList({{"a", alice}, {"b", alice}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*zap)->SetAllowList({{"", alice}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*zap)->NodeIdOf(mallory).ok());
  ASSERT_TRUE((*zap)->SetAllowList({}).ok());
  EXPECT_EQ((*zap)->NodeIdOf(alice).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PeerNetZap, LeavesPlainBusSocketsOfTheContextAlone) {
  // One context for a whole node: the bus (no CURVE, no ZAP domain) and the
  // peer transport. The ZAP handler must not refuse the bus's connections.
  zmq::context_t ctx;
  auto zap = StartZapAuthenticator(ctx, {});
  ASSERT_TRUE(zap.ok()) << zap.status();
  std::string endpoint = Endpoint(FreePort());
  auto server =
      StartBusServer(ctx, endpoint, "echo",
                     [](const Envelope&, Bytes payload,
                        BusServer::Reply reply) { reply(std::move(payload)); });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectBusClient(ctx, endpoint, "client");
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<Bytes> r =
      (*client)->Call(1, ToBytes("over tcp"), absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AsString(*r), "over tcp");
  EXPECT_EQ((*zap)->refused(), 0u);
  EXPECT_EQ((*zap)->accepted(), 0u);
}

TEST(PeerNetZap, OnlyOnePerContext) {
  zmq::context_t ctx;
  auto first = StartZapAuthenticator(ctx, {});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = StartZapAuthenticator(ctx, {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  // Another context has its own.
  zmq::context_t other;
  EXPECT_TRUE(StartZapAuthenticator(other, {}).ok());
  // Once the first is gone, the endpoint is free again.
  first->reset();
  EXPECT_TRUE(WaitFor([&] { return StartZapAuthenticator(ctx, {}).ok(); }));
}

// ----------------------------------------------------------------- options

TEST(PeerNet, RejectsBadOptions) {
  zmq::context_t ctx;
  zmq::context_t other_ctx;
  auto zap = StartZapAuthenticator(ctx, {});
  auto other_zap = StartZapAuthenticator(other_ctx, {});
  ASSERT_TRUE(zap.ok() && other_zap.ok());
  CurveKeyPair me = NewKeys();
  CurveKeyPair them = NewKeys();
  auto base = [&] {
    PeerNetOptions o;
    o.node_id = "node0";
    o.bind_endpoint = Endpoint(FreePort());
    o.key_pair = me;
    o.authenticator = *zap;
    o.peers = {{"node0", "tcp://127.0.0.1:1", me.public_key},
               {"node1", Endpoint(FreePort()), them.public_key}};
    return o;
  };
  {
    // The base options work (this node is skipped in the peer list).
    auto net = StartPeerNet(ctx, base());
    ASSERT_TRUE(net.ok()) << net.status();
    EXPECT_EQ((*net)->Peers().size(), 1u);
  }
  std::vector<std::pair<std::string, PeerNetOptions>> bad;
  bad.push_back({"no authenticator", base()});
  bad.back().second.authenticator = nullptr;
  bad.push_back({"authenticator of another context", base()});
  bad.back().second.authenticator = *other_zap;
  bad.push_back({"empty node id", base()});
  bad.back().second.node_id = "";
  bad.push_back({"duplicate peer", base()});
  bad.back().second.peers.push_back(bad.back().second.peers[1]);
  bad.push_back({"peer with my key", base()});
  bad.back().second.peers[1].public_key = me.public_key;
  bad.push_back({"me with another key", base()});
  bad.back().second.peers[0].public_key = them.public_key;
  bad.push_back({"malformed bind endpoint", base()});
  bad.back().second.bind_endpoint = "nonsense";
  bad.push_back({"malformed peer endpoint", base()});
  bad.back().second.peers[1].endpoint = "tcp://";
  bad.push_back({"zero hwm", base()});
  bad.back().second.send_hwm = 0;
  for (auto& [what, o] : bad) {
    auto net = StartPeerNet(ctx, std::move(o));
    EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument)
        << what << ": " << net.status();
  }

  // A port in use is Unavailable.
  PeerNetOptions first = base();
  PeerNetOptions second = base();
  second.bind_endpoint = first.bind_endpoint;
  auto a = StartPeerNet(ctx, std::move(first));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(StartPeerNet(ctx, std::move(second)).status().code(),
            absl::StatusCode::kUnavailable);
}

// --------------------------------------------------------------- messaging

TEST(PeerNet, TwoNodesExchangeBothWays) {
  Network net(2);
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] {
    return net[0].net->PeersConnected() == 1 &&
           net[1].net->PeersConnected() == 1;
  }));

  ASSERT_TRUE(
      net[0].net->Send("node1", kTypeVote, AsBytes("vote from 0"), 77).ok());
  ASSERT_TRUE(
      net[1].net->Send("node0", kTypeGossip, AsBytes("txs from 1")).ok());
  ASSERT_TRUE(WaitFor([&] {
    return net[1].inbox.Has("node0", "vote from 0") &&
           net[0].inbox.Has("node1", "txs from 1");
  }));
  std::vector<Received> at1 = net[1].inbox.All();
  ASSERT_EQ(at1.size(), 1u);
  EXPECT_EQ(at1[0].type, kTypeVote);
  EXPECT_EQ(at1[0].sender, "node0");
  EXPECT_EQ(at1[0].trace_id, 77u);
  std::vector<Received> at0 = net[0].inbox.All();
  ASSERT_EQ(at0.size(), 1u);
  EXPECT_EQ(at0[0].type, kTypeGossip);

  EXPECT_EQ(net[0].net->Send("node9", kTypeVote, AsBytes("x")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(net[0].net->Stats().sent, 1u);
  EXPECT_EQ(net[1].net->Stats().received, 1u);
  std::vector<PeerStatus> peers = net[0].net->Peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].id, "node1");
  EXPECT_TRUE(peers[0].connected);
  EXPECT_EQ(peers[0].sent, 1u);
}

TEST(PeerNet, FourNodesBroadcastReachesAll) {
  Network net(4);
  ASSERT_TRUE(net.StartAll().ok());
  // Sent before the connections are up: queued, then delivered.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(net[i].net->Broadcast(kTypeGossip,
                                    AsBytes(absl::StrCat("batch of ", i))),
              3u);
  }
  ASSERT_TRUE(WaitFor([&] {
    for (int to = 0; to < 4; ++to) {
      for (int from = 0; from < 4; ++from) {
        if (from == to) continue;
        if (!net[to].inbox.Has(absl::StrCat("node", from),
                               absl::StrCat("batch of ", from))) {
          return false;
        }
      }
    }
    return true;
  }));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(net[i].inbox.All().size(), 3u) << "node" << i;
    EXPECT_TRUE(WaitFor([&] { return net[i].net->PeersConnected() == 3; }));
  }
}

TEST(PeerNet, HandlerMaySendFromTheIoThread) {
  Network net(2);
  // node1 answers each ping with a pong from inside its handler.
  std::atomic<PeerNet*> node1{nullptr};
  auto& n1 = net[1];
  n1.ctx = std::make_unique<zmq::context_t>();
  auto zap = StartZapAuthenticator(*n1.ctx, AllowListOf(net.Peers()));
  ASSERT_TRUE(zap.ok());
  n1.zap = *zap;
  PeerNetOptions o;
  o.node_id = n1.id;
  o.bind_endpoint = Endpoint(n1.port);
  o.key_pair = n1.keys;
  o.peers = net.Peers();
  o.authenticator = n1.zap;
  o.handlers[kTypePing] = [&node1](const std::string& peer, const Envelope&,
                                   Bytes payload) {
    PeerNet* self = node1.load();
    if (self != nullptr) {
      EXPECT_TRUE(self->Send(peer, kTypePong, payload).ok());
    }
  };
  auto started = StartPeerNet(*n1.ctx, std::move(o));
  ASSERT_TRUE(started.ok()) << started.status();
  n1.net = *std::move(started);
  node1.store(n1.net.get());
  ASSERT_TRUE(net.Start(0).ok());

  ASSERT_TRUE(net[0].net->Send("node1", kTypePing, AsBytes("ping-1")).ok());
  EXPECT_TRUE(WaitFor([&] { return net[0].inbox.Has("node1", "ping-1"); }));
}

// ---------------------------------------------------------- authentication

// A raw CURVE client socket with these keys, connected to `server`.
zmq::socket_t CurveClient(zmq::context_t& ctx, const CurveKeyPair& keys,
                          const CurveKey& server_key, uint16_t port) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::curve_publickey,
        zmq::const_buffer(keys.public_key.data(), 32));
  s.set(zmq::sockopt::curve_secretkey,
        zmq::const_buffer(keys.secret_key.data(), 32));
  s.set(zmq::sockopt::curve_serverkey,
        zmq::const_buffer(server_key.data(), 32));
  s.connect(Endpoint(port));
  return s;
}

TEST(PeerNet, UnknownKeyIsRefusedByZapWhereBareCurveAdmitsIt) {
  Network net(2);
  ASSERT_TRUE(net.StartAll().ok());
  // The intruder knows node1's address and public key but is not in its
  // allow-list.
  TestNode intruder;
  intruder.id = "intruder";
  intruder.port = FreePort();
  intruder.keys = NewKeys();
  ASSERT_TRUE(
      intruder.Start({net[1].info()}, AllowListOf({net[1].info()})).ok());
  ASSERT_TRUE(
      intruder.net->Send("node1", kTypeVote, AsBytes("forged vote")).ok());

  // node1's ZAP handler says 400 and the intruder hears it.
  ASSERT_TRUE(WaitFor([&] {
    return net[1].zap->refused() > 0 &&
           intruder.net->Stats().refused_by_peer > 0 &&
           net[1].net->Stats().inbound_handshake_failed > 0;
  }));
  EXPECT_EQ(intruder.net->PeersConnected(), 0u);
  // A configured node still gets through; the intruder never did.
  ASSERT_TRUE(net[0].net->Send("node1", kTypeVote, AsBytes("real vote")).ok());
  ASSERT_TRUE(WaitFor([&] { return net[1].inbox.Has("node0", "real vote"); }));
  for (const Received& r : net[1].inbox.All()) {
    EXPECT_EQ(r.peer, "node0");
    EXPECT_NE(r.payload, "forged vote");
  }

  // The same intruder against a bare CURVE server (a ZAP domain set, no ZAP
  // handler in its context): it is admitted. So the allow-list, not CURVE
  // itself, is what kept it out above.
  zmq::context_t bare_ctx;
  CurveKeyPair bare_keys = NewKeys();
  uint16_t bare_port = FreePort();
  zmq::socket_t bare(bare_ctx, zmq::socket_type::router);
  bare.set(zmq::sockopt::linger, 0);
  bare.set(zmq::sockopt::curve_server, true);
  bare.set(zmq::sockopt::curve_secretkey,
           zmq::const_buffer(bare_keys.secret_key.data(), 32));
  bare.set(zmq::sockopt::zap_domain, kPeerZapDomain);
  bare.set(zmq::sockopt::rcvtimeo, 30000);
  bare.bind(Endpoint(bare_port));
  zmq::context_t client_ctx;
  zmq::socket_t client =
      CurveClient(client_ctx, intruder.keys, bare_keys.public_key, bare_port);
  client.send(zmq::str_buffer("forged vote"), zmq::send_flags::none);
  zmq::message_t routing_id;
  zmq::message_t body;
  ASSERT_TRUE(bare.recv(routing_id));
  ASSERT_TRUE(bare.recv(body));
  EXPECT_EQ(body.to_string(), "forged vote");
}

TEST(PeerNet, AllowListUpdateAdmitsANewNode) {
  Network net(2);
  ASSERT_TRUE(net[0].Start(net.Peers(), AllowListOf(net.Peers())).ok());
  // node1 lists node0 as a peer but does not allow it yet.
  ASSERT_TRUE(
      net[1].Start(net.Peers(), {{"node1", net[1].keys.public_key}}).ok());
  ASSERT_TRUE(net[0].net->Send("node1", kTypeVote, AsBytes("early")).ok());
  // node0 keeps trying although libzmq gives up after a refusal.
  ASSERT_TRUE(WaitFor([&] {
    return net[1].zap->refused() >= 2 &&
           net[0].net->Stats().refused_by_peer >= 2;
  }));
  EXPECT_EQ(net[1].inbox.All().size(), 0u);
  EXPECT_EQ(net[0].net->PeersConnected(), 0u);

  ASSERT_TRUE(net[1].zap->SetAllowList(AllowListOf(net.Peers())).ok());
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 1; }));
  // What was queued during the refusals was discarded with the refused
  // connection (at most once); new messages go through.
  ASSERT_TRUE(net[0].net->Send("node1", kTypeVote, AsBytes("admitted")).ok());
  EXPECT_TRUE(WaitFor([&] { return net[1].inbox.Has("node0", "admitted"); }));
}

TEST(PeerNet, ClientWithWrongServerKeyCannotConnect) {
  Network net(2);
  ASSERT_TRUE(net.StartAll().ok());
  // "confused" is allowed by node1 but has the wrong key for node1.
  TestNode confused;
  confused.id = "confused";
  confused.port = FreePort();
  confused.keys = NewKeys();
  ASSERT_TRUE(net[1]
                  .zap
                  ->SetAllowList({{"node0", net[0].keys.public_key},
                                  {"node1", net[1].keys.public_key},
                                  {"confused", confused.keys.public_key}})
                  .ok());
  PeerInfo wrong = net[1].info();
  wrong.public_key = NewKeys().public_key;
  ASSERT_TRUE(confused.Start({wrong}, {}).ok());
  ASSERT_TRUE(confused.net->Send("node1", kTypeVote, AsBytes("lost")).ok());

  ASSERT_TRUE(WaitFor([&] {
    return confused.net->Stats().handshake_failed > 0 &&
           net[1].net->Stats().inbound_handshake_failed > 0;
  }));
  EXPECT_EQ(confused.net->PeersConnected(), 0u);
  ASSERT_TRUE(net[0].net->Send("node1", kTypeVote, AsBytes("real")).ok());
  ASSERT_TRUE(WaitFor([&] { return net[1].inbox.Has("node0", "real"); }));
  EXPECT_EQ(net[1].inbox.All().size(), 1u);
}

TEST(PeerNet, PlainZmtpClientIsRefused) {
  Network net(2);
  ASSERT_TRUE(net.StartAll().ok());
  zmq::context_t plain_ctx;
  zmq::socket_t plain(plain_ctx, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(Endpoint(net[1].port));
  plain.send(zmq::str_buffer("plaintext"), zmq::send_flags::none);
  ASSERT_TRUE(WaitFor(
      [&] { return net[1].net->Stats().inbound_handshake_failed > 0; }));
  ASSERT_TRUE(net[0].net->Send("node1", kTypeVote, AsBytes("real")).ok());
  ASSERT_TRUE(WaitFor([&] { return net[1].inbox.Has("node0", "real"); }));
  EXPECT_EQ(net[1].inbox.All().size(), 1u);
  PeerNetStats s = net[1].net->Stats();
  EXPECT_EQ(s.malformed_dropped, 0u);
  EXPECT_EQ(s.received, 1u);
}

// Forwards one TCP connection at a time from a local port to `target` and
// records every byte that passes, both ways.
class RecordingProxy {
 public:
  explicit RecordingProxy(uint16_t target) : target_(target) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
            0 &&
        listen(listen_fd_, 8) == 0) {
      socklen_t len = sizeof(addr);
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~RecordingProxy() {
    stop_.store(true);
    thread_.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string Captured() {
    absl::MutexLock l(&mu_);
    return captured_;
  }

 private:
  void Run() {
    while (!stop_.load()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(target_);
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
          0) {
        Relay(client, server);
      }
      close(server);
      close(client);
    }
  }
  void Relay(int a, int b) {
    char buf[4096];
    while (!stop_.load()) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = read(p[i].fd, buf, sizeof(buf));
        if (n <= 0) return;
        {
          absl::MutexLock l(&mu_);
          captured_.append(buf, static_cast<size_t>(n));
        }
        int to = i == 0 ? b : a;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = write(to, buf + off, static_cast<size_t>(n - off));
          if (w <= 0) return;
          off += w;
        }
      }
    }
  }

  const uint16_t target_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::string captured_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

TEST(PeerNet, TrafficIsEncrypted) {
  Network net(2);
  RecordingProxy proxy(net[1].port);
  ASSERT_NE(proxy.port(), 0);
  // node0 reaches node1 through the proxy.
  std::vector<PeerInfo> seen_by_0 = net.Peers();
  seen_by_0[1].endpoint = Endpoint(proxy.port());
  ASSERT_TRUE(net[0].Start(seen_by_0, AllowListOf(net.Peers())).ok());
  ASSERT_TRUE(net.Start(1).ok());

  const std::string canary = "CANARY-this-vote-must-not-travel-in-clear";
  ASSERT_TRUE(net[0].net->Send("node1", kTypeVote, AsBytes(canary)).ok());
  ASSERT_TRUE(WaitFor([&] { return net[1].inbox.Has("node0", canary); }));
  std::string wire = proxy.Captured();
  // The proxy saw the CURVE handshake (the greeting names the mechanism)
  // and the message, but never the payload's bytes.
  EXPECT_NE(wire.find("CURVE"), std::string::npos);
  EXPECT_GT(wire.size(), canary.size());
  EXPECT_EQ(wire.find(canary), std::string::npos);
  EXPECT_EQ(wire.find("CANARY"), std::string::npos);
}

TEST(PeerNet, MalformedUnknownTypeAndSpoofedSenderAreCountedAndDropped) {
  Network net(3);
  // Only node1 runs; a raw socket holding node0's keys plays node0.
  ASSERT_TRUE(net.Start(1).ok());
  zmq::context_t raw_ctx;
  zmq::socket_t raw =
      CurveClient(raw_ctx, net[0].keys, net[1].keys.public_key, net[1].port);
  auto envelope = [](uint16_t type, std::string sender, EnvelopeKind kind) {
    Envelope e;
    e.kind = kind;
    e.type = type;
    e.sender = std::move(sender);
    Bytes b = EncodeEnvelope(e);
    return std::string(b.begin(), b.end());
  };
  auto send = [&](const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      raw.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                           ? zmq::send_flags::sndmore
                                           : zmq::send_flags::none);
    }
  };
  std::string good = envelope(kTypeVote, "node0", EnvelopeKind::kEvent);
  send({"one frame"});                                         // malformed
  send({"not an envelope", "payload"});                        // malformed
  send({good, "payload", "extra"});                            // malformed
  send({envelope(kTypeVote, "node0", EnvelopeKind::kRequest),  // malformed
        "payload"});
  send({envelope(kTypeNobodyHandles, "node0", EnvelopeKind::kEvent),
        "payload"});                                         // unknown type
  send({envelope(kTypeVote, "node2", EnvelopeKind::kEvent),  // spoofed
        "payload"});
  send({good, "finally"});
  ASSERT_TRUE(WaitFor([&] { return net[1].inbox.Has("node0", "finally"); }));
  // One connection keeps order, so everything before was handled first.
  PeerNetStats s = net[1].net->Stats();
  EXPECT_EQ(s.malformed_dropped, 4u);
  EXPECT_EQ(s.unknown_type_dropped, 1u);
  EXPECT_EQ(s.unknown_sender_dropped, 1u);
  EXPECT_EQ(s.received, 1u);
  EXPECT_EQ(net[1].inbox.All().size(), 1u);
}

// ------------------------------------------------------ failure and restart

// PeerNetMetrics that counts. Thread-safe.
class CountingPeerMetrics : public PeerNetMetrics {
 public:
  void PeersConnected(size_t n) override { connected.store(n); }
  void Dropped(PeerDrop why) override {
    if (why == PeerDrop::kSendQueueFull) queue_full++;
    if (why == PeerDrop::kUnknownType) unknown_type++;
  }
  void HandshakeFailed(bool refused) override {
    if (refused) refused_by_peer++;
  }
  std::atomic<size_t> connected{0};
  std::atomic<int> queue_full{0};
  std::atomic<int> unknown_type{0};
  std::atomic<int> refused_by_peer{0};
};

TEST(PeerNet, MetricsFollowConnectionsAndDrops) {
  Network net(2);
  CountingPeerMetrics metrics;
  ASSERT_TRUE(
      net[0].Start(net.Peers(), AllowListOf(net.Peers()), 1, &metrics).ok());
  ASSERT_TRUE(net.Start(1).ok());
  ASSERT_TRUE(WaitFor([&] { return metrics.connected.load() == 1; }));
  ASSERT_TRUE(net[0].net->Send("node1", kTypeNobodyHandles, AsBytes("?")).ok());
  EXPECT_TRUE(
      WaitFor([&] { return net[1].net->Stats().unknown_type_dropped == 1; }));
  net[1].Stop();
  ASSERT_TRUE(WaitFor([&] { return metrics.connected.load() == 0; }));
  // With a queue of one message, the second to a down peer is dropped.
  net[0].net->Broadcast(kTypeVote, AsBytes("1"));
  net[0].net->Broadcast(kTypeVote, AsBytes("2"));
  EXPECT_GE(metrics.queue_full.load(), 1);
  EXPECT_EQ(static_cast<uint64_t>(metrics.queue_full.load()),
            net[0].net->Stats().send_dropped);
}

TEST(PeerNet, ContextTerminationStopsItCleanly) {
  Network net(2);
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 1; }));
  net[0].ctx->shutdown();
  EXPECT_TRUE(WaitFor([&] {
    return net[0].net->Send("node1", kTypeVote, AsBytes("x")).code() ==
           absl::StatusCode::kFailedPrecondition;
  }));
  EXPECT_EQ(net[0].net->Broadcast(kTypeVote, AsBytes("x")), 0u);
  // Destroying the PeerNet, the authenticator and the context returns.
  net[0].Stop();
  EXPECT_TRUE(WaitFor([&] { return net[1].net->PeersConnected() == 0; }));
}

TEST(PeerNet, PeerRestartsAndMessagesFlowAgain) {
  Network net(3);
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 3; ++i) {
      if (net[i].net->PeersConnected() != 2) return false;
    }
    return true;
  }));

  net[2].Stop();
  ASSERT_TRUE(WaitFor([&] {
    return net[0].net->PeersConnected() == 1 &&
           net[1].net->PeersConnected() == 1;
  }));
  for (const PeerStatus& p : net[0].net->Peers()) {
    EXPECT_EQ(p.connected, p.id == "node1") << p.id;
  }
  // Broadcast while node2 is down returns; node1 still gets it.
  net[0].net->Broadcast(kTypeGossip, AsBytes("while 2 is down"));
  ASSERT_TRUE(
      WaitFor([&] { return net[1].inbox.Has("node0", "while 2 is down"); }));

  // node2 comes back on the same port with the same keys; the others were
  // not restarted.
  ASSERT_TRUE(net.Start(2).ok());
  ASSERT_TRUE(WaitFor([&] {
    return net[0].net->PeersConnected() == 2 &&
           net[1].net->PeersConnected() == 2 &&
           net[2].net->PeersConnected() == 2;
  }));
  ASSERT_TRUE(
      net[0].net->Send("node2", kTypeVote, AsBytes("after restart")).ok());
  ASSERT_TRUE(net[2].net->Send("node1", kTypeVote, AsBytes("back again")).ok());
  EXPECT_TRUE(WaitFor([&] {
    return net[2].inbox.Has("node0", "after restart") &&
           net[1].inbox.Has("node2", "back again");
  }));

  // node1 restarts its PeerNet alone, in the same context with the same
  // ZAP handler.
  net[1].net.reset();
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 1; }));
  ASSERT_TRUE(net[1].StartNet(net.Peers()).ok());
  ASSERT_TRUE(WaitFor([&] {
    return net[0].net->PeersConnected() == 2 &&
           net[1].net->PeersConnected() == 2;
  }));
  net[1].net->Broadcast(kTypeVote, AsBytes("node1 is back"));
  EXPECT_TRUE(WaitFor([&] {
    return net[0].inbox.Has("node1", "node1 is back") &&
           net[2].inbox.Has("node1", "node1 is back");
  }));
}

TEST(PeerNet, DownPeerDoesNotBlockBroadcast) {
  Network net(3);
  constexpr int kHwm = 50;
  constexpr int kMessages = 1000;
  // node2 is never started.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(net[i].Start(net.Peers(), AllowListOf(net.Peers()), kHwm).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 1; }));
  for (int i = 0; i < kMessages; ++i) {
    net[0].net->Broadcast(kTypeGossip, AsBytes(absl::StrCat("batch ", i)));
  }
  // Every call returned; what node2 could not take was dropped, so its
  // queue stays bounded.
  PeerStatus down;
  for (const PeerStatus& p : net[0].net->Peers()) {
    if (p.id == "node2") down = p;
  }
  EXPECT_FALSE(down.connected);
  EXPECT_EQ(down.sent + down.dropped, static_cast<uint64_t>(kMessages));
  EXPECT_LE(down.sent, static_cast<uint64_t>(2 * kHwm));
  EXPECT_GE(net[0].net->Stats().send_dropped, down.dropped);
  EXPECT_EQ(net[0].net->Send("node2", kTypeVote, AsBytes("x")).code(),
            absl::StatusCode::kResourceExhausted);

  // The live peer still gets messages.
  ASSERT_TRUE(WaitFor([&] {
    net[0].net->Send("node1", kTypeVote, AsBytes("marker")).IgnoreError();
    return net[1].inbox.Has("node0", "marker");
  }));

  // When node2 finally starts, what was queued for it arrives.
  ASSERT_TRUE(net.Start(2).ok());
  EXPECT_TRUE(WaitFor([&] { return net[2].inbox.CountFrom("node0") > 0; }));
  EXPECT_LE(net[2].inbox.CountFrom("node0"), down.sent);
}

// ------------------------------------------------------------------ budgets

PeerStatus StatusOf(PeerNet& net, const std::string& id) {
  for (const PeerStatus& p : net.Peers()) {
    if (p.id == id) return p;
  }
  return PeerStatus{};
}

// Long enough that a test never sees a second interval.
constexpr absl::Duration kOneInterval = absl::Hours(1);

TEST(PeerNetBudget, AFloodingPeerIsShedWhileOthersGetThrough) {
  Network net(3);
  net[1].configure = [](PeerNetOptions& o) {
    o.budget.messages = 5;
    o.budget.interval = kOneInterval;
    o.budget.abusive_intervals = 0;  // never backed off here
  };
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return net[2].net->PeersConnected() == 2; }));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        net[0].net->Send("node1", kTypeVote, AsBytes(absl::StrCat(i))).ok());
  }
  ASSERT_TRUE(WaitFor([&] {
    const PeerStatus p = StatusOf(*net[1].net, "node0");
    return p.received + p.over_budget == 20;
  }));
  const PeerStatus flooder = StatusOf(*net[1].net, "node0");
  EXPECT_EQ(flooder.received, 5u);
  EXPECT_EQ(flooder.over_budget, 15u);
  EXPECT_FALSE(flooder.backed_off);
  EXPECT_EQ(net[1].net->Stats().over_budget_dropped, 15u);
  EXPECT_EQ(net[1].inbox.CountFrom("node0"), 5u);
  // Another peer has its own budget.
  ASSERT_TRUE(net[2].net->Send("node1", kTypeVote, AsBytes("mine")).ok());
  EXPECT_TRUE(WaitFor([&] { return net[1].inbox.Has("node2", "mine"); }));
  EXPECT_EQ(StatusOf(*net[1].net, "node2").over_budget, 0u);
}

TEST(PeerNetBudget, BytesAreBudgetedToo) {
  Network net(2);
  net[1].configure = [](PeerNetOptions& o) {
    o.budget.messages = 0;  // no message limit
    o.budget.bytes = 1000;
    o.budget.interval = kOneInterval;
    o.budget.abusive_intervals = 0;
  };
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 1; }));
  const std::string big(400, 'x');
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(net[0].net->Send("node1", kTypeGossip, AsBytes(big)).ok());
  }
  ASSERT_TRUE(WaitFor([&] {
    const PeerStatus p = StatusOf(*net[1].net, "node0");
    return p.received + p.over_budget == 3;
  }));
  // Two payloads and their envelopes fit in 1000 bytes, a third does not.
  EXPECT_EQ(StatusOf(*net[1].net, "node0").received, 2u);
  EXPECT_EQ(StatusOf(*net[1].net, "node0").over_budget, 1u);
}

// PeerNetMetrics that records per-peer drops and back-offs. Thread-safe.
class BudgetMetrics : public PeerNetMetrics {
 public:
  void PeerDropped(PeerDrop why, const std::string& peer) override {
    absl::MutexLock l(&mu_);
    ++drops_[{why, peer}];
  }
  void PeerBackedOff(const std::string& peer) override {
    absl::MutexLock l(&mu_);
    backed_off_.push_back(peer);
  }
  int Drops(PeerDrop why, const std::string& peer) {
    absl::MutexLock l(&mu_);
    return drops_[{why, peer}];
  }
  std::vector<std::string> BackedOff() {
    absl::MutexLock l(&mu_);
    return backed_off_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<PeerDrop, std::string>, int> drops_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> backed_off_ ABSL_GUARDED_BY(mu_);
};

TEST(PeerNetBudget, SustainedAbuseBacksThePeerOff) {
  BudgetMetrics metrics;  // outlives the nodes that call it
  Network net(3);
  net[1].configure = [&](PeerNetOptions& o) {
    o.budget.messages = 3;
    o.budget.interval = kOneInterval;
    o.budget.abusive_intervals = 1;  // the first interval over budget
    o.budget.back_off = kOneInterval;
    o.metrics = &metrics;
  };
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 2; }));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        net[0].net->Send("node1", kTypeVote, AsBytes(absl::StrCat(i))).ok());
  }
  ASSERT_TRUE(WaitFor([&] {
    const PeerStatus p = StatusOf(*net[1].net, "node0");
    return p.received + p.backed_off_dropped == 10;
  }));
  const PeerStatus p = StatusOf(*net[1].net, "node0");
  EXPECT_EQ(p.received, 3u);
  EXPECT_EQ(p.backed_off_dropped, 7u);
  EXPECT_TRUE(p.backed_off);
  EXPECT_EQ(net[1].net->Stats().back_offs, 1u);
  EXPECT_EQ(metrics.BackedOff(), std::vector<std::string>{"node0"});
  EXPECT_EQ(metrics.Drops(PeerDrop::kBackedOff, "node0"), 7);
  // Others are still heard.
  ASSERT_TRUE(net[2].net->Send("node1", kTypeVote, AsBytes("fine")).ok());
  EXPECT_TRUE(WaitFor([&] { return net[1].inbox.Has("node2", "fine"); }));
  // A new connection from the backed-off peer is refused by the ZAP handler.
  const uint64_t refused = net[1].zap->refused();
  ASSERT_TRUE(net[0].StartNet(net.Peers()).ok());
  EXPECT_TRUE(WaitFor([&] { return net[1].zap->refused() > refused; }));
}

TEST(PeerNetBudget, OversizedMessagesOfATypeAreDroppedBeforeTheHandler) {
  BudgetMetrics metrics;  // outlives the nodes that call it
  Network net(2);
  net[1].configure = [&](PeerNetOptions& o) {
    o.max_message_bytes_by_type[kTypeVote] = 100;
    o.metrics = &metrics;
  };
  ASSERT_TRUE(net.StartAll().ok());
  ASSERT_TRUE(WaitFor([&] { return net[0].net->PeersConnected() == 1; }));
  ASSERT_TRUE(net[0]
                  .net->Send("node1", kTypeVote, AsBytes(std::string(101, 'v')))
                  .ok());
  ASSERT_TRUE(net[0]
                  .net->Send("node1", kTypeVote, AsBytes(std::string(100, 'v')))
                  .ok());
  // Other types keep the transport's limit.
  ASSERT_TRUE(
      net[0]
          .net->Send("node1", kTypeGossip, AsBytes(std::string(1000, 'g')))
          .ok());
  ASSERT_TRUE(WaitFor([&] { return net[1].inbox.CountFrom("node0") == 2; }));
  EXPECT_EQ(net[1].net->Stats().oversized_dropped, 1u);
  EXPECT_EQ(StatusOf(*net[1].net, "node0").oversized, 1u);
  EXPECT_EQ(metrics.Drops(PeerDrop::kOversized, "node0"), 1);
  for (const Received& r : net[1].inbox.All()) {
    EXPECT_LE(r.payload.size(), r.type == kTypeVote ? 100u : 1000u);
  }
}

TEST(PeerNetBudget, RefusesBadLimits) {
  zmq::context_t ctx;
  absl::StatusOr<std::shared_ptr<ZapAuthenticator>> zap =
      StartZapAuthenticator(ctx, {});
  ASSERT_TRUE(zap.ok());
  auto options = [&] {
    PeerNetOptions o;
    o.node_id = "node0";
    o.bind_endpoint = Endpoint(FreePort());
    o.key_pair = NewKeys();
    o.authenticator = *zap;
    return o;
  };
  PeerNetOptions o = options();
  o.max_message_bytes_by_type[kTypeVote] = o.max_message_bytes + 1;
  EXPECT_EQ(StartPeerNet(ctx, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = options();
  o.max_message_bytes_by_type[kTypeVote] = 0;
  EXPECT_EQ(StartPeerNet(ctx, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = options();
  o.budget.interval = absl::ZeroDuration();
  EXPECT_EQ(StartPeerNet(ctx, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace consortia
