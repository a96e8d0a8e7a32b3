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
          "Most transactions waiting to be sent to one peer; more are "
          "dropped and counted.");
ABSL_FLAG(uint64_t, mempool_gossip_peer_queue_batches, 64,
          "Most gossip batches received from one peer and waiting for "
          "admission; more are dropped and counted against that peer.");
ABSL_FLAG(uint64_t, mempool_gossip_peer_queue_bytes, uint64_t{8} << 20,
          "Most bytes (transaction bytes plus 64 per transaction) received "
          "from one peer and waiting for admission; one batch always fits an "
          "empty queue.");
ABSL_FLAG(uint64_t, mempool_gossip_fail_threshold, 3,
          "Failed gossip batches (a bad-signature, malformed or wrong-chain "
          "transaction, or a batch that does not decode) within "
          "--mempool_gossip_fail_window_ms after which a peer is throttled.");
ABSL_FLAG(int64_t, mempool_gossip_fail_window_ms, 10000,
          "Window over which a peer's failed gossip batches are counted, in "
          "ms.");
ABSL_FLAG(int64_t, mempool_gossip_throttle_ms, 1000,
          "How long a failing peer's gossip is dropped the first time, in "
          "ms; doubles each time it is throttled again.");
ABSL_FLAG(int64_t, mempool_gossip_max_throttle_ms, 60000,
          "Longest a failing peer's gossip is dropped at once, in ms; a peer "
          "quiet that long starts again at --mempool_gossip_throttle_ms.");

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
constexpr uint64_t kMaxGossipPeerQueueBatches = 100'000;
constexpr uint64_t kMinGossipPeerQueueBytes = 64 << 10;
constexpr uint64_t kMaxGossipPeerQueueBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxGossipFailThreshold = 1000;
constexpr int64_t kMinGossipFailWindowMs = 100;
constexpr int64_t kMaxGossipFailWindowMs = 3'600'000;
constexpr int64_t kMinGossipThrottleMs = 10;
constexpr int64_t kMaxGossipThrottleMs = 3'600'000;

absl::Status OutOfRange(const char* flag, uint64_t value, uint64_t lo,
                        uint64_t hi) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "=", value, " is out of bounds [", lo, ", ", hi, "]"));
}

// A duration option in ms within [lo, hi].
absl::Status CheckMs(const char* flag, absl::Duration d, int64_t lo,
                     int64_t hi) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms < lo || ms > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", ms, " is out of bounds [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
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
  o.gossip_peer_queue_batches =
      absl::GetFlag(FLAGS_mempool_gossip_peer_queue_batches);
  o.gossip_peer_queue_bytes =
      absl::GetFlag(FLAGS_mempool_gossip_peer_queue_bytes);
  o.gossip_fail_threshold = absl::GetFlag(FLAGS_mempool_gossip_fail_threshold);
  o.gossip_fail_window =
      absl::Milliseconds(absl::GetFlag(FLAGS_mempool_gossip_fail_window_ms));
  o.gossip_throttle =
      absl::Milliseconds(absl::GetFlag(FLAGS_mempool_gossip_throttle_ms));
  o.gossip_max_throttle =
      absl::Milliseconds(absl::GetFlag(FLAGS_mempool_gossip_max_throttle_ms));
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
  if (gossip_peer_queue_batches < 1 ||
      gossip_peer_queue_batches > kMaxGossipPeerQueueBatches) {
    return OutOfRange("mempool_gossip_peer_queue_batches",
                      gossip_peer_queue_batches, 1, kMaxGossipPeerQueueBatches);
  }
  if (gossip_peer_queue_bytes < kMinGossipPeerQueueBytes ||
      gossip_peer_queue_bytes > kMaxGossipPeerQueueBytes) {
    return OutOfRange("mempool_gossip_peer_queue_bytes",
                      gossip_peer_queue_bytes, kMinGossipPeerQueueBytes,
                      kMaxGossipPeerQueueBytes);
  }
  if (gossip_fail_threshold < 1 ||
      gossip_fail_threshold > kMaxGossipFailThreshold) {
    return OutOfRange("mempool_gossip_fail_threshold", gossip_fail_threshold, 1,
                      kMaxGossipFailThreshold);
  }
  if (absl::Status s =
          CheckMs("mempool_gossip_fail_window_ms", gossip_fail_window,
                  kMinGossipFailWindowMs, kMaxGossipFailWindowMs);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckMs("mempool_gossip_throttle_ms", gossip_throttle,
                               kMinGossipThrottleMs, kMaxGossipThrottleMs);
      !s.ok()) {
    return s;
  }
  // The longest back-off is at least the first.
  if (absl::Status s = CheckMs(
          "mempool_gossip_max_throttle_ms", gossip_max_throttle,
          absl::ToInt64Milliseconds(gossip_throttle), kMaxGossipThrottleMs);
      !s.ok()) {
    return s;
  }
  if (reap_wait <= absl::ZeroDuration() || reap_wait > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reap_wait ", absl::FormatDuration(reap_wait), " must be in (0, 1m]"));
  }
  return absl::OkStatus();
}

}  // namespace consortia::mempool
