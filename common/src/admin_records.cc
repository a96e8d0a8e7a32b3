#include "consortia/admin_records.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"

namespace consortia::admin {
namespace {

using nlohmann::json;

constexpr size_t kMaxOrgNameBytes = 128;

// The object's fields must be exactly `names`.
absl::Status ExactFields(const json& j, absl::string_view what,
                         std::initializer_list<absl::string_view> names) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an object"));
  }
  for (absl::string_view n : names) {
    if (!j.contains(std::string(n.data(), n.size()))) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field '", n, "' is missing"));
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(names.begin(), names.end(), it.key()) == names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown field '", std::string(it.key()), "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StringField(const json& j, const char* name,
                                        absl::string_view what) {
  const json& v = j.at(name);
  if (!v.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be a string"));
  }
  return v.get<std::string>();
}

absl::StatusOr<uint64_t> HeightField(const json& j, const char* name,
                                     absl::string_view what) {
  const json& v = j.at(name);
  if (!v.is_number_unsigned()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be an unsigned integer"));
  }
  return v.get<uint64_t>();
}

}  // namespace

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kIssuer:
      return "issuer";
    case Role::kAuditor:
      return "auditor";
    case Role::kMember:
      return "member";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(std::string_view name) {
  const absl::string_view shown(name.data(), name.size());
  for (Role r : {Role::kAdmin, Role::kIssuer, Role::kAuditor, Role::kMember}) {
    if (RoleName(r) == name) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", shown,
                   "' (the roles are admin, issuer, auditor, member)"));
}

absl::Status CheckOrgId(std::string_view id_std) {
  const absl::string_view id(id_std.data(), id_std.size());
  if (id.empty() || id.size() > 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "organisation id must be 1-32 characters, got ", id.size()));
  }
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "organisation id '", id, "' may hold only a-z, 0-9 and '-'"));
    }
  }
  if (id.front() == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("organisation id '", id, "' must not begin with '-'"));
  }
  return absl::OkStatus();
}

bool MemberRecord::Has(Role r) const {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

std::string OrgKey(std::string_view org_id) {
  return absl::StrCat("org/", absl::string_view(org_id.data(), org_id.size()));
}

std::string MemberKey(ByteView public_key) {
  return absl::StrCat("member/", ToHex(public_key));
}

std::string EncodeOrg(const OrgRecord& r) {
  json j = {{"id", r.id}, {"name", r.name}, {"added_height", r.added_height}};
  return j.dump();
}

std::string EncodeMember(const MemberRecord& r) {
  json roles = json::array();
  for (Role role : r.roles) roles.push_back(std::string(RoleName(role)));
  json j = {{"public_key", ToHex(r.public_key)},
            {"org", r.org},
            {"roles", std::move(roles)},
            {"added_height", r.added_height}};
  return j.dump();
}

absl::StatusOr<OrgRecord> DecodeOrg(std::string_view text) {
  constexpr absl::string_view kWhat = "organisation record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(*j, kWhat, {"id", "name", "added_height"});
      !s.ok()) {
    return s;
  }
  OrgRecord r;
  absl::StatusOr<std::string> id = StringField(*j, "id", kWhat);
  if (!id.ok()) return id.status();
  if (absl::Status s = CheckOrgId(*id); !s.ok()) return s;
  r.id = *std::move(id);
  absl::StatusOr<std::string> name = StringField(*j, "name", kWhat);
  if (!name.ok()) return name.status();
  if (name->empty() || name->size() > kMaxOrgNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": name must be 1-", kMaxOrgNameBytes, " bytes"));
  }
  r.name = *std::move(name);
  absl::StatusOr<uint64_t> h = HeightField(*j, "added_height", kWhat);
  if (!h.ok()) return h.status();
  r.added_height = *h;
  return r;
}

absl::StatusOr<MemberRecord> DecodeMember(std::string_view text) {
  constexpr absl::string_view kWhat = "member record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(
          *j, kWhat, {"public_key", "org", "roles", "added_height"});
      !s.ok()) {
    return s;
  }
  MemberRecord r;
  absl::StatusOr<std::string> key_hex = StringField(*j, "public_key", kWhat);
  if (!key_hex.ok()) return key_hex.status();
  absl::StatusOr<Bytes> key = FromHex(*key_hex);
  if (!key.ok() || key->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": public_key must be non-empty hex"));
  }
  r.public_key = *std::move(key);
  absl::StatusOr<std::string> org = StringField(*j, "org", kWhat);
  if (!org.ok()) return org.status();
  if (absl::Status s = CheckOrgId(*org); !s.ok()) return s;
  r.org = *std::move(org);
  const json& roles = j->at("roles");
  if (!roles.is_array() || roles.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": roles must be a non-empty array"));
  }
  for (const json& v : roles) {
    if (!v.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": each role must be a string"));
    }
    absl::StatusOr<Role> role = ParseRole(v.get<std::string>());
    if (!role.ok()) return role.status();
    if (!r.roles.empty() && *role <= r.roles.back()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": roles must be sorted and distinct"));
    }
    r.roles.push_back(*role);
  }
  absl::StatusOr<uint64_t> h = HeightField(*j, "added_height", kWhat);
  if (!h.ok()) return h.status();
  r.added_height = *h;
  return r;
}

}  // namespace consortia::admin
