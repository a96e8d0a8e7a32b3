#include "consortia/bus.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bus_internal.h"
#include "consortia/codec.h"
#include "poll_loop.h"
#include "zmq.hpp"

namespace consortia {
namespace {

// Envelope field limits. A sender name is a short service label; an error
// is a status message, truncated by the server before it is sent.
constexpr size_t kMaxSenderBytes = 256;
constexpr size_t kMaxErrorBytes = 16 * 1024;
// Frames beyond this many in one message are read and discarded (a valid
// message has at most 3).
constexpr size_t kMaxFrames = 4;
constexpr uint8_t kMaxStatusCode =
    static_cast<uint8_t>(absl::StatusCode::kUnauthenticated);

std::string Truncate(std::string_view s, size_t max) {
  return std::string(s.substr(0, std::min(s.size(), max)));
}

// Applies the options every bus socket shares.
void ConfigureSocket(zmq::socket_t& sock, const BusOptions& options) {
  sock.set(zmq::sockopt::linger, 0);
  // ZeroMQ drops the connection of a peer that sends a larger frame (on
  // ipc and tcp; inproc has no decoder, so the bus checks those itself).
  sock.set(zmq::sockopt::maxmsgsize,
           static_cast<int64_t>(options.max_message_bytes));
  sock.set(zmq::sockopt::sndhwm, bus_internal::kHighWaterMark);
  sock.set(zmq::sockopt::rcvhwm, bus_internal::kHighWaterMark);
  sock.set(zmq::sockopt::reconnect_ivl, bus_internal::kReconnectIvlMs);
  sock.set(zmq::sockopt::reconnect_ivl_max, bus_internal::kReconnectIvlMaxMs);
}

absl::Status CheckOptions(const BusOptions& options) {
  if (options.max_message_bytes < kMinBusMaxMessageBytes ||
      options.max_message_bytes > SIZE_MAX / 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bus: max_message_bytes ", options.max_message_bytes,
        " is out of range (", kMinBusMaxMessageBytes, "..", SIZE_MAX / 2, ")"));
  }
  return absl::OkStatus();
}

// After bind: an ipc:// socket file becomes owner-only (0600), so that only
// processes of this user (or root) can connect. The file exists with the
// process umask's mode for the moment between bind and chmod; a directory
// that only the owner can enter closes that gap (docs/operations.md).
// Abstract sockets (ipc://@name) have no file and no mode. Unavailable if
// chmod fails.
absl::Status RestrictIpcFile(zmq::socket_t& sock) {
  const std::string bound = sock.get(zmq::sockopt::last_endpoint);
  constexpr std::string_view kIpc = "ipc://";
  if (!bound.starts_with(kIpc)) return absl::OkStatus();
  const std::string path = bound.substr(kIpc.size());
  if (path.empty() || path[0] == '@') return absl::OkStatus();
  if (chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "bus: cannot make ", path, " owner-only: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// A monitor on `sock` for `events`, read through the returned PAIR socket.
absl::StatusOr<zmq::socket_t> MonitorSocket(zmq::context_t& ctx,
                                            zmq::socket_t& sock, int events) {
  static std::atomic<uint64_t> next_monitor{1};
  const std::string address =
      absl::StrCat("inproc://consortia-bus-monitor-", next_monitor++);
  if (zmq_socket_monitor(sock.handle(), address.c_str(), events) != 0) {
    return absl::UnavailableError(absl::StrCat("bus: cannot monitor a socket: ",
                                               zmq_strerror(zmq_errno())));
  }
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::linger, 0);
  monitor.connect(address);
  return monitor;
}

// Reads up to kMaxBatchPerWake monitor events; returns how many were
// ZMQ_EVENT_DISCONNECTED.
uint64_t CountDisconnects(zmq::socket_t& monitor);

zmq::message_t ToMessage(ByteView b) {
  return zmq::message_t(b.data(), b.size());
}

Bytes FromMessage(const zmq::message_t& m) {
  const auto* p = static_cast<const uint8_t*>(m.data());
  return Bytes(p, p + m.size());
}

ByteView ViewOf(const zmq::message_t& m) {
  return ByteView(static_cast<const uint8_t*>(m.data()), m.size());
}

// Sends frames as one message without blocking. False if the socket's queue
// is full (high-water mark) or there is no route.
bool SendMultipart(zmq::socket_t& sock, std::vector<zmq::message_t>& parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    auto flags = zmq::send_flags::dontwait;
    if (i + 1 < parts.size()) flags = flags | zmq::send_flags::sndmore;
    auto r = sock.send(parts[i], flags);
    // Later frames of a message are always accepted once the first is.
    if (!r) return false;
  }
  return true;
}

