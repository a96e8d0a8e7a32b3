// LoadP2pFiles and StartPeerNetFromFiles (consortia/peer_net_start.h): how
// consensus and mempool gossip start their PeerNets from the key and peers
// files.
#include "consortia/peer_net_start.h"

#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bus_test_util.h"
#include "consortia/config.h"
#include "consortia/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

using ::consortia::testing::WaitFor;
using ::testing::HasSubstr;

constexpr uint16_t kTypeHello = 300;

std::string Endpoint(uint16_t port) {
  return absl::StrCat("tcp://127.0.0.1:", port);
}

// Payloads received by a handler, with their authenticated sender.
// Thread-safe.
class Inbox {
 public:
  PeerHandler Handler() {
    return [this](const std::string& peer, const Envelope&, Bytes payload) {
      absl::MutexLock l(&mu_);
      got_.push_back(peer + ":" + std::string(payload.begin(), payload.end()));
    };
  }
  std::vector<std::string> All() {
    absl::MutexLock l(&mu_);
    return got_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> got_ ABSL_GUARDED_BY(mu_);
};

class PeerNetStartTest : public ::testing::Test {
 protected:
  // One node of the test network: its key file and its ports.
  struct Node {
    std::string id;
    CurveKeyPair keys;
    std::string key_path;
    uint16_t consensus_port = 0;
    uint16_t mempool_port = 0;  // 0: the node runs no gossip
  };

  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") +
                       "/consortia_peer_net_start_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }

  Node NewNode(const std::string& id, bool gossip) {
    Node n;
    n.id = id;
    absl::StatusOr<CurveKeyPair> keys = GenerateCurveKeyPair();
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (keys.ok()) n.keys = *keys;
    n.key_path = Path(id + "_p2p_key.json");
    EXPECT_TRUE(WriteFileAtomic(n.key_path, CurveKeyPairToJson(n.keys)).ok());
    n.consensus_port = Port();
    if (gossip) n.mempool_port = Port();
    return n;
  }

  // Writes a peers file listing `nodes`; returns its path.
  std::string WritePeers(const std::string& name,
                         const std::vector<Node>& nodes) {
    std::vector<PeersFileEntry> entries;
    for (const Node& n : nodes) {
      entries.push_back({n.id, Endpoint(n.consensus_port),
                         n.mempool_port == 0 ? "" : Endpoint(n.mempool_port),
                         n.keys.public_key});
    }
    const std::string path = Path(name);
    EXPECT_TRUE(WriteFileAtomic(path, PeersFileToJson(entries)).ok());
    return path;
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  static uint16_t Port() {
    absl::StatusOr<uint16_t> p = PickFreePort();
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : 0;
  }

  // Options as a service fills them: the bind endpoint and a handler. The
  // node id given is a wrong one: StartPeerNetFromFiles must replace it.
  static PeerNetOptions Options(uint16_t port, Inbox* inbox) {
    PeerNetOptions o;
    o.node_id = "not-from-the-files";
    o.bind_endpoint = Endpoint(port);
    o.handlers[kTypeHello] = inbox->Handler();
    return o;
  }

  std::string dir_;
};

TEST_F(PeerNetStartTest, LoadP2pFilesFindsThisNodeByItsKey) {
  const Node a = NewNode("node0", true);
  const Node b = NewNode("node1", false);
  const std::string peers = WritePeers("peers.json", {a, b});
  absl::StatusOr<P2pFiles> files = LoadP2pFiles(b.key_path, peers);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->node_id, "node1");
  EXPECT_EQ(files->key_pair.public_key, b.keys.public_key);
  EXPECT_EQ(files->key_pair.secret_key, b.keys.secret_key);
  ASSERT_EQ(files->entries.size(), 2u);
  EXPECT_EQ(files->entries[0].id, "node0");
  EXPECT_EQ(files->entries[0].mempool_endpoint, Endpoint(a.mempool_port));
}

TEST_F(PeerNetStartTest, LoadP2pFilesRefusesMissingAndBadFiles) {
  const Node a = NewNode("node0", true);
  const std::string peers = WritePeers("peers.json", {a});

  absl::StatusOr<P2pFiles> f = LoadP2pFiles(Path("no_key.json"), peers);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound) << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("no_key.json"));

  const std::string bad_key = Path("bad_key.json");
  ASSERT_TRUE(WriteFileAtomic(bad_key, "{\"key_type\": \"curvezmq\"}").ok());
  f = LoadP2pFiles(bad_key, peers);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
      << f.status();

  f = LoadP2pFiles(a.key_path, Path("no_peers.json"));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound) << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("no_peers.json"));

  const std::string not_json = Path("not_json.json");
  ASSERT_TRUE(WriteFileAtomic(not_json, "node0 tcp://127.0.0.1:1").ok());
  f = LoadP2pFiles(a.key_path, not_json);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
      << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(not_json));

  // An entry without an endpoint.
  const std::string no_endpoint = Path("no_endpoint.json");
  ASSERT_TRUE(
      WriteFileAtomic(no_endpoint,
                      absl::StrCat("[{\"id\": \"node0\", "
                                   "\"public_key\": \"",
                                   CurveKeyToZ85(a.keys.public_key), "\"}]"))
          .ok());
  f = LoadP2pFiles(a.key_path, no_endpoint);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
      << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("endpoint"));
}

