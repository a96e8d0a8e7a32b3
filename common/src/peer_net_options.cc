#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/peer_net.h"
#include "p2p_internal.h"

namespace consortia::p2p_internal {
namespace {

// Envelope sender limit of the bus (bus.cc).
constexpr size_t kMaxNodeIdBytes = 256;

}  // namespace

absl::StatusOr<std::vector<PeerInfo>> CheckPeerNetOptions(
    const zmq::context_t& ctx, const PeerNetOptions& o) {
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

}  // namespace consortia::p2p_internal
