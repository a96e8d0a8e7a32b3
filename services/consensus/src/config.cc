// The consensus service's options: each declared once here (name, default,
// doc) and bounded in Validate().
#include <cstdint>

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
  return absl::OkStatus();
}

}  // namespace consortia::consensus
