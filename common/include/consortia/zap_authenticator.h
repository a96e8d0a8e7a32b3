// The ZAP handler that admits only the CurveZMQ transport keys of the
// network's configured nodes (see "Authentication" in consortia/peer_net.h).
#ifndef CONSORTIA_COMMON_ZAP_AUTHENTICATOR_H_
#define CONSORTIA_COMMON_ZAP_AUTHENTICATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/curve_keys.h"

namespace zmq {
class context_t;
}

namespace consortia {

// ZAP domain of the p2p ROUTER sockets.
inline constexpr char kPeerZapDomain[] = "consortia.p2p";

// One admitted key and the User-Id its connections get (the node id).
struct AllowedKey {
  std::string node_id;
  CurveKey public_key{};
};

// Optional counters of a ZapAuthenticator. Implementations must be
// thread-safe; the calls come from the authenticator's thread.
class ZapMetrics {
 public:
  virtual ~ZapMetrics() = default;
  virtual void Accepted() {}
  // A handshake was refused (400): unknown key, other mechanism or domain.
  virtual void Refused() {}
};

// The ZAP handler (ZeroMQ RFC 27) of one zmq::context_t: a thread with a REP
// socket bound on inproc://zeromq.zap.01, which every CURVE server socket of
// the context asks before admitting a client. It answers:
//   200 + User-Id = node id  for mechanism CURVE, this authenticator's
//                            domain, and a client key on the allow-list;
//   400                      for anything else (unknown key, another
//                            mechanism, another domain);
//   500                      for a request that does not follow ZAP 1.0.
// ZeroMQ allows one ZAP handler per context, so the composition root creates
// exactly one per context (StartZapAuthenticator fails with AlreadyExists
// for a second one) and gives it to every PeerNet of that context.
//
// The allow-list can change at run time (a validator set change); the new
// list applies to handshakes from then on. Connections already admitted stay
// open until they drop.
//
// Thread-safe: any thread may call any method. Destroy it after the PeerNets
// that use it (they hold a shared_ptr) and before the context.
class ZapAuthenticator {
 public:
  virtual ~ZapAuthenticator() = default;

  // Replaces the allow-list. InvalidArgument (and the old list stays) if two
  // entries share a key with different node ids, or a node id is empty.
  virtual absl::Status SetAllowList(std::vector<AllowedKey> allowed) = 0;
  // The node id of an allowed key, or NotFound.
  virtual absl::StatusOr<std::string> NodeIdOf(const CurveKey& key) const = 0;
  // Refuses handshakes with `key` (400) until `until` (a PeerNet's back-off
  // after sustained abuse), even though it is allowed.
  virtual void RefuseUntil(const CurveKey& key, absl::Time until) = 0;

  virtual const std::string& domain() const = 0;
  // The context whose ZAP handler this is.
  virtual const zmq::context_t* context() const = 0;
  // Handshakes answered 200 and 400 (including 500) since start.
  virtual uint64_t accepted() const = 0;
  virtual uint64_t refused() const = 0;
};

// Binds the context's ZAP endpoint and starts answering. AlreadyExists if the
// context already has a ZAP handler; InvalidArgument if the allow-list is
// invalid (see SetAllowList) or the domain is empty; Unavailable if the
// socket cannot be created (context terminated).
absl::StatusOr<std::shared_ptr<ZapAuthenticator>> StartZapAuthenticator(
    zmq::context_t& ctx, std::vector<AllowedKey> allowed,
    std::string domain = kPeerZapDomain, ZapMetrics* metrics = nullptr);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_ZAP_AUTHENTICATOR_H_
