#include "apps/admin_app.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apps/membership.h"

namespace consortia::storage {
namespace {

using admin::Action;
using admin::ActionType;
using admin::ConfigRecord;
using admin::MemberRecord;
using admin::OrgListRecord;
using admin::OrgMembersRecord;
using admin::OrgRecord;
using admin::ProposalRecord;
using admin::ProposalStatus;
using admin::Role;
using admin::ValidatorChangeRecord;
using admin::ValidatorEntry;

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

ExecResult Fail(ExecCode code, std::string log) {
  return ExecResult{code, std::move(log)};
}

std::string_view AsView(const Bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Writes a record (admin records have no owner: the app itself keeps them).
void PutRecord(StateOverlay* state, std::string_view key, std::string json) {
  StateEntry e;
  e.value = ToBytes(json);
  state->Put(admin::kAppName, key, std::move(e));
}

// Reads and decodes the record at `key`; nullopt if there is none, DataLoss
// if it does not decode (state is corrupt: the block must not commit).
template <typename T, typename Decode>
absl::StatusOr<std::optional<T>> GetRecord(StateOverlay* state,
                                           std::string_view key,
                                           Decode decode) {
  absl::StatusOr<std::optional<StateEntry>> e =
      state->Get(admin::kAppName, key);
  if (!e.ok()) return e.status();
  if (!e->has_value()) return std::optional<T>();
  absl::StatusOr<T> rec = decode(AsView((*e)->value));
  if (!rec.ok()) {
    return absl::DataLossError(
        absl::StrCat("admin state ", Absl(key),
                     " does not decode: ", rec.status().message()));
  }
  return std::optional<T>(*std::move(rec));
}

// A record that a chain with a consortium always has (config, orgs,
// validators/pending): DataLoss if it is missing there.
template <typename T, typename Decode>
absl::StatusOr<T> GetRequired(StateOverlay* state, std::string_view key,
                              Decode decode) {
  absl::StatusOr<std::optional<T>> r = GetRecord<T>(state, key, decode);
  if (!r.ok()) return r.status();
  if (!r->has_value()) {
    return absl::DataLossError(
        absl::StrCat("admin state ", Absl(key), " is missing"));
  }
  return **std::move(r);
}

std::string RolesText(const std::vector<Role>& roles) {
  std::string out;
  for (Role r : roles) {
    if (!out.empty()) out += ",";
    out += std::string(admin::RoleName(r));
  }
  return out;
}

std::string Short(std::string_view id) { return std::string(id.substr(0, 16)); }

// One line saying what an action does, for receipt logs.
std::string Describe(const Action& a) {
  const std::string type(admin::ActionTypeName(a.type));
  switch (a.type) {
    case ActionType::kAddOrg:
    case ActionType::kRemoveOrg:
      return absl::StrCat(type, " ", a.id);
    case ActionType::kAddMember:
      return absl::StrCat(type, " ", Short(ToHex(a.public_key)), " to ", a.org,
                          " as ", RolesText(a.roles));
    case ActionType::kRemoveMember:
      return absl::StrCat(type, " ", Short(ToHex(a.public_key)));
    case ActionType::kSetRoles:
      return absl::StrCat(type, " ", Short(ToHex(a.public_key)), " to ",
                          RolesText(a.roles));
    case ActionType::kSetApprovalPercent:
      return absl::StrCat(type, " ", a.value);
    case ActionType::kSetRule:
      return absl::StrCat(type, " ", a.name, "=", a.value);
    case ActionType::kAddValidator:
      return absl::StrCat(type, " ", a.name, " power ", a.power);
    case ActionType::kRemoveValidator:
      return absl::StrCat(type, " ", a.name);
    case ActionType::kSetValidatorPower:
      return absl::StrCat(type, " ", a.name, " to ", a.power);
  }
  return type;
}

// Decimal digits without a sign or leading zero, 1 .. max.
std::optional<uint64_t> ParseCount(std::string_view s, uint64_t max) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (std::numeric_limits<uint64_t>::max() - (c - '0')) / 10) {
      return std::nullopt;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v < 1 || v > max) return std::nullopt;
  return v;
}

// The bounds of a rule under set_rule, and why (docs/apps.md, "Chain
// rules"). The block limits may go down, and back up, but not above the
// genesis's: every node sizes its consensus message limits by the genesis
// at start. The replay window may only grow: a mempool that restarts looks
// back one window, the one in force, for the txs it must refuse as
// replays, and a tx committed under a longer window could outlive a
// shorter one.
struct RuleBound {
  uint64_t lo = 0;
  uint64_t hi = 0;
  const char* why = "";
};
RuleBound RuleBounds(std::string_view name, const ChainRules& genesis,
                     const ConfigRecord& config) {
  if (name == "max_block_txs") {
    return {1, genesis.max_block_txs, " (at most the genesis's)"};
  }
  if (name == "max_block_bytes") {
    return {kMaxTxBytes, genesis.max_block_bytes, " (at most the genesis's)"};
  }
  if (name == "replay_window") {
    return {config.replay_window, kMaxReplayWindow,
            " (the replay window may only grow)"};
  }
  return {admin::kMinValidatorChangeDelay, admin::kMaxValidatorChangeDelay, ""};
}

// An organisation's admin keys other than `except`.
absl::StatusOr<size_t> OtherAdmins(StateOverlay* state, const std::string& org,
                                   const Bytes& except) {
  absl::StatusOr<std::optional<OrgMembersRecord>> members =
      GetRecord<OrgMembersRecord>(state, admin::OrgMembersKey(org),
                                  admin::DecodeOrgMembers);
  if (!members.ok()) return members.status();
  size_t n = 0;
  if (!members->has_value()) return n;
  for (const Bytes& key : (*members)->members) {
    if (key == except) continue;
    absl::StatusOr<std::optional<MemberRecord>> m = FindMember(state, key);
    if (!m.ok()) return m.status();
    if (m->has_value() && (*m)->Has(Role::kAdmin)) ++n;
  }
  return n;
}

// Applies (apply = true) or only checks (apply = false) `a` at `height`
// against state. A non-OK ExecResult says why it cannot be applied; a
// non-OK status is a store failure or corrupt state.
class ActionRunner {
 public:
  ActionRunner(const TxContext& ctx, StateOverlay* state,
               std::string proposal_id, const ChainRules& genesis_rules)
      : ctx_(ctx),
        state_(state),
        proposal_id_(std::move(proposal_id)),
        genesis_rules_(genesis_rules) {}

