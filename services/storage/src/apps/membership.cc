#include "apps/membership.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace consortia::storage {

absl::StatusOr<std::optional<admin::MemberRecord>> FindMember(
    StateOverlay* state, ByteView public_key) {
  const std::string key = admin::MemberKey(public_key);
  absl::StatusOr<std::optional<StateEntry>> entry =
      state->Get(admin::kAppName, key);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value()) return std::nullopt;
  const Bytes& value = (*entry)->value;
  absl::StatusOr<admin::MemberRecord> member =
      admin::DecodeMember(std::string_view(
          reinterpret_cast<const char*>(value.data()), value.size()));
  if (!member.ok()) {
    return absl::DataLossError(absl::StrCat(
        "admin state ", key, " does not decode: ", member.status().message()));
  }
  return *std::move(member);
}

}  // namespace consortia::storage
