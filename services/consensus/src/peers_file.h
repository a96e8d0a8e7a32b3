// The peers file of the consensus service: every validator's p2p endpoint and
// transport key.
#ifndef CONSORTIA_CONSENSUS_SRC_PEERS_FILE_H_
#define CONSORTIA_CONSENSUS_SRC_PEERS_FILE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/peer_net.h"

namespace consortia::consensus {

// Parses a JSON array of {"id": "...", "endpoint": "tcp://host:port",
// "public_key": "<z85>"}. InvalidArgument naming the entry and field for
// malformed JSON, a missing or non-string field, an empty id or endpoint, a
// key that is not Z85, or an id or key that appears twice.
absl::StatusOr<std::vector<PeerInfo>> ParsePeersJson(std::string_view text);
// Reads and parses a peers file (ReadFile's errors, or the above with the
// path).
absl::StatusOr<std::vector<PeerInfo>> LoadPeersFile(const std::string& path);
// The text of a peers file for `peers` (what ParsePeersJson reads).
std::string PeersToJson(const std::vector<PeerInfo>& peers);

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_PEERS_FILE_H_
