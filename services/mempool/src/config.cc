// The mempool's options: each declared once here (name, default, doc) and
// bounded in Validate().
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/types.h"
#include "gossip.h"

ABSL_FLAG(uint64_t, mempool_max_tx_bytes, 64 * 1024,
          "Largest encoded transaction the mempool admits, in bytes.");
ABSL_FLAG(uint64_t, mempool_max_txs, 100000,
          "Most transactions pending in the mempool at once.");
ABSL_FLAG(uint64_t, mempool_max_bytes, uint64_t{256} << 20,
          "Most encoded bytes pending in the mempool at once.");
ABSL_FLAG(uint64_t, mempool_max_per_sender, 10000,
          "Most transactions pending from one sender key.");
ABSL_FLAG(uint32_t, mempool_verify_threads, 0,
          "Signature-verification threads (0 = one per core).");
ABSL_FLAG(uint64_t, mempool_sig_cache_size, 100000,
          "Entries of the verified-signature cache (tx hash and signature "
          "digest, about 110 bytes each); 0 disables it.");
ABSL_FLAG(std::string, mempool_p2p_endpoint, "",
          "Endpoint the mempool binds for the other nodes' mempools (tx "
          "gossip over CurveZMQ), e.g. tcp://0.0.0.0:26605; empty = no "
          "gossip.");
ABSL_FLAG(std::string, mempool_p2p_key, "",
          "Path of this node's CurveZMQ key file, the same file as "
          "--consensus_p2p_key (required with --mempool_p2p_endpoint).");
ABSL_FLAG(std::string, mempool_peers, "",
          "Path of the peers file, the same file as --consensus_peers; the "
          "entries' mempool_endpoint say where to gossip (required with "
          "--mempool_p2p_endpoint).");
ABSL_FLAG(int64_t, mempool_gossip_interval_ms, 20,
          "Longest time an admitted transaction waits before it is sent to "
          "the peers, in ms.");
ABSL_FLAG(uint64_t, mempool_gossip_batch_txs, 256,
          "Most transactions per gossip message.");
ABSL_FLAG(uint64_t, mempool_gossip_batch_bytes, 256 * 1024,
          "Most transaction bytes per gossip message (a larger single "
          "transaction goes alone).");
ABSL_FLAG(uint64_t, mempool_gossip_queue_txs, 10000,
          "Most transactions waiting to be sent to one peer, and most "
          "received ones waiting for admission; more are dropped and "
          "counted.");

namespace consortia::mempool {
namespace {

// Bounds of the options.
constexpr uint64_t kMaxPoolTxs = 10'000'000;
constexpr uint64_t kMaxPoolBytes = uint64_t{64} << 30;
constexpr uint32_t kMaxVerifyThreads = 256;
constexpr uint64_t kMaxSigCacheSize = 10'000'000;
constexpr int64_t kMaxGossipIntervalMs = 10'000;
// A batch's txs must fit one gossip message (gossip.h,
// kMaxGossipMessageBytes, 16 MiB) with room for one more tx of kMaxTxBytes.
constexpr uint64_t kMinGossipBatchBytes = 1024;
constexpr uint64_t kMaxGossipBatchBytes = uint64_t{8} << 20;
constexpr uint64_t kMaxGossipQueueTxs = 1'000'000;

absl::Status OutOfRange(const char* flag, uint64_t value, uint64_t lo,
                        uint64_t hi) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "=", value, " is out of bounds [", lo, ", ", hi, "]"));
}

}  // namespace