  // The height from which an applied validator change holds (0 if none).
  uint64_t effective_height() const { return effective_height_; }

  absl::StatusOr<ExecResult> Run(const Action& a, bool apply) {
    apply_ = apply;
    switch (a.type) {
      case ActionType::kAddOrg:
        return AddOrg(a);
      case ActionType::kRemoveOrg:
        return RemoveOrg(a);
      case ActionType::kAddMember:
        return AddMember(a);
      case ActionType::kRemoveMember:
        return RemoveMember(a);
      case ActionType::kSetRoles:
        return SetRoles(a);
      case ActionType::kSetApprovalPercent:
      case ActionType::kSetRule:
        return SetConfig(a);
      case ActionType::kAddValidator:
      case ActionType::kRemoveValidator:
      case ActionType::kSetValidatorPower:
        return ChangeValidators(a);
    }
    return Fail(ExecCode::kBadArgs, "unknown action");
  }

 private:
  static ExecResult Ok() { return ExecResult{ExecCode::kOk, ""}; }

  absl::StatusOr<ExecResult> AddOrg(const Action& a) {
    absl::StatusOr<std::optional<OrgRecord>> org =
        GetRecord<OrgRecord>(state_, admin::OrgKey(a.id), admin::DecodeOrg);
    if (!org.ok()) return org.status();
    if (org->has_value()) {
      return Fail(ExecCode::kExists,
                  absl::StrCat("organisation ", a.id, " exists"));
    }
    absl::StatusOr<OrgListRecord> list = GetRequired<OrgListRecord>(
        state_, admin::kOrgListKey, admin::DecodeOrgList);
    if (!list.ok()) return list.status();
    if (list->ids.size() >= kMaxGenesisOrgs) {
      return Fail(ExecCode::kInvalidState,
                  absl::StrCat("the consortium has ", list->ids.size(),
                               " organisations, the most it may have"));
    }
    if (!apply_) return Ok();
    PutRecord(state_, admin::OrgKey(a.id),
              admin::EncodeOrg(OrgRecord{a.id, a.name, ctx_.height}));
    list->ids.insert(std::upper_bound(list->ids.begin(), list->ids.end(), a.id),
                     a.id);
    PutRecord(state_, admin::kOrgListKey, admin::EncodeOrgList(*list));
    PutRecord(state_, admin::OrgMembersKey(a.id),
              admin::EncodeOrgMembers(OrgMembersRecord{a.id, {}}));
    return Ok();
  }

