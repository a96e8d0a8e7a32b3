// The consensus service's options: each declared once here (see
// consortia/options.h) and checked in Validate().
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/consensus/consensus_service.h"
#include "consortia/options.h"
#include "consortia/types.h"

CONSORTIA_OPTION(
    "consensus", int64_t, consensus_block_poll_interval_ms, 20, 1, 10'000,
    "How often the proposer asks the mempool for transactions, in ms.");
CONSORTIA_OPTION("consensus", int64_t, consensus_empty_block_interval_ms, 1000,
                 1, 3'600'000,
                 "Longest time without a block, in ms: an empty block is made "
                 "when no transaction came for this long (at least "
                 "--consensus_block_poll_interval_ms).");
CONSORTIA_OPTION(
    "consensus", uint32_t, consensus_max_block_txs, 5000, 1,
    consortia::kMaxBlockTxs,
    "Most transactions in a block this node proposes (cut to the "
    "genesis chain_rules.max_block_txs, which binds every block).");
CONSORTIA_OPTION("consensus", uint64_t, consensus_max_block_bytes,
                 uint64_t{8} << 20, consortia::kMaxTxBytes,
                 consortia::kMaxBlockBytes,
                 "Most encoded transaction bytes in a block this node proposes "
                 "(at least the largest admissible tx; cut to the genesis "
                 "chain_rules.max_block_bytes).");
CONSORTIA_OPTION_UNBOUNDED(
    "consensus", std::string, consensus_p2p_endpoint, "tcp://127.0.0.1:26604",
    "Endpoint the consensus service binds for the other validators (used "
    "when the genesis has several validators).");
CONSORTIA_OPTION_UNBOUNDED(
    "consensus", std::string, consensus_p2p_key, "",
    "Path of this node's CurveZMQ key file (JSON: key_type, public_key, "
    "secret_key).");
CONSORTIA_OPTION_UNBOUNDED(
    "consensus", std::string, consensus_peers, "",
    "Path of the peers file: JSON array of {id, endpoint, public_key} for "
    "every node's consensus service; \"role\": \"observer\" marks a node "
    "that is not a validator's (only its block sync requests are taken).");
CONSORTIA_OPTION("consensus", int64_t, consensus_timeout_propose_ms, 3000, 1,
                 600'000, "Propose timeout of round 0, in ms.");
CONSORTIA_OPTION("consensus", int64_t, consensus_timeout_prevote_ms, 1000, 1,
                 600'000, "Prevote timeout of round 0, in ms.");
CONSORTIA_OPTION("consensus", int64_t, consensus_timeout_precommit_ms, 1000, 1,
                 600'000, "Precommit timeout of round 0, in ms.");
CONSORTIA_OPTION("consensus", int64_t, consensus_timeout_delta_ms, 500, 0,
                 600'000, "How much each timeout grows per round, in ms.");
CONSORTIA_OPTION(
    "consensus", int64_t, consensus_timeout_commit_ms, 100, 0, 600'000,
    "Pause after a decided height before the next one starts, in ms (lets "
    "txs gather; none after a full block).");
CONSORTIA_OPTION("consensus", int64_t, consensus_gossip_interval_ms, 500, 1,
                 600'000,
                 "How often a validator tells its peers its height and relays "
                 "the messages of a height that does not progress, in ms.");

namespace consortia::consensus {

ConsensusOptions ConsensusOptions::FromFlags() {
  ConsensusOptions o;
  o.block_poll_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_block_poll_interval_ms));
  o.empty_block_interval = absl::Milliseconds(
      absl::GetFlag(FLAGS_consensus_empty_block_interval_ms));
  o.max_block_txs = absl::GetFlag(FLAGS_consensus_max_block_txs);
  o.max_block_bytes = absl::GetFlag(FLAGS_consensus_max_block_bytes);
  o.p2p_endpoint = absl::GetFlag(FLAGS_consensus_p2p_endpoint);
  o.p2p_key_path = absl::GetFlag(FLAGS_consensus_p2p_key);
  o.peers_path = absl::GetFlag(FLAGS_consensus_peers);
  o.timeout_propose =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_timeout_propose_ms));
  o.timeout_prevote =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_timeout_prevote_ms));
  o.timeout_precommit =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_timeout_precommit_ms));
  o.timeout_delta =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_timeout_delta_ms));
  o.timeout_commit =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_timeout_commit_ms));
  o.gossip_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_consensus_gossip_interval_ms));
  return o;
}

absl::Status ConsensusOptions::Validate() const {
  auto ms = [](absl::Duration d) { return absl::ToInt64Milliseconds(d); };
  const int64_t poll_ms = ms(block_poll_interval);
  for (absl::Status s : {
           CheckOptionBounds(OPTION_consensus_block_poll_interval_ms, poll_ms),
           CheckOptionBounds(OPTION_consensus_empty_block_interval_ms,
                             ms(empty_block_interval)),
           // An empty block is made no sooner than the mempool is asked.
           CheckOptionRange(OPTION_consensus_empty_block_interval_ms,
                            ms(empty_block_interval), poll_ms,
                            *OPTION_consensus_empty_block_interval_ms.max),
           CheckOptionBounds(OPTION_consensus_max_block_txs,
                             int64_t{max_block_txs}),
           CheckOptionBounds(OPTION_consensus_max_block_bytes, max_block_bytes),
           CheckOptionBounds(OPTION_consensus_timeout_propose_ms,
                             ms(timeout_propose)),
           CheckOptionBounds(OPTION_consensus_timeout_prevote_ms,
                             ms(timeout_prevote)),
           CheckOptionBounds(OPTION_consensus_timeout_precommit_ms,
                             ms(timeout_precommit)),
           CheckOptionBounds(OPTION_consensus_timeout_delta_ms,
                             ms(timeout_delta)),
           CheckOptionBounds(OPTION_consensus_timeout_commit_ms,
                             ms(timeout_commit)),
           CheckOptionBounds(OPTION_consensus_gossip_interval_ms,
                             ms(gossip_interval)),
       }) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace consortia::consensus