TEST_F(PeerNetStartTest, LoadP2pFilesRefusesAKeyThePeersFileDoesNotList) {
  const Node a = NewNode("node0", true);
  const Node stranger = NewNode("stranger", true);
  const std::string peers = WritePeers("peers.json", {a});
  absl::StatusOr<P2pFiles> f = LoadP2pFiles(stranger.key_path, peers);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
      << f.status();
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr(absl::StrCat("the p2p key ", stranger.key_path,
                                     " is not in the peers file ", peers)));
}

// Two nodes started from their files reach each other as the ids of the
// peers file, on the endpoints of the service asked for.
TEST_F(PeerNetStartTest, StartsConnectedPeerNetsForEachService) {
  const Node a = NewNode("node0", true);
  const Node b = NewNode("node1", true);
  const Node c = NewNode("node2", false);  // no gossip
  const std::string peers = WritePeers("peers.json", {a, b, c});
  absl::StatusOr<P2pFiles> fa = LoadP2pFiles(a.key_path, peers);
  absl::StatusOr<P2pFiles> fb = LoadP2pFiles(b.key_path, peers);
  ASSERT_TRUE(fa.ok() && fb.ok());

  Inbox ia, ib, ma, mb;
  absl::StatusOr<std::unique_ptr<PeerNet>> na = StartPeerNetFromFiles(
      *fa, PeersFileService::kConsensus, Options(a.consensus_port, &ia));
  ASSERT_TRUE(na.ok()) << na.status();
  absl::StatusOr<std::unique_ptr<PeerNet>> nb = StartPeerNetFromFiles(
      *fb, PeersFileService::kConsensus, Options(b.consensus_port, &ib));
  ASSERT_TRUE(nb.ok()) << nb.status();
  // And the gossip of the same two nodes, beside them.
  absl::StatusOr<std::unique_ptr<PeerNet>> ga = StartPeerNetFromFiles(
      *fa, PeersFileService::kMempool, Options(a.mempool_port, &ma));
  ASSERT_TRUE(ga.ok()) << ga.status();
  absl::StatusOr<std::unique_ptr<PeerNet>> gb = StartPeerNetFromFiles(
      *fb, PeersFileService::kMempool, Options(b.mempool_port, &mb));
  ASSERT_TRUE(gb.ok()) << gb.status();

  EXPECT_EQ((*na)->node_id(), "node0");
  EXPECT_EQ((*gb)->node_id(), "node1");
  // Consensus: every other entry, at its `endpoint`.
  std::vector<PeerStatus> peers_a = (*na)->Peers();
  ASSERT_EQ(peers_a.size(), 2u);
  EXPECT_EQ(peers_a[0].id, "node1");
  EXPECT_EQ(peers_a[0].endpoint, Endpoint(b.consensus_port));
  EXPECT_EQ(peers_a[1].id, "node2");
  // Gossip: only the entries with a mempool endpoint, at it.
  std::vector<PeerStatus> gossip_a = (*ga)->Peers();
  ASSERT_EQ(gossip_a.size(), 1u);
  EXPECT_EQ(gossip_a[0].id, "node1");
  EXPECT_EQ(gossip_a[0].endpoint, Endpoint(b.mempool_port));

  // Each pair is admitted by the other's ZAP handler.
  ASSERT_TRUE(WaitFor([&] { return (*nb)->PeersConnected() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return (*gb)->PeersConnected() == 1; }));
  ASSERT_TRUE((*nb)->Send("node0", kTypeHello, ToBytes("vote")).ok());
  ASSERT_TRUE((*ga)->Send("node1", kTypeHello, ToBytes("tx")).ok());
  ASSERT_TRUE(WaitFor([&] { return ia.All().size() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return mb.All().size() == 1; }));
  EXPECT_EQ(ia.All()[0], "node1:vote");
  EXPECT_EQ(mb.All()[0], "node0:tx");
  EXPECT_TRUE(ib.All().empty());
  EXPECT_TRUE(ma.All().empty());
}

