#include "consortia/admin_records.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"
#include "record_fields.h"

namespace consortia::admin {
namespace {

using nlohmann::json;

using records_internal::ExactFields;
using records_internal::StringField;

absl::StatusOr<uint64_t> HeightField(const json& j, const char* name,
                                     absl::string_view what) {
  return records_internal::UintField(j, name, what);
}

absl::StatusOr<Bytes> HexField(const json& j, const char* name,
                               absl::string_view what) {
  return records_internal::LowerHexField(j, name, what);
}

// A non-empty array of distinct role names, returned sorted.
absl::StatusOr<std::vector<Role>> RolesField(const json& j, const char* name,
                                             absl::string_view what) {
  const json& v = j.at(name);
  if (!v.is_array() || v.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be a non-empty array"));
  }
  std::vector<Role> roles;
  for (const json& r : v) {
    if (!r.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": each role must be a string"));
    }
    absl::StatusOr<Role> role = ParseRole(r.get<std::string>());
    if (!role.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", role.status().message()));
    }
    if (std::find(roles.begin(), roles.end(), *role) != roles.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": role '", std::string(RoleName(*role)), "' appears twice"));
    }
    roles.push_back(*role);
  }
  std::sort(roles.begin(), roles.end());
  return roles;
}

json RolesJson(const std::vector<Role>& roles) {
  json out = json::array();
  for (Role role : roles) out.push_back(std::string(RoleName(role)));
  return out;
}

absl::Status OrgIdField(const json& j, const char* name, absl::string_view what,
                        std::string* out) {
  absl::StatusOr<std::string> id = StringField(j, name, what);
  if (!id.ok()) return id.status();
  if (absl::Status s = CheckOrgId(*id); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "': ", s.message()));
  }
  *out = *std::move(id);
  return absl::OkStatus();
}

absl::Status NameField(const json& j, const char* name, absl::string_view what,
                       size_t max_bytes, std::string* out) {
  absl::StatusOr<std::string> v = StringField(j, name, what);
  if (!v.ok()) return v.status();
  if (v->empty() || v->size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field '", name, "' must be 1-", max_bytes, " bytes"));
  }
  *out = *std::move(v);
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> PercentField(const json& j, const char* name,
                                      absl::string_view what) {
  absl::StatusOr<uint64_t> v = HeightField(j, name, what);
  if (!v.ok()) return v.status();
  if (*v < kMinApprovalPercent || *v > kMaxApprovalPercent) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be ", kMinApprovalPercent,
                     " to ", kMaxApprovalPercent));
  }
  return static_cast<uint32_t>(*v);
}

absl::StatusOr<uint64_t> PowerField(const json& j, const char* name,
                                    absl::string_view what) {
  absl::StatusOr<uint64_t> v = HeightField(j, name, what);
  if (!v.ok()) return v.status();
  if (*v == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be at least 1"));
  }
  return v;
}

// An array of org ids, sorted and distinct (empty allowed iff allow_empty).
absl::StatusOr<std::vector<std::string>> OrgIdList(const json& j,
                                                   const char* name,
                                                   absl::string_view what,
                                                   bool allow_empty) {
  const json& v = j.at(name);
  if (!v.is_array() || (!allow_empty && v.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be a",
                     allow_empty ? "n" : " non-empty", " array"));
  }
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": field '", name, "' must hold organisation ids"));
    }
    std::string id = e.get<std::string>();
    if (absl::Status s = CheckOrgId(id); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field '", name, "': ", s.message()));
    }
    if (!out.empty() && id <= out.back()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": field '", name, "' must be sorted and distinct"));
    }
    out.push_back(std::move(id));
  }
  return out;
}

json ValidatorsJson(const std::vector<ValidatorEntry>& vals) {
  json out = json::array();
  for (const ValidatorEntry& v : vals) {
    out.push_back({{"name", v.name},
                   {"public_key", ToHex(v.public_key)},
                   {"power", v.power}});
  }
  return out;
}