  absl::StatusOr<ExecResult> RemoveOrg(const Action& a) {
    absl::StatusOr<std::optional<OrgRecord>> org =
        GetRecord<OrgRecord>(state_, admin::OrgKey(a.id), admin::DecodeOrg);
    if (!org.ok()) return org.status();
    if (!org->has_value()) {
      return Fail(ExecCode::kNotFound, absl::StrCat("no organisation ", a.id));
    }
    absl::StatusOr<OrgListRecord> list = GetRequired<OrgListRecord>(
        state_, admin::kOrgListKey, admin::DecodeOrgList);
    if (!list.ok()) return list.status();
    if (list->ids.size() <= 1) {
      return Fail(ExecCode::kInvalidState,
                  absl::StrCat(a.id, " is the last organisation"));
    }
    if (!apply_) return Ok();
    absl::StatusOr<std::optional<OrgMembersRecord>> members =
        GetRecord<OrgMembersRecord>(state_, admin::OrgMembersKey(a.id),
                                    admin::DecodeOrgMembers);
    if (!members.ok()) return members.status();
    if (members->has_value()) {
      for (const Bytes& key : (*members)->members) {
        state_->Delete(admin::kAppName, admin::MemberKey(key));
      }
    }
    state_->Delete(admin::kAppName, admin::OrgMembersKey(a.id));
    state_->Delete(admin::kAppName, admin::OrgKey(a.id));
    list->ids.erase(std::remove(list->ids.begin(), list->ids.end(), a.id),
                    list->ids.end());
    PutRecord(state_, admin::kOrgListKey, admin::EncodeOrgList(*list));
    return Ok();
  }

  absl::StatusOr<ExecResult> AddMember(const Action& a) {
    // Every key of the chain is of its suite: the sender's key has the size
    // a member key must have.
    if (a.public_key.size() != ctx_.tx->sender.size()) {
      return Fail(ExecCode::kBadArgs,
                  absl::StrCat("public_key must be ", ctx_.tx->sender.size(),
                               " bytes (the chain's suite), got ",
                               a.public_key.size()));
    }
    absl::StatusOr<std::optional<OrgMembersRecord>> members =
        GetRecord<OrgMembersRecord>(state_, admin::OrgMembersKey(a.org),
                                    admin::DecodeOrgMembers);
    if (!members.ok()) return members.status();
    if (!members->has_value()) {
      return Fail(ExecCode::kNotFound, absl::StrCat("no organisation ", a.org));
    }
    absl::StatusOr<std::optional<MemberRecord>> m =
        FindMember(state_, a.public_key);
    if (!m.ok()) return m.status();
    if (m->has_value()) {
      return Fail(ExecCode::kExists,
                  absl::StrCat("key ", Short(ToHex(a.public_key)),
                               " is already a member of ", (*m)->org));
    }
    if (!apply_) return Ok();
    PutRecord(state_, admin::MemberKey(a.public_key),
              admin::EncodeMember(
                  MemberRecord{a.public_key, a.org, a.roles, ctx_.height}));
    std::vector<Bytes>& keys = (*members)->members;
    keys.insert(std::upper_bound(keys.begin(), keys.end(), a.public_key),
                a.public_key);
    PutRecord(state_, admin::OrgMembersKey(a.org),
              admin::EncodeOrgMembers(**members));
    return Ok();
  }

