#include "consortia/peer_net_start.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/zap_authenticator.h"
#include "zmq.hpp"

namespace consortia {
namespace {

// A PeerNet with the context and ZAP handler it runs on. The members are
// declared in start order, so they are destroyed in reverse: the PeerNet
// (its sockets), then the authenticator (its socket), then the context,
// whose termination waits for every socket of it to be closed.
class ContextPeerNet final : public PeerNet {
 public:
  ContextPeerNet(std::unique_ptr<zmq::context_t> ctx,
                 std::shared_ptr<ZapAuthenticator> zap,
                 std::unique_ptr<PeerNet> net)
      : ctx_(std::move(ctx)), zap_(std::move(zap)), net_(std::move(net)) {}

  absl::Status Send(std::string_view peer_id, uint16_t type, ByteView payload,
                    uint64_t trace_id) override {
    return net_->Send(peer_id, type, payload, trace_id);
  }
  size_t Broadcast(uint16_t type, ByteView payload,
                   uint64_t trace_id) override {
    return net_->Broadcast(type, payload, trace_id);
  }
  size_t PeersConnected() const override { return net_->PeersConnected(); }
  std::vector<PeerStatus> Peers() const override { return net_->Peers(); }
  PeerNetStats Stats() const override { return net_->Stats(); }
  const std::string& node_id() const override { return net_->node_id(); }

 private:
  std::unique_ptr<zmq::context_t> ctx_;
  std::shared_ptr<ZapAuthenticator> zap_;
  std::unique_ptr<PeerNet> net_;
};

}  // namespace

absl::StatusOr<P2pFiles> LoadP2pFiles(const std::string& key_path,
                                      const std::string& peers_path) {
  P2pFiles files;
  absl::StatusOr<CurveKeyPair> key_pair = LoadCurveKeyPair(key_path);
  if (!key_pair.ok()) return key_pair.status();
  files.key_pair = *key_pair;
  absl::StatusOr<std::vector<PeersFileEntry>> entries =
      LoadPeersFileEntries(peers_path);
  if (!entries.ok()) return entries.status();
  files.entries = *std::move(entries);
  // Keys are unique in a peers file (ParsePeersFile), so at most one entry
  // matches.
  for (const PeersFileEntry& e : files.entries) {
    if (e.public_key == files.key_pair.public_key) files.node_id = e.id;
  }
  if (files.node_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the p2p key ", key_path, " is not in the peers file ", peers_path));
  }
  return files;
}

absl::StatusOr<std::unique_ptr<PeerNet>> StartPeerNetFromFiles(
    const P2pFiles& files, PeersFileService service, PeerNetOptions options) {
  auto ctx = std::make_unique<zmq::context_t>();
  absl::StatusOr<std::shared_ptr<ZapAuthenticator>> zap =
      StartZapAuthenticator(*ctx, AllowListOf(files.entries));
  if (!zap.ok()) return zap.status();
  options.node_id = files.node_id;
  options.key_pair = files.key_pair;
  options.peers = service == PeersFileService::kConsensus
                      ? ConsensusPeersOf(files.entries)
                      : MempoolPeersOf(files.entries);
  options.authenticator = *zap;
  absl::StatusOr<std::unique_ptr<PeerNet>> net =
      StartPeerNet(*ctx, std::move(options));
  if (!net.ok()) return net.status();
  return std::make_unique<ContextPeerNet>(std::move(ctx), *std::move(zap),
                                          *std::move(net));
}

}  // namespace consortia
