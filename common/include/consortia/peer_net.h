// The transport between nodes: ZeroMQ over TCP with CurveZMQ encryption, and
// a ZAP handler that admits only the transport keys of the network's
// configured nodes. Consensus (proposals, votes, block sync) and mempool
// gossip send their messages through a PeerNet.
//
// Keys. A node has a CurveZMQ transport key pair, distinct from its signing
// key; see consortia/curve_keys.h (keys and key files) and
// consortia/zap_authenticator.h (the ZAP handler), both included here.
//
// Topology. Each node binds one ROUTER socket (the CURVE server) on its p2p
// endpoint and connects one DEALER (a CURVE client that knows the server's
// public key) to every other configured node. A message from A to B travels
// over A's DEALER to B's ROUTER; B answers over its own DEALER to A. So a
// pair of nodes has two connections, each authenticated at its server end.
//
// Authentication. A CURVE server admits any client that completes the
// handshake unless a ZAP handler says otherwise. The ZapAuthenticator
// (consortia/zap_authenticator.h) is that handler: it answers "200" only for
// keys on its allow-list, and gives each admitted connection a User-Id (the
// node id). A PeerNet takes the sender of every message from that User-Id,
// never from what the sender claims, and drops a message whose envelope names
// another sender. The client end authenticates the server by its public key:
// a server with another key cannot complete the handshake.
//
// Wire. Every message is the bus Envelope (consortia/bus.h, kind kEvent,
// sender = the sending node's id, id = the sender's message sequence) and a
// payload frame. The envelope's `type` selects the handler; a type with no
// handler is counted and dropped.
//
// Budgets. One peer cannot take this node's attention. Each incoming message
// is charged to its authenticated sender before anything is decoded: a peer
// may send at most PeerBudget::messages messages and PeerBudget::bytes bytes
// per PeerBudget::interval; more are dropped and counted (kOverBudget). A
// peer that stays over budget for abusive_intervals intervals in a row is
// refused for back_off: every message it sends meanwhile is dropped unread
// (kBackedOff), and a handshake it attempts on a new connection is refused
// by the ZAP handler. A payload larger than the limit of its message type
// (max_message_bytes_by_type) is dropped and counted (kOversized) without
// reaching the handler; one larger than max_message_bytes closes the
// connection (ZeroMQ's ZMQ_MAXMSGSIZE).
//
// Channels. Handlers are registered per message type, so consensus and
// mempool gossip can share one PeerNet (the composition root gathers both
// services' handlers) when they run in one process. When they run as
// separate processes, each runs its own PeerNet on its own port, with its own
// context and ZapAuthenticator; the peer lists then name that service's port
// on every node. Message type numbers are shared with the bus (MsgType in
// consortia/service_api.h): a type means the same thing everywhere.
//
// Delivery is at most once, in order per pair of nodes while a connection
// lasts. Messages to a peer that is down wait in a bounded queue (send_hwm
// messages) and go out when it comes back; beyond that they are dropped and
// counted, and the sender never blocks. A connection that drops loses what
// was in flight; a peer that refuses this node's key (ZAP 400) discards the
// queue, and the connection is retried every reconnect_interval_max (libzmq
// itself gives up after a refusal). Consensus must therefore tolerate loss
// (timeouts, re-broadcast, block sync), as it must anyway.
//
// Defence in depth: the ROUTER also sets ZMQ_ZAP_ENFORCE_DOMAIN where libzmq
// offers it (a draft option that Debian's libzmq accepts), so even without
// a ZAP handler it would refuse clients rather than admit them all.
#ifndef CONSORTIA_COMMON_PEER_NET_H_
#define CONSORTIA_COMMON_PEER_NET_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/bus.h"
#include "consortia/bytes.h"
#include "consortia/curve_keys.h"
#include "consortia/zap_authenticator.h"

namespace zmq {
class context_t;
}

