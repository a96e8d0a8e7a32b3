// The consensus service's metrics. Business code calls these handles; only
// ConsensusMetrics::Create knows the Prometheus names.
#ifndef CONSORTIA_CONSENSUS_SRC_CONSENSUS_METRICS_H_
#define CONSORTIA_CONSENSUS_SRC_CONSENSUS_METRICS_H_

#include <array>
#include <set>
#include <string>

#include "consortia/metrics.h"
#include "consortia/peer_net.h"

namespace consortia::consensus {

// A default-constructed ConsensusMetrics is a no-op (for tests).
// Thread-safe.
struct ConsensusMetrics {
  Gauge height;
  Counter blocks_committed;
  Histogram block_txs;
  Histogram commit_duration;
  Histogram block_interval;
  // errors_total{kind}
  Counter chain_state_errors;  // kind="chain_state": GetChainState failed
  Counter reap_errors;         // kind="reap": the mempool did not answer
  Counter sign_errors;         // kind="sign": the node key could not sign
  Counter commit_errors;       // kind="commit": storage refused or failed

  // Tendermint (several validators; tendermint_driver.h).
  Gauge round;                  // round of the height in progress
  Histogram rounds_per_height;  // rounds a decided height took (1 = first)
  Counter proposals;            // proposals accepted from the network
  Counter votes_received;       // votes accepted from the network
  Counter timeouts_propose;     // timeouts_total{step}
  Counter timeouts_prevote;
  Counter timeouts_precommit;
  Gauge missing_validators;       // validators with no message in the
                                  // last decided height's final round
  Counter evidence;               // equivocations seen
  Counter evidence_dropped;       // errors_total{kind="evidence_dropped"}
  Counter evidence_store_errors;  // errors_total{kind="evidence_store"}
  Gauge validators;               // n of the set of the height in progress
  Gauge is_validator;             // 1 when this node is in that set, else 0
  // The set changed (a governance vote took effect), and the errors taking
  // one (errors_total{kind="validator_set"}).
  Counter validator_set_changes;
  Counter validator_set_errors;
  Gauge peers_connected;
  Gauge proposer;  // validator index proposing the round in progress
  // Block sync (kind="served": sent to lagging peers; "applied": decided
  // here from a peer's Commit; read_errors: storage could not supply one).
  Counter sync_blocks_served;
  Counter sync_blocks_applied;
  Counter commit_waits_skipped;
  Counter sync_read_errors;
  Counter messages_dropped;  // undecodable or over the inbound bound
  // valid(v) of proposed blocks (block_checker.h):
  // block_checks_total{outcome}: "valid_by_mempool" (the mempool vouched for
  // every tx), "valid_self_checked" (the mempool gave no answer: this node
  // checked the txs itself), "invalid", "undecided" (no answer: prevote nil,
  // asked again next round).
  Counter checks_valid_by_mempool;
  Counter checks_valid_self_checked;
  Counter checks_invalid;
  Counter checks_undecided;
  Histogram check_duration;  // block_check_duration_seconds
  // Txs whose signature this node verified itself (the mempool could not).
  Counter self_verified_txs;
  // Fresh proposals whose block time was not timely at their receipt
  // (untimely_proposals_total{direction}): "early" = more than the chain
  // rules' precision ahead of this node's clock, "late" = more than
  // precision + message delay behind it (docs/consensus.md, "Block time").
  Counter untimely_early;
  Counter untimely_late;

  // Budgets (docs/consensus.md, "Budgets"). Peer messages dropped, by
  // reason and by the kind of peer that sent them:
  // peer_messages_dropped_total{reason, peer_kind}.
  enum PeerKind { kValidatorPeer, kObserverPeer, kUnknownPeer, kPeerKinds };
  enum DropReason {
    kDropUndecodable,   // the driver could not decode it
    kDropQueueFull,     // the peer's inbound queue was full
    kDropObserver,      // not a status message, from an observer
    kDropOverBudget,    // PeerNet: over the peer's budget
    kDropBackedOff,     // PeerNet: the peer is refused for a while
    kDropOversized,     // PeerNet: over the limit of its type
    kDropUnknownType,   // PeerNet: no handler
    kDropMalformed,     // PeerNet: bad frames or envelope
    kDropUnknownSender  // PeerNet: not a configured peer
  };
  static constexpr size_t kDropReasons = kDropUnknownSender + 1;
  std::array<std::array<Counter, kPeerKinds>, kDropReasons> peer_drops;
  // Peers refused for a back-off period after sustained abuse.
  std::array<Counter, kPeerKinds> peer_back_offs;
  // Status messages answered, and merged into a later one of the same peer
  // (sync_requests_total{outcome}).
  Counter sync_requests_served;
  Counter sync_requests_skipped;
  // Peer messages waiting for the driver thread, over all peers.
  Gauge inbound_messages;
  Gauge inbound_bytes;

  // Registers consortia_consensus_* series in `registry`, which must outlive
  // the returned handles.
  static ConsensusMetrics Create(MetricsRegistry& registry);
};

// The consensus PeerNet's drops and back-offs, as ConsensusMetrics
// peer_drops and peer_back_offs, with the kind of each peer. Thread-safe.
class ConsensusPeerNetMetrics final : public PeerNetMetrics {
 public:
  ConsensusPeerNetMetrics(ConsensusMetrics metrics,
                          std::set<std::string> observers)
      : metrics_(std::move(metrics)), observers_(std::move(observers)) {}

  void PeersConnected(size_t connected) override;
  void Dropped(PeerDrop why) override;
  void PeerDropped(PeerDrop why, const std::string& peer_id) override;
  void PeerBackedOff(const std::string& peer_id) override;

 private:
  ConsensusMetrics::PeerKind KindOf(const std::string& peer_id) const;

  ConsensusMetrics metrics_;
  const std::set<std::string> observers_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_CONSENSUS_METRICS_H_
