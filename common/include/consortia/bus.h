// The message bus between services: ZeroMQ request/reply (DEALER/ROUTER) with
// correlation ids and deadlines, and publish/subscribe with per-topic sequence
// numbers. Every message is two frames: an Envelope and a payload.
//
// Endpoints are ZeroMQ addresses: "tcp://127.0.0.1:7101", "ipc:///path" or,
// when all services run as threads of one process, "inproc://name" on a
// shared zmq::context_t.
#ifndef CONSORTIA_COMMON_BUS_H_
#define CONSORTIA_COMMON_BUS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/bytes.h"

namespace zmq {
class context_t;
}

namespace consortia {

inline constexpr uint8_t kProtocolVersion = 1;

enum class EnvelopeKind : uint8_t { kRequest = 1, kReply = 2, kEvent = 3 };

// First frame of every message.
struct Envelope {
  uint8_t version = kProtocolVersion;
  EnvelopeKind kind = EnvelopeKind::kRequest;
  uint16_t type = 0;      // a MsgType from messages.h
  std::string sender;     // "api", "mempool@node0", ...
  uint64_t trace_id = 0;  // carried through every hop and every log line
  uint64_t id = 0;        // correlation id (request/reply) or sequence (event)
  // Replies only: an absl::StatusCode and its message. OK means the payload
  // is the answer.
  uint8_t status_code = 0;
  std::string error;
};

Bytes EncodeEnvelope(const Envelope& e);
// InvalidArgument on malformed input or a version this build does not speak.
absl::StatusOr<Envelope> DecodeEnvelope(ByteView data);

// Counts what the bus drops; optional, injected. Implementations must be
// thread-safe.
class BusMetrics {
 public:
  virtual ~BusMetrics() = default;
  virtual void MalformedDropped() {}
  virtual void UnknownTypeDropped() {}
  virtual void RequestTimedOut() {}
  virtual void EventGap(uint64_t missed) { (void)missed; }
  // A reply whose correlation id is not pending (it came after its
  // deadline, or was never asked for) was dropped by a BusClient.
  virtual void LateReplyDropped() {}
  // `n` requests in flight failed because their connection closed.
  virtual void RequestsLostToDisconnect(uint64_t n) { (void)n; }
};

// Sends requests to one BusServer endpoint and matches replies by
// correlation id. Thread-safe: any thread may call at any time; one internal
// I/O thread owns the socket. Reconnects by itself when the server restarts;
// a request whose reply never comes completes with DeadlineExceeded.
class BusClient {
 public:
  using Callback = std::function<void(absl::StatusOr<Bytes>)>;

  virtual ~BusClient() = default;

  // Sends and returns at once; cb runs exactly once on the client's I/O
  // thread, with the reply payload, the server's error status,
  // DeadlineExceeded, or Unavailable when the connection the request went
  // out on closed before its reply came (the server stopped or crashed; as
  // after a deadline, the request may or may not have been carried out).
  // While no connection is up, requests wait in the socket's queue and go
  // out once one is. cb must not block.
  virtual void CallAsync(uint16_t type, Bytes payload, absl::Duration timeout,
                         Callback cb, uint64_t trace_id = 0) = 0;
  // Blocking form of CallAsync.
  absl::StatusOr<Bytes> Call(uint16_t type, Bytes payload,
                             absl::Duration timeout, uint64_t trace_id = 0);
};

// InvalidArgument for a malformed endpoint.
absl::StatusOr<std::unique_ptr<BusClient>> ConnectBusClient(
    zmq::context_t& ctx, std::string endpoint, std::string sender,
    BusMetrics* metrics = nullptr);

// Serves requests on one endpoint. The handler runs on the server's I/O
// thread and must not block for long: it either answers at once through
// `reply` or hands the work to its own threads and calls `reply` later, from
// any thread, exactly once. Stops (and joins its thread) on destruction.
class BusServer {
 public:
  using Reply = std::function<void(absl::StatusOr<Bytes>)>;
  using Handler =
      std::function<void(const Envelope& request, Bytes payload, Reply reply)>;

  virtual ~BusServer() = default;
};

// Binds and starts serving. Unavailable if the endpoint cannot be bound.
absl::StatusOr<std::unique_ptr<BusServer>> StartBusServer(
    zmq::context_t& ctx, std::string endpoint, std::string name,
    BusServer::Handler handler, BusMetrics* metrics = nullptr);

// Publishes events; each topic has its own sequence, starting at 1.
// Thread-safe.
class Publisher {
 public:
  virtual ~Publisher() = default;
  // Returns the sequence number given to the event.
  virtual uint64_t Publish(std::string_view topic, uint16_t type, Bytes payload,
                           uint64_t trace_id = 0) = 0;
};

absl::StatusOr<std::unique_ptr<Publisher>> StartPublisher(zmq::context_t& ctx,
                                                          std::string endpoint,
                                                          std::string name);

// Receives events on its own thread. The callback sees every event in order;
// `missed` is how many sequence numbers were skipped before this one (0 when
// none), so the subscriber can ask the publisher's service to fill the gap.
// The first event seen after (re)connecting reports missed = 0. Stops on
// destruction.
class Subscriber {
 public:
  using Callback =
      std::function<void(std::string_view topic, const Envelope& env,
                         Bytes payload, uint64_t missed)>;
  virtual ~Subscriber() = default;
};

absl::StatusOr<std::unique_ptr<Subscriber>> StartSubscriber(
    zmq::context_t& ctx, std::string endpoint, std::vector<std::string> topics,
    Subscriber::Callback cb, BusMetrics* metrics = nullptr);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_BUS_H_
