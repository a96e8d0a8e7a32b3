// The `notary` app: proof of existence of documents (records:
// common/include/consortia/notary_records.h).
//
//   anchor(hash_hex, metadata)  by any sender the ledger admitted: records
//       the hash with its metadata, the sender's key and organisation ("" on
//       a chain without a consortium), the block's height and time.
//       kExists if the hash was ever anchored (a revoked record is kept).
//   revoke(hash_hex, reason)    by the key that anchored it, or by a key
//       with the admin role of its organisation (kNotOwner otherwise);
//       kInvalidState if it is revoked already. The history keeps both steps.
//
// Other codes: kBadArgs (argument count or form), kNotFound (revoking a hash
// never anchored), kUnknownMethod. Every kOk receipt's log is a sentence an
// event consumer can show. The anchoring time is the block's time, which
// the validators bound on both sides (docs/consensus.md, ADR 0007).
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_APPS_NOTARY_APP_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_APPS_NOTARY_APP_H_

#include <string>
#include <string_view>
#include <vector>

#include "apps/app.h"
#include "consortia/notary_records.h"

namespace consortia::storage {

// Stateless: thread-safe.
class NotaryApp : public NativeApp {
 public:
  static constexpr std::string_view kName = notary::kAppName;

  std::string_view name() const override { return kName; }
  absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                     StateOverlay* state) const override;
  // doc/<64 lower-case hex>.
  absl::Status CheckQueryKey(std::string_view key) const override;
  // anchor and revoke read the document's record.
  void AddReadHints(const Transaction& tx,
                    std::vector<std::string>* keys) const override;
  // ... and the sender's member record (app admin).
  void AddOtherAppReadHints(const Transaction& tx,
                            std::vector<AppStateKey>* keys) const override;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_APPS_NOTARY_APP_H_