  // The member record of a remove_member / set_roles action, or why not.
  absl::StatusOr<std::optional<MemberRecord>> Member(const Action& a,
                                                     ExecResult* fail) {
    absl::StatusOr<std::optional<MemberRecord>> m =
        FindMember(state_, a.public_key);
    if (!m.ok()) return m.status();
    if (!m->has_value()) {
      *fail = Fail(
          ExecCode::kNotFound,
          absl::StrCat("key ", Short(ToHex(a.public_key)), " is not a member"));
    }
    return m;
  }

  // kInvalidState if `m` is its organisation's last admin.
  absl::StatusOr<ExecResult> KeepsAnAdmin(const MemberRecord& m) {
    if (!m.Has(Role::kAdmin)) return Ok();
    absl::StatusOr<size_t> others = OtherAdmins(state_, m.org, m.public_key);
    if (!others.ok()) return others.status();
    if (*others == 0) {
      return Fail(ExecCode::kInvalidState,
                  absl::StrCat("key ", Short(ToHex(m.public_key)),
                               " is the last admin of ", m.org,
                               " (remove the organisation instead)"));
    }
    return Ok();
  }

  absl::StatusOr<ExecResult> RemoveMember(const Action& a) {
    ExecResult fail = Ok();
    absl::StatusOr<std::optional<MemberRecord>> m = Member(a, &fail);
    if (!m.ok()) return m.status();
    if (fail.code != ExecCode::kOk) return fail;
    absl::StatusOr<ExecResult> keeps = KeepsAnAdmin(**m);
    if (!keeps.ok() || keeps->code != ExecCode::kOk) return keeps;
    if (!apply_) return Ok();
    state_->Delete(admin::kAppName, admin::MemberKey(a.public_key));
    absl::StatusOr<std::optional<OrgMembersRecord>> members =
        GetRecord<OrgMembersRecord>(state_, admin::OrgMembersKey((*m)->org),
                                    admin::DecodeOrgMembers);
    if (!members.ok()) return members.status();
    if (members->has_value()) {
      std::vector<Bytes>& keys = (*members)->members;
      keys.erase(std::remove(keys.begin(), keys.end(), a.public_key),
                 keys.end());
      PutRecord(state_, admin::OrgMembersKey((*m)->org),
                admin::EncodeOrgMembers(**members));
    }
    return Ok();
  }

  absl::StatusOr<ExecResult> SetRoles(const Action& a) {
    ExecResult fail = Ok();
    absl::StatusOr<std::optional<MemberRecord>> m = Member(a, &fail);
    if (!m.ok()) return m.status();
    if (fail.code != ExecCode::kOk) return fail;
    if (std::find(a.roles.begin(), a.roles.end(), Role::kAdmin) ==
        a.roles.end()) {
      absl::StatusOr<ExecResult> keeps = KeepsAnAdmin(**m);
      if (!keeps.ok() || keeps->code != ExecCode::kOk) return keeps;
    }
    if (!apply_) return Ok();
    MemberRecord next = **m;
    next.roles = a.roles;
    PutRecord(state_, admin::MemberKey(a.public_key),
              admin::EncodeMember(next));
    return Ok();
  }