// The ZAP handler admits the keys of the peers file and no other: a node
// whose own peers file lists node0 is refused by node0.
TEST_F(PeerNetStartTest, AdmitsOnlyTheKeysOfThePeersFile) {
  const Node a = NewNode("node0", false);
  const Node stranger = NewNode("stranger", false);
  absl::StatusOr<P2pFiles> fa =
      LoadP2pFiles(a.key_path, WritePeers("peers.json", {a}));
  absl::StatusOr<P2pFiles> fs = LoadP2pFiles(
      stranger.key_path, WritePeers("stranger_peers.json", {a, stranger}));
  ASSERT_TRUE(fa.ok() && fs.ok());
  Inbox ia, is;
  absl::StatusOr<std::unique_ptr<PeerNet>> na = StartPeerNetFromFiles(
      *fa, PeersFileService::kConsensus, Options(a.consensus_port, &ia));
  ASSERT_TRUE(na.ok()) << na.status();
  absl::StatusOr<std::unique_ptr<PeerNet>> ns = StartPeerNetFromFiles(
      *fs, PeersFileService::kConsensus, Options(stranger.consensus_port, &is));
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(WaitFor([&] { return (*ns)->Stats().refused_by_peer > 0; }));
  EXPECT_EQ((*ns)->PeersConnected(), 0u);
  EXPECT_TRUE(ia.All().empty());
}

// A second PeerNet on the same endpoint fails to bind; the first one keeps
// running, and the failed start leaves nothing behind that blocks a later
// one (its context is terminated).
TEST_F(PeerNetStartTest, ABindFailureIsUnavailable) {
  const Node a = NewNode("node0", false);
  absl::StatusOr<P2pFiles> fa =
      LoadP2pFiles(a.key_path, WritePeers("peers.json", {a}));
  ASSERT_TRUE(fa.ok());
  Inbox inbox;
  absl::StatusOr<std::unique_ptr<PeerNet>> first = StartPeerNetFromFiles(
      *fa, PeersFileService::kConsensus, Options(a.consensus_port, &inbox));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<PeerNet>> second = StartPeerNetFromFiles(
      *fa, PeersFileService::kConsensus, Options(a.consensus_port, &inbox));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable)
      << second.status();
  EXPECT_EQ((*first)->node_id(), "node0");
}

}  // namespace
}  // namespace consortia
