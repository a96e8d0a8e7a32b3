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
  return m;
}

}  // namespace consortia::consensus
