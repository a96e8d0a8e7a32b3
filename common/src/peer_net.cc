#include "consortia/peer_net.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bus_internal.h"
#include "consortia/config.h"
#include "json_strict.h"
#include "spdlog/spdlog.h"
#include "zmq.hpp"

namespace consortia {
namespace {

using bus_internal::Waker;

// The Z85 alphabet (ZeroMQ RFC 32), in digit order.
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr char kKeyType[] = "curvezmq";

// ZMQ_ZAP_ENFORCE_DOMAIN: a draft option of libzmq 4.3 (Debian's build
// accepts it). With it, a CURVE server whose context has no ZAP handler
// refuses every client instead of admitting all of them. Set when available,
// as a second line of defence behind the required ZapAuthenticator.
constexpr int kZmqZapEnforceDomain = 93;

// Envelope sender limit of the bus (bus.cc).
constexpr size_t kMaxNodeIdBytes = 256;
// Frames kept of one incoming message; a valid one has 3 on a ROUTER.
constexpr size_t kMaxFrames = 4;
// ZAP requests carry 7 frames for CURVE.
constexpr size_t kMaxZapFrames = 16;
// Messages handled per wake-up before the loop looks at its other sockets.
constexpr int kMaxBatchPerWake = 1024;
// A repeated warning (refused key, full queue) is logged at most this often.
constexpr absl::Duration kLogEvery = absl::Seconds(10);

// Monitor events of the outgoing (DEALER) sockets and the ROUTER.
constexpr int kHandshakeFailedEvents = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr int kDealerEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                              ZMQ_EVENT_DISCONNECTED | kHandshakeFailedEvents;
constexpr int kRouterEvents = kHandshakeFailedEvents;

ByteView ViewOf(const zmq::message_t& m) {
  return ByteView(static_cast<const uint8_t*>(m.data()), m.size());
}

Bytes FromMessage(const zmq::message_t& m) {
  const auto* p = static_cast<const uint8_t*>(m.data());
  return Bytes(p, p + m.size());
}

int ClampMs(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

// Reads one whole multipart message without blocking; false when nothing is
// waiting. Frames past max_frames are consumed and dropped (*too_many).
bool RecvMultipart(zmq::socket_t& sock, std::vector<zmq::message_t>* parts,
                   size_t max_frames, bool* too_many) {
  parts->clear();
  *too_many = false;
  while (true) {
    zmq::message_t m;
    auto r = sock.recv(m, zmq::recv_flags::dontwait);
    if (!r) return !parts->empty();
    bool more = m.more();
    if (parts->size() < max_frames) {
      parts->push_back(std::move(m));
    } else {
      *too_many = true;
    }
    if (!more) return true;
  }
}

absl::Status SocketError(const zmq::error_t& e, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("p2p: ", what, ": ", e.what()));
}

absl::Status EndpointError(const zmq::error_t& e, absl::string_view verb,
                           absl::string_view endpoint) {
  std::string msg =
      absl::StrCat("p2p: cannot ", verb, " ", endpoint, ": ", e.what());
  switch (e.num()) {
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case ENODEV:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

// Starts a monitor on `sock` for `events` and returns the PAIR socket that
// receives them. Each monitor needs its own inproc endpoint in the context.
zmq::socket_t StartMonitor(zmq::context_t& ctx, zmq::socket_t& sock,
                           int events) {
  static std::atomic<uint64_t> next_monitor{1};
  std::string endpoint = absl::StrCat("inproc://consortia.p2p.monitor.",
                                      next_monitor.fetch_add(1));
  if (zmq_socket_monitor(sock.handle(), endpoint.c_str(), events) != 0) {
    throw zmq::error_t();
  }
  zmq::socket_t pair(ctx, zmq::socket_type::pair);
  pair.set(zmq::sockopt::linger, 0);
  pair.connect(endpoint);
  return pair;
}

// Stops a monitor before its PAIR socket is closed: libzmq sends monitor
// events with a blocking send, so a monitor left without its reader could
// stall the context's I/O thread.
void StopMonitor(zmq::socket_t& sock) {
  if (sock.handle() != nullptr) zmq_socket_monitor(sock.handle(), nullptr, 0);
}

// ------------------------------------------------------------------- ZAP

using AllowMap = std::map<CurveKey, std::string>;

absl::StatusOr<AllowMap> BuildAllowMap(std::vector<AllowedKey> allowed) {
  AllowMap map;
  for (AllowedKey& a : allowed) {
    if (a.node_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("zap: the allow-list entry for key ",
                       CurveKeyToZ85(a.public_key), " has no node id"));
    }
    auto [it, inserted] = map.emplace(a.public_key, a.node_id);
    if (!inserted && it->second != a.node_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "zap: key ", CurveKeyToZ85(a.public_key), " is listed for both \"",
          it->second, "\" and \"", a.node_id, "\""));
    }
  }
  return map;
}

class ZapAuthenticatorImpl final : public ZapAuthenticator {
 public:
  ZapAuthenticatorImpl(zmq::context_t& ctx, zmq::socket_t rep,
                       std::string domain, ZapMetrics* metrics, AllowMap map)
      : ctx_(&ctx),
        rep_(std::move(rep)),
        domain_(std::move(domain)),
        metrics_(metrics),
        allowed_(std::move(map)) {}

  ~ZapAuthenticatorImpl() override {
    stopping_.store(true);
    waker_.Signal();
    if (thread_.joinable()) thread_.join();
    rep_.close();  // when the loop never ran; otherwise already closed
  }

  bool ok() const { return waker_.ok(); }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }

