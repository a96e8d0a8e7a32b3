#include "consortia/peer_net.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "p2p_internal.h"
#include "poll_loop.h"
#include "spdlog/spdlog.h"
#include "zmq.hpp"

namespace consortia {
namespace {

using p2p_internal::kLogEvery;
using p2p_internal::SocketError;

// ZMQ_ZAP_ENFORCE_DOMAIN: a draft option of libzmq 4.3 (Debian's build
// accepts it). With it, a CURVE server whose context has no ZAP handler
// refuses every client instead of admitting all of them. Set when available,
// as a second line of defence behind the required ZapAuthenticator.
constexpr int kZmqZapEnforceDomain = 93;

// Frames kept of one incoming message; a valid one has 3 on a ROUTER.
constexpr size_t kMaxFrames = 4;

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
    loop_.Stop();  // if it ran, the loop tore the sockets down as it ended
    Teardown();
  }

  // Creates, binds and connects every socket. Throws zmq::error_t from
  // socket creation; returns the endpoint errors.
  absl::Status Init() {
    if (!loop_.ok()) {
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
    loop_.Watch(router_, [this] { ReceiveMessages(); });
    loop_.Watch(router_monitor_, [this] { ReadMonitor(router_monitor_, -1); });
    for (size_t i = 0; i < peers_.size(); ++i) {
      loop_.Watch(peers_[i]->monitor, [this, i] {
        ReadMonitor(peers_[i]->monitor, static_cast<int>(i));
      });
    }
    loop_.OnTurn([this] { return RetryRefused(); });
    loop_.Start([this] { Teardown(); });
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

  // libzmq treats a refused handshake (ZAP error, protocol error) as final
  // and stops reconnecting that endpoint. A peer may refuse only for a while
  // (its allow-list is being updated, or it restarted with new settings), so
  // the connection is re-made here after reconnect_interval_max. Every turn
  // of the loop; returns when the next refused peer is due.
  absl::Time RetryRefused() {
    absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    for (size_t i = 0; i < peers_.size(); ++i) {
      Peer& p = *peers_[i];
      if (p.retry_at > now) {
        next = std::min(next, p.retry_at);
        continue;
      }
      p.retry_at = absl::InfiniteFuture();
      absl::MutexLock l(&send_mu_);
      if (closed_) return absl::InfiniteFuture();
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
        next = std::min(next, p.retry_at);
      }
    }
    return next;
  }

  void ReceiveMessages() {
    std::vector<zmq::message_t> parts;
    bool too_many;
    for (int n = 0; n < kMaxBatchPerWake && !loop_.stopping(); ++n) {
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

  // Closes every socket, monitors first: at the end of the loop, or from the
  // destructor when the loop never started (a second call does nothing).
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

  PollLoop loop_;
};
}  // namespace
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
  absl::StatusOr<std::vector<PeerInfo>> peers =
      p2p_internal::CheckPeerNetOptions(ctx, options);
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