template <typename Fn, typename Arg>
void RunCallback(Fn& fn, Arg&& arg) {
  try {
    fn(std::forward<Arg>(arg));
  } catch (const std::exception& e) {
    // A callback must not throw; the bus keeps running if one does.
    (void)e;
  } catch (...) {
  }
}

// ------------------------------------------------------------------ client

// One DEALER socket owned by one I/O thread (a PollLoop). Callers hand
// requests over through a queue and wake the loop; the loop's thread owns
// the pending map and the deadlines.
class BusClientImpl final : public BusClient {
 public:
  // `monitor` (may be closed: no monitoring) receives the socket's
  // disconnect events.
  BusClientImpl(zmq::socket_t sock, zmq::socket_t monitor, std::string endpoint,
                std::string sender, BusMetrics* metrics, size_t max_bytes)
      : sock_(std::move(sock)),
        monitor_(std::move(monitor)),
        endpoint_(std::move(endpoint)),
        sender_(std::move(sender)),
        metrics_(metrics),
        max_bytes_(max_bytes) {}

  ~BusClientImpl() override { loop_.Stop(); }

  bool ok() const { return loop_.ok(); }
  void Start() {
    // Replies first: one that arrived before its connection went is still
    // good.
    loop_.Watch(sock_, [this] { ReceiveReplies(); });
    if (monitor_) loop_.Watch(monitor_, [this] { MonitorEvents(); });
    loop_.OnTurn([this] { return Turn(); });
    loop_.Start([this] { Finish(); });
  }

  void CallAsync(uint16_t type, Bytes payload, absl::Duration timeout,
                 Callback cb, uint64_t trace_id) override {
    Outgoing out{
        0,       type, std::move(payload), absl::Now() + timeout, std::move(cb),
        trace_id};
    bool wake = false;
    bool dead = false;
    {
      absl::MutexLock l(&mu_);
      if (dead_) {
        dead = true;
      } else {
        out.id = next_id_++;
        wake = queue_.empty();
        queue_.push_back(std::move(out));
      }
    }
    if (dead) {
      // The context was terminated: no I/O thread will ever answer, so the
      // callback runs here, on the caller's thread.
      RunCallback(out.cb, absl::StatusOr<Bytes>(absl::CancelledError(
                              "bus: client stopped (context terminated)")));
      return;
    }
    if (wake) loop_.Wake();
  }

 private:
  struct Outgoing {
    uint64_t id;
    uint16_t type;
    Bytes payload;
    absl::Time deadline;
    Callback cb;
    uint64_t trace_id;
  };
  struct Pending {
    uint16_t type;
    absl::Time deadline;
    Callback cb;
  };

  // Every turn of the loop: sends what the callers queued, fails what is
  // past its deadline, and returns the next deadline.
  absl::Time Turn() {
    std::deque<Outgoing> batch;
    {
      absl::MutexLock l(&mu_);
      batch.swap(queue_);
    }
    for (Outgoing& out : batch) Send(out);  // never throws
    ExpireDeadlines(absl::Now());
    return deadlines_.empty() ? absl::InfiniteFuture()
                              : deadlines_.begin()->first;
  }

  // The loop ended (stopped, or the context is gone): every request still
  // waiting ends now, and later calls are refused at once.
  void Finish() {
    std::deque<Outgoing> leftover;
    {
      absl::MutexLock l(&mu_);
      dead_ = true;
      leftover.swap(queue_);
    }
    if (monitor_) {
      zmq_socket_monitor(sock_.handle(), nullptr, 0);
      monitor_.close();
    }
    sock_.close();
    for (Outgoing& out : leftover) {
      RunCallback(out.cb, absl::StatusOr<Bytes>(
                              absl::CancelledError("bus: client stopped")));
    }
    for (auto& [id, p] : pending_) {
      RunCallback(p.cb, absl::StatusOr<Bytes>(
                            absl::CancelledError("bus: client stopped")));
    }
    pending_.clear();
    deadlines_.clear();
  }