absl::StatusOr<std::vector<ValidatorEntry>> ValidatorList(
    const json& j, const char* name, absl::string_view what) {
  const json& v = j.at(name);
  if (!v.is_array() || v.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be a non-empty array"));
  }
  std::vector<ValidatorEntry> out;
  std::set<Bytes> keys;
  for (const json& e : v) {
    const std::string ewhat =
        absl::StrCat(what, ": ", name, "[", out.size(), "]");
    if (absl::Status s = ExactFields(e, ewhat, {"name", "public_key", "power"});
        !s.ok()) {
      return s;
    }
    ValidatorEntry val;
    // A genesis may name its validators with any string, even twice: only
    // the keys are distinct.
    absl::StatusOr<std::string> vname = StringField(e, "name", ewhat);
    if (!vname.ok()) return vname.status();
    val.name = *std::move(vname);
    absl::StatusOr<Bytes> key = HexField(e, "public_key", ewhat);
    if (!key.ok()) return key.status();
    val.public_key = *std::move(key);
    absl::StatusOr<uint64_t> power = PowerField(e, "power", ewhat);
    if (!power.ok()) return power.status();
    val.power = *power;
    if (!keys.insert(val.public_key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(ewhat, ": repeats another validator's key"));
    }
    out.push_back(std::move(val));
  }
  return out;
}

json ActionJson(const Action& a) {
  json j = {{"type", std::string(ActionTypeName(a.type))}};
  switch (a.type) {
    case ActionType::kAddOrg:
      j["id"] = a.id;
      j["name"] = a.name;
      break;
    case ActionType::kRemoveOrg:
      j["id"] = a.id;
      break;
    case ActionType::kAddMember:
      j["public_key"] = ToHex(a.public_key);
      j["org"] = a.org;
      j["roles"] = RolesJson(a.roles);
      break;
    case ActionType::kRemoveMember:
      j["public_key"] = ToHex(a.public_key);
      break;
    case ActionType::kSetRoles:
      j["public_key"] = ToHex(a.public_key);
      j["roles"] = RolesJson(a.roles);
      break;
    case ActionType::kSetApprovalPercent:
      j["value"] = a.value;
      break;
    case ActionType::kSetRule:
      j["name"] = a.name;
      j["value"] = a.value;
      break;
    case ActionType::kAddValidator:
      j["name"] = a.name;
      j["public_key"] = ToHex(a.public_key);
      j["power"] = a.power;
      break;
    case ActionType::kRemoveValidator:
      j["name"] = a.name;
      break;
    case ActionType::kSetValidatorPower:
      j["name"] = a.name;
      j["power"] = a.power;
      break;
  }
  return j;
}

constexpr ActionType kActionTypes[] = {
    ActionType::kAddOrg,          ActionType::kRemoveOrg,
    ActionType::kAddMember,       ActionType::kRemoveMember,
    ActionType::kSetRoles,        ActionType::kSetApprovalPercent,
    ActionType::kSetRule,         ActionType::kAddValidator,
    ActionType::kRemoveValidator, ActionType::kSetValidatorPower};

