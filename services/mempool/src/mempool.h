// The in-process mempool: admission, the pending pool in arrival order, and
// the replay window of recently committed tx hashes.
#ifndef CONSORTIA_MEMPOOL_SRC_MEMPOOL_H_
#define CONSORTIA_MEMPOOL_SRC_MEMPOOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "consortia/crypto_suite.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "membership_cache.h"
#include "mempool_metrics.h"
#include "sig_cache.h"

namespace consortia::mempool {

// Implements MempoolApi for one chain.
//
// Submit checks each raw tx in this order and stops at the first failure:
// size (kTooLarge), decoding and fields (kMalformed, with the decoder's
// message or the field at fault), chain id (kWrongChain), the sender's
// membership on a permissioned chain (kUnregisteredSender, one lookup in the
// membership cache), valid_until
// against the next height (kExpired below it, kTooFarAhead beyond next
// height + replay_window), duplicates (kAlreadyPending, kAlreadyCommitted),
// the signature (kBadSignature), then the pool bounds (kPoolFull,
// kSenderLimit). Everything up to the signature runs on the verify pool and
// the calling thread together, in chunks of a few txs, so one batch uses
// every core; only the final admission into the pool is serial. A signature
// found in the verified-signature cache is not checked again.
//
// Reap hands out pending txs in arrival order; they stay pending until a
// commit event names them. CheckProposal judges the txs of a proposed
// block (decoding, chain, membership on a permissioned chain, window,
// replay, signature through the same cache). OnCommitted applies one
// block.committed event: it removes the block's txs, remembers their hashes
// until their valid_until passes, and evicts pending txs that can no longer
// be committed. The replay window is the one in force after the last event
// applied: options.replay_window (the genesis's) until an event or
// SetReplayWindow changes it (a governance vote, docs/apps.md).
//
// The mempool answers Unavailable until SetReady() is called (the service
// does so once it has rebuilt the replay window from storage).
//
// Memory: the pool holds at most max_txs txs and max_bytes encoded bytes
// (plus about 250 bytes of index per tx), the replay window one entry per tx
// committed in the last replay_window heights, and the signature cache
// sig_cache_size entries.
//
// Thread-safe: every method may be called from any thread.
class Mempool final : public MempoolApi {
 public:
  // `suite` must outlive the mempool, and so must `verify_pool` (nullptr =
  // verify on the calling thread).
  Mempool(const MempoolOptions& options, std::string chain_id,
          const CryptoSuite& suite, ThreadPool* verify_pool,
          MempoolMetrics metrics = {});

  Mempool(const Mempool&) = delete;
  Mempool& operator=(const Mempool&) = delete;

  // One result per raw tx, in input order. Unavailable before SetReady().
  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override;

  // Waits up to options.reap_wait for the applied height to reach
  // req.committed_height (Unavailable if it does not), then returns pending
  // txs in arrival order while both req.max_txs and req.max_bytes hold (a
  // limit of 0 reaps nothing). Stops at the first tx that does not fit, so
  // the order is never broken. Unavailable before SetReady().
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override;

  // See MempoolApi::CheckProposal. Waits up to options.reap_wait for the
  // commit events up to height - 1. Local admission limits (max_tx_bytes,
  // the pool bounds) do not apply; the replay window does, counted from
  // `height`. A tx that appears twice is kAlreadyCommitted the second time.
  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height) override;

  // Applies one commit event. Events at or below the applied height are
  // ignored; the caller (CommitFollower) fills gaps before calling, and
  // applies the event to members() first. On a permissioned chain, an event
  // that unregisters a key (or makes the chain permissioned) also evicts the
  // pending txs whose sender members() no longer admits.
  void OnCommitted(const CommittedEvent& event);

  // The member keys admission checks senders against; the CommitFollower
  // keeps it current.
  MembershipCache& members() { return members_; }
  const MembershipCache& members() const { return members_; }

  // Opens the mempool for Submit, Reap and CheckProposal.
  void SetReady();
  bool ready() const;

