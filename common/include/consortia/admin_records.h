// The records of the `admin` app as they stand in state (app "admin"): the
// consortium's organisations and their members' keys with roles. Storage's
// apps write and read them; the api, the CLI and `consortia verify` decode
// them to show a proven record in words. A record is a JSON object written by
// the Encode functions below (sorted keys, no spaces), so every node writes
// the same bytes and the state tree hashes them alike.
//
// State keys (app "admin"; docs/apps.md "## admin" describes each record):
//   org/<org id>             -> OrgRecord
//   member/<public key hex>  -> MemberRecord (lower-case hex of the key)
//   orgs                     -> OrgListRecord (the ids of the active orgs)
//   org_members/<org id>     -> OrgMembersRecord (its member keys)
//   config                   -> ConfigRecord
//   proposal/<tx hash hex>   -> ProposalRecord (of the propose tx)
//   validators/pending       -> ValidatorChangeRecord (the latest change of
//                               the validator set and when it takes effect)
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

// An organisation's display name is 1 to this many bytes.
inline constexpr size_t kMaxOrgNameBytes = 128;
// Governance's majority: a proposal executes once approvals * 100 >
// approval_percent * active organisations.
inline constexpr uint32_t kMinApprovalPercent = 50;
inline constexpr uint32_t kMaxApprovalPercent = 99;
// Heights between the commit of a validator-set change and the height from
// which it holds (docs/apps.md says why 3), and its bounds under set_rule.
inline constexpr uint64_t kDefaultValidatorChangeDelay = 3;
inline constexpr uint64_t kMinValidatorChangeDelay = 2;
inline constexpr uint64_t kMaxValidatorChangeDelay = 1000;
// A proposal stays open 1 to this many heights (its ttl_heights).
inline constexpr uint64_t kMaxProposalTtl = 100000;
// A validator's name in a governance action is 1 to this many bytes.
inline constexpr size_t kMaxValidatorNameBytes = 64;

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

// The ids of the active organisations, sorted and distinct (key "orgs"):
// governance counts them for its majority.
struct OrgListRecord {
  std::vector<std::string> ids;
  bool operator==(const OrgListRecord&) const = default;
};

// The member keys of one organisation, sorted and distinct (key
// "org_members/<id>"): remove_org removes them all.
struct OrgMembersRecord {
  std::string org;
  std::vector<Bytes> members;
  bool operator==(const OrgMembersRecord&) const = default;
};

// The governed settings (key "config"). The chain rules are copied from the
// genesis at block 1 and changed by set_rule; a change is in force from the
// next block on every node (RulesInForce, types.h; docs/apps.md, "Chain
// rules").
struct ConfigRecord {
  uint32_t approval_percent = 67;
  uint64_t validator_change_delay = kDefaultValidatorChangeDelay;
  uint64_t max_block_txs = 0;
  uint64_t max_block_bytes = 0;
  uint64_t replay_window = 0;
  bool operator==(const ConfigRecord&) const = default;
};

// What a proposal does once approved. The JSON form is an object with
// "type" and exactly the fields of that type:
//   {"type":"add_org","id","name"}        {"type":"remove_org","id"}
//   {"type":"add_member","public_key","org","roles"}
//   {"type":"remove_member","public_key"}
//   {"type":"set_roles","public_key","roles"}
//   {"type":"set_approval_percent","value"}
//   {"type":"set_rule","name","value"}  (name: max_block_txs,
//       max_block_bytes, replay_window, validator_change_delay)
//   {"type":"add_validator","name","public_key","power"}
//   {"type":"remove_validator","name"}
//   {"type":"set_validator_power","name","power"}
// public_key is hex; roles a non-empty array of distinct role names (kept
// sorted); value and power unsigned integers. The decoder checks the shape
// and each field alone (an org id, a name's length, a percent in 50..99, a
// power >= 1, a known rule name); the app checks the rest against state.
enum class ActionType : uint8_t {
  kAddOrg,
  kRemoveOrg,
  kAddMember,
  kRemoveMember,
  kSetRoles,
  kSetApprovalPercent,
  kSetRule,
  kAddValidator,
  kRemoveValidator,
  kSetValidatorPower,
};
std::string_view ActionTypeName(ActionType t);

inline constexpr std::string_view kRuleNames[] = {
    "max_block_txs", "max_block_bytes", "replay_window",
    "validator_change_delay"};

