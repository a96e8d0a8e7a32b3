// The mempool's options: each declared once here (name, default, doc) and
// bounded in Validate().
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/types.h"

ABSL_FLAG(uint64_t, mempool_max_tx_bytes, 64 * 1024,
          "Largest encoded transaction the mempool admits, in bytes.");
ABSL_FLAG(uint64_t, mempool_max_txs, 100000,
          "Most transactions pending in the mempool at once.");
ABSL_FLAG(uint64_t, mempool_max_bytes, uint64_t{256} << 20,
          "Most encoded bytes pending in the mempool at once.");
ABSL_FLAG(uint64_t, mempool_max_per_sender, 10000,
          "Most transactions pending from one sender key.");
ABSL_FLAG(uint64_t, mempool_replay_window, 1000,
          "Heights ahead of the next one that a transaction's valid_until may "
          "reach; committed hashes are remembered as long.");
ABSL_FLAG(uint32_t, mempool_verify_threads, 0,
          "Signature-verification threads (0 = one per core).");
ABSL_FLAG(uint64_t, mempool_sig_cache_size, 100000,
          "Entries of the verified-signature cache (tx hash and signature "
          "digest, about 110 bytes each); 0 disables it.");

namespace consortia::mempool {
namespace {

// Bounds of the options.
constexpr uint64_t kMaxPoolTxs = 10'000'000;
constexpr uint64_t kMaxPoolBytes = uint64_t{64} << 30;
constexpr uint64_t kMaxReplayWindow = 1'000'000;
constexpr uint32_t kMaxVerifyThreads = 256;
constexpr uint64_t kMaxSigCacheSize = 10'000'000;

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
  o.replay_window = absl::GetFlag(FLAGS_mempool_replay_window);
  o.verify_threads = absl::GetFlag(FLAGS_mempool_verify_threads);
  o.sig_cache_size = absl::GetFlag(FLAGS_mempool_sig_cache_size);
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
    return OutOfRange("mempool_replay_window", replay_window, 1,
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
  if (reap_wait <= absl::ZeroDuration() || reap_wait > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reap_wait ", absl::FormatDuration(reap_wait), " must be in (0, 1m]"));
  }
  return absl::OkStatus();
}

}  // namespace consortia::mempool
