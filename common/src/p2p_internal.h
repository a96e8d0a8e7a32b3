// Helpers shared by the p2p sources (peer_net.cc, zap_authenticator.cc,
// peer_net_options.cc). Private to consortia_peer_net.
#ifndef CONSORTIA_COMMON_SRC_P2P_INTERNAL_H_
#define CONSORTIA_COMMON_SRC_P2P_INTERNAL_H_

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "consortia/peer_net.h"
#include "zmq.hpp"

namespace consortia::p2p_internal {

// A repeated warning (refused key, full queue) is logged at most this often.
inline constexpr absl::Duration kLogEvery = absl::Seconds(10);

inline absl::Status SocketError(const zmq::error_t& e, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("p2p: ", what, ": ", e.what()));
}

// Checks the options and returns the peers to connect to (this node
// removed). InvalidArgument naming what is wrong.
absl::StatusOr<std::vector<PeerInfo>> CheckPeerNetOptions(
    const zmq::context_t& ctx, const PeerNetOptions& o);

}  // namespace consortia::p2p_internal

#endif  // CONSORTIA_COMMON_SRC_P2P_INTERNAL_H_