  absl::StatusOr<ExecResult> SetConfig(const Action& a) {
    absl::StatusOr<ConfigRecord> config = GetRequired<ConfigRecord>(
        state_, admin::kConfigKey, admin::DecodeConfig);
    if (!config.ok()) return config.status();
    if (a.type == ActionType::kSetApprovalPercent) {
      config->approval_percent = static_cast<uint32_t>(a.value);
    } else {
      const RuleBound b = RuleBounds(a.name, genesis_rules_, *config);
      if (a.value < b.lo || a.value > b.hi) {
        return Fail(ExecCode::kBadArgs,
                    absl::StrCat("rule ", a.name, " must be ", b.lo, " to ",
                                 b.hi, b.why, ", got ", a.value));
      }
      if (a.name == "max_block_txs") {
        config->max_block_txs = a.value;
      } else if (a.name == "max_block_bytes") {
        config->max_block_bytes = a.value;
      } else if (a.name == "replay_window") {
        config->replay_window = a.value;
      } else {
        config->validator_change_delay = a.value;
      }
    }
    if (!apply_) return Ok();
    PutRecord(state_, admin::kConfigKey, admin::EncodeConfig(*config));
    return Ok();
  }

  absl::StatusOr<ExecResult> ChangeValidators(const Action& a) {
    absl::StatusOr<ValidatorChangeRecord> current =
        GetRequired<ValidatorChangeRecord>(state_, admin::kValidatorsKey,
                                           admin::DecodeValidatorChange);
    if (!current.ok()) return current.status();
    if (ctx_.height < current->effective_height) {
      return Fail(ExecCode::kInvalidState,
                  absl::StrCat("a validator change is pending until height ",
                               current->effective_height));
    }
    // The genesis set (committed at 0) of one validator: such a chain runs
    // without Tendermint (services/consensus single_validator.h), so its
    // set stays.
    if (current->committed_height == 0 && current->validators.size() == 1) {
      return Fail(ExecCode::kInvalidState,
                  "this chain started with one validator, which decides "
                  "blocks alone; its validator set cannot change (start a "
                  "chain with 2 or more validators)");
    }
    std::vector<ValidatorEntry> next = current->validators;
    auto by_name = [&](const std::string& name) {
      return std::count_if(
          next.begin(), next.end(),
          [&](const ValidatorEntry& v) { return v.name == name; });
    };
    auto find = [&](const std::string& name) {
      return std::find_if(
          next.begin(), next.end(),
          [&](const ValidatorEntry& v) { return v.name == name; });
    };
    if (a.type == ActionType::kAddValidator) {
      if (a.public_key.size() != next.front().public_key.size()) {
        return Fail(
            ExecCode::kBadArgs,
            absl::StrCat("public_key must be ", next.front().public_key.size(),
                         " bytes like the other validators' keys, got ",
                         a.public_key.size()));
      }
      if (by_name(a.name) > 0) {
        return Fail(ExecCode::kExists,
                    absl::StrCat("a validator named ", a.name, " exists"));
      }
      for (const ValidatorEntry& v : next) {
        if (v.public_key == a.public_key) {
          return Fail(ExecCode::kExists,
                      absl::StrCat("validator ", v.name, " has this key"));
        }
      }
      if (next.size() >= kMaxValidators) {
        return Fail(ExecCode::kInvalidState,
                    absl::StrCat("the set has ", next.size(),
                                 " validators, the most it may have"));
      }
      next.push_back(ValidatorEntry{a.name, a.public_key, a.power});
    } else {
      const auto n = by_name(a.name);
      if (n == 0) {
        return Fail(ExecCode::kNotFound,
                    absl::StrCat("no validator named ", a.name));
      }
      if (n > 1) {
        return Fail(ExecCode::kInvalidState,
                    absl::StrCat(n, " validators are named ", a.name));
      }
      if (a.type == ActionType::kRemoveValidator) {
        if (next.size() == 1) {
          return Fail(ExecCode::kInvalidState,
                      absl::StrCat(a.name, " is the last validator"));
        }
        next.erase(find(a.name));
      } else {
        find(a.name)->power = a.power;
      }
    }
    uint64_t total = 0;
    for (const ValidatorEntry& v : next) {
      if (v.power > kMaxTotalVotingPower - total) {
        return Fail(ExecCode::kBadArgs,
                    "the set's total power would exceed 2^60");
      }
      total += v.power;
    }
    if (!apply_) return Ok();
    absl::StatusOr<ConfigRecord> config = GetRequired<ConfigRecord>(
        state_, admin::kConfigKey, admin::DecodeConfig);
    if (!config.ok()) return config.status();
    ValidatorChangeRecord change;
    change.previous = current->validators;
    change.validators = std::move(next);
    change.committed_height = ctx_.height;
    change.effective_height = ctx_.height + config->validator_change_delay;
    change.proposal = proposal_id_;
    PutRecord(state_, admin::kValidatorsKey,
              admin::EncodeValidatorChange(change));
    effective_height_ = change.effective_height;
    return Ok();
  }

