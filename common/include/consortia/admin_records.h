// The records of the `admin` app as they stand in state (app "admin"): the
// consortium's organisations and their members' keys with roles. Storage's
// apps write and read them; the api, the CLI and `consortia verify` decode
// them to show a proven record in words. A record is a JSON object written by
// the Encode functions below (sorted keys, no spaces), so every node writes
// the same bytes and the state tree hashes them alike.
//
// State keys (app "admin"):
//   org/<org id>             -> OrgRecord
//   member/<public key hex>  -> MemberRecord (lower-case hex of the key)
#ifndef CONSORTIA_COMMON_ADMIN_RECORDS_H_
#define CONSORTIA_COMMON_ADMIN_RECORDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"

namespace consortia::admin {

inline constexpr std::string_view kAppName = "admin";

// What a member key may do. A key holds one or more roles.
//   admin    proposes and approves governance changes for its organisation;
//   issuer   issues and voids e-invoices for its organisation;
//   auditor  reads every organisation's invoices through the api;
//   member   sends txs (kv, notary; accepts and reimburses its
//            organisation's invoices).
enum class Role : uint8_t { kAdmin, kIssuer, kAuditor, kMember };
std::string_view RoleName(Role r);
// InvalidArgument naming the accepted roles for an unknown name.
absl::StatusOr<Role> ParseRole(std::string_view name);

// An organisation id: 1-32 of [a-z0-9-], beginning with a letter or digit.
// InvalidArgument saying what is wrong.
absl::Status CheckOrgId(std::string_view id);

struct OrgRecord {
  std::string id;
  std::string name;           // display name, 1-128 bytes
  uint64_t added_height = 0;  // 0 = named in the genesis
  bool operator==(const OrgRecord&) const = default;
};

struct MemberRecord {
  Bytes public_key;           // the key's bytes (the state key is its hex)
  std::string org;            // the organisation it belongs to
  std::vector<Role> roles;    // sorted, distinct, at least one
  uint64_t added_height = 0;  // 0 = named in the genesis
  bool Has(Role r) const;
  bool operator==(const MemberRecord&) const = default;
};

std::string OrgKey(std::string_view org_id);
std::string MemberKey(ByteView public_key);

std::string EncodeOrg(const OrgRecord& r);
std::string EncodeMember(const MemberRecord& r);
// Strict: every field present and well-formed, no extra fields, no repeated
// keys. InvalidArgument naming the field otherwise.
absl::StatusOr<OrgRecord> DecodeOrg(std::string_view json);
absl::StatusOr<MemberRecord> DecodeMember(std::string_view json);

}  // namespace consortia::admin

#endif  // CONSORTIA_COMMON_ADMIN_RECORDS_H_