MempoolOptions MempoolOptions::FromFlags() {
  MempoolOptions o;
  o.max_tx_bytes = absl::GetFlag(FLAGS_mempool_max_tx_bytes);
  o.max_txs = absl::GetFlag(FLAGS_mempool_max_txs);
  o.max_bytes = absl::GetFlag(FLAGS_mempool_max_bytes);
  o.max_per_sender = absl::GetFlag(FLAGS_mempool_max_per_sender);
  o.verify_threads = absl::GetFlag(FLAGS_mempool_verify_threads);
  o.sig_cache_size = absl::GetFlag(FLAGS_mempool_sig_cache_size);
  o.p2p_endpoint = absl::GetFlag(FLAGS_mempool_p2p_endpoint);
  o.p2p_key_path = absl::GetFlag(FLAGS_mempool_p2p_key);
  o.peers_path = absl::GetFlag(FLAGS_mempool_peers);
  o.gossip_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_mempool_gossip_interval_ms));
  o.gossip_batch_txs = absl::GetFlag(FLAGS_mempool_gossip_batch_txs);
  o.gossip_batch_bytes = absl::GetFlag(FLAGS_mempool_gossip_batch_bytes);
  o.gossip_queue_txs = absl::GetFlag(FLAGS_mempool_gossip_queue_txs);
  return o;
}

absl::Status MempoolOptions::Validate() const {
  if (max_tx_bytes < 1 || max_tx_bytes > kMaxTxBytes) {
    return OutOfRange("mempool_max_tx_bytes", max_tx_bytes, 1, kMaxTxBytes);
  }
  if (max_txs < 1 || max_txs > kMaxPoolTxs) {
    return OutOfRange("mempool_max_txs", max_txs, 1, kMaxPoolTxs);
  }
  if (max_bytes < max_tx_bytes || max_bytes > kMaxPoolBytes) {
    return OutOfRange("mempool_max_bytes", max_bytes, max_tx_bytes,
                      kMaxPoolBytes);
  }
  if (max_per_sender < 1 || max_per_sender > max_txs) {
    return OutOfRange("mempool_max_per_sender", max_per_sender, 1, max_txs);
  }
  if (replay_window < 1 || replay_window > kMaxReplayWindow) {
    return OutOfRange("chain_rules.replay_window", replay_window, 1,
                      kMaxReplayWindow);
  }
  if (verify_threads > kMaxVerifyThreads) {
    return OutOfRange("mempool_verify_threads", verify_threads, 0,
                      kMaxVerifyThreads);
  }
  if (sig_cache_size > kMaxSigCacheSize) {
    return OutOfRange("mempool_sig_cache_size", sig_cache_size, 0,
                      kMaxSigCacheSize);
  }
  if (!p2p_endpoint.empty() && (p2p_key_path.empty() || peers_path.empty())) {
    return absl::InvalidArgumentError(
        "--mempool_p2p_endpoint needs --mempool_p2p_key and --mempool_peers");
  }
  const int64_t interval_ms = absl::ToInt64Milliseconds(gossip_interval);
  if (interval_ms < 1 || interval_ms > kMaxGossipIntervalMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mempool_gossip_interval_ms=", interval_ms,
                     " is out of bounds [1, ", kMaxGossipIntervalMs, "]"));
  }
  if (gossip_batch_txs < 1 || gossip_batch_txs > kMaxGossipBatchTxs) {
    return OutOfRange("mempool_gossip_batch_txs", gossip_batch_txs, 1,
                      kMaxGossipBatchTxs);
  }
  if (gossip_batch_bytes < kMinGossipBatchBytes ||
      gossip_batch_bytes > kMaxGossipBatchBytes) {
    return OutOfRange("mempool_gossip_batch_bytes", gossip_batch_bytes,
                      kMinGossipBatchBytes, kMaxGossipBatchBytes);
  }
  if (gossip_queue_txs < 1 || gossip_queue_txs > kMaxGossipQueueTxs) {
    return OutOfRange("mempool_gossip_queue_txs", gossip_queue_txs, 1,
                      kMaxGossipQueueTxs);
  }
  if (reap_wait <= absl::ZeroDuration() || reap_wait > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reap_wait ", absl::FormatDuration(reap_wait), " must be in (0, 1m]"));
  }
  return absl::OkStatus();
}

}  // namespace consortia::mempool
