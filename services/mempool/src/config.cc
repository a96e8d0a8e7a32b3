// The mempool's options: each declared once here (see consortia/options.h)
// and checked in Validate().
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/options.h"
#include "consortia/types.h"
#include "gossip.h"

CONSORTIA_OPTION("mempool", uint64_t, mempool_max_tx_bytes, 64 * 1024, 1,
                 consortia::kMaxTxBytes,
                 "Largest encoded transaction the mempool admits, in bytes.");
CONSORTIA_OPTION("mempool", uint64_t, mempool_max_txs, 100000, 1, 10'000'000,
                 "Most transactions pending in the mempool at once.");
CONSORTIA_OPTION("mempool", uint64_t, mempool_max_bytes, uint64_t{256} << 20, 1,
                 int64_t{64} << 30,
                 "Most encoded bytes pending in the mempool at once (at least "
                 "--mempool_max_tx_bytes).");
CONSORTIA_OPTION("mempool", uint64_t, mempool_max_per_sender, 10000, 1,
                 10'000'000,
                 "Most transactions pending from one sender key (at most "
                 "--mempool_max_txs).");
CONSORTIA_OPTION("mempool", uint32_t, mempool_verify_threads, 0, 0, 256,
                 "Signature-verification threads (0 = one per core).");
CONSORTIA_OPTION("mempool", uint64_t, mempool_sig_cache_size, 100000, 0,
                 10'000'000,
                 "Entries of the verified-signature cache (tx hash and "
                 "signature digest, about 110 bytes each); 0 disables it.");
CONSORTIA_OPTION_UNBOUNDED(
    "mempool", std::string, mempool_p2p_endpoint, "",
    "Endpoint the mempool binds for the other nodes' mempools (tx gossip over "
    "CurveZMQ), e.g. tcp://0.0.0.0:26605; empty = no gossip.");
CONSORTIA_OPTION_UNBOUNDED(
    "mempool", std::string, mempool_p2p_key, "",
    "Path of this node's CurveZMQ key file, the same file as "
    "--consensus_p2p_key (required with --mempool_p2p_endpoint).");
CONSORTIA_OPTION_UNBOUNDED(
    "mempool", std::string, mempool_peers, "",
    "Path of the peers file, the same file as --consensus_peers; the entries' "
    "mempool_endpoint say where to gossip (required with "
    "--mempool_p2p_endpoint).");
CONSORTIA_OPTION("mempool", int64_t, mempool_gossip_interval_ms, 20, 1, 10'000,
                 "Longest time an admitted transaction waits before it is "
                 "sent to the peers, in ms.");
CONSORTIA_OPTION("mempool", uint64_t, mempool_gossip_batch_txs, 256, 1,
                 consortia::mempool::kMaxGossipBatchTxs,
                 "Most transactions per gossip message.");
// A batch's txs must fit one gossip message (gossip.h,
// kMaxGossipMessageBytes, 16 MiB) with room for one more tx of kMaxTxBytes.
CONSORTIA_OPTION("mempool", uint64_t, mempool_gossip_batch_bytes, 256 * 1024,
                 1024, int64_t{8} << 20,
                 "Most transaction bytes per gossip message (a larger single "
                 "transaction goes alone).");
CONSORTIA_OPTION("mempool", uint64_t, mempool_gossip_queue_txs, 10000, 1,
                 1'000'000,
                 "Most transactions waiting to be sent to one peer; more are "
                 "dropped and counted.");
CONSORTIA_OPTION("mempool", uint64_t, mempool_gossip_peer_queue_batches, 64, 1,
                 100'000,
                 "Most gossip batches received from one peer and waiting for "
                 "admission; more are dropped and counted against that peer.");
CONSORTIA_OPTION("mempool", uint64_t, mempool_gossip_peer_queue_bytes,
                 uint64_t{8} << 20, 64 << 10, int64_t{1} << 30,
                 "Most bytes (transaction bytes plus 64 per transaction) "
                 "received from one peer and waiting for admission; one batch "
                 "always fits an empty queue.");
CONSORTIA_OPTION(
    "mempool", uint64_t, mempool_gossip_fail_threshold, 3, 1, 1000,
    "Failed gossip batches (a bad-signature, malformed or wrong-chain "
    "transaction, or a batch that does not decode) within "
    "--mempool_gossip_fail_window_ms after which a peer is throttled.");