  // Height of the last commit event applied (0 before any).
  uint64_t applied_height() const;
  // The replay window in force after the last event applied (the
  // CommitFollower sets the one of the member page it starts from).
  uint64_t replay_window() const;
  void SetReplayWindow(uint64_t window);
  // The highest height a Reap or CheckProposal has waited for: when it
  // stays above applied_height(), commit events were lost and must be
  // fetched.
  uint64_t wanted_height() const;

  size_t pending_count() const;
  uint64_t pending_bytes() const;
  size_t sig_cache_size() const { return sig_cache_.size(); }

 private:
  struct Entry {
    Bytes raw;
    Hash32 hash{};
    std::string sender;
    uint64_t valid_until = 0;
  };
  // One tx of a batch while the verify pool checks it.
  struct Work;
  // Counts of one batch, summed over its chunks (the ranges of txs that
  // ParallelFor hands to one thread at a time).
  struct BatchStats;

  // Decodes raw and fills w.tx, w.sign_bytes and w.entry.hash (left zero
  // when raw does not decode), then checks the fields. nullopt when all is
  // well, else the kMalformed detail.
  std::optional<std::string> DecodeChecked(ByteView raw, Work& w) const;
  // nullopt when a tx with this validity and hash may be admitted now;
  // otherwise the rejection.
  std::optional<std::pair<Admission, std::string>> CheckState(
      uint64_t valid_until, const Hash32& hash) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // True if the signature of w.tx verifies, from the cache or by checking
  // it (and then caching it).
  bool SignatureOk(const Work& w, BatchStats& stats) const;
  // Runs the checks of Submit up to the signature on raw_txs[begin, end),
  // one chunk of a batch.
  void CheckSubmitChunk(const std::vector<Bytes>& raw_txs, size_t begin,
                        size_t end, std::vector<Work>& work,
                        BatchStats& stats) const;
  // Runs the checks of CheckProposal on raw_txs[begin, end), one chunk of a
  // proposal, all but the duplicates within the proposal.
  void CheckProposalChunk(const std::vector<Bytes>& raw_txs, uint64_t height,
                          uint64_t window, size_t begin, size_t end,
                          std::vector<ProposalTxCheck>& out,
                          BatchStats& stats) const;
  // Waits (with mu_ held) until the applied height reaches `height`.
  absl::Status AwaitHeight(uint64_t height) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemovePending(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RememberCommitted(const Hash32& hash, uint64_t valid_until)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MempoolOptions options_;
  const std::string chain_id_;
  const CryptoSuite& suite_;
  ThreadPool* const verify_pool_;
  MempoolMetrics metrics_;
  // Has its own locks; never touched with mu_ held.
  mutable SigCache sig_cache_;
  // Has its own lock; read with mu_ held only in OnCommitted (never the
  // other way round).
  MembershipCache members_;

  mutable absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t applied_height_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wanted_height_ ABSL_GUARDED_BY(mu_) = 0;
  // The permissioned flag of the last event applied.
  bool permissioned_ ABSL_GUARDED_BY(mu_) = false;
  // The replay window of the next height.
  uint64_t replay_window_ ABSL_GUARDED_BY(mu_);

  // The pending pool: arrival sequence -> entry, and its indexes.
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::btree_map<uint64_t, Entry> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Hash32, uint64_t> seq_by_hash_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> per_sender_ ABSL_GUARDED_BY(mu_);
  // (valid_until, seq) of every pending tx, to evict the expired ones.
  absl::btree_set<std::pair<uint64_t, uint64_t>> pending_expiry_
      ABSL_GUARDED_BY(mu_);
  uint64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  // The replay window: hashes committed recently -> their valid_until, and
  // (valid_until, hash) to drop the ones whose validity has passed.
  absl::flat_hash_map<Hash32, uint64_t> committed_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<std::pair<uint64_t, Hash32>> committed_expiry_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_SRC_MEMPOOL_H_
