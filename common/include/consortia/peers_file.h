// The peers file of a network: every node's id, transport public key and the
// PeerNet endpoints of its services. Consensus and mempool gossip read the
// same file, so both admit exactly the same keys (ZapAuthenticator).
//
// Format: a JSON array of objects
//   {"id": "node0",                       the node id (ZAP User-Id)
//    "endpoint": "tcp://10.0.0.1:26604",  its consensus p2p endpoint
//    "mempool_endpoint": "tcp://10.0.0.1:26605",  optional: its mempool
//                                         gossip endpoint (absent = that node
//                                         runs no gossip)
//    "public_key": "<z85>",               its CurveZMQ transport public key
//    "role": "observer"}                  optional: "validator" (the
//                                         default) or "observer", a node
//                                         that is not a validator's
// Other fields are ignored, so older readers accept newer files.
//
// Role. Consensus takes only block sync requests (status messages) from an
// observer, never proposals, votes or commits, so an observer cannot take a
// share of a validator's attention (docs/consensus.md, "Budgets"). An entry
// without a role counts as a validator's node, as before roles existed: list
// observers with "role": "observer".
#ifndef CONSORTIA_COMMON_PEERS_FILE_H_
#define CONSORTIA_COMMON_PEERS_FILE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/peer_net.h"

namespace consortia {

// One entry of a peers file.
struct PeersFileEntry {
  std::string id;
  std::string endpoint;          // consensus p2p
  std::string mempool_endpoint;  // mempool gossip; empty when absent
  CurveKey public_key{};
  bool observer = false;  // "role": "observer"
};

// Parses a peers file's text. InvalidArgument naming the entry and field for
// malformed JSON, a missing, empty or non-string id/endpoint/public_key, a
// mempool_endpoint that is present but not a non-empty string, a role other
// than "validator" or "observer", a key that is not Z85, or an id or key
// that appears twice.
absl::StatusOr<std::vector<PeersFileEntry>> ParsePeersFile(
    std::string_view text);
// Reads and parses a peers file (ReadFile's errors, or the above with the
// path).
absl::StatusOr<std::vector<PeersFileEntry>> LoadPeersFileEntries(
    const std::string& path);
// The text of a peers file (what ParsePeersFile reads); mempool_endpoint is
// written only when set, role only for observers.
std::string PeersFileToJson(const std::vector<PeersFileEntry>& entries);

// The PeerNet peers of consensus (every entry, at `endpoint`) and of mempool
// gossip (the entries with a mempool_endpoint, at it).
std::vector<PeerInfo> ConsensusPeersOf(
    const std::vector<PeersFileEntry>& entries);
std::vector<PeerInfo> MempoolPeersOf(
    const std::vector<PeersFileEntry>& entries);
// Every entry's key, for the ZapAuthenticator of either service: a node is
// admitted by its key whether or not it runs gossip.
std::vector<AllowedKey> AllowListOf(const std::vector<PeersFileEntry>& entries);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_PEERS_FILE_H_