  void Send(Outgoing& out) {
    if (out.deadline <= absl::Now()) {
      if (metrics_ != nullptr) metrics_->RequestTimedOut();
      RunCallback(out.cb, absl::StatusOr<Bytes>(TimeoutError(out.type)));
      return;
    }
    if (out.payload.size() > max_bytes_) {
      if (metrics_ != nullptr) metrics_->OversizedDropped();
      RunCallback(out.cb,
                  absl::StatusOr<Bytes>(absl::InvalidArgumentError(absl::StrCat(
                      "bus: a request of ", out.payload.size(), " bytes to ",
                      endpoint_, " (message type ", out.type,
                      ") exceeds the limit of ", max_bytes_, " bytes"))));
      return;
    }
    Envelope env;
    env.kind = EnvelopeKind::kRequest;
    env.type = out.type;
    env.sender = sender_;
    env.trace_id = out.trace_id;
    env.id = out.id;
    std::vector<zmq::message_t> parts;
    parts.push_back(ToMessage(EncodeEnvelope(env)));
    parts.push_back(ToMessage(out.payload));
    absl::Status sent;
    try {
      if (!SendMultipart(sock_, parts)) {
        sent = absl::UnavailableError(
            absl::StrCat("bus: send queue to ", endpoint_, " is full"));
      }
    } catch (const zmq::error_t& e) {
      sent = absl::UnavailableError(
          absl::StrCat("bus: cannot send to ", endpoint_, ": ", e.what()));
    }
    if (!sent.ok()) {
      RunCallback(out.cb, absl::StatusOr<Bytes>(sent));
      return;
    }
    deadlines_.emplace(out.deadline, out.id);
    pending_.emplace(out.id,
                     Pending{out.type, out.deadline, std::move(out.cb)});
  }

  void ReceiveReplies() {
    std::vector<zmq::message_t> parts;
    bool too_many;
    for (int i = 0; i < kMaxBatchPerWake; ++i) {
      if (!RecvMultipart(sock_, &parts, kMaxFrames, &too_many)) return;
      if (too_many || parts.size() != 2) {
        Malformed();
        continue;
      }
      absl::StatusOr<Envelope> env = DecodeEnvelope(ViewOf(parts[0]));
      if (!env.ok() || env->kind != EnvelopeKind::kReply) {
        Malformed();
        continue;
      }
      auto it = pending_.find(env->id);
      if (it == pending_.end()) {
        if (metrics_ != nullptr) metrics_->LateReplyDropped();
        continue;
      }
      Pending p = std::move(it->second);
      pending_.erase(it);
      deadlines_.erase({p.deadline, env->id});
      if (env->status_code != 0) {
        RunCallback(p.cb, absl::StatusOr<Bytes>(absl::Status(
                              static_cast<absl::StatusCode>(env->status_code),
                              env->error)));
      } else {
        RunCallback(p.cb, absl::StatusOr<Bytes>(FromMessage(parts[1])));
      }
    }
  }

  // A connection to the server went away (the server stopped or crashed,
  // or the network broke): a request sent on it gets no reply, because the
  // server answers on the connection the request came in on. So every
  // request in flight fails now with Unavailable (it may or may not have
  // been carried out, as after a timeout) rather than at its deadline; the
  // caller's retry goes out once the socket has reconnected.
  void MonitorEvents() {
    if (CountDisconnects(monitor_) == 0 || pending_.empty()) return;
    if (metrics_ != nullptr) {
      metrics_->RequestsLostToDisconnect(pending_.size());
    }
    std::unordered_map<uint64_t, Pending> lost;
    lost.swap(pending_);
    deadlines_.clear();
    for (auto& [req, p] : lost) {
      RunCallback(p.cb,
                  absl::StatusOr<Bytes>(absl::UnavailableError(absl::StrCat(
                      "bus: the connection to ", endpoint_,
                      " closed with message type ", p.type, " in flight"))));
    }
  }

