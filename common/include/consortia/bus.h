// The message bus between services: ZeroMQ request/reply (DEALER/ROUTER) with
// correlation ids and deadlines, and publish/subscribe with per-topic sequence
// numbers. Every message is two frames: an Envelope and a payload.
//
// Endpoints are ZeroMQ addresses: "tcp://127.0.0.1:7101", "ipc:///path" or,
// when all services run as threads of one process, "inproc://name" on a
// shared zmq::context_t. The bus has no authentication of its own: whoever
// can reach an endpoint can call every request type on it. So:
//   - inproc://  for all services in one process (`consortia-node --all`);
//   - ipc://     for services in one pod or on one host: the socket file is
//                made owner-only (0600) right after bind, so only processes
//                of the same user (or root) can connect; keep it in a
//                directory that is not world-writable;
//   - tcp://     on loopback (127.0.0.1) only, when ipc is not available;
//                any local user can connect, so prefer ipc on shared hosts.
// Never bind the internal bus to an address reachable from another host:
// traffic between nodes goes over PeerNet (CurveZMQ, allow-listed keys).
//
// Every socket refuses a frame over BusOptions::max_message_bytes (ZeroMQ's
// ZMQ_MAXMSGSIZE): a peer that sends one is disconnected by ZeroMQ (the
// others are not affected), and the bus itself never sends one (see the
// factories). inproc has no wire decoder, so there the bus checks the size
// of what it receives itself.
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
#include "consortia/types.h"

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

// The largest frame a bus socket sends or accepts by default. The largest
// legitimate messages are CommitBlock requests (one block of at most
// kMaxBlockBytes, the encoding's own limit, plus its certificate) and
// ReadCertifiedBlocks replies (a byte budget, 16 MiB for block sync, plus
// the one block that crosses it, at most kMaxBlockBytes): twice kMaxBlockBytes
// holds either with room to spare. A deployment whose blocks are smaller
// (8 MiB by default) may lower it.
inline constexpr size_t kDefaultBusMaxMessageBytes = 2 * kMaxBlockBytes;
// The smallest limit a socket accepts: room for any envelope (sender and
// error are bounded far below this) and a small payload.
inline constexpr size_t kMinBusMaxMessageBytes = 64 * 1024;

// Options shared by every bus socket.
struct BusOptions {
  // Largest frame (envelope or payload) sent or accepted, in bytes;
  // kMinBusMaxMessageBytes..SIZE_MAX/2. See the file comment and the
  // factories for what happens to a larger one.
  size_t max_message_bytes = kDefaultBusMaxMessageBytes;
};

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
  // A message over BusOptions::max_message_bytes was refused by this end: a
  // request not sent (its caller gets InvalidArgument), a reply replaced by
  // a ResourceExhausted error, an event not published (subscribers see a
  // gap), or a received message dropped (inproc, where ZeroMQ does not
  // check).
  virtual void OversizedDropped() {}
  // A BusServer's connection from a client closed (ipc/tcp only): the
  // client left or crashed, or ZeroMQ cut it off for sending a frame over
  // max_message_bytes or breaking the protocol. A steady rise while clients
  // are up means a local process is misbehaving.
  virtual void ClientDisconnected() {}
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

// InvalidArgument for a malformed endpoint or options out of bounds. A
// request whose payload is over options.max_message_bytes fails at once with
// InvalidArgument (nothing is sent); a reply over it makes ZeroMQ drop the
// connection, so the requests in flight on it fail with Unavailable.
absl::StatusOr<std::unique_ptr<BusClient>> ConnectBusClient(
    zmq::context_t& ctx, std::string endpoint, std::string sender,
    BusMetrics* metrics = nullptr, const BusOptions& options = {});

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

// Binds and starts serving. Unavailable if the endpoint cannot be bound (or
// an ipc:// socket file cannot be made owner-only); InvalidArgument for a
// malformed endpoint or options out of bounds. A client that sends a frame
// over options.max_message_bytes is disconnected (ipc/tcp) or its request
// dropped (inproc), and the handler never sees it; a reply over the limit
// goes out as a ResourceExhausted error instead.
absl::StatusOr<std::unique_ptr<BusServer>> StartBusServer(
    zmq::context_t& ctx, std::string endpoint, std::string name,
    BusServer::Handler handler, BusMetrics* metrics = nullptr,
    const BusOptions& options = {});

// Publishes events; each topic has its own sequence, starting at 1.
// Thread-safe.
class Publisher {
 public:
  virtual ~Publisher() = default;
  // Returns the sequence number given to the event.
  virtual uint64_t Publish(std::string_view topic, uint16_t type, Bytes payload,
                           uint64_t trace_id = 0) = 0;
};

// Binds as StartBusServer does (an ipc:// socket file is owner-only). An
// event over options.max_message_bytes is not published (its sequence
// number is used, so subscribers see a gap and ask for it another way).
absl::StatusOr<std::unique_ptr<Publisher>> StartPublisher(
    zmq::context_t& ctx, std::string endpoint, std::string name,
    BusMetrics* metrics = nullptr, const BusOptions& options = {});

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

// An event over options.max_message_bytes makes ZeroMQ drop the
// connection; the subscriber reconnects and sees a gap.
absl::StatusOr<std::unique_ptr<Subscriber>> StartSubscriber(
    zmq::context_t& ctx, std::string endpoint, std::vector<std::string> topics,
    Subscriber::Callback cb, BusMetrics* metrics = nullptr,
    const BusOptions& options = {});

}  // namespace consortia

#endif  // CONSORTIA_COMMON_BUS_H_
