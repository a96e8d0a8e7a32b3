#include "consensus_metrics.h"

namespace consortia::consensus {

ConsensusMetrics ConsensusMetrics::Create(MetricsRegistry& registry) {
  ConsensusMetrics m;
  m.height = registry.GetGauge("consortia_consensus_height",
                               "Height of the last block this node committed.");
  m.blocks_committed = registry.GetCounter(
      "consortia_consensus_blocks_committed_total", "Blocks committed.");
  m.block_txs = registry.GetHistogram(
      "consortia_consensus_block_txs", "Transactions per committed block.",
      {0, 1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000});
  m.commit_duration = registry.GetHistogram(
      "consortia_consensus_commit_duration_seconds",
      "Time storage took to execute and persist one block.", LatencyBuckets());
  m.block_interval = registry.GetHistogram(
      "consortia_consensus_block_interval_seconds",
      "Time between two consecutive committed blocks.", LatencyBuckets());
  const char* help = "Failed steps of block production, by kind.";
  m.chain_state_errors = registry.GetCounter("consortia_consensus_errors_total",
                                             help, {{"kind", "chain_state"}});
  m.reap_errors = registry.GetCounter("consortia_consensus_errors_total", help,
                                      {{"kind", "reap"}});
  m.sign_errors = registry.GetCounter("consortia_consensus_errors_total", help,
                                      {{"kind", "sign"}});
  m.commit_errors = registry.GetCounter("consortia_consensus_errors_total",
                                        help, {{"kind", "commit"}});
  m.round = registry.GetGauge("consortia_consensus_round",
                              "Round of the height in progress.");
  m.rounds_per_height = registry.GetHistogram(
      "consortia_consensus_rounds_per_height",
      "Rounds a decided height took (1 = decided in its first round).",
      {1, 2, 3, 5, 10, 20});
  m.proposals = registry.GetCounter("consortia_consensus_proposals_total",
                                    "Proposals accepted from the network.");
  m.votes_received =
      registry.GetCounter("consortia_consensus_votes_received_total",
                          "Votes accepted from the network.");
  const char* timeouts = "Consensus timeouts that fired, by step.";
  m.timeouts_propose = registry.GetCounter("consortia_consensus_timeouts_total",
                                           timeouts, {{"step", "propose"}});
  m.timeouts_prevote = registry.GetCounter("consortia_consensus_timeouts_total",
                                           timeouts, {{"step", "prevote"}});
  m.timeouts_precommit = registry.GetCounter(
      "consortia_consensus_timeouts_total", timeouts, {{"step", "precommit"}});
  m.missing_validators = registry.GetGauge(
      "consortia_consensus_missing_validators",
      "Validators from which nothing was received in the deciding round of "
      "the last decided height.");
  m.evidence =
      registry.GetCounter("consortia_consensus_evidence_total",
                          "Equivocations (double proposals or votes) seen.");
  m.validators = registry.GetGauge(
      "consortia_consensus_validators",
      "Validators of the height in progress: the genesis's until a "
      "governance vote changes them (n; f = floor((n - 1) / 3)).");
  m.is_validator = registry.GetGauge(
      "consortia_consensus_is_validator",
      "1 when this node's key is in the validator set of the height in "
      "progress, 0 when it only follows the chain.");
  m.validator_set_changes = registry.GetCounter(
      "consortia_consensus_validator_set_changes_total",
      "Validator-set changes this node put in force (governance votes that "
      "took effect) since it started.");
  m.validator_set_errors = registry.GetCounter(
      "consortia_consensus_errors_total", help, {{"kind", "validator_set"}});
  m.peers_connected = registry.GetGauge("consortia_consensus_peers_connected",
                                        "Validators connected over p2p.");
  m.proposer = registry.GetGauge(
      "consortia_consensus_proposer",
      "Index (in the genesis) of the validator proposing the round in "
      "progress.");
  const char* sync = "Decided blocks moved by block sync, by direction.";
  m.sync_blocks_served = registry.GetCounter(
      "consortia_consensus_sync_blocks_total", sync, {{"direction", "served"}});
  m.sync_blocks_applied =
      registry.GetCounter("consortia_consensus_sync_blocks_total", sync,
                          {{"direction", "applied"}});
  m.commit_waits_skipped = registry.GetCounter(
      "consortia_consensus_commit_waits_skipped_total",
      "Heights started without the commit wait (--consensus_timeout_commit_ms) "
      "because the block just decided was full: txs were waiting.");
  m.sync_read_errors = registry.GetCounter("consortia_consensus_errors_total",
                                           help, {{"kind", "sync_read"}});
  m.evidence_dropped = registry.GetCounter(
      "consortia_consensus_errors_total", help, {{"kind", "evidence_dropped"}});
  m.evidence_store_errors = registry.GetCounter(
      "consortia_consensus_errors_total", help, {{"kind", "evidence_store"}});
  m.messages_dropped = registry.GetCounter(
      "consortia_consensus_messages_dropped_total",
      "Peer messages dropped: undecodable, or the inbound queue was full.");
  const char* checks =
      "Proposed blocks judged (valid(v)), by outcome: valid_by_mempool, "
      "valid_self_checked (the mempool did not answer; this node checked "
      "every tx itself), invalid, undecided (no answer: prevote nil).";
  m.checks_valid_by_mempool =
      registry.GetCounter("consortia_consensus_block_checks_total", checks,
                          {{"outcome", "valid_by_mempool"}});
  m.checks_valid_self_checked =
      registry.GetCounter("consortia_consensus_block_checks_total", checks,
                          {{"outcome", "valid_self_checked"}});
  m.checks_invalid =
      registry.GetCounter("consortia_consensus_block_checks_total", checks,
                          {{"outcome", "invalid"}});
  m.checks_undecided =
      registry.GetCounter("consortia_consensus_block_checks_total", checks,
                          {{"outcome", "undecided"}});
  m.check_duration = registry.GetHistogram(
      "consortia_consensus_block_check_duration_seconds",
      "Time to judge one proposed block.", LatencyBuckets());
  m.self_verified_txs = registry.GetCounter(
      "consortia_consensus_self_verified_txs_total",
      "Tx signatures this node verified itself because its mempool gave no "
      "verdict on a proposed block.");
  const char* untimely =
      "Fresh proposals whose block time was not timely against this node's "
      "clock when they came in (prevoted nil): early = more than the "
      "genesis block_time_precision_ms ahead, late = more than precision + "
      "message delay behind.";
  m.untimely_early =
      registry.GetCounter("consortia_consensus_untimely_proposals_total",
                          untimely, {{"direction", "early"}});
  m.untimely_late =
      registry.GetCounter("consortia_consensus_untimely_proposals_total",
                          untimely, {{"direction", "late"}});
  const char* drops =
      "Peer messages dropped before consensus used them, by reason and by "
      "the kind of peer that sent them.";
  const char* reasons[kDropReasons] = {
      "undecodable", "queue_full",   "observer",  "over_budget",   "backed_off",
      "oversized",   "unknown_type", "malformed", "unknown_sender"};
  const char* kinds[kPeerKinds] = {"validator", "observer", "unknown"};
  for (size_t r = 0; r < kDropReasons; ++r) {
    for (size_t k = 0; k < kPeerKinds; ++k) {
      m.peer_drops[r][k] = registry.GetCounter(
          "consortia_consensus_peer_messages_dropped_total", drops,
          {{"reason", reasons[r]}, {"peer_kind", kinds[k]}});
    }
  }
  for (size_t k = 0; k < kPeerKinds; ++k) {
    m.peer_back_offs[k] = registry.GetCounter(
        "consortia_consensus_peer_back_offs_total",
        "Peers refused for a back-off period after staying over their budget.",
        {{"peer_kind", kinds[k]}});
  }
  const char* requests =
      "Block sync requests (peer status messages), by outcome: served, or "
      "skipped (merged into a later request of the same peer).";
  m.sync_requests_served =
      registry.GetCounter("consortia_consensus_sync_requests_total", requests,
                          {{"outcome", "served"}});
  m.sync_requests_skipped =
      registry.GetCounter("consortia_consensus_sync_requests_total", requests,
                          {{"outcome", "skipped"}});
  m.inbound_messages = registry.GetGauge(
      "consortia_consensus_inbound_queued_messages",
      "Peer messages waiting for the driver thread, over all peers.");
  m.inbound_bytes = registry.GetGauge(
      "consortia_consensus_inbound_queued_bytes",
      "Bytes of the peer messages waiting for the driver thread.");
  return m;
}

ConsensusMetrics::PeerKind ConsensusPeerNetMetrics::KindOf(
    const std::string& peer_id) const {
  return observers_.count(peer_id) > 0 ? ConsensusMetrics::kObserverPeer
                                       : ConsensusMetrics::kValidatorPeer;
}

void ConsensusPeerNetMetrics::PeersConnected(size_t connected) {
  metrics_.peers_connected.Set(static_cast<double>(connected));
}

void ConsensusPeerNetMetrics::Dropped(PeerDrop why) {
  // Drops of a known peer come through PeerDropped.
  if (why == PeerDrop::kMalformed) {
    metrics_
        .peer_drops[ConsensusMetrics::kDropMalformed]
                   [ConsensusMetrics::kUnknownPeer]
        .Inc();
  } else if (why == PeerDrop::kUnknownSender) {
    metrics_
        .peer_drops[ConsensusMetrics::kDropUnknownSender]
                   [ConsensusMetrics::kUnknownPeer]
        .Inc();
  }
}

void ConsensusPeerNetMetrics::PeerDropped(PeerDrop why,
                                          const std::string& peer_id) {
  ConsensusMetrics::DropReason reason;
  switch (why) {
    case PeerDrop::kOverBudget:
      reason = ConsensusMetrics::kDropOverBudget;
      break;
    case PeerDrop::kBackedOff:
      reason = ConsensusMetrics::kDropBackedOff;
      break;
    case PeerDrop::kOversized:
      reason = ConsensusMetrics::kDropOversized;
      break;
    case PeerDrop::kUnknownType:
      reason = ConsensusMetrics::kDropUnknownType;
      break;
    default:
      return;
  }
  metrics_.peer_drops[reason][KindOf(peer_id)].Inc();
}

void ConsensusPeerNetMetrics::PeerBackedOff(const std::string& peer_id) {
  metrics_.peer_back_offs[KindOf(peer_id)].Inc();
}

}  // namespace consortia::consensus
