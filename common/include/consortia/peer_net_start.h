// A service's PeerNet, started from the node's p2p files: its CurveZMQ key
// file (consortia/curve_keys.h) and the network's peers file
// (consortia/peers_file.h). Consensus and mempool gossip start theirs the
// same way, in two steps:
//   1. LoadP2pFiles, before anything else starts, so that a missing or bad
//      file, or a key that the peers file does not list, fails the start at
//      once;
//   2. StartPeerNetFromFiles, once the handlers exist: a PeerNet on a ZeroMQ
//      context of its own (ZeroMQ allows one ZAP handler per context) with a
//      ZapAuthenticator that admits every key of the peers file, connected
//      to the entries' endpoints of the caller's service.
#ifndef CONSORTIA_COMMON_PEER_NET_START_H_
#define CONSORTIA_COMMON_PEER_NET_START_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/curve_keys.h"
#include "consortia/peer_net.h"
#include "consortia/peers_file.h"

namespace consortia {

// What a node's p2p files say, checked against each other.
struct P2pFiles {
  CurveKeyPair key_pair;                // this node's transport keys
  std::vector<PeersFileEntry> entries;  // every node, this one included
  std::string node_id;  // this node's entry: the one with key_pair's key
};

// Reads the key file at `key_path` and the peers file at `peers_path`, and
// finds this node's entry by its public key. Errors: LoadCurveKeyPair's and
// LoadPeersFileEntries's (NotFound etc. when a file cannot be read,
// InvalidArgument naming the file when it is malformed); InvalidArgument
// "the p2p key <key_path> is not in the peers file <peers_path>" when no
// entry has the key. Thread-safe.
absl::StatusOr<P2pFiles> LoadP2pFiles(const std::string& key_path,
                                      const std::string& peers_path);

// Which endpoint of each peers file entry a PeerNet connects to.
enum class PeersFileService {
  kConsensus,  // `endpoint`: every entry
  kMempool,    // `mempool_endpoint`: the entries that have one
};

// Starts a PeerNet for `service` on a new ZeroMQ context with its own
// ZapAuthenticator (allow-list: every key of files.entries, AllowListOf).
// `options` gives the bind endpoint, handlers, metrics and limits; its
// node_id, key_pair, peers and authenticator are set here from `files`
// (values given there are replaced). The PeerNet returned owns the context
// and the authenticator: destroying it stops the PeerNet, then the
// authenticator, then terminates the context. Errors: those of
// StartZapAuthenticator and StartPeerNet (InvalidArgument for bad options,
// Unavailable when the endpoint cannot be bound).
absl::StatusOr<std::unique_ptr<PeerNet>> StartPeerNetFromFiles(
    const P2pFiles& files, PeersFileService service, PeerNetOptions options);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_PEER_NET_START_H_
