// Who a tx's sender is in the consortium: the `admin` app's member records,
// read through the block's StateOverlay (so a member added earlier in the
// same block is seen). Shared by every app that checks an organisation or a
// role (admin, invoice, notary) and by the ledger's execution check.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_APPS_MEMBERSHIP_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_APPS_MEMBERSHIP_H_

#include <optional>

#include "absl/status/statusor.h"
#include "consortia/admin_records.h"
#include "consortia/bytes.h"
#include "state_overlay.h"

namespace consortia::storage {

// The member record of `public_key`, nullopt if the key is not registered.
// DataLoss if the stored record does not decode (state is corrupt: the block
// must not commit); the store's error if it cannot be read.
absl::StatusOr<std::optional<admin::MemberRecord>> FindMember(
    StateOverlay* state, ByteView public_key);

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_APPS_MEMBERSHIP_H_