  absl::Status SetAllowList(std::vector<AllowedKey> allowed) override {
    absl::StatusOr<AllowMap> map = BuildAllowMap(std::move(allowed));
    if (!map.ok()) return map.status();
    absl::MutexLock l(&mu_);
    allowed_ = *std::move(map);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> NodeIdOf(const CurveKey& key) const override {
    absl::MutexLock l(&mu_);
    auto it = allowed_.find(key);
    if (it == allowed_.end()) {
      return absl::NotFoundError(
          absl::StrCat("zap: key ", CurveKeyToZ85(key), " is not allowed"));
    }
    return it->second;
  }

  void RefuseUntil(const CurveKey& key, absl::Time until) override {
    absl::MutexLock l(&mu_);
    refused_until_[key] = until;
  }

  const std::string& domain() const override { return domain_; }
  const zmq::context_t* context() const override { return ctx_; }
  uint64_t accepted() const override { return accepted_.load(); }
  uint64_t refused() const override { return refused_.load(); }

 private:
  struct Answer {
    std::string code;
    std::string text;
    std::string user_id;
  };

  void Loop() {
    while (!stopping_.load()) {
      try {
        zmq_pollitem_t items[2] = {};
        items[0].socket = rep_.handle();
        items[0].events = ZMQ_POLLIN;
        items[1].fd = waker_.fd();
        items[1].events = ZMQ_POLLIN;
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
        if (items[1].revents & ZMQ_POLLIN) waker_.Drain();
        if (items[0].revents & ZMQ_POLLIN) ServeRequests();
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;
        // EINTR, or unexpected for a REP socket: keep serving.
      }
    }
    // Closed here so that a terminated context can finish even while this
    // object is still referenced.
    rep_.close();
  }

  void ServeRequests() {
    std::vector<zmq::message_t> frames;
    bool too_many;
    for (int i = 0; i < kMaxBatchPerWake && !stopping_.load(); ++i) {
      if (!RecvMultipart(rep_, &frames, kMaxZapFrames, &too_many)) return;
      std::string request_id =
          frames.size() >= 2 ? frames[1].to_string() : std::string();
      Answer answer = Decide(frames, too_many);
      if (answer.code == "200") {
        accepted_.fetch_add(1);
        if (metrics_ != nullptr) metrics_->Accepted();
      } else {
        refused_.fetch_add(1);
        if (metrics_ != nullptr) metrics_->Refused();
      }
      // A REP socket must answer before it can read the next request.
      std::array<std::string, 6> reply = {
          "1.0", request_id, answer.code, answer.text, answer.user_id, ""};
      for (size_t f = 0; f < reply.size(); ++f) {
        rep_.send(zmq::buffer(reply[f]), f + 1 < reply.size()
                                             ? zmq::send_flags::sndmore
                                             : zmq::send_flags::none);
      }
    }
  }

  // Frames (RFC 27): version, request id, domain, address, routing id,
  // mechanism, credentials...
  Answer Decide(const std::vector<zmq::message_t>& frames, bool too_many) {
    if (too_many || frames.size() < 6 || frames[0].to_string_view() != "1.0") {
      LogRefusal("a malformed ZAP request", "");
      return {"500", "malformed ZAP request", ""};
    }
    std::string_view domain = frames[2].to_string_view();
    std::string_view address = frames[3].to_string_view();
    std::string_view mechanism = frames[5].to_string_view();
    if (mechanism != "CURVE" || frames.size() != 7 ||
        frames[6].size() != CurveKey().size()) {
      LogRefusal(absl::StrCat("mechanism ", std::string(mechanism)), address);
      return {"400", "only CURVE is accepted", ""};
    }
    if (domain != domain_) {
      LogRefusal(absl::StrCat("ZAP domain \"", std::string(domain), "\""),
                 address);
      return {"400", "unknown ZAP domain", ""};
    }
    CurveKey key;
    std::memcpy(key.data(), frames[6].data(), key.size());
    {
      absl::MutexLock l(&mu_);
      if (auto r = refused_until_.find(key); r != refused_until_.end()) {
        if (absl::Now() < r->second) {
          LogRefusal(
              absl::StrCat("backed-off key ", CurveKeyToZ85(key), " (abuse)"),
              address);
          return {"400", "backed off", ""};
        }
        refused_until_.erase(r);
      }
      auto it = allowed_.find(key);
      if (it != allowed_.end()) return {"200", "OK", it->second};
    }
    LogRefusal(absl::StrCat("key ", CurveKeyToZ85(key)), address);
    return {"400", "key not allowed", ""};
  }

  // Thread of the loop only. A peer that keeps retrying is refused at every
  // reconnect, so the log says so at most once per kLogEvery.
  void LogRefusal(const std::string& what, std::string_view address) {
    absl::Time now = absl::Now();
    ++suppressed_;
    if (now - last_log_ < kLogEvery) return;
    spdlog::warn("p2p: refused {} from {} ({} refusal(s) since last report)",
                 what, address.empty() ? "?" : std::string(address),
                 suppressed_);
    last_log_ = now;
    suppressed_ = 0;
  }

  const zmq::context_t* const ctx_;
  zmq::socket_t rep_;  // the loop's once started
  const std::string domain_;
  ZapMetrics* const metrics_;
  Waker waker_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};

  mutable absl::Mutex mu_;
  AllowMap allowed_ ABSL_GUARDED_BY(mu_);
  // Keys refused for a while (RefuseUntil); at most one per allowed key.
  std::map<CurveKey, absl::Time> refused_until_ ABSL_GUARDED_BY(mu_);

  // Loop thread only.
  absl::Time last_log_ = absl::InfinitePast();
  uint64_t suppressed_ = 0;

  std::thread thread_;
};

// --------------------------------------------------------------- PeerNet