namespace consortia {

// ---------------------------------------------------------------- PeerNet

// One other node of the network.
struct PeerInfo {
  std::string id;         // its node id, also its ZAP User-Id
  std::string endpoint;   // its p2p endpoint, "tcp://10.0.0.2:7300"
  CurveKey public_key{};  // its transport public key
};

// The allow-list a ZapAuthenticator needs to admit these peers.
std::vector<AllowedKey> AllowListOf(const std::vector<PeerInfo>& peers);

// Runs on the PeerNet's I/O thread for each message of a registered type:
// `peer_id` is the authenticated sender. Must not block for long (hand heavy
// work to another thread); may call Send and Broadcast. Must not throw (an
// exception is caught and the message counted as received).
using PeerHandler = std::function<void(const std::string& peer_id,
                                       const Envelope& env, Bytes payload)>;

// Why a PeerNet dropped a message.
enum class PeerDrop : uint8_t {
  kSendQueueFull = 1,  // outgoing: the queue to that peer is at send_hwm
  kMalformed = 2,      // incoming: wrong frame count or envelope
  kUnknownType = 3,    // incoming: no handler for the type
  kUnknownSender = 4,  // incoming: not a configured peer, or the envelope
                       // names a sender other than the authenticated one
  kOversized = 5,      // incoming: payload over its type's limit
  kOverBudget = 6,     // incoming: the sender is over its budget
  kBackedOff = 7,      // incoming: the sender is refused for a while
};

// A short lowercase name of a drop reason ("over_budget", ...), for metric
// labels and logs.
std::string_view PeerDropName(PeerDrop why);

// What each peer may send per interval (see "Budgets" at the top). A zero
// limit means no limit of that kind.
struct PeerBudget {
  uint64_t messages = 50000;
  uint64_t bytes = uint64_t{512} << 20;
  absl::Duration interval = absl::Seconds(1);
  // Intervals in a row over budget before the peer is refused for back_off;
  // 0: never refused (over-budget messages are still dropped).
  int abusive_intervals = 10;
  absl::Duration back_off = absl::Seconds(30);
};

// Optional counters of a PeerNet. Implementations must be thread-safe.
class PeerNetMetrics {
 public:
  virtual ~PeerNetMetrics() = default;
  // The number of connected peers changed (see PeerNet::PeersConnected).
  virtual void PeersConnected(size_t connected) { (void)connected; }
  virtual void Dropped(PeerDrop why) { (void)why; }
  // An incoming message of a known peer was dropped (also counted by
  // Dropped): kOversized, kOverBudget, kBackedOff, kUnknownType.
  virtual void PeerDropped(PeerDrop why, const std::string& peer_id) {
    (void)why;
    (void)peer_id;
  }
  // A peer was refused for PeerBudget::back_off after sustained abuse.
  virtual void PeerBackedOff(const std::string& peer_id) { (void)peer_id; }
  // A handshake with a peer failed; refused_by_peer when its ZAP handler
  // refused this node's key.
  virtual void HandshakeFailed(bool refused_by_peer) { (void)refused_by_peer; }
};

struct PeerNetOptions {
  std::string node_id;        // this node; at most 256 bytes
  std::string bind_endpoint;  // "tcp://0.0.0.0:7300"; tests: 127.0.0.1
  CurveKeyPair key_pair;      // this node's transport keys
  // The other nodes. An entry with this node's id is skipped (so the whole
  // network's list can be passed) but must carry this node's public key.
  std::vector<PeerInfo> peers;
  // The context's ZAP handler: required, and of the same context, so that no
  // PeerNet can run with a server that admits anyone.
  std::shared_ptr<ZapAuthenticator> authenticator;
  // Handlers by message type; other types are counted and dropped.
  std::map<uint16_t, PeerHandler> handlers;
  PeerNetMetrics* metrics = nullptr;

