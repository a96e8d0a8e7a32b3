// Test-only: a network of N nodes, each the four real service processes
// (storage, mempool, consensus, api) on 127.0.0.1 ports, running Tendermint
// among the validators' consensus services over CurveZMQ. Optionally every
// ordered pair of nodes talks through its own FaultProxy link, so a test can
// cut a node off and heal it. Every process is stopped by its own pid when
// the harness is destroyed. Not thread-safe.
#ifndef CONSORTIA_TESTS_SUPPORT_NETWORK_HARNESS_H_
#define CONSORTIA_TESTS_SUPPORT_NETWORK_HARNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "consortia/config.h"
#include "consortia/http_client.h"
#include "consortia/peer_net.h"
#include "consortia/process.h"
#include "consortia/types.h"
#include "fault_proxy.h"
#include "gtest/gtest.h"
#include "node_harness.h"

namespace consortia::testing {

struct NetworkOptions {
  int validators = 4;
  // Nodes (after the validators) whose keys are not in the genesis but
  // which every peers file lists as validators' nodes: they follow the
  // chain until a governance vote adds their key to the validator set.
  int candidates = 0;
  // Nodes whose keys are not in the genesis: they run all four services and
  // follow the chain, but never propose or vote.
  int observers = 0;
  // Route each ordered pair of nodes through a FaultProxy link (Isolate,
  // Heal). Off: nodes connect directly.
  bool proxied = false;
  // Allow-list one more p2p identity, "tester", that the test itself can
  // use to talk to the consensus services (tester(), peers()). It is listed
  // without a role, so the nodes treat it as a validator's node; observers
  // are listed with "role": "observer".
  bool tester_peer = false;
  // Run mempool gossip: each mempool binds its own p2p endpoint
  // (--mempool_p2p_endpoint), and the peers file names it as each node's
  // "mempool_endpoint" (through its own FaultProxy link when proxied; cut
  // and healed with the consensus link of the same pair). On by default, as
  // in the local network.
  bool mempool_gossip = true;
  // The genesis chain rules (block limits, replay window).
  ChainRules chain_rules;
  // The genesis's crypto suite: every node key, the client key and the txs.
  std::string crypto_suite = "ed25519-sha256";
  // Set: a permissioned chain with this consortium in its genesis.
  std::optional<Consortium> consortium = {};
  // More flags, by binary name ("consortia-consensus", ...), for every node.
  std::map<std::string, std::vector<std::string>> extra_flags;
  // Run another executable (of the build's bin directory) in place of one
  // of a node's binaries, with the same flags: {node, {binary, replacement}}
  // (e.g. a test-only lying mempool on one validator).
  std::map<int, std::map<std::string, std::string>> replace_binary;
};

// The nodes a test's load goes to, in turn: a test marks a node down before
// it stops or kills it, and up once it is back. Thread-safe.
class LiveNodes {
 public:
  explicit LiveNodes(int nodes) : live_(nodes, true) {}
  void Set(int node, bool live);
  bool Live(int node) const;
  // The next live node after the last one handed out (round robin), or -1
  // when none is live.
  int Next();

 private:
  mutable absl::Mutex mu_;
  std::vector<bool> live_ ABSL_GUARDED_BY(mu_);
  int next_ ABSL_GUARDED_BY(mu_) = 0;
};

class NetworkHarness {
 public:
  // The binaries of one node, in start order.
  static const std::vector<std::string>& Binaries();

