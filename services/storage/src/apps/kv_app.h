// The `kv` app: owned key-value records.
//
//   set(key, value)  creates the record, owned by the tx's sender, or updates
//                    it if the sender owns it (else kNotOwner).
//   delete(key)      removes a record the sender owns (kNotOwner otherwise,
//                    kNotFound if there is none).
//
// Reading a record is a query (StateQueries::GetState("kv", key)), not a tx.
// Wrong argument counts or sizes are kBadArgs, other methods kUnknownMethod.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_APPS_KV_APP_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_APPS_KV_APP_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "apps/app.h"

namespace consortia::storage {

inline constexpr size_t kMaxKvKeyBytes = 256;
inline constexpr size_t kMaxKvValueBytes = kMaxArgBytes;

// Stateless: thread-safe.
class KvApp : public NativeApp {
 public:
  static constexpr std::string_view kName = "kv";

  std::string_view name() const override { return kName; }
  absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                     StateOverlay* state) const override;
  absl::Status CheckQueryKey(std::string_view key) const override;
  // set and delete read their key's record.
  void AddReadHints(const Transaction& tx,
                    std::vector<std::string>* keys) const override;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_APPS_KV_APP_H_