class PeerNetImpl final : public PeerNet {
 public:
  PeerNetImpl(zmq::context_t& ctx, PeerNetOptions options,
              std::vector<PeerInfo> peers)
      : ctx_(ctx), options_(std::move(options)), metrics_(options_.metrics) {
    for (size_t i = 0; i < peers.size(); ++i) {
      index_.emplace(peers[i].id, i);
      auto p = std::make_unique<Peer>();
      p->info = std::move(peers[i]);
      peers_.push_back(std::move(p));
    }
  }

  ~PeerNetImpl() override {
    if (thread_.joinable()) {
      stopping_.store(true);
      waker_.Signal();
      thread_.join();  // the loop tears the sockets down as it ends
    } else {
      Teardown();
    }
  }

  // Creates, binds and connects every socket. Throws zmq::error_t from
  // socket creation; returns the endpoint errors.
  absl::Status Init() {
    if (!waker_.ok()) {
      return absl::ResourceExhaustedError("p2p: cannot create an eventfd");
    }
    router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
    ConfigureCommon(router_);
    router_.set(zmq::sockopt::curve_server, true);
    router_.set(zmq::sockopt::curve_secretkey,
                zmq::const_buffer(options_.key_pair.secret_key.data(), 32));
    router_.set(zmq::sockopt::curve_publickey,
                zmq::const_buffer(options_.key_pair.public_key.data(), 32));
    router_.set(zmq::sockopt::zap_domain, options_.authenticator->domain());
    int one = 1;
    if (zmq_setsockopt(router_.handle(), kZmqZapEnforceDomain, &one,
                       sizeof(one)) != 0) {
      spdlog::debug("p2p: this libzmq has no ZMQ_ZAP_ENFORCE_DOMAIN");
    }
    router_.set(zmq::sockopt::rcvhwm, options_.recv_hwm);
    router_.set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
    router_monitor_ = StartMonitor(ctx_, router_, kRouterEvents);
    try {
      router_.bind(options_.bind_endpoint);
    } catch (const zmq::error_t& e) {
      return EndpointError(e, "bind", options_.bind_endpoint);
    }

    absl::MutexLock l(&send_mu_);
    for (auto& p : peers_) {
      zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
      ConfigureCommon(dealer);
      dealer.set(zmq::sockopt::curve_serverkey,
                 zmq::const_buffer(p->info.public_key.data(), 32));
      dealer.set(zmq::sockopt::curve_publickey,
                 zmq::const_buffer(options_.key_pair.public_key.data(), 32));
      dealer.set(zmq::sockopt::curve_secretkey,
                 zmq::const_buffer(options_.key_pair.secret_key.data(), 32));
      dealer.set(zmq::sockopt::sndhwm, options_.send_hwm);
      // Nothing is ever sent back on this connection.
      dealer.set(zmq::sockopt::rcvhwm, 16);
      dealer.set(zmq::sockopt::maxmsgsize, int64_t{4096});
      // Queue for a peer that is not connected yet (up to send_hwm), so
      // messages sent while it restarts reach it when it is back.
      dealer.set(zmq::sockopt::immediate, false);
      p->monitor = StartMonitor(ctx_, dealer, kDealerEvents);
      dealers_.push_back(std::move(dealer));
      try {
        dealers_.back().connect(p->info.endpoint);
      } catch (const zmq::error_t& e) {
        return EndpointError(e, "connect to", p->info.endpoint);
      }
    }
    return absl::OkStatus();
  }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }

  absl::Status Send(std::string_view peer_id, uint16_t type, ByteView payload,
                    uint64_t trace_id) override {
    auto it = index_.find(peer_id);
    if (it == index_.end()) {
      return absl::NotFoundError(
          absl::StrCat("p2p: unknown peer \"", std::string(peer_id), "\""));
    }
    zmq::message_t env = MakeEnvelope(type, trace_id);
    zmq::message_t body(payload.data(), payload.size());
    absl::MutexLock l(&send_mu_);
    return SendLocked(it->second, env, body);
  }

  size_t Broadcast(uint16_t type, ByteView payload,
                   uint64_t trace_id) override {
    zmq::message_t env = MakeEnvelope(type, trace_id);
    zmq::message_t body(payload.data(), payload.size());
    size_t queued = 0;
    absl::MutexLock l(&send_mu_);
    for (size_t i = 0; i < peers_.size(); ++i) {
      // zmq_msg_copy shares the buffer of a large message.
      zmq::message_t e;
      zmq::message_t b;
      e.copy(env);
      b.copy(body);
      if (SendLocked(i, e, b).ok()) ++queued;
    }
    return queued;
  }

  size_t PeersConnected() const override { return connected_.load(); }

  std::vector<PeerStatus> Peers() const override {
    std::vector<PeerStatus> out;
    out.reserve(peers_.size());
    for (const auto& p : peers_) {
      PeerStatus st;
      st.id = p->info.id;
      st.endpoint = p->info.endpoint;
      st.connected = p->connected.load();
      st.sent = p->sent.load();
      st.dropped = p->dropped.load();
      st.received = p->received.load();
      st.over_budget = p->over_budget.load();
      st.oversized = p->oversized.load();
      st.backed_off_dropped = p->backed_off_dropped.load();
      st.backed_off = p->backed_off.load();
      out.push_back(std::move(st));
    }
    return out;
  }

  PeerNetStats Stats() const override {
    PeerNetStats s;
    s.sent = sent_.load();
    s.received = received_.load();
    s.send_dropped = send_dropped_.load();
    s.malformed_dropped = malformed_.load();
    s.unknown_type_dropped = unknown_type_.load();
    s.unknown_sender_dropped = unknown_sender_.load();
    s.oversized_dropped = oversized_.load();
    s.over_budget_dropped = over_budget_.load();
    s.backed_off_dropped = backed_off_.load();
    s.back_offs = back_offs_.load();
    s.refused_by_peer = refused_by_peer_.load();
    s.handshake_failed = handshake_failed_.load();
    s.inbound_handshake_failed = inbound_handshake_failed_.load();
    return s;
  }

  const std::string& node_id() const override { return options_.node_id; }

 private:
  struct Peer {
    PeerInfo info;
    zmq::socket_t monitor;  // the I/O thread's once started
    std::atomic<bool> connected{false};
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> dropped{0};
    std::atomic<uint64_t> received{0};
    std::atomic<uint64_t> over_budget{0};
    std::atomic<uint64_t> oversized{0};
    std::atomic<uint64_t> backed_off_dropped{0};
    std::atomic<bool> backed_off{false};
    // I/O thread only.
    absl::Time last_failure_log = absl::InfinitePast();
    absl::Time retry_at = absl::InfiniteFuture();  // see RetryRefused
    // The budget (see Admit).
    absl::Time window_start = absl::InfinitePast();
    uint64_t window_messages = 0;
    uint64_t window_bytes = 0;
    bool window_over = false;
    int abusive_streak = 0;  // intervals over budget in a row, before this
    absl::Time backed_off_until = absl::InfinitePast();
    absl::Time last_budget_log = absl::InfinitePast();
  };

  void ConfigureCommon(zmq::socket_t& sock) {
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::reconnect_ivl, ClampMs(options_.reconnect_interval));
    sock.set(zmq::sockopt::reconnect_ivl_max,
             ClampMs(options_.reconnect_interval_max));
    sock.set(zmq::sockopt::heartbeat_ivl, ClampMs(options_.heartbeat_interval));
    sock.set(zmq::sockopt::heartbeat_timeout,
             ClampMs(options_.heartbeat_timeout));
  }

  zmq::message_t MakeEnvelope(uint16_t type, uint64_t trace_id) {
    Envelope env;
    env.kind = EnvelopeKind::kEvent;
    env.type = type;
    env.sender = options_.node_id;
    env.trace_id = trace_id;
    env.id = next_seq_.fetch_add(1);
    Bytes b = EncodeEnvelope(env);
    return zmq::message_t(b.data(), b.size());
  }

  absl::Status SendLocked(size_t i, zmq::message_t& env, zmq::message_t& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_) {
    if (closed_) {
      return absl::FailedPreconditionError("p2p: stopped");
    }
    Peer& p = *peers_[i];
    try {
      auto r = dealers_[i].send(
          env, zmq::send_flags::dontwait | zmq::send_flags::sndmore);
      if (!r) {
        p.dropped.fetch_add(1);
        Dropped(PeerDrop::kSendQueueFull);
        absl::Time now = absl::Now();
        if (now - last_drop_log_[i] >= kLogEvery) {
          last_drop_log_[i] = now;
          spdlog::warn(
              "p2p: queue to peer {} is full; dropping ({} dropped so far)",
              p.info.id, p.dropped.load());
        }
        return absl::ResourceExhaustedError(absl::StrCat(
            "p2p: queue to peer \"", p.info.id, "\" is full; dropped"));
      }
      // Once the first frame is queued, the rest of the message is too.
      dealers_[i].send(body, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      return SocketError(e, absl::StrCat("cannot send to ", p.info.id));
    }
    p.sent.fetch_add(1);
    sent_.fetch_add(1);
    return absl::OkStatus();
  }

  void Dropped(PeerDrop why) {
    switch (why) {
      case PeerDrop::kSendQueueFull:
        send_dropped_.fetch_add(1);
        break;
      case PeerDrop::kMalformed:
        malformed_.fetch_add(1);
        break;
      case PeerDrop::kUnknownType:
        unknown_type_.fetch_add(1);
        break;
      case PeerDrop::kUnknownSender:
        unknown_sender_.fetch_add(1);
        break;
      case PeerDrop::kOversized:
        oversized_.fetch_add(1);
        break;
      case PeerDrop::kOverBudget:
        over_budget_.fetch_add(1);
        break;
      case PeerDrop::kBackedOff:
        backed_off_.fetch_add(1);
        break;
    }
    if (metrics_ != nullptr) metrics_->Dropped(why);
  }

  // A drop charged to a known peer. I/O thread only.
  void PeerDropped(Peer& p, PeerDrop why) {
    Dropped(why);
    switch (why) {
      case PeerDrop::kOversized:
        p.oversized.fetch_add(1);
        break;
      case PeerDrop::kOverBudget:
        p.over_budget.fetch_add(1);
        break;
      case PeerDrop::kBackedOff:
        p.backed_off_dropped.fetch_add(1);
        break;
      default:
        break;
    }
    if (metrics_ != nullptr) metrics_->PeerDropped(why, p.info.id);
  }

  // Charges one message of `bytes` to its sender's budget. OK to handle it;
  // otherwise the reason to drop it (kOverBudget, kBackedOff). After
  // abusive_intervals intervals in a row over budget, the peer is refused
  // for back_off (here and by the ZAP handler). I/O thread only.
  std::optional<PeerDrop> Admit(Peer& p, size_t bytes, absl::Time now) {
    const PeerBudget& b = options_.budget;
    if (now < p.backed_off_until) return PeerDrop::kBackedOff;
    if (p.backed_off.exchange(false)) {
      spdlog::info("p2p: peer {} is heard again after its back-off", p.info.id);
    }
    if (b.messages == 0 && b.bytes == 0) return std::nullopt;
    if (now >= p.window_start + b.interval) {
      // A new interval: the last one counts toward the streak only if it
      // was over budget and directly precedes this one.
      const bool adjacent = now < p.window_start + 2 * b.interval;
      p.abusive_streak = p.window_over && adjacent ? p.abusive_streak + 1 : 0;
      p.window_start = now;
      p.window_messages = 0;
      p.window_bytes = 0;
      p.window_over = false;
    }
    ++p.window_messages;
    p.window_bytes += bytes;
    if ((b.messages == 0 || p.window_messages <= b.messages) &&
        (b.bytes == 0 || p.window_bytes <= b.bytes)) {
      return std::nullopt;
    }
    if (!p.window_over) {
      p.window_over = true;
      if (b.abusive_intervals > 0 &&
          p.abusive_streak + 1 >= b.abusive_intervals) {
        BackOff(p, now);
        return PeerDrop::kBackedOff;
      }
      if (now - p.last_budget_log >= kLogEvery) {
        p.last_budget_log = now;
        spdlog::warn(
            "p2p: peer {} is over its budget ({} messages, {} bytes per {}); "
            "dropping its messages ({} so far)",
            p.info.id, b.messages, b.bytes, absl::FormatDuration(b.interval),
            p.over_budget.load() + 1);
      }
    }
    return PeerDrop::kOverBudget;
  }

  void BackOff(Peer& p, absl::Time now) {
    const PeerBudget& b = options_.budget;
    p.backed_off_until = now + b.back_off;
    p.backed_off.store(true);
    p.abusive_streak = 0;
    p.window_start = absl::InfinitePast();
    back_offs_.fetch_add(1);
    options_.authenticator->RefuseUntil(p.info.public_key, p.backed_off_until);
    if (metrics_ != nullptr) metrics_->PeerBackedOff(p.info.id);
    spdlog::warn(
        "p2p: peer {} stayed over its budget for {} interval(s) of {}: "
        "refusing it for {}",
        p.info.id, b.abusive_intervals, absl::FormatDuration(b.interval),
        absl::FormatDuration(b.back_off));
  }

  void Loop() {
    // [router, waker, router monitor, peer monitors...]
    std::vector<zmq_pollitem_t> items(3 + peers_.size());
    items[0].socket = router_.handle();
    items[1].fd = waker_.fd();
    items[2].socket = router_monitor_.handle();
    for (size_t i = 0; i < peers_.size(); ++i) {
      items[3 + i].socket = peers_[i]->monitor.handle();
    }
    for (zmq_pollitem_t& item : items) item.events = ZMQ_POLLIN;
    while (!stopping_.load()) {
      try {
        for (zmq_pollitem_t& item : items) item.revents = 0;
        zmq::poll(items, PollTimeout());
        if (items[1].revents & ZMQ_POLLIN) waker_.Drain();
        if (stopping_.load()) break;
        if (items[0].revents & ZMQ_POLLIN) ReceiveMessages();
        if (items[2].revents & ZMQ_POLLIN) ReadMonitor(router_monitor_, -1);
        for (size_t i = 0; i < peers_.size(); ++i) {
          if (items[3 + i].revents & ZMQ_POLLIN) {
            ReadMonitor(peers_[i]->monitor, static_cast<int>(i));
          }
        }
        RetryRefused();
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;
        // EINTR, or unexpected: keep serving.
      }
    }
    Teardown();
  }

  // Until the next refused peer is due for a retry; -1 (forever) if none.
  std::chrono::milliseconds PollTimeout() const {
    absl::Time next = absl::InfiniteFuture();
    for (const auto& p : peers_) next = std::min(next, p->retry_at);
    if (next == absl::InfiniteFuture()) return std::chrono::milliseconds(-1);
    absl::Duration left = next - absl::Now();
    if (left <= absl::ZeroDuration()) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(
        absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
  }

  // libzmq treats a refused handshake (ZAP error, protocol error) as final
  // and stops reconnecting that endpoint. A peer may refuse only for a while
  // (its allow-list is being updated, or it restarted with new settings), so
  // the connection is re-made here after reconnect_interval_max.
  void RetryRefused() {
    absl::Time now = absl::Now();
    for (size_t i = 0; i < peers_.size(); ++i) {
      Peer& p = *peers_[i];
      if (p.retry_at > now) continue;
      p.retry_at = absl::InfiniteFuture();
      absl::MutexLock l(&send_mu_);
      if (closed_) return;
      try {
        dealers_[i].disconnect(p.info.endpoint);
      } catch (const zmq::error_t&) {
        // ENOENT: libzmq already dropped the endpoint.
      }
      try {
        dealers_[i].connect(p.info.endpoint);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) throw;
        p.retry_at = now + options_.reconnect_interval_max;
      }
    }
  }

  void ReceiveMessages() {
    std::vector<zmq::message_t> parts;
    bool too_many;
    for (int n = 0; n < kMaxBatchPerWake && !stopping_.load(); ++n) {
      if (!RecvMultipart(router_, &parts, kMaxFrames, &too_many)) return;
      // [routing id (added by the ROUTER), envelope, payload]
      if (too_many || parts.size() != 3) {
        Dropped(PeerDrop::kMalformed);
        continue;
      }
      // The node id the ZAP handler gave this connection.
      const char* user_id = zmq_msg_gets(parts[1].handle(), "User-Id");
      auto it = user_id == nullptr ? index_.end() : index_.find(user_id);
      if (it == index_.end()) {
        Dropped(PeerDrop::kUnknownSender);
        continue;
      }
      Peer& peer = *peers_[it->second];
      const std::string& peer_id = peer.info.id;
      // Charged before anything is decoded: a peer over its budget costs
      // this node a counter, not a decode.
      if (std::optional<PeerDrop> why =
              Admit(peer, parts[1].size() + parts[2].size(), absl::Now())) {
        PeerDropped(peer, *why);
        continue;
      }
      absl::StatusOr<Envelope> env = DecodeEnvelope(ViewOf(parts[1]));
      if (!env.ok() || env->kind != EnvelopeKind::kEvent) {
        Dropped(PeerDrop::kMalformed);
        continue;
      }
      if (env->sender != peer_id) {
        Dropped(PeerDrop::kUnknownSender);
        continue;
      }
      auto h = options_.handlers.find(env->type);
      if (h == options_.handlers.end()) {
        PeerDropped(peer, PeerDrop::kUnknownType);
        continue;
      }
      if (auto lim = options_.max_message_bytes_by_type.find(env->type);
          lim != options_.max_message_bytes_by_type.end() &&
          static_cast<int64_t>(parts[2].size()) > lim->second) {
        PeerDropped(peer, PeerDrop::kOversized);
        continue;
      }
      received_.fetch_add(1);
      peer.received.fetch_add(1);
      try {
        h->second(peer_id, *env, FromMessage(parts[2]));
      } catch (...) {
        // A handler must not throw; the PeerNet keeps running.
      }
    }
  }

  // peer < 0: the ROUTER's monitor.
  void ReadMonitor(zmq::socket_t& monitor, int peer) {
    std::vector<zmq::message_t> parts;
    bool too_many;
    for (int n = 0; n < kMaxBatchPerWake; ++n) {
      if (!RecvMultipart(monitor, &parts, 2, &too_many)) return;
      // Frame 1: u16 event, u32 value (host order); frame 2: the endpoint.
      if (parts.empty() || parts[0].size() < 6) continue;
      uint16_t event;
      uint32_t value;
      std::memcpy(&event, parts[0].data(), sizeof(event));
      std::memcpy(&value, static_cast<const uint8_t*>(parts[0].data()) + 2,
                  sizeof(value));
      if (peer < 0) {
        if (event & kHandshakeFailedEvents) {
          inbound_handshake_failed_.fetch_add(1);
        }
      } else {
        OnPeerEvent(*peers_[peer], event, value);
      }
    }
  }

  void OnPeerEvent(Peer& p, uint16_t event, uint32_t value) {
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      SetConnected(p, true);
      return;
    }
    SetConnected(p, false);
    if ((event & kHandshakeFailedEvents) == 0) return;
    bool refused = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      // Final for libzmq: retry ourselves (see RetryRefused).
      p.retry_at = absl::Now() + options_.reconnect_interval_max;
    }
    if (refused) {
      refused_by_peer_.fetch_add(1);
    } else {
      handshake_failed_.fetch_add(1);
    }
    if (metrics_ != nullptr) metrics_->HandshakeFailed(refused);
    absl::Time now = absl::Now();
    if (now - p.last_failure_log < kLogEvery) return;
    p.last_failure_log = now;
    if (refused) {
      spdlog::warn(
          "p2p: peer {} ({}) refused this node's key (ZAP status {}): is "
          "this node in its allow-list?",
          p.info.id, p.info.endpoint, value);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      spdlog::warn(
          "p2p: handshake with peer {} ({}) failed: protocol error {:#x}",
          p.info.id, p.info.endpoint, value);
    } else {
      spdlog::warn(
          "p2p: handshake with peer {} ({}) did not complete ({}): the peer "
          "went away, or its public key in this node's peer list is wrong",
          p.info.id, p.info.endpoint, zmq_strerror(static_cast<int>(value)));
    }
  }

  void SetConnected(Peer& p, bool connected) {
    if (p.connected.exchange(connected) == connected) return;
    size_t now =
        connected ? connected_.fetch_add(1) + 1 : connected_.fetch_sub(1) - 1;
    if (connected) {
      spdlog::info("p2p: {} connected to peer {} ({}); {} peer(s) connected",
                   options_.node_id, p.info.id, p.info.endpoint, now);
    } else {
      spdlog::info(
          "p2p: {} lost peer {} ({}); {} peer(s) connected; reconnecting",
          options_.node_id, p.info.id, p.info.endpoint, now);
    }
    if (metrics_ != nullptr) metrics_->PeersConnected(now);
  }

  // Closes every socket, monitors first. Runs once: at the end of the loop,
  // or from the destructor when the loop never started.
  void Teardown() {
    if (torn_down_) return;
    torn_down_ = true;
    {
      absl::MutexLock l(&send_mu_);
      closed_ = true;
      for (zmq::socket_t& d : dealers_) {
        StopMonitor(d);
        d.close();
      }
    }
    StopMonitor(router_);
    router_.close();
    router_monitor_.close();
    for (auto& p : peers_) p->monitor.close();
  }

  zmq::context_t& ctx_;
  // Holds the authenticator, so the context's ZAP handler outlives this
  // server, and the handlers.
  const PeerNetOptions options_;
  PeerNetMetrics* const metrics_;

  // Fixed after construction.
  std::vector<std::unique_ptr<Peer>> peers_;
  std::map<std::string, size_t, std::less<>> index_;

  // The I/O thread's once started (and the destructor's after it ends).
  zmq::socket_t router_;
  zmq::socket_t router_monitor_;
  bool torn_down_ = false;

  absl::Mutex send_mu_;
  std::vector<zmq::socket_t> dealers_ ABSL_GUARDED_BY(send_mu_);
  std::map<size_t, absl::Time> last_drop_log_ ABSL_GUARDED_BY(send_mu_);
  bool closed_ ABSL_GUARDED_BY(send_mu_) = false;

  Waker waker_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<size_t> connected_{0};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> send_dropped_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> unknown_type_{0};
  std::atomic<uint64_t> unknown_sender_{0};
  std::atomic<uint64_t> oversized_{0};
  std::atomic<uint64_t> over_budget_{0};
  std::atomic<uint64_t> backed_off_{0};
  std::atomic<uint64_t> back_offs_{0};
  std::atomic<uint64_t> refused_by_peer_{0};
  std::atomic<uint64_t> handshake_failed_{0};
  std::atomic<uint64_t> inbound_handshake_failed_{0};

  std::thread thread_;
};

