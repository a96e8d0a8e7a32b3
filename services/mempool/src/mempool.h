// The in-process mempool: admission, the pending pool in arrival order, and
// the replay window of recently committed tx hashes.
#ifndef CONSORTIA_MEMPOOL_SRC_MEMPOOL_H_
#define CONSORTIA_MEMPOOL_SRC_MEMPOOL_H_

#include <cstdint>
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
#include "mempool_metrics.h"

namespace consortia::mempool {

// Implements MempoolApi for one chain.
//
// Submit checks each raw tx in this order and stops at the first failure:
// size (kTooLarge), decoding (kMalformed, with the decoder's message), chain
// id (kWrongChain), valid_until against the next height (kExpired below it,
// kTooFarAhead beyond next height + replay_window), duplicates
// (kAlreadyPending, kAlreadyCommitted), the signature (kBadSignature; all
// signatures of a batch are checked in parallel on the verify pool), then the
// pool bounds (kPoolFull, kSenderLimit). Admitted txs join the pool in arrival
// order.
//
// Reap hands out pending txs in arrival order; they stay pending until a
// commit event names them. OnCommitted applies one block.committed event:
// it removes the block's txs, remembers their hashes until their valid_until
// passes, and evicts pending txs that can no longer be committed.
//
// The mempool answers Unavailable until SetReady() is called (the service
// does so once it has rebuilt the replay window from storage).
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

  // Applies one commit event. Events at or below the applied height are
  // ignored; the caller (CommitFollower) fills gaps before calling.
  void OnCommitted(const CommittedEvent& event);

  // Opens the mempool for Submit and Reap.
  void SetReady();
  bool ready() const;

  // Height of the last commit event applied (0 before any).
  uint64_t applied_height() const;
  // The highest committed_height a Reap has asked for: when it stays above
  // applied_height(), commit events were lost and must be fetched.
  uint64_t wanted_height() const;

  size_t pending_count() const;
  uint64_t pending_bytes() const;

 private:
  struct Entry {
    Bytes raw;
    Hash32 hash{};
    std::string sender;
    uint64_t valid_until = 0;
  };
  // A tx that passed the stateless checks and waits for its signature check.
  struct Candidate {
    size_t index = 0;  // position in the submitted batch
    Transaction tx;
    Hash32 hash{};
    bool signature_ok = false;
  };

  // nullopt when the tx may proceed; otherwise the rejection.
  std::optional<std::pair<Admission, std::string>> CheckState(
      const Candidate& c) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void VerifySignatures(std::vector<Candidate>& candidates);
  void RemovePending(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RememberCommitted(const Hash32& hash, uint64_t valid_until)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reject(SubmitResult& r, Admission code, std::string detail);

  const MempoolOptions options_;
  const std::string chain_id_;
  const CryptoSuite& suite_;
  ThreadPool* const verify_pool_;
  MempoolMetrics metrics_;

  mutable absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t applied_height_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wanted_height_ ABSL_GUARDED_BY(mu_) = 0;

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