  const TxContext& ctx_;
  StateOverlay* state_;
  std::string proposal_id_;
  const ChainRules& genesis_rules_;
  bool apply_ = false;
  uint64_t effective_height_ = 0;
};

// The sender's member record if it holds role admin; else the refusal.
absl::StatusOr<std::optional<MemberRecord>> SenderAdmin(const TxContext& ctx,
                                                        StateOverlay* state,
                                                        std::string_view method,
                                                        ExecResult* fail) {
  absl::StatusOr<std::optional<MemberRecord>> m =
      FindMember(state, ctx.tx->sender);
  if (!m.ok()) return m.status();
  if (!m->has_value()) {
    *fail = Fail(ExecCode::kUnauthorized,
                 absl::StrCat("sender ", Short(ToHex(ctx.tx->sender)),
                              " is not a registered member key"));
  } else if (!(*m)->Has(Role::kAdmin)) {
    *fail =
        Fail(ExecCode::kUnauthorized,
             absl::StrCat(Absl(method), " needs a member key with role admin; ",
                          Short(ToHex(ctx.tx->sender)), " of ", (*m)->org,
                          " has ", RolesText((*m)->roles)));
  }
  return m;
}

// Executes the proposal if its approvals reach the majority; writes it.
absl::StatusOr<ExecResult> Settle(const TxContext& ctx, StateOverlay* state,
                                  const ChainRules& genesis_rules,
                                  ProposalRecord p, std::string_view opened) {
  absl::StatusOr<ConfigRecord> config =
      GetRequired<ConfigRecord>(state, admin::kConfigKey, admin::DecodeConfig);
  if (!config.ok()) return config.status();
  absl::StatusOr<OrgListRecord> orgs = GetRequired<OrgListRecord>(
      state, admin::kOrgListKey, admin::DecodeOrgList);
  if (!orgs.ok()) return orgs.status();
  uint64_t approvals = 0;
  for (const std::string& org : p.approvals) {
    if (std::binary_search(orgs->ids.begin(), orgs->ids.end(), org)) {
      ++approvals;
    }
  }
  const uint64_t active = orgs->ids.size();
  const std::string what =
      absl::StrCat("proposal ", Short(p.id), " (", Describe(p.action), ")");
  if (approvals * 100 <= uint64_t{config->approval_percent} * active) {
    PutRecord(state, admin::ProposalKey(p.id), admin::EncodeProposal(p));
    return ExecResult{
        ExecCode::kOk,
        absl::StrCat(what, " ", Absl(opened), ": ", approvals, " of ", active,
                     " organisations approve, more than ",
                     config->approval_percent, "% needed")};
  }
  ActionRunner runner(ctx, state, p.id, genesis_rules);
  absl::StatusOr<ExecResult> applied = runner.Run(p.action, /*apply=*/true);
  if (!applied.ok()) return applied.status();
  if (applied->code != ExecCode::kOk) {
    applied->log = absl::StrCat(what,
                                " reached its majority but cannot be "
                                "executed: ",
                                applied->log);
    return applied;
  }
  p.status = ProposalStatus::kExecuted;
  p.executed_height = ctx.height;
  PutRecord(state, admin::ProposalKey(p.id), admin::EncodeProposal(p));
  std::string log =
      absl::StrCat(what, " ", Absl(opened), ": ", approvals, " of ", active,
                   " organisations approve; executed");
  if (runner.effective_height() != 0) {
    absl::StrAppend(&log, ", the new validator set takes effect at height ",
                    runner.effective_height());
  }
  return ExecResult{ExecCode::kOk, std::move(log)};
}

absl::StatusOr<ExecResult> Propose(const TxContext& ctx, StateOverlay* state,
                                   const ChainRules& genesis_rules) {
  const Transaction& tx = *ctx.tx;
  if (tx.args.size() != 2) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("propose takes 2 args (action_json, ttl_heights), "
                             "got ",
                             tx.args.size()));
  }
  ExecResult fail = ExecResult{ExecCode::kOk, ""};
  absl::StatusOr<std::optional<MemberRecord>> sender =
      SenderAdmin(ctx, state, "propose", &fail);
  if (!sender.ok()) return sender.status();
  if (fail.code != ExecCode::kOk) return fail;
  absl::StatusOr<Action> action = admin::DecodeAction(tx.args[0]);
  if (!action.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(action.status().message()));
  }
  std::optional<uint64_t> ttl = ParseCount(tx.args[1], admin::kMaxProposalTtl);
  if (!ttl.has_value()) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("ttl_heights must be a decimal number of heights "
                             "from 1 to ",
                             admin::kMaxProposalTtl));
  }
  const std::string id = ToHex(ctx.tx_hash);
  ActionRunner check(ctx, state, id, genesis_rules);
  absl::StatusOr<ExecResult> ok = check.Run(*action, /*apply=*/false);
  if (!ok.ok() || ok->code != ExecCode::kOk) return ok;
  ProposalRecord p;
  p.id = id;
  p.action = *std::move(action);
  p.proposer_org = (*sender)->org;
  p.approvals = {(*sender)->org};
  p.created_height = ctx.height;
  p.expires_height = ctx.height + *ttl;
  return Settle(ctx, state, genesis_rules, std::move(p),
                absl::StrCat("opened by ", (*sender)->org,
                             ", open until height ", ctx.height + *ttl));
}