// Checks the options and returns the peers to connect to (this node
// removed).
absl::StatusOr<std::vector<PeerInfo>> CheckOptions(const zmq::context_t& ctx,
                                                   const PeerNetOptions& o) {
  if (o.node_id.empty() || o.node_id.size() > kMaxNodeIdBytes) {
    return absl::InvalidArgumentError(
        "p2p: node_id must be 1 to 256 bytes long");
  }
  if (o.bind_endpoint.empty()) {
    return absl::InvalidArgumentError("p2p: bind_endpoint is empty");
  }
  if (o.authenticator == nullptr) {
    return absl::InvalidArgumentError(
        "p2p: no ZapAuthenticator: a CURVE server without one admits anyone");
  }
  if (o.authenticator->context() != &ctx) {
    return absl::InvalidArgumentError(
        "p2p: the ZapAuthenticator belongs to another zmq context");
  }
  if (o.send_hwm <= 0 || o.recv_hwm <= 0 || o.max_message_bytes <= 0) {
    return absl::InvalidArgumentError(
        "p2p: send_hwm, recv_hwm and max_message_bytes must be positive");
  }
  for (const auto& [type, limit] : o.max_message_bytes_by_type) {
    if (limit <= 0 || limit > o.max_message_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("p2p: the limit of message type ", type,
                       " must be positive and at most max_message_bytes"));
    }
  }
  if (o.budget.interval <= absl::ZeroDuration() ||
      o.budget.back_off < absl::ZeroDuration() ||
      o.budget.abusive_intervals < 0) {
    return absl::InvalidArgumentError(
        "p2p: the peer budget needs a positive interval, a back_off of at "
        "least 0 and abusive_intervals of at least 0");
  }
  if (o.reconnect_interval <= absl::ZeroDuration() ||
      o.reconnect_interval_max < o.reconnect_interval ||
      o.heartbeat_interval <= absl::ZeroDuration() ||
      o.heartbeat_timeout < o.heartbeat_interval) {
    return absl::InvalidArgumentError(
        "p2p: reconnect and heartbeat intervals must be positive, and each "
        "maximum/timeout at least its interval");
  }
  std::vector<PeerInfo> peers;
  std::set<std::string> ids;
  for (const PeerInfo& p : o.peers) {
    if (p.id == o.node_id) {
      if (p.public_key != o.key_pair.public_key) {
        return absl::InvalidArgumentError(
            absl::StrCat("p2p: the peer list gives this node (", o.node_id,
                         ") another public key than its key pair's"));
      }
      continue;
    }
    if (p.id.empty() || p.id.size() > kMaxNodeIdBytes) {
      return absl::InvalidArgumentError(
          "p2p: a peer id must be 1 to 256 bytes long");
    }
    if (!ids.insert(p.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("p2p: peer \"", p.id, "\" is listed twice"));
    }
    if (p.public_key == o.key_pair.public_key) {
      return absl::InvalidArgumentError(absl::StrCat(
          "p2p: peer \"", p.id, "\" has this node's own public key"));
    }
    if (p.endpoint.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("p2p: peer \"", p.id, "\" has no endpoint"));
    }
    peers.push_back(p);
  }
  return peers;
}

}  // namespace