absl::StatusOr<Action> ActionFromJson(const json& j) {
  constexpr absl::string_view kWhat = "action";
  if (!j.is_object()) {
    return absl::InvalidArgumentError("action: not an object");
  }
  if (!j.contains("type") || !j.at("type").is_string()) {
    return absl::InvalidArgumentError(
        "action: field 'type' is missing or not a string");
  }
  const std::string type = j.at("type").get<std::string>();
  Action a;
  bool known = false;
  for (ActionType t : kActionTypes) {
    if (ActionTypeName(t) == type) {
      a.type = t;
      known = true;
    }
  }
  if (!known) {
    return absl::InvalidArgumentError(absl::StrCat(
        "action: unknown type '", type,
        "' (the types are add_org, remove_org, add_member, remove_member, "
        "set_roles, set_approval_percent, set_rule, add_validator, "
        "remove_validator, set_validator_power)"));
  }
  const std::string what = absl::StrCat(kWhat, " ", type);
  absl::Status s;
  switch (a.type) {
    case ActionType::kAddOrg:
      s = ExactFields(j, what, {"type", "id", "name"});
      if (s.ok()) s = OrgIdField(j, "id", what, &a.id);
      if (s.ok()) s = NameField(j, "name", what, kMaxOrgNameBytes, &a.name);
      break;
    case ActionType::kRemoveOrg:
      s = ExactFields(j, what, {"type", "id"});
      if (s.ok()) s = OrgIdField(j, "id", what, &a.id);
      break;
    case ActionType::kAddMember:
    case ActionType::kSetRoles:
    case ActionType::kRemoveMember: {
      if (a.type == ActionType::kAddMember) {
        s = ExactFields(j, what, {"type", "public_key", "org", "roles"});
      } else if (a.type == ActionType::kSetRoles) {
        s = ExactFields(j, what, {"type", "public_key", "roles"});
      } else {
        s = ExactFields(j, what, {"type", "public_key"});
      }
      if (!s.ok()) break;
      absl::StatusOr<Bytes> key = HexField(j, "public_key", what);
      if (!key.ok()) return key.status();
      a.public_key = *std::move(key);
      if (a.type == ActionType::kAddMember) {
        s = OrgIdField(j, "org", what, &a.org);
        if (!s.ok()) break;
      }
      if (a.type != ActionType::kRemoveMember) {
        absl::StatusOr<std::vector<Role>> roles = RolesField(j, "roles", what);
        if (!roles.ok()) return roles.status();
        a.roles = *std::move(roles);
      }
      break;
    }
    case ActionType::kSetApprovalPercent: {
      s = ExactFields(j, what, {"type", "value"});
      if (!s.ok()) break;
      absl::StatusOr<uint32_t> v = PercentField(j, "value", what);
      if (!v.ok()) return v.status();
      a.value = *v;
      break;
    }
    case ActionType::kSetRule: {
      s = ExactFields(j, what, {"type", "name", "value"});
      if (!s.ok()) break;
      absl::StatusOr<std::string> name = StringField(j, "name", what);
      if (!name.ok()) return name.status();
      if (std::find(std::begin(kRuleNames), std::end(kRuleNames), *name) ==
          std::end(kRuleNames)) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": unknown rule '", *name,
            "' (the rules are max_block_txs, max_block_bytes, replay_window, "
            "validator_change_delay)"));
      }
      a.name = *std::move(name);
      absl::StatusOr<uint64_t> v = HeightField(j, "value", what);
      if (!v.ok()) return v.status();
      a.value = *v;
      break;
    }
    case ActionType::kAddValidator:
    case ActionType::kSetValidatorPower:
    case ActionType::kRemoveValidator: {
      if (a.type == ActionType::kAddValidator) {
        s = ExactFields(j, what, {"type", "name", "public_key", "power"});
      } else if (a.type == ActionType::kSetValidatorPower) {
        s = ExactFields(j, what, {"type", "name", "power"});
      } else {
        s = ExactFields(j, what, {"type", "name"});
      }
      if (s.ok())
        s = NameField(j, "name", what, kMaxValidatorNameBytes, &a.name);
      if (!s.ok()) break;
      if (a.type == ActionType::kAddValidator) {
        absl::StatusOr<Bytes> key = HexField(j, "public_key", what);
        if (!key.ok()) return key.status();
        a.public_key = *std::move(key);
      }
      if (a.type != ActionType::kRemoveValidator) {
        absl::StatusOr<uint64_t> p = PowerField(j, "power", what);
        if (!p.ok()) return p.status();
        a.power = *p;
      }
      break;
    }
  }
  if (!s.ok()) return s;
  return a;
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
  return absl::StrCat(
      absl::string_view(kMemberKeyPrefix.data(), kMemberKeyPrefix.size()),
      ToHex(public_key));
}

std::string OrgMembersKey(std::string_view org_id) {
  return absl::StrCat("org_members/",
                      absl::string_view(org_id.data(), org_id.size()));
}

std::string ProposalKey(std::string_view proposal_id) {
  return absl::StrCat(
      "proposal/", absl::string_view(proposal_id.data(), proposal_id.size()));
}

std::string_view ActionTypeName(ActionType t) {
  switch (t) {
    case ActionType::kAddOrg:
      return "add_org";
    case ActionType::kRemoveOrg:
      return "remove_org";
    case ActionType::kAddMember:
      return "add_member";
    case ActionType::kRemoveMember:
      return "remove_member";
    case ActionType::kSetRoles:
      return "set_roles";
    case ActionType::kSetApprovalPercent:
      return "set_approval_percent";
    case ActionType::kSetRule:
      return "set_rule";
    case ActionType::kAddValidator:
      return "add_validator";
    case ActionType::kRemoveValidator:
      return "remove_validator";
    case ActionType::kSetValidatorPower:
      return "set_validator_power";
  }
  return "unknown";
}

std::string_view ProposalStatusName(ProposalStatus s) {
  switch (s) {
    case ProposalStatus::kOpen:
      return "open";
    case ProposalStatus::kExecuted:
      return "executed";
    case ProposalStatus::kExpired:
      return "expired";
  }
  return "unknown";
}

ProposalStatus ProposalRecord::StatusAt(uint64_t height) const {
  if (status == ProposalStatus::kOpen && height > expires_height) {
    return ProposalStatus::kExpired;
  }
  return status;
}

