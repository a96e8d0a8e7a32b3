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

// Messages handled per wake-up before the loop looks at its other sockets.
inline constexpr int kMaxBatchPerWake = 1024;
// A repeated warning (refused key, full queue) is logged at most this often.
inline constexpr absl::Duration kLogEvery = absl::Seconds(10);

// Reads one whole multipart message without blocking; false when nothing is
// waiting. Frames past max_frames are consumed and dropped (*too_many).
inline bool RecvMultipart(zmq::socket_t& sock,
                          std::vector<zmq::message_t>* parts, size_t max_frames,
                          bool* too_many) {
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

inline absl::Status SocketError(const zmq::error_t& e, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("p2p: ", what, ": ", e.what()));
}

// Checks the options and returns the peers to connect to (this node
// removed). InvalidArgument naming what is wrong.
absl::StatusOr<std::vector<PeerInfo>> CheckPeerNetOptions(
    const zmq::context_t& ctx, const PeerNetOptions& o);

}  // namespace consortia::p2p_internal

#endif  // CONSORTIA_COMMON_SRC_P2P_INTERNAL_H_