// ------------------------------------------------------------------- keys

absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  if (!zmq_has("curve")) {
    return absl::UnimplementedError("p2p: this libzmq has no CURVE support");
  }
  char pub[kCurveKeyZ85Chars + 1];
  char sec[kCurveKeyZ85Chars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return absl::InternalError(absl::StrCat("p2p: cannot generate a key pair: ",
                                            zmq_strerror(zmq_errno())));
  }
  absl::StatusOr<CurveKey> p = CurveKeyFromZ85(pub);
  absl::StatusOr<CurveKey> s = CurveKeyFromZ85(sec);
  std::memset(sec, 0, sizeof(sec));
  if (!p.ok() || !s.ok()) {
    return absl::InternalError("p2p: libzmq returned a malformed key pair");
  }
  return CurveKeyPair{*p, *s};
}

std::string CurveKeyToZ85(const CurveKey& key) {
  char out[kCurveKeyZ85Chars + 1];
  zmq_z85_encode(out, key.data(), key.size());
  return std::string(out, kCurveKeyZ85Chars);
}

absl::StatusOr<CurveKey> CurveKeyFromZ85(std::string_view text) {
  if (text.size() != kCurveKeyZ85Chars) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: Z85 text must be ", kCurveKeyZ85Chars,
                     " characters, not ", text.size()));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (kZ85Alphabet.find(text[i]) == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("key: character ", i, " is not in the Z85 alphabet"));
    }
  }
  // Every 5-character group is a base-85 number that must fit 32 bits; one
  // above wraps in a decoder, so a key would have several texts.
  for (size_t g = 0; g < text.size(); g += 5) {
    uint64_t v = 0;
    for (size_t i = g; i < g + 5; ++i) v = v * 85 + kZ85Alphabet.find(text[i]);
    if (v > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key: Z85 group at character ", g, " is out of range"));
    }
  }
  std::string z(text);
  CurveKey key;
  if (zmq_z85_decode(key.data(), z.c_str()) == nullptr) {
    return absl::InvalidArgumentError("key: not valid Z85");
  }
  return key;
}