  void ExpireDeadlines(absl::Time now) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      uint64_t id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      Pending p = std::move(it->second);
      pending_.erase(it);
      if (metrics_ != nullptr) metrics_->RequestTimedOut();
      RunCallback(p.cb, absl::StatusOr<Bytes>(TimeoutError(p.type)));
    }
  }

  absl::Status TimeoutError(uint16_t type) const {
    return absl::DeadlineExceededError(
        absl::StrCat("bus: no reply from ", endpoint_, " to message type ",
                     type, " before the deadline"));
  }

  void Malformed() {
    if (metrics_ != nullptr) metrics_->MalformedDropped();
  }

  zmq::socket_t sock_;     // the I/O thread's once started
  zmq::socket_t monitor_;  // likewise
  const std::string endpoint_;
  const std::string sender_;
  BusMetrics* const metrics_;
  const size_t max_bytes_;

  absl::Mutex mu_;
  std::deque<Outgoing> queue_ ABSL_GUARDED_BY(mu_);
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;

  // I/O thread only.
  std::unordered_map<uint64_t, Pending> pending_;
  std::set<std::pair<absl::Time, uint64_t>> deadlines_;

  PollLoop loop_;  // last: stopped before the rest goes
};

// ------------------------------------------------------------------ server

struct OutReply {
  Bytes identity;
  Envelope env;
  Bytes payload;
};

// Where Reply closures leave their answers, waking the server's loop.
// Shared, because a closure may run (from a worker thread) after the server
// is gone; it then finds the channel closed and drops the reply (and the
// Waker it may still signal is shared for the same reason).
struct ReplyChannel {
  explicit ReplyChannel(std::shared_ptr<Waker> w) : waker(std::move(w)) {}

  const std::shared_ptr<Waker> waker;
  absl::Mutex mu;
  std::deque<OutReply> queue ABSL_GUARDED_BY(mu);
  bool closed ABSL_GUARDED_BY(mu) = false;

  void Push(OutReply r) {
    bool wake;
    {
      absl::MutexLock l(&mu);
      if (closed) return;
      wake = queue.empty();
      queue.push_back(std::move(r));
    }
    if (wake) waker->Signal();
  }
};

// Closes a bound socket so that its endpoint is free when this returns. ZMQ
// closes sockets in the background (its reaper thread) and frees an inproc
// name only then, so a service restarted in the same process could find the
// name still taken ("Address already in use"); unbinding first frees it at
// once. Never throws.
void UnbindAndClose(zmq::socket_t& sock) {
  if (!sock) return;
  try {
    const std::string endpoint = sock.get(zmq::sockopt::last_endpoint);
    if (!endpoint.empty()) zmq_unbind(sock.handle(), endpoint.c_str());
  } catch (const zmq::error_t&) {
    // The context is gone: nothing is bound any more.
  }
  sock.close();
}

// A ROUTER socket owned by one I/O thread (a PollLoop); see BusServer.
class BusServerImpl final : public BusServer {
 public:
  // `monitor` (may be closed: no monitoring) receives the socket's
  // disconnect events.
  BusServerImpl(zmq::socket_t sock, zmq::socket_t monitor, std::string name,
                Handler handler, BusMetrics* metrics, size_t max_bytes)
      : sock_(std::move(sock)),
        monitor_(std::move(monitor)),
        name_(Truncate(name, kMaxSenderBytes)),
        handler_(std::move(handler)),
        metrics_(metrics),
        max_bytes_(max_bytes),
        channel_(std::make_shared<ReplyChannel>(loop_.waker())) {}

  ~BusServerImpl() override { loop_.Stop(); }

  bool ok() const { return loop_.ok(); }
  void Start() {
    loop_.Watch(sock_, [this] { ReceiveRequests(); });
    if (monitor_) {
      loop_.Watch(monitor_, [this] {
        const uint64_t n = CountDisconnects(monitor_);
        for (uint64_t i = 0; i < n; ++i) metrics_->ClientDisconnected();
      });
    }
    loop_.OnTurn([this] { return SendReplies(); });
    loop_.Start([this] { Finish(); });
  }

 private:
  // Every turn of the loop: sends the replies handed over since the last
  // one, including those the handlers gave synchronously in this turn.
  absl::Time SendReplies() {
    std::deque<OutReply> replies;
    {
      absl::MutexLock l(&channel_->mu);
      replies.swap(channel_->queue);
    }
    for (OutReply& r : replies) SendReply(r);  // never throws
    return absl::InfiniteFuture();
  }

