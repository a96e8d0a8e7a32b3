// The consensus service's options: each declared once here (name, default,
// doc) and bounded in Validate().
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/consensus/consensus_service.h"
#include "consortia/types.h"

ABSL_FLAG(int64_t, consensus_block_poll_interval_ms, 20,
          "How often the proposer asks the mempool for transactions, in ms.");
ABSL_FLAG(int64_t, consensus_empty_block_interval_ms, 1000,
          "Longest time without a block, in ms: an empty block is made when "
          "no transaction came for this long.");
ABSL_FLAG(uint32_t, consensus_max_block_txs, 5000,
          "Most transactions per block.");
ABSL_FLAG(uint64_t, consensus_max_block_bytes, uint64_t{8} << 20,
          "Most encoded transaction bytes per block.");

ABSL_FLAG(std::string, consensus_p2p_endpoint, "tcp://127.0.0.1:26604",
          "Endpoint the consensus service binds for the other validators "
          "(used when the genesis has several validators).");
ABSL_FLAG(std::string, consensus_p2p_key, "",
          "Path of this node's CurveZMQ key file (JSON: key_type, "
          "public_key, secret_key).");
ABSL_FLAG(std::string, consensus_peers, "",
          "Path of the peers file: JSON array of {id, endpoint, public_key} "
          "for every node's consensus service; \"role\": \"observer\" marks "
          "a node that is not a validator's (only its block sync requests "
          "are taken).");
ABSL_FLAG(int64_t, consensus_timeout_propose_ms, 3000,
          "Propose timeout of round 0, in ms.");
ABSL_FLAG(int64_t, consensus_timeout_prevote_ms, 1000,
          "Prevote timeout of round 0, in ms.");
ABSL_FLAG(int64_t, consensus_timeout_precommit_ms, 1000,
          "Precommit timeout of round 0, in ms.");
ABSL_FLAG(int64_t, consensus_timeout_delta_ms, 500,
          "How much each timeout grows per round, in ms.");
ABSL_FLAG(int64_t, consensus_timeout_commit_ms, 500,
          "Pause after a decided height before the next one starts, in ms.");
ABSL_FLAG(int64_t, consensus_gossip_interval_ms, 500,
          "How often a validator tells its peers its height and relays the "
          "messages of a height that does not progress, in ms.");

namespace consortia::consensus {
namespace {

constexpr absl::Duration kMaxPollInterval = absl::Seconds(10);
constexpr absl::Duration kMaxEmptyBlockInterval = absl::Hours(1);

absl::Status OutOfRange(const char* flag, int64_t value, int64_t lo,
                        int64_t hi) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "=", value, " is out of bounds [", lo, ", ", hi, "]"));
}

}  // namespace

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
  const int64_t poll_ms = absl::ToInt64Milliseconds(block_poll_interval);
  const int64_t max_poll_ms = absl::ToInt64Milliseconds(kMaxPollInterval);
  if (poll_ms < 1 || poll_ms > max_poll_ms) {
    return OutOfRange("consensus_block_poll_interval_ms", poll_ms, 1,
                      max_poll_ms);
  }
  const int64_t empty_ms = absl::ToInt64Milliseconds(empty_block_interval);
  const int64_t max_empty_ms =
      absl::ToInt64Milliseconds(kMaxEmptyBlockInterval);
  if (empty_ms < poll_ms || empty_ms > max_empty_ms) {
    return OutOfRange("consensus_empty_block_interval_ms", empty_ms, poll_ms,
                      max_empty_ms);
  }
  if (max_block_txs < 1 || max_block_txs > kMaxBlockTxs) {
    return OutOfRange("consensus_max_block_txs", max_block_txs, 1,
                      kMaxBlockTxs);
  }
  if (max_block_bytes < kMaxTxBytes || max_block_bytes > kMaxBlockBytes) {
    return OutOfRange("consensus_max_block_bytes",
                      static_cast<int64_t>(max_block_bytes), kMaxTxBytes,
                      kMaxBlockBytes);
  }
  struct Bounded {
    const char* flag;
    absl::Duration value;
    int64_t lo_ms;
    int64_t hi_ms;
  };
  const Bounded timeouts[] = {
      {"consensus_timeout_propose_ms", timeout_propose, 1, 600'000},
      {"consensus_timeout_prevote_ms", timeout_prevote, 1, 600'000},
      {"consensus_timeout_precommit_ms", timeout_precommit, 1, 600'000},
      {"consensus_timeout_delta_ms", timeout_delta, 0, 600'000},
      {"consensus_timeout_commit_ms", timeout_commit, 0, 600'000},
      {"consensus_gossip_interval_ms", gossip_interval, 1, 600'000},
  };
  for (const Bounded& b : timeouts) {
    const int64_t ms = absl::ToInt64Milliseconds(b.value);
    if (ms < b.lo_ms || ms > b.hi_ms) {
      return OutOfRange(b.flag, ms, b.lo_ms, b.hi_ms);
    }
  }
  return absl::OkStatus();
}

}  // namespace consortia::consensus