absl::StatusOr<CurveKey> CurvePublicKeyOf(const CurveKey& secret_key) {
  std::string sec = CurveKeyToZ85(secret_key);
  char pub[kCurveKeyZ85Chars + 1];
  int rc = zmq_curve_public(pub, sec.c_str());
  std::fill(sec.begin(), sec.end(), '\0');
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("p2p: cannot derive a public key: ",
                                            zmq_strerror(zmq_errno())));
  }
  return CurveKeyFromZ85(std::string_view(pub, kCurveKeyZ85Chars));
}

std::string CurveKeyPairToJson(const CurveKeyPair& pair) {
  nlohmann::json j;
  j["key_type"] = kKeyType;
  j["public_key"] = CurveKeyToZ85(pair.public_key);
  j["secret_key"] = CurveKeyToZ85(pair.secret_key);
  return j.dump();
}

absl::StatusOr<CurveKeyPair> ParseCurveKeyPairJson(std::string_view text) {
  absl::StatusOr<nlohmann::json> j =
      json_internal::ParseStrictJson(text, "curve key");
  if (!j.ok()) return j.status();
  if (!j->is_object()) {
    return absl::InvalidArgumentError("curve key: not a JSON object");
  }
  auto field = [&](const char* name) -> absl::StatusOr<std::string> {
    auto it = j->find(name);
    if (it == j->end() || !it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "curve key: field \"", name, "\" is missing or not a string"));
    }
    return it->get<std::string>();
  };
  absl::StatusOr<std::string> type = field("key_type");
  if (!type.ok()) return type.status();
  if (*type != kKeyType) {
    return absl::InvalidArgumentError(absl::StrCat(
        "curve key: key_type is \"", *type, "\", expected \"", kKeyType, "\""));
  }
  CurveKeyPair pair;
  for (auto [name, out] :
       {std::pair<const char*, CurveKey*>{"public_key", &pair.public_key},
        std::pair<const char*, CurveKey*>{"secret_key", &pair.secret_key}}) {
    absl::StatusOr<std::string> z85 = field(name);
    if (!z85.ok()) return z85.status();
    absl::StatusOr<CurveKey> key = CurveKeyFromZ85(*z85);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "curve key: field \"", name, "\": ", key.status().message()));
    }
    *out = *key;
  }
  absl::StatusOr<CurveKey> derived = CurvePublicKeyOf(pair.secret_key);
  if (!derived.ok()) return derived.status();
  if (*derived != pair.public_key) {
    return absl::InvalidArgumentError(
        "curve key: public_key does not belong to secret_key");
  }
  return pair;
}