std::string EncodeOrg(const OrgRecord& r) {
  json j = {{"id", r.id}, {"name", r.name}, {"added_height", r.added_height}};
  return j.dump();
}

std::string EncodeMember(const MemberRecord& r) {
  json j = {{"public_key", ToHex(r.public_key)},
            {"org", r.org},
            {"roles", RolesJson(r.roles)},
            {"added_height", r.added_height}};
  return j.dump();
}

std::string EncodeOrgList(const OrgListRecord& r) {
  json j = {{"ids", r.ids}};
  return j.dump();
}

std::string EncodeOrgMembers(const OrgMembersRecord& r) {
  json members = json::array();
  for (const Bytes& k : r.members) members.push_back(ToHex(k));
  json j = {{"org", r.org}, {"members", std::move(members)}};
  return j.dump();
}

std::string EncodeConfig(const ConfigRecord& r) {
  json j = {{"approval_percent", r.approval_percent},
            {"validator_change_delay", r.validator_change_delay},
            {"max_block_txs", r.max_block_txs},
            {"max_block_bytes", r.max_block_bytes},
            {"replay_window", r.replay_window}};
  return j.dump();
}

std::string EncodeAction(const Action& a) { return ActionJson(a).dump(); }

std::string EncodeProposal(const ProposalRecord& r) {
  json j = {{"id", r.id},
            {"action", ActionJson(r.action)},
            {"proposer_org", r.proposer_org},
            {"approvals", r.approvals},
            {"created_height", r.created_height},
            {"expires_height", r.expires_height},
            {"status", std::string(ProposalStatusName(r.status))},
            {"executed_height", r.executed_height}};
  return j.dump();
}

std::string EncodeValidatorChange(const ValidatorChangeRecord& r) {
  json j = {{"validators", ValidatorsJson(r.validators)},
            {"previous", ValidatorsJson(r.previous)},
            {"effective_height", r.effective_height},
            {"committed_height", r.committed_height},
            {"proposal", r.proposal}};
  // A genesis built in code may name a validator with bytes that are not
  // UTF-8: they come out as U+FFFD instead of throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
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

absl::StatusOr<OrgListRecord> DecodeOrgList(std::string_view text) {
  constexpr absl::string_view kWhat = "organisation list";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(*j, kWhat, {"ids"}); !s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> ids =
      OrgIdList(*j, "ids", kWhat, /*allow_empty=*/true);
  if (!ids.ok()) return ids.status();
  return OrgListRecord{*std::move(ids)};
}

absl::StatusOr<OrgMembersRecord> DecodeOrgMembers(std::string_view text) {
  constexpr absl::string_view kWhat = "organisation members";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(*j, kWhat, {"org", "members"}); !s.ok()) {
    return s;
  }
  OrgMembersRecord r;
  if (absl::Status s = OrgIdField(*j, "org", kWhat, &r.org); !s.ok()) return s;
  const json& members = j->at("members");
  if (!members.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": field 'members' must be an array"));
  }
  for (const json& m : members) {
    const std::string hex = m.is_string() ? m.get<std::string>() : "";
    absl::StatusOr<Bytes> key = FromHex(hex);
    if (!key.ok() || key->empty() || ToHex(*key) != hex) {
      return absl::InvalidArgumentError(absl::StrCat(
          kWhat, ": each member must be a non-empty lower-case hex key"));
    }
    if (!r.members.empty() && *key <= r.members.back()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": members must be sorted and distinct"));
    }
    r.members.push_back(*std::move(key));
  }
  return r;
}

absl::StatusOr<ConfigRecord> DecodeConfig(std::string_view text) {
  constexpr absl::string_view kWhat = "config record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s =
          ExactFields(*j, kWhat,
                      {"approval_percent", "validator_change_delay",
                       "max_block_txs", "max_block_bytes", "replay_window"});
      !s.ok()) {
    return s;
  }
  ConfigRecord r;
  absl::StatusOr<uint32_t> percent =
      PercentField(*j, "approval_percent", kWhat);
  if (!percent.ok()) return percent.status();
  r.approval_percent = *percent;
  for (auto [name, out] :
       {std::pair<const char*, uint64_t*>{"validator_change_delay",
                                          &r.validator_change_delay},
        {"max_block_txs", &r.max_block_txs},
        {"max_block_bytes", &r.max_block_bytes},
        {"replay_window", &r.replay_window}}) {
    absl::StatusOr<uint64_t> v = HeightField(*j, name, kWhat);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  if (r.validator_change_delay < kMinValidatorChangeDelay ||
      r.validator_change_delay > kMaxValidatorChangeDelay) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, ": field 'validator_change_delay' must be ",
        kMinValidatorChangeDelay, " to ", kMaxValidatorChangeDelay));
  }
  return r;
}

