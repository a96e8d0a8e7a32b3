// The validator-set changes the api adds to every answer with a proof
// (`validator_changes`, docs/api.md), cached so that they cost about one
// storage call per new block instead of one per request
// (ChainQueries::ListValidatorChanges, storage_queries.h).
//
// Why a cached answer is correct: committed changes are append-only and the
// record of a committed height never changes, except that its next_header
// and next_cert are absent until block height + 1 is committed (storage
// completes the record then). So storage's answer for up_to = U is the
// answer for every up_to <= U (its prefix of records at heights <= up_to)
// as long as each of its records has next_header and next_cert. When one
// lacks them, only the records below it are final: they answer every up_to
// below that record's height, and the incomplete record is not kept (the
// next query at or above its height asks storage again and gets it
// completed). The api asks only below heights storage has committed (a
// proof's height minus one), so U is never beyond storage's tip.
#ifndef CONSORTIA_API_VALIDATOR_CHANGES_CACHE_H_
#define CONSORTIA_API_VALIDATOR_CHANGES_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api_metrics.h"
#include "consortia/proof_bundle.h"
#include "consortia/storage_queries.h"

namespace consortia::api {

// Answers ListValidatorChanges(up_to) from the final changes it has seen
// when they cover up_to, else asks `chain` and keeps what its answer proves
// final (see above). Coverage only grows: an answer fetched for a lower
// up_to never replaces one for a higher. Counts each answer in `metrics`
// (validator_changes_total{source="cache"|"storage"}).
//
// Thread-safe; storage is called without the lock held, so concurrent
// misses may each ask storage.
class ValidatorChangesCache {
 public:
  // Neither is owned; both must outlive the cache. `metrics` may be null.
  ValidatorChangesCache(ChainQueries* chain, ApiMetrics* metrics);

  // The changes committed at heights <= up_to, in height order: what
  // chain->ListValidatorChanges(up_to) answers. Storage's error as it is
  // when it is asked and fails (nothing is cached then).
  absl::StatusOr<std::vector<StateRecord>> ChangesUpTo(uint64_t up_to);

  // The highest up_to the cache answers without storage (0 at first).
  uint64_t covered() const;

 private:
  ChainQueries* const chain_;
  ApiMetrics* const metrics_;
  mutable absl::Mutex mu_;
  // Every change at heights <= covered_, each with next_header and
  // next_cert, in height order.
  uint64_t covered_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<StateRecord> changes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_VALIDATOR_CHANGES_CACHE_H_