absl::StatusOr<CurveKeyPair> LoadCurveKeyPair(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<CurveKeyPair> pair = ParseCurveKeyPairJson(*text);
  if (!pair.ok()) {
    return absl::Status(pair.status().code(),
                        absl::StrCat(path, ": ", pair.status().message()));
  }
  return pair;
}

// ------------------------------------------------------------------- ZAP

absl::StatusOr<std::shared_ptr<ZapAuthenticator>> StartZapAuthenticator(
    zmq::context_t& ctx, std::vector<AllowedKey> allowed, std::string domain,
    ZapMetrics* metrics) {
  if (domain.empty()) {
    return absl::InvalidArgumentError("zap: the domain is empty");
  }
  absl::StatusOr<AllowMap> map = BuildAllowMap(std::move(allowed));
  if (!map.ok()) return map.status();
  try {
    zmq::socket_t rep(ctx, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    try {
      rep.bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      if (e.num() == EADDRINUSE) {
        return absl::AlreadyExistsError(
            "zap: this zmq context already has a ZAP handler (one per "
            "context)");
      }
      return SocketError(e, "cannot bind the ZAP endpoint");
    }
    auto zap = std::make_shared<ZapAuthenticatorImpl>(
        ctx, std::move(rep), std::move(domain), metrics, *std::move(map));
    if (!zap->ok()) {
      return absl::ResourceExhaustedError("zap: cannot create an eventfd");
    }
    zap->Start();
    return zap;
  } catch (const zmq::error_t& e) {
    return SocketError(e, "cannot create the ZAP socket");
  }
}

// --------------------------------------------------------------- PeerNet

std::string_view PeerDropName(PeerDrop why) {
  switch (why) {
    case PeerDrop::kSendQueueFull:
      return "send_queue_full";
    case PeerDrop::kMalformed:
      return "malformed";
    case PeerDrop::kUnknownType:
      return "unknown_type";
    case PeerDrop::kUnknownSender:
      return "unknown_sender";
    case PeerDrop::kOversized:
      return "oversized";
    case PeerDrop::kOverBudget:
      return "over_budget";
    case PeerDrop::kBackedOff:
      return "backed_off";
  }
  return "unknown";
}

std::vector<AllowedKey> AllowListOf(const std::vector<PeerInfo>& peers) {
  std::vector<AllowedKey> out;
  out.reserve(peers.size());
  for (const PeerInfo& p : peers) out.push_back({p.id, p.public_key});
  return out;
}

absl::StatusOr<std::unique_ptr<PeerNet>> StartPeerNet(zmq::context_t& ctx,
                                                      PeerNetOptions options) {
  absl::StatusOr<std::vector<PeerInfo>> peers = CheckOptions(ctx, options);
  if (!peers.ok()) return peers.status();
  std::unique_ptr<PeerNetImpl> net;
  try {
    net = std::make_unique<PeerNetImpl>(ctx, std::move(options),
                                        *std::move(peers));
    if (absl::Status s = net->Init(); !s.ok()) return s;
  } catch (const zmq::error_t& e) {
    return SocketError(e, "cannot create a socket");
  }
  net->Start();
  return net;
}

}  // namespace consortia