absl::StatusOr<Action> DecodeAction(std::string_view text) {
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, "action");
  if (!j.ok()) return j.status();
  return ActionFromJson(*j);
}

absl::StatusOr<ProposalRecord> DecodeProposal(std::string_view text) {
  constexpr absl::string_view kWhat = "proposal record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(
          *j, kWhat,
          {"id", "action", "proposer_org", "approvals", "created_height",
           "expires_height", "status", "executed_height"});
      !s.ok()) {
    return s;
  }
  ProposalRecord r;
  absl::StatusOr<Bytes> id = HexField(*j, "id", kWhat);
  if (!id.ok()) return id.status();
  if (id->size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": field 'id' must be 32 bytes of hex"));
  }
  r.id = ToHex(*id);
  absl::StatusOr<Action> action = ActionFromJson(j->at("action"));
  if (!action.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": ", action.status().message()));
  }
  r.action = *std::move(action);
  if (absl::Status s = OrgIdField(*j, "proposer_org", kWhat, &r.proposer_org);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<std::string>> approvals =
      OrgIdList(*j, "approvals", kWhat, /*allow_empty=*/false);
  if (!approvals.ok()) return approvals.status();
  r.approvals = *std::move(approvals);
  for (auto [name, out] :
       {std::pair<const char*, uint64_t*>{"created_height", &r.created_height},
        {"expires_height", &r.expires_height},
        {"executed_height", &r.executed_height}}) {
    absl::StatusOr<uint64_t> v = HeightField(*j, name, kWhat);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  if (r.expires_height < r.created_height) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": expires_height is below created_height"));
  }
  absl::StatusOr<std::string> status = StringField(*j, "status", kWhat);
  if (!status.ok()) return status.status();
  bool known = false;
  for (ProposalStatus st : {ProposalStatus::kOpen, ProposalStatus::kExecuted,
                            ProposalStatus::kExpired}) {
    if (ProposalStatusName(st) == *status) {
      r.status = st;
      known = true;
    }
  }
  if (!known) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, ": field 'status' must be open, executed or expired"));
  }
  if ((r.status == ProposalStatus::kExecuted) != (r.executed_height != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, ": executed_height must be set exactly when executed"));
  }
  return r;
}

absl::StatusOr<ValidatorChangeRecord> DecodeValidatorChange(
    std::string_view text) {
  constexpr absl::string_view kWhat = "validator change record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s =
          ExactFields(*j, kWhat,
                      {"validators", "previous", "effective_height",
                       "committed_height", "proposal"});
      !s.ok()) {
    return s;
  }
  ValidatorChangeRecord r;
  absl::StatusOr<std::vector<ValidatorEntry>> vals =
      ValidatorList(*j, "validators", kWhat);
  if (!vals.ok()) return vals.status();
  r.validators = *std::move(vals);
  absl::StatusOr<std::vector<ValidatorEntry>> prev =
      ValidatorList(*j, "previous", kWhat);
  if (!prev.ok()) return prev.status();
  r.previous = *std::move(prev);
  for (auto [name, out] : {std::pair<const char*, uint64_t*>{
                               "effective_height", &r.effective_height},
                           {"committed_height", &r.committed_height}}) {
    absl::StatusOr<uint64_t> v = HeightField(*j, name, kWhat);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  if (r.effective_height <= r.committed_height) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, ": effective_height must be above committed_height"));
  }
  absl::StatusOr<std::string> proposal = StringField(*j, "proposal", kWhat);
  if (!proposal.ok()) return proposal.status();
  if (!proposal->empty()) {
    absl::StatusOr<Bytes> id = FromHex(*proposal);
    if (!id.ok() || id->size() != 32 || ToHex(*id) != *proposal) {
      return absl::InvalidArgumentError(absl::StrCat(
          kWhat,
          ": field 'proposal' must be \"\" or 32 bytes of lower-case "
          "hex"));
    }
  }
  r.proposal = *std::move(proposal);
  return r;
}

}  // namespace consortia::admin