  // The loop ended: later replies are dropped, and the sockets close.
  void Finish() {
    {
      absl::MutexLock l(&channel_->mu);
      channel_->closed = true;
      channel_->queue.clear();
    }
    if (monitor_) {
      zmq_socket_monitor(sock_.handle(), nullptr, 0);
      monitor_.close();
    }
    UnbindAndClose(sock_);
  }

  void ReceiveRequests() {
    std::vector<zmq::message_t> parts;
    bool too_many;
    for (int i = 0; i < kMaxBatchPerWake; ++i) {
      if (!RecvMultipart(sock_, &parts, kMaxFrames, &too_many)) return;
      // [identity, envelope, payload]; the identity frame is added by ROUTER.
      if (too_many || parts.size() != 3) {
        Malformed();
        continue;
      }
      // ZeroMQ enforces the limit on ipc and tcp; inproc arrives here.
      if (parts[1].size() > max_bytes_ || parts[2].size() > max_bytes_) {
        if (metrics_ != nullptr) metrics_->OversizedDropped();
        continue;
      }
      absl::StatusOr<Envelope> env = DecodeEnvelope(ViewOf(parts[1]));
      if (!env.ok() || env->kind != EnvelopeKind::kRequest) {
        Malformed();
        continue;
      }
      Dispatch(FromMessage(parts[0]), *std::move(env), FromMessage(parts[2]));
    }
  }

  void Dispatch(Bytes identity, Envelope request, Bytes payload) {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Envelope reply_env;
    reply_env.kind = EnvelopeKind::kReply;
    reply_env.type = request.type;
    reply_env.sender = name_;
    reply_env.trace_id = request.trace_id;
    reply_env.id = request.id;
    Reply reply = [channel = channel_, identity = std::move(identity),
                   reply_env = std::move(reply_env),
                   answered](absl::StatusOr<Bytes> result) {
      if (answered->exchange(true)) return;  // exactly once
      OutReply out{identity, reply_env, {}};
      if (result.ok()) {
        out.payload = *std::move(result);
      } else {
        out.env.status_code = static_cast<uint8_t>(
            static_cast<int>(result.status().code()) <= kMaxStatusCode
                ? static_cast<int>(result.status().code())
                : static_cast<int>(absl::StatusCode::kUnknown));
        out.env.error =
            Truncate(std::string(result.status().message()), kMaxErrorBytes);
      }
      channel->Push(std::move(out));
    };
    try {
      handler_(request, std::move(payload), reply);
    } catch (...) {
      // A handler must not throw; the request still gets an answer.
      reply(absl::InternalError("bus: request handler failed"));
    }
  }

  void SendReply(OutReply& r) {
    // The handlers answer unknown message types with Unimplemented; that is
    // where the server counts them (the handler itself has no metrics).
    if (r.env.status_code ==
            static_cast<uint8_t>(absl::StatusCode::kUnimplemented) &&
        metrics_ != nullptr) {
      metrics_->UnknownTypeDropped();
    }
    if (r.payload.size() > max_bytes_) {
      // The client would drop the connection on it: answer with an error.
      if (metrics_ != nullptr) metrics_->OversizedDropped();
      r.env.status_code =
          static_cast<uint8_t>(absl::StatusCode::kResourceExhausted);
      r.env.error = absl::StrCat("bus: the reply of ", r.payload.size(),
                                 " bytes to message type ", r.env.type,
                                 " exceeds the limit of ", max_bytes_,
                                 " bytes; ask for less");
      r.payload.clear();
    }
    std::vector<zmq::message_t> parts;
    parts.push_back(ToMessage(r.identity));
    parts.push_back(ToMessage(EncodeEnvelope(r.env)));
    parts.push_back(ToMessage(r.payload));
    try {
      // A ROUTER drops a reply to a client that is gone (and one over the
      // high-water mark); that client times out.
      SendMultipart(sock_, parts);
    } catch (const zmq::error_t&) {
      // Context terminated: the loop ends at its next poll.
    }
  }

  void Malformed() {
    if (metrics_ != nullptr) metrics_->MalformedDropped();
  }