bool IsProposalId(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<ExecResult> Approve(const TxContext& ctx, StateOverlay* state,
                                   const ChainRules& genesis_rules) {
  const Transaction& tx = *ctx.tx;
  if (tx.args.size() != 1) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("approve takes 1 arg (proposal_id), got ",
                             tx.args.size()));
  }
  const std::string& id = tx.args[0];
  if (!IsProposalId(id)) {
    return Fail(ExecCode::kBadArgs,
                "proposal_id must be 64 lower-case hex digits (the hash of the "
                "propose tx)");
  }
  ExecResult fail = ExecResult{ExecCode::kOk, ""};
  absl::StatusOr<std::optional<MemberRecord>> sender =
      SenderAdmin(ctx, state, "approve", &fail);
  if (!sender.ok()) return sender.status();
  if (fail.code != ExecCode::kOk) return fail;
  absl::StatusOr<std::optional<ProposalRecord>> p = GetRecord<ProposalRecord>(
      state, admin::ProposalKey(id), admin::DecodeProposal);
  if (!p.ok()) return p.status();
  if (!p->has_value()) {
    return Fail(ExecCode::kNotFound, absl::StrCat("no proposal ", id));
  }
  ProposalRecord& rec = **p;
  if (rec.status == ProposalStatus::kExecuted) {
    return Fail(ExecCode::kInvalidState,
                absl::StrCat("proposal ", Short(id), " was executed at height ",
                             rec.executed_height));
  }
  if (rec.status == ProposalStatus::kExpired ||
      ctx.height > rec.expires_height) {
    return Fail(ExecCode::kInvalidState,
                absl::StrCat("proposal ", Short(id),
                             " expired: open until "
                             "height ",
                             rec.expires_height, ", now ", ctx.height));
  }
  const std::string& org = (*sender)->org;
  auto at = std::lower_bound(rec.approvals.begin(), rec.approvals.end(), org);
  if (at != rec.approvals.end() && *at == org) {
    return Fail(ExecCode::kInvalidState,
                absl::StrCat("organisation ", org,
                             " already approved proposal ", Short(id)));
  }
  rec.approvals.insert(at, org);
  return Settle(ctx, state, genesis_rules, *std::move(*p),
                absl::StrCat("approved by ", org));
}

}  // namespace

