#include "validator_changes_cache.h"

#include <algorithm>
#include <utility>

namespace consortia::api {

ValidatorChangesCache::ValidatorChangesCache(ChainQueries* chain,
                                             ApiMetrics* metrics)
    : chain_(chain), metrics_(metrics) {}

uint64_t ValidatorChangesCache::covered() const {
  absl::ReaderMutexLock l(&mu_);
  return covered_;
}

absl::StatusOr<std::vector<StateRecord>> ValidatorChangesCache::ChangesUpTo(
    uint64_t up_to) {
  {
    absl::ReaderMutexLock l(&mu_);
    if (up_to <= covered_) {
      std::vector<StateRecord> out;
      for (const StateRecord& r : changes_) {
        if (r.height > up_to) break;
        out.push_back(r);
      }
      if (metrics_ != nullptr) metrics_->ValidatorChanges(/*cached=*/true);
      return out;
    }
  }
  if (metrics_ != nullptr) metrics_->ValidatorChanges(/*cached=*/false);
  absl::StatusOr<std::vector<StateRecord>> fetched =
      chain_->ListValidatorChanges(up_to);
  if (!fetched.ok()) return fetched;

  // Final: the records before the first without its next block's header
  // and certificate, and every up_to below that record's height.
  uint64_t final_up_to = up_to;
  size_t final_records = fetched->size();
  for (size_t i = 0; i < fetched->size(); ++i) {
    const StateRecord& r = (*fetched)[i];
    if (!r.next_header.has_value() || !r.next_cert.has_value()) {
      final_up_to = std::min(up_to, r.height > 0 ? r.height - 1 : 0);
      final_records = i;
      break;
    }
  }
  absl::MutexLock l(&mu_);
  if (final_up_to > covered_) {
    changes_.assign(fetched->begin(), fetched->begin() + final_records);
    covered_ = final_up_to;
  }
  return fetched;
}

}  // namespace consortia::api