  // Writes keys, genesis and peers files under a temporary directory.
  // Aborts on I/O errors (a broken test machine).
  explicit NetworkHarness(NetworkOptions options = {});
  // Stops every process (SIGTERM, then SIGKILL after a grace period).
  ~NetworkHarness();
  NetworkHarness(const NetworkHarness&) = delete;
  NetworkHarness& operator=(const NetworkHarness&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  const Genesis& genesis() const { return genesis_; }
  // The genesis's crypto suite.
  const CryptoSuite& suite() const { return SuiteNamed(genesis_.crypto_suite); }
  const HttpTarget& api(int node) const { return nodes_[node]->api; }
  const HttpTarget& ops(int node, const std::string& binary) const {
    return nodes_[node]->ops.at(binary);
  }
  const std::string& dir(int node) const { return nodes_[node]->dir; }
  // The key that signs the txs of Submit.
  const KeyPair& client() const { return client_; }
  // Node i's validator (or observer) key.
  const NodeKey& node_key(int node) const { return node_keys_[node]; }
  // With options.tester_peer: the tester identity (its endpoint is where
  // the nodes dial it) and the nodes' direct consensus p2p endpoints.
  const PeerInfo& tester() const { return tester_; }
  const CurveKeyPair& tester_key() const { return tester_key_; }
  const std::vector<PeerInfo>& peers() const { return peers_; }

  // Processes. Start* return an error when a binary cannot start; StartAll
  // and StartNode also wait (up to `timeout`) for the api's /readyz.
  absl::Status StartAll(absl::Duration timeout = absl::Seconds(90));
  absl::Status StartNode(int node, absl::Duration timeout = absl::Seconds(90));
  absl::Status StartProcess(int node, const std::string& binary);
  absl::Status WaitReady(int node, absl::Duration timeout);
  // SIGKILL and reap.
  void Kill(int node, const std::string& binary);
  void KillNode(int node);
  // SIGTERM (then SIGKILL after 20 s) to each process, api first.
  void StopNode(int node);
  // SIGSTOP / SIGCONT: a process that is frozen (its sockets stay open, it
  // answers nothing) and wakes up again.
  void Pause(int node, const std::string& binary);
  void Resume(int node, const std::string& binary);
  bool Running(int node, const std::string& binary) const;

  // Partitions; need options.proxied. Cut every link to and from `node`, or
  // one direction of one pair; HealAll restores every link.
  void Isolate(int node);
  void SetLinkCut(int from, int to, bool cut);
  void HealAll();

  // Chain queries through the node's api (0 / "" / false when it does not
  // answer).
  uint64_t Height(int node) const;
  std::string BlockHashAt(int node, uint64_t height) const;
  bool Committed(int node, const Hash32& tx_hash) const;
  // The value of a metric sample (first line whose name and labels start
  // with `sample`, e.g. "consortia_consensus_height") on a process's
  // /metrics; nullopt when absent or unreachable.
  std::optional<double> Metric(int node, const std::string& binary,
                               const std::string& sample) const;
  // The sum of every sample of `name` whose labels contain `label` (e.g.
  // "reason=\"over_budget\""; "" for all); nullopt when unreachable.
  std::optional<double> MetricSum(int node, const std::string& binary,
                                  const std::string& name,
                                  const std::string& label = "") const;
  // The resident set size of a running process (VmRSS), or nullopt.
  std::optional<uint64_t> RssBytes(int node, const std::string& binary) const;

  // A kv.set tx signed by client(), for key "k<nonce>"; valid for 1000
  // heights above `node`'s height.
  Transaction MakeTx(int node, uint64_t nonce) const;
  // POSTs it; the tx hash when the api answered 202.
  absl::StatusOr<Hash32> SubmitTx(int node, const Transaction& tx) const;
  // `count` txs with nonces nonce_base...; the hashes of those accepted.
  std::vector<Hash32> Submit(int node, int count, uint64_t nonce_base) const;

  // Every node in `nodes` reports the same block hash at every height
  // 1..up_to (and has them all).
  ::testing::AssertionResult SameHashes(uint64_t up_to,
                                        const std::vector<int>& nodes) const;
  // Polls cond every 100 ms until it holds or timeout passes.
  static bool WaitUntil(const std::function<bool()>& cond,
                        absl::Duration timeout = absl::Seconds(60));
  std::string LogTail(int node, const std::string& binary,
                      size_t bytes = 3000) const;

 private:
  struct Node {
    std::string dir;
    HttpTarget api;
    std::map<std::string, HttpTarget> ops;
    std::vector<std::string> common_flags;
    std::map<std::string, std::vector<std::string>> own_flags;
    std::map<std::string, ChildProcess> procs;
  };

  NetworkOptions options_;
  TempDir root_;
  Genesis genesis_;
  KeyPair client_;  // TestKey(9) of the chain's suite
  std::vector<NodeKey> node_keys_;
  std::vector<PeerInfo> peers_;
  PeerInfo tester_;
  CurveKeyPair tester_key_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unique_ptr<FaultProxy> proxy_;
  // links_[{from, to}]: the FaultProxy link `from` dials to reach `to`.
  std::map<std::pair<int, int>, int> links_;
  // The same for the mempool gossip links (options.mempool_gossip).
  std::map<std::pair<int, int>, int> mempool_links_;
};

}  // namespace consortia::testing

#endif  // CONSORTIA_TESTS_SUPPORT_NETWORK_HARNESS_H_
