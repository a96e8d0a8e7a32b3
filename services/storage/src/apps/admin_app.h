// The `admin` app: a consortium that governs itself (docs/apps.md, "## admin").
// Its records (consortia/admin_records.h) are the organisations, their member
// keys with roles, the governed settings (`config`), the proposals, and the
// latest validator-set change.
//
//   propose(action_json, ttl_heights)
//       by a member key with role admin. Opens proposal/<tx hash hex>, which
//       the sender's organisation approves at once, open until height +
//       ttl_heights (1 .. admin::kMaxProposalTtl). The action (see
//       admin::Action) is checked against state first.
//   approve(proposal_id)
//       by a member key with role admin of an organisation that has not
//       approved it yet, at a height <= its expires_height.
//   Either executes the action in the same tx once approvals * 100 >
//   approval_percent * active organisations (approvals of organisations
//   removed since do not count). An action that can no longer be applied
//   refuses the tx (the proposal stays as it was).
//
// Receipts: kUnauthorized (not a member, not an admin), kBadArgs (argument
// count, malformed action or ttl, a key of the wrong size, a rule out of its
// bounds), kNotFound (no such proposal, organisation, member or validator),
// kExists (the organisation, member or validator exists), kInvalidState
// (executed, expired, already approved by this organisation, the last
// organisation / admin / validator, a validator change still pending),
// kUnknownMethod.
//
// A validator-set change is recorded (admin::ValidatorChangeRecord at
// "validators/pending") and in force from commit height +
// validator_change_delay: the ledger keeps each change with its proof
// (validator_changes.cc) and hands the set of the next height to consensus
// with every commit. A chain whose genesis has one validator refuses them.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_APPS_ADMIN_APP_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_APPS_ADMIN_APP_H_

#include <string>
#include <string_view>
#include <vector>

#include "apps/app.h"
#include "consortia/admin_records.h"
#include "consortia/types.h"

namespace consortia::storage {

// Writes the genesis's consortium into `state` as the admin app's records:
// org/, member/ and org_members/ of each founding organisation (added_height
// 0), the org list, `config` (approval_percent, the default
// validator_change_delay and the genesis's chain rules) and
// validators/pending with the genesis's validator set. The ledger calls it
// when it executes block 1, before the block's txs, on a genesis with a
// consortium. The caller commits the writes (StateOverlay::CommitTx).
void SeedConsortium(const Genesis& genesis, StateOverlay* state);

// Stateless: thread-safe.
class AdminApp : public NativeApp {
 public:
  static constexpr std::string_view kName = admin::kAppName;

  // `genesis_rules` bound set_rule's block limits (docs/apps.md, "Chain
  // rules").
  explicit AdminApp(const ChainRules& genesis_rules)
      : genesis_rules_(genesis_rules) {}

  std::string_view name() const override { return kName; }
  absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                     StateOverlay* state) const override;
  // The keys of admin_records.h: org/<id>, member/<hex>, orgs,
  // org_members/<id>, config, proposal/<hex>, validators/pending.
  absl::Status CheckQueryKey(std::string_view key) const override;
  // config and orgs for both methods, and approve's proposal.
  void AddReadHints(const Transaction& tx,
                    std::vector<std::string>* keys) const override;

 private:
  const ChainRules genesis_rules_;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_APPS_ADMIN_APP_H_