void SeedConsortium(const Genesis& genesis, StateOverlay* state) {
  if (!genesis.consortium.has_value()) return;
  const Consortium& c = *genesis.consortium;
  OrgListRecord list;
  for (const ConsortiumOrg& org : c.orgs) {
    PutRecord(state, admin::OrgKey(org.id),
              admin::EncodeOrg(OrgRecord{org.id, org.name, 0}));
    OrgMembersRecord members{org.id, {}};
    for (const ConsortiumMember& m : org.members) {
      std::vector<Role> roles = m.roles;
      std::sort(roles.begin(), roles.end());
      PutRecord(state, admin::MemberKey(m.public_key),
                admin::EncodeMember(
                    MemberRecord{m.public_key, org.id, std::move(roles), 0}));
      members.members.push_back(m.public_key);
    }
    std::sort(members.members.begin(), members.members.end());
    PutRecord(state, admin::OrgMembersKey(org.id),
              admin::EncodeOrgMembers(members));
    list.ids.push_back(org.id);
  }
  std::sort(list.ids.begin(), list.ids.end());
  PutRecord(state, admin::kOrgListKey, admin::EncodeOrgList(list));
  ConfigRecord config;
  config.approval_percent = c.approval_percent;
  config.validator_change_delay = admin::kDefaultValidatorChangeDelay;
  config.max_block_txs = genesis.rules.max_block_txs;
  config.max_block_bytes = genesis.rules.max_block_bytes;
  config.replay_window = genesis.rules.replay_window;
  PutRecord(state, admin::kConfigKey, admin::EncodeConfig(config));
  ValidatorChangeRecord vals;
  for (const Validator& v : genesis.validators) {
    vals.validators.push_back(ValidatorEntry{v.name, v.public_key, v.power});
  }
  vals.previous = vals.validators;
  vals.effective_height = 1;
  vals.committed_height = 0;
  PutRecord(state, admin::kValidatorsKey, admin::EncodeValidatorChange(vals));
}

absl::StatusOr<ExecResult> AdminApp::Execute(const TxContext& ctx,
                                             StateOverlay* state) const {
  const std::string& method = ctx.tx->method;
  if (method == "propose") return Propose(ctx, state, genesis_rules_);
  if (method == "approve") return Approve(ctx, state, genesis_rules_);
  return Fail(ExecCode::kUnknownMethod,
              absl::StrCat("admin has no method '", method,
                           "' (its methods are propose and approve)"));
}

void AdminApp::AddReadHints(const Transaction& tx,
                            std::vector<std::string>* keys) const {
  if (tx.method != "propose" && tx.method != "approve") return;
  keys->push_back(std::string(admin::kConfigKey));
  keys->push_back(std::string(admin::kOrgListKey));
  if (tx.method == "approve" && tx.args.size() == 1 &&
      IsProposalId(tx.args[0])) {
    keys->push_back(admin::ProposalKey(tx.args[0]));
  }
}

absl::Status AdminApp::CheckQueryKey(std::string_view key) const {
  if (key == admin::kConfigKey || key == admin::kOrgListKey ||
      key == admin::kValidatorsKey) {
    return absl::OkStatus();
  }
  for (std::string_view prefix :
       {"org/", "member/", "org_members/", "proposal/"}) {
    if (key.size() > prefix.size() && key.substr(0, prefix.size()) == prefix &&
        key.size() <= prefix.size() + 2 * kMaxPublicKeyBytes) {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "admin has no record '", Absl(key),
      "' (its keys are org/<id>, member/<key hex>, orgs, org_members/<id>, "
      "config, proposal/<id>, validators/pending)"));
}

}  // namespace consortia::storage