  zmq::socket_t sock_;     // the I/O thread's once started
  zmq::socket_t monitor_;  // likewise
  const std::string name_;
  const Handler handler_;
  BusMetrics* const metrics_;
  const size_t max_bytes_;
  PollLoop loop_;
  const std::shared_ptr<ReplyChannel> channel_;
};

// --------------------------------------------------------------- publisher

class PublisherImpl final : public Publisher {
 public:
  PublisherImpl(zmq::socket_t sock, std::string name, BusMetrics* metrics,
                size_t max_bytes)
      : name_(Truncate(name, kMaxSenderBytes)),
        metrics_(metrics),
        max_bytes_(max_bytes),
        sock_(std::move(sock)) {}

  ~PublisherImpl() override {
    absl::MutexLock l(&mu_);
    UnbindAndClose(sock_);
  }

  uint64_t Publish(std::string_view topic, uint16_t type, Bytes payload,
                   uint64_t trace_id) override {
    absl::MutexLock l(&mu_);
    auto it = seq_.find(topic);
    if (it == seq_.end()) it = seq_.emplace(std::string(topic), 0).first;
    uint64_t seq = ++it->second;
    if (payload.size() > max_bytes_ || topic.size() > max_bytes_) {
      // Subscribers would drop the connection on it; they see a gap instead.
      if (metrics_ != nullptr) metrics_->OversizedDropped();
      return seq;
    }
    Envelope env;
    env.kind = EnvelopeKind::kEvent;
    env.type = type;
    env.sender = name_;
    env.trace_id = trace_id;
    env.id = seq;
    std::vector<zmq::message_t> parts;
    parts.push_back(ToMessage(AsBytes(topic)));
    parts.push_back(ToMessage(EncodeEnvelope(env)));
    parts.push_back(ToMessage(payload));
    try {
      // PUB never blocks: a subscriber over its high-water mark misses the
      // event and sees a gap in the sequence.
      SendMultipart(sock_, parts);
    } catch (const zmq::error_t&) {
      // Context terminated: the event is lost, as for a slow subscriber.
    }
    return seq;
  }

 private:
  const std::string name_;
  BusMetrics* const metrics_;
  const size_t max_bytes_;
  absl::Mutex mu_;
  zmq::socket_t sock_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t, std::less<>> seq_ ABSL_GUARDED_BY(mu_);
};

// -------------------------------------------------------------- subscriber

class SubscriberImpl final : public Subscriber {
 public:
  SubscriberImpl(zmq::socket_t sock, std::vector<std::string> topics,
                 Callback cb, BusMetrics* metrics, size_t max_bytes)
      : sock_(std::move(sock)),
        topics_(std::move(topics)),
        cb_(std::move(cb)),
        metrics_(metrics),
        max_bytes_(max_bytes) {}

  ~SubscriberImpl() override { loop_.Stop(); }

  bool ok() const { return loop_.ok(); }
  void Start() {
    loop_.Watch(sock_, [this] { ReceiveEvents(); });
    loop_.Start([this] { sock_.close(); });
  }

 private:
  void ReceiveEvents() {
    std::vector<zmq::message_t> parts;
    bool too_many;
    for (int i = 0; i < kMaxBatchPerWake && !loop_.stopping(); ++i) {
      if (!RecvMultipart(sock_, &parts, kMaxFrames, &too_many)) return;
      if (too_many || parts.size() != 3) {
        Malformed();
        continue;
      }
      if (parts[1].size() > max_bytes_ || parts[2].size() > max_bytes_) {
        if (metrics_ != nullptr) metrics_->OversizedDropped();
        continue;
      }
      std::string_view topic = AsString(ViewOf(parts[0]));
      // SUB filters by prefix; keep exact topic matches only.
      if (!topics_.empty() &&
          std::find(topics_.begin(), topics_.end(), topic) == topics_.end()) {
        continue;
      }
      absl::StatusOr<Envelope> env = DecodeEnvelope(ViewOf(parts[1]));
      if (!env.ok() || env->kind != EnvelopeKind::kEvent) {
        Malformed();
        continue;
      }
      uint64_t missed = seq_.Observe(topic, env->id);
      if (missed > 0 && metrics_ != nullptr) metrics_->EventGap(missed);
      try {
        cb_(topic, *env, FromMessage(parts[2]), missed);
      } catch (...) {
        // A callback must not throw; the subscriber keeps running.
      }
    }
  }