  // Messages queued per peer before new ones to it are dropped.
  int send_hwm = 10000;
  // Messages queued per incoming connection before the sender is slowed.
  int recv_hwm = 10000;
  // A larger incoming message closes the connection (bounded memory).
  int64_t max_message_bytes = 64 << 20;
  // Tighter limits for some message types (payload bytes): a larger payload
  // of that type is dropped and counted (kOversized) before its handler
  // sees it. Each must be positive and at most max_message_bytes.
  std::map<uint16_t, int64_t> max_message_bytes_by_type;
  // What each peer may send (see "Budgets" at the top).
  PeerBudget budget;
  // Reconnect to a peer that went away after reconnect_interval, backing off
  // to reconnect_interval_max; retry a peer that refused the handshake every
  // reconnect_interval_max.
  absl::Duration reconnect_interval = absl::Milliseconds(100);
  absl::Duration reconnect_interval_max = absl::Seconds(2);
  // ZMTP heartbeats: a peer that answers no ping within heartbeat_timeout is
  // considered gone (its connection is closed and retried).
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
};

// Counters since start, for tests and diagnostics.
struct PeerNetStats {
  uint64_t sent = 0;      // messages queued to a peer (one per peer)
  uint64_t received = 0;  // messages given to a handler
  uint64_t send_dropped = 0;
  uint64_t malformed_dropped = 0;
  uint64_t unknown_type_dropped = 0;
  uint64_t unknown_sender_dropped = 0;
  uint64_t oversized_dropped = 0;
  uint64_t over_budget_dropped = 0;
  uint64_t backed_off_dropped = 0;
  uint64_t back_offs = 0;         // times a peer was refused for back_off
  uint64_t refused_by_peer = 0;   // a peer's ZAP refused this node's key
  uint64_t handshake_failed = 0;  // other outgoing handshake failures
                                  // (wrong server key, peer went away)
  uint64_t inbound_handshake_failed = 0;  // clients this node's server
                                          // rejected (ZAP, bad key, no CURVE)
};

struct PeerStatus {
  std::string id;
  std::string endpoint;
  bool connected = false;
  uint64_t sent = 0;      // queued to this peer
  uint64_t dropped = 0;   // dropped because its queue was full
  uint64_t received = 0;  // its messages given to a handler
  // Its messages dropped over budget, oversized, or while backed off.
  uint64_t over_budget = 0;
  uint64_t oversized = 0;
  uint64_t backed_off_dropped = 0;
  bool backed_off = false;  // refused right now
};

// Sends and receives messages between this node and its configured peers.
//
// Connection state: a peer counts as connected while this node's outgoing
// CURVE session to it is established (handshake done and not dropped since).
// ZMTP heartbeats close a session that stops answering; ZeroMQ then
// reconnects by itself, so a restarted peer is reached again without any
// action here.
//
// Thread-safe: Send, Broadcast and the accessors may be called from any
// thread, including a handler. Handlers run on the PeerNet's own I/O thread,
// one message at a time. The destructor stops the thread and closes the
// sockets (queued messages are discarded).
class PeerNet {
 public:
  virtual ~PeerNet() = default;

  // Queues one message for one peer and returns at once. NotFound for an
  // unknown peer id; ResourceExhausted when the queue to that peer is full
  // (the message is dropped and counted); FailedPrecondition once stopped
  // (context terminated). OK means queued, not delivered.
  virtual absl::Status Send(std::string_view peer_id, uint16_t type,
                            ByteView payload, uint64_t trace_id = 0) = 0;
  // Queues one message for every peer and returns at once; the payload is
  // shared, not copied per peer. Returns how many peers' queues took it;
  // the others' drops are counted.
  virtual size_t Broadcast(uint16_t type, ByteView payload,
                           uint64_t trace_id = 0) = 0;

  // Peers currently connected (the "peers connected" metric).
  virtual size_t PeersConnected() const = 0;
  // Every configured peer, in the order of the options.
  virtual std::vector<PeerStatus> Peers() const = 0;
  virtual PeerNetStats Stats() const = 0;
  virtual const std::string& node_id() const = 0;
};

// Binds, connects to every peer and starts the I/O thread. InvalidArgument
// for bad options (empty or long node id, duplicate peer ids, a peer with
// this node's key, no authenticator or one of another context, a malformed
// endpoint, non-positive limits, a per-type limit over max_message_bytes, a
// non-positive budget interval, back_off or abusive_intervals below 0);
// Unavailable if the endpoint cannot be bound
// (in use) or the context is terminated.
absl::StatusOr<std::unique_ptr<PeerNet>> StartPeerNet(zmq::context_t& ctx,
                                                      PeerNetOptions options);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_PEER_NET_H_