CONSORTIA_OPTION("mempool", int64_t, mempool_gossip_fail_window_ms, 10000, 100,
                 3'600'000,
                 "Window over which a peer's failed gossip batches are "
                 "counted, in ms.");
CONSORTIA_OPTION("mempool", int64_t, mempool_gossip_throttle_ms, 1000, 10,
                 3'600'000,
                 "How long a failing peer's gossip is dropped the first time, "
                 "in ms; doubles each time it is throttled again.");
CONSORTIA_OPTION("mempool", int64_t, mempool_gossip_max_throttle_ms, 60000, 10,
                 3'600'000,
                 "Longest a failing peer's gossip is dropped at once, in ms "
                 "(at least --mempool_gossip_throttle_ms); a peer quiet that "
                 "long starts again at --mempool_gossip_throttle_ms.");

namespace consortia::mempool {
namespace {

absl::Status OutOfRange(const char* flag, uint64_t value, uint64_t lo,
                        uint64_t hi) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, "=", value, " is out of bounds [", lo, ", ", hi, "]"));
}

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

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
  for (absl::Status s : {
           CheckOptionBounds(OPTION_mempool_max_tx_bytes, max_tx_bytes),
           CheckOptionBounds(OPTION_mempool_max_txs, max_txs),
           CheckOptionBounds(OPTION_mempool_max_bytes, max_bytes),
           CheckOptionRange(OPTION_mempool_max_bytes,
                            static_cast<int64_t>(max_bytes),
                            static_cast<int64_t>(max_tx_bytes),
                            *OPTION_mempool_max_bytes.max),
           CheckOptionBounds(OPTION_mempool_max_per_sender, max_per_sender),
           CheckOptionRange(OPTION_mempool_max_per_sender,
                            static_cast<int64_t>(max_per_sender), 1,
                            static_cast<int64_t>(max_txs)),
       }) {
    if (!s.ok()) return s;
  }
  // Set from the genesis chain rules, not a flag.
  if (replay_window < 1 || replay_window > kMaxReplayWindow) {
    return OutOfRange("chain_rules.replay_window", replay_window, 1,
                      kMaxReplayWindow);
  }
  if (absl::Status s = CheckOptionBounds(OPTION_mempool_verify_threads,
                                         uint64_t{verify_threads});
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckOptionBounds(OPTION_mempool_sig_cache_size, sig_cache_size);
      !s.ok()) {
    return s;
  }
  if (!p2p_endpoint.empty() && (p2p_key_path.empty() || peers_path.empty())) {
    return absl::InvalidArgumentError(
        "--mempool_p2p_endpoint needs --mempool_p2p_key and --mempool_peers");
  }
  for (absl::Status s : {
           CheckOptionBounds(OPTION_mempool_gossip_interval_ms,
                             Ms(gossip_interval)),
           CheckOptionBounds(OPTION_mempool_gossip_batch_txs, gossip_batch_txs),
           CheckOptionBounds(OPTION_mempool_gossip_batch_bytes,
                             gossip_batch_bytes),
           CheckOptionBounds(OPTION_mempool_gossip_queue_txs, gossip_queue_txs),
           CheckOptionBounds(OPTION_mempool_gossip_peer_queue_batches,
                             gossip_peer_queue_batches),
           CheckOptionBounds(OPTION_mempool_gossip_peer_queue_bytes,
                             gossip_peer_queue_bytes),
           CheckOptionBounds(OPTION_mempool_gossip_fail_threshold,
                             gossip_fail_threshold),
           CheckOptionBounds(OPTION_mempool_gossip_fail_window_ms,
                             Ms(gossip_fail_window)),
           CheckOptionBounds(OPTION_mempool_gossip_throttle_ms,
                             Ms(gossip_throttle)),
           CheckOptionBounds(OPTION_mempool_gossip_max_throttle_ms,
                             Ms(gossip_max_throttle)),
           // The longest back-off is at least the first.
           CheckOptionRange(OPTION_mempool_gossip_max_throttle_ms,
                            Ms(gossip_max_throttle), Ms(gossip_throttle),
                            *OPTION_mempool_gossip_max_throttle_ms.max),
       }) {
    if (!s.ok()) return s;
  }
  if (reap_wait <= absl::ZeroDuration() || reap_wait > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reap_wait ", absl::FormatDuration(reap_wait), " must be in (0, 1m]"));
  }
  return absl::OkStatus();
}

}  // namespace consortia::mempool