  void Malformed() {
    if (metrics_ != nullptr) metrics_->MalformedDropped();
  }

  zmq::socket_t sock_;  // the I/O thread's once started
  const std::vector<std::string> topics_;
  const Callback cb_;
  BusMetrics* const metrics_;
  const size_t max_bytes_;
  bus_internal::SeqTracker seq_;  // I/O thread only
  PollLoop loop_;
};

uint64_t CountDisconnects(zmq::socket_t& monitor) {
  uint64_t n = 0;
  for (int i = 0; i < kMaxBatchPerWake; ++i) {
    zmq::message_t event;
    zmq::message_t address;
    if (!monitor.recv(event, zmq::recv_flags::dontwait)) break;
    if (event.more()) (void)monitor.recv(address, zmq::recv_flags::none);
    uint16_t id = 0;
    if (event.size() >= sizeof(id)) std::memcpy(&id, event.data(), sizeof(id));
    if (id == ZMQ_EVENT_DISCONNECTED) ++n;
  }
  return n;
}

absl::Status EndpointError(const zmq::error_t& e, absl::string_view verb,
                           absl::string_view endpoint) {
  std::string msg =
      absl::StrCat("bus: cannot ", verb, " ", endpoint, ": ", e.what());
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

}  // namespace

// ---------------------------------------------------------------- envelope
//
// Layout: u8 version, u8 kind, u16 type, string sender, u64 trace_id, u64 id,
// u8 status_code, string error. The version is read first so that a future
// version may change everything after it.

Bytes EncodeEnvelope(const Envelope& env) {
  Encoder e;
  e.PutU8(env.version);
  e.PutU8(static_cast<uint8_t>(env.kind));
  e.PutU16(env.type);
  e.PutString(env.sender);
  e.PutU64(env.trace_id);
  e.PutU64(env.id);
  e.PutU8(env.status_code);
  e.PutString(env.error);
  return e.Take();
}

absl::StatusOr<Envelope> DecodeEnvelope(ByteView data) {
  Decoder d(data);
  Envelope env;
  if (absl::Status s = d.GetU8(&env.version); !s.ok()) return s;
  if (env.version != kProtocolVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "envelope: protocol version ", env.version,
        " is not supported (this build speaks ", kProtocolVersion, ")"));
  }
  uint8_t kind;
  if (absl::Status s = d.GetU8(&kind); !s.ok()) return s;
  if (kind < static_cast<uint8_t>(EnvelopeKind::kRequest) ||
      kind > static_cast<uint8_t>(EnvelopeKind::kEvent)) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope: unknown kind ", kind));
  }
  env.kind = static_cast<EnvelopeKind>(kind);
  if (absl::Status s = d.GetU16(&env.type); !s.ok()) return s;
  if (absl::Status s = d.GetString(&env.sender, kMaxSenderBytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = d.GetU64(&env.trace_id); !s.ok()) return s;
  if (absl::Status s = d.GetU64(&env.id); !s.ok()) return s;
  if (absl::Status s = d.GetU8(&env.status_code); !s.ok()) return s;
  if (env.status_code > kMaxStatusCode) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope: unknown status code ", env.status_code));
  }
  if (absl::Status s = d.GetString(&env.error, kMaxErrorBytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = d.ExpectEnd(); !s.ok()) return s;
  return env;
}

// ---------------------------------------------------------------- factories

absl::StatusOr<Bytes> BusClient::Call(uint16_t type, Bytes payload,
                                      absl::Duration timeout,
                                      uint64_t trace_id) {
  // Shared: the callback may still be unwinding on the I/O thread when this
  // call returns.
  struct State {
    absl::Notification done;
    absl::StatusOr<Bytes> result;
  };
  auto state = std::make_shared<State>();
  CallAsync(
      type, std::move(payload), timeout,
      [state](absl::StatusOr<Bytes> r) {
        state->result = std::move(r);
        state->done.Notify();
      },
      trace_id);
  state->done.WaitForNotification();
  return std::move(state->result);
}