struct Action {
  ActionType type = ActionType::kAddOrg;
  std::string id;           // add_org, remove_org
  std::string name;         // add_org (org name); set_rule (rule);
                            // *_validator, set_validator_power (validator)
  std::string org;          // add_member
  Bytes public_key;         // add_member, remove_member, set_roles,
                            // add_validator
  std::vector<Role> roles;  // add_member, set_roles
  uint64_t value = 0;       // set_approval_percent, set_rule
  uint64_t power = 0;       // add_validator, set_validator_power
  bool operator==(const Action&) const = default;
};

enum class ProposalStatus : uint8_t { kOpen, kExecuted, kExpired };
std::string_view ProposalStatusName(ProposalStatus s);

// A governance proposal (key "proposal/<hex of the propose tx's hash>").
struct ProposalRecord {
  std::string id;  // the propose tx's hash, lower-case hex
  Action action;
  std::string proposer_org;
  std::vector<std::string> approvals;  // org ids, sorted, distinct
  uint64_t created_height = 0;
  uint64_t expires_height = 0;  // approvals are refused above this height
  // The app writes open and executed only: a proposal left open past
  // expires_height stays "open" in state (a refused tx writes nothing), and
  // readers show it with StatusAt (expired). "expired" decodes all the same.
  ProposalStatus status = ProposalStatus::kOpen;
  uint64_t executed_height = 0;  // 0 while not executed
  // What the proposal is at `height`: open, executed, or expired (open and
  // height > expires_height).
  ProposalStatus StatusAt(uint64_t height) const;
  bool operator==(const ProposalRecord&) const = default;
};

struct ValidatorEntry {
  std::string name;
  Bytes public_key;
  uint64_t power = 1;
  bool operator==(const ValidatorEntry&) const = default;
};

// The latest change of the validator set (key "validators/pending"): from
// effective_height on, the set is `validators`; before it, `previous`. Only
// one change is pending at a time (a validator action is refused while
// height < effective_height), so this record and the genesis tell the set
// at every height from committed_height on. Storage writes the genesis set
// here at block 1 (previous = validators, effective_height 1,
// committed_height 0, proposal ""). Consensus, storage's certificate and
// evidence checks and `consortia verify` follow it (docs/apps.md).
struct ValidatorChangeRecord {
  std::vector<ValidatorEntry> validators;  // distinct keys, non-empty
  std::vector<ValidatorEntry> previous;
  uint64_t effective_height = 0;  // committed_height + validator_change_delay
  uint64_t committed_height = 0;
  std::string proposal;  // the proposal id that made the change
  bool operator==(const ValidatorChangeRecord&) const = default;
};

std::string OrgKey(std::string_view org_id);
std::string MemberKey(ByteView public_key);
// The prefix of every member key (MemberKey).
inline constexpr std::string_view kMemberKeyPrefix = "member/";
inline constexpr std::string_view kOrgListKey = "orgs";
std::string OrgMembersKey(std::string_view org_id);
inline constexpr std::string_view kConfigKey = "config";
std::string ProposalKey(std::string_view proposal_id);
inline constexpr std::string_view kValidatorsKey = "validators/pending";

std::string EncodeOrg(const OrgRecord& r);
std::string EncodeMember(const MemberRecord& r);
std::string EncodeOrgList(const OrgListRecord& r);
std::string EncodeOrgMembers(const OrgMembersRecord& r);
std::string EncodeConfig(const ConfigRecord& r);
std::string EncodeAction(const Action& a);
std::string EncodeProposal(const ProposalRecord& r);
std::string EncodeValidatorChange(const ValidatorChangeRecord& r);
// Strict: every field present and well-formed, no extra fields, no repeated
// keys. InvalidArgument naming the field otherwise.
absl::StatusOr<OrgRecord> DecodeOrg(std::string_view json);
absl::StatusOr<MemberRecord> DecodeMember(std::string_view json);
absl::StatusOr<OrgListRecord> DecodeOrgList(std::string_view json);
absl::StatusOr<OrgMembersRecord> DecodeOrgMembers(std::string_view json);
absl::StatusOr<ConfigRecord> DecodeConfig(std::string_view json);
// Also the decoder of propose's action_json argument.
absl::StatusOr<Action> DecodeAction(std::string_view json);
absl::StatusOr<ProposalRecord> DecodeProposal(std::string_view json);
absl::StatusOr<ValidatorChangeRecord> DecodeValidatorChange(
    std::string_view json);

}  // namespace consortia::admin

#endif  // CONSORTIA_COMMON_ADMIN_RECORDS_H_