absl::StatusOr<std::unique_ptr<BusClient>> ConnectBusClient(
    zmq::context_t& ctx, std::string endpoint, std::string sender,
    BusMetrics* metrics, const BusOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    ConfigureSocket(sock, options);
    // Disconnects, so that requests in flight on a lost connection fail at
    // once (BusClientImpl::MonitorEvents). inproc never disconnects.
    zmq::socket_t monitor;
    if (!endpoint.starts_with("inproc://")) {
      absl::StatusOr<zmq::socket_t> m =
          MonitorSocket(ctx, sock, ZMQ_EVENT_DISCONNECTED);
      if (!m.ok()) return m.status();
      monitor = *std::move(m);
    }
    try {
      sock.connect(endpoint);
    } catch (const zmq::error_t& e) {
      return EndpointError(e, "connect to", endpoint);
    }
    auto client = std::make_unique<BusClientImpl>(
        std::move(sock), std::move(monitor), endpoint,
        Truncate(sender, kMaxSenderBytes), metrics, options.max_message_bytes);
    if (!client->ok()) {
      return absl::ResourceExhaustedError("bus: cannot create an eventfd");
    }
    client->Start();
    return client;
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("bus: cannot create a socket: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<BusServer>> StartBusServer(
    zmq::context_t& ctx, std::string endpoint, std::string name,
    BusServer::Handler handler, BusMetrics* metrics,
    const BusOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::router);
    ConfigureSocket(sock, options);
    // Client disconnects, counted (only when someone counts; inproc never
    // disconnects).
    zmq::socket_t monitor;
    if (metrics != nullptr && !endpoint.starts_with("inproc://")) {
      absl::StatusOr<zmq::socket_t> m =
          MonitorSocket(ctx, sock, ZMQ_EVENT_DISCONNECTED);
      if (!m.ok()) return m.status();
      monitor = *std::move(m);
    }
    try {
      sock.bind(endpoint);
    } catch (const zmq::error_t& e) {
      absl::Status s = EndpointError(e, "bind", endpoint);
      // A well-formed endpoint that cannot be bound (in use, no such
      // address) is Unavailable, as documented.
      if (e.num() == EINVAL) return s;
      return absl::UnavailableError(s.message());
    }
    if (absl::Status s = RestrictIpcFile(sock); !s.ok()) return s;
    auto server = std::make_unique<BusServerImpl>(
        std::move(sock), std::move(monitor), std::move(name),
        std::move(handler), metrics, options.max_message_bytes);
    if (!server->ok()) {
      return absl::ResourceExhaustedError("bus: cannot create an eventfd");
    }
    server->Start();
    return server;
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("bus: cannot create a socket: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Publisher>> StartPublisher(
    zmq::context_t& ctx, std::string endpoint, std::string name,
    BusMetrics* metrics, const BusOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::pub);
    ConfigureSocket(sock, options);
    try {
      sock.bind(endpoint);
    } catch (const zmq::error_t& e) {
      absl::Status s = EndpointError(e, "bind", endpoint);
      if (e.num() == EINVAL) return s;
      return absl::UnavailableError(s.message());
    }
    if (absl::Status s = RestrictIpcFile(sock); !s.ok()) return s;
    return std::make_unique<PublisherImpl>(std::move(sock), std::move(name),
                                           metrics, options.max_message_bytes);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("bus: cannot create a socket: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Subscriber>> StartSubscriber(
    zmq::context_t& ctx, std::string endpoint, std::vector<std::string> topics,
    Subscriber::Callback cb, BusMetrics* metrics, const BusOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  try {
    zmq::socket_t sock(ctx, zmq::socket_type::sub);
    ConfigureSocket(sock, options);
    if (topics.empty()) {
      sock.set(zmq::sockopt::subscribe, "");
    } else {
      for (const std::string& t : topics) sock.set(zmq::sockopt::subscribe, t);
    }
    try {
      sock.connect(endpoint);
    } catch (const zmq::error_t& e) {
      return EndpointError(e, "connect to", endpoint);
    }
    auto sub = std::make_unique<SubscriberImpl>(
        std::move(sock), std::move(topics), std::move(cb), metrics,
        options.max_message_bytes);
    if (!sub->ok()) {
      return absl::ResourceExhaustedError("bus: cannot create an eventfd");
    }
    sub->Start();
    return sub;
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("bus: cannot create a socket: ", e.what()));
  }
}

}  // namespace consortia
