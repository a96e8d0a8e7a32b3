#include "apps/notary_app.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "apps/membership.h"
#include "consortia/admin_records.h"

namespace consortia::storage {
namespace {

using notary::DocRecord;
using notary::Status;

ExecResult Fail(ExecCode code, std::string log) {
  return ExecResult{code, std::move(log)};
}

// "document <hex>".
std::string Name(const Hash32& hash) {
  return absl::StrCat("document ", ToHex(hash));
}

// "org-a" or "key 0a1b2c3d" (a chain without consortium).
std::string Who(const std::optional<admin::MemberRecord>& member,
                const Bytes& key) {
  if (member.has_value()) return member->org;
  const std::string hex = ToHex(key);
  return absl::StrCat("key ", hex.substr(0, 16));
}

// The stored record, nullopt if there is none. DataLoss if it does not
// decode (state is corrupt: the block must not commit).
absl::StatusOr<std::optional<DocRecord>> Load(StateOverlay* state,
                                              const std::string& key) {
  absl::StatusOr<std::optional<StateEntry>> entry =
      state->Get(NotaryApp::kName, key);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value()) return std::nullopt;
  absl::StatusOr<DocRecord> r = notary::DecodeDoc(AsString((*entry)->value));
  if (!r.ok()) {
    return absl::DataLossError(absl::StrCat(
        "notary state ", key, " does not decode: ", r.status().message()));
  }
  return *std::move(r);
}

void Save(StateOverlay* state, const DocRecord& r) {
  state->Put(NotaryApp::kName, notary::DocKey(r.hash),
             StateEntry{ToBytes(notary::EncodeDoc(r)), r.owner_key});
}

// The hash argument, or the kBadArgs refusal.
absl::StatusOr<Hash32> HashArg(const Transaction& tx, std::string_view usage) {
  if (tx.args.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(tx.method, " takes 2 args (",
                     absl::string_view(usage.data(), usage.size()), "), got ",
                     tx.args.size()));
  }
  return notary::ParseDocHash(tx.args[0]);
}

absl::StatusOr<ExecResult> Anchor(const TxContext& ctx, StateOverlay* state) {
  const Transaction& tx = *ctx.tx;
  absl::StatusOr<Hash32> hash = HashArg(tx, "hash_hex, metadata");
  if (!hash.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(hash.status().message()));
  }
  if (absl::Status s = notary::CheckMetadata(tx.args[1]); !s.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(s.message()));
  }
  const std::string key = notary::DocKey(*hash);
  absl::StatusOr<std::optional<DocRecord>> existing = Load(state, key);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    const DocRecord& e = **existing;
    return Fail(
        ExecCode::kExists,
        absl::StrCat(Name(*hash), " was anchored already at height ",
                     e.anchored_height,
                     e.status == Status::kRevoked ? " (since revoked)" : ""));
  }
  absl::StatusOr<std::optional<admin::MemberRecord>> member =
      FindMember(state, tx.sender);
  if (!member.ok()) return member.status();

  DocRecord r;
  r.hash = *hash;
  r.owner_key = tx.sender;
  r.owner_org = member->has_value() ? (*member)->org : "";
  r.metadata = tx.args[1];
  r.anchored_height = ctx.height;
  r.anchored_time_ms = ctx.block_time_ms;
  r.status = Status::kAnchored;
  r.history.push_back(notary::Step{Status::kAnchored, ctx.height,
                                   ctx.block_time_ms, tx.sender, ctx.tx_hash,
                                   ""});
  Save(state, r);
  return ExecResult{
      ExecCode::kOk,
      absl::StrCat(Name(r.hash), " anchored by ", Who(*member, tx.sender),
                   " at height ", ctx.height, " (block time ",
                   ctx.block_time_ms, " ms)")};
}

absl::StatusOr<ExecResult> Revoke(const TxContext& ctx, StateOverlay* state) {
  const Transaction& tx = *ctx.tx;
  absl::StatusOr<Hash32> hash = HashArg(tx, "hash_hex, reason");
  if (!hash.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(hash.status().message()));
  }
  if (absl::Status s = notary::CheckNote(tx.args[1]); !s.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(s.message()));
  }
  absl::StatusOr<std::optional<DocRecord>> loaded =
      Load(state, notary::DocKey(*hash));
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) {
    return Fail(ExecCode::kNotFound,
                absl::StrCat("no ", Name(*hash), " is anchored"));
  }
  DocRecord r = *std::move(*loaded);
  absl::StatusOr<std::optional<admin::MemberRecord>> member =
      FindMember(state, tx.sender);
  if (!member.ok()) return member.status();
  const bool owner = tx.sender == r.owner_key;
  const bool org_admin = !r.owner_org.empty() && member->has_value() &&
                         (*member)->org == r.owner_org &&
                         (*member)->Has(admin::Role::kAdmin);
  if (!owner && !org_admin) {
    return Fail(
        ExecCode::kNotOwner,
        r.owner_org.empty()
            ? absl::StrCat("only the key that anchored ", Name(r.hash),
                           " may revoke it")
            : absl::StrCat("only the key that anchored ", Name(r.hash),
                           " or an admin of ", r.owner_org, " may revoke it"));
  }
  if (r.status == Status::kRevoked) {
    const notary::Step& last = r.history.back();
    return Fail(ExecCode::kInvalidState,
                absl::StrCat(Name(r.hash), " was revoked already at height ",
                             last.height, " by tx ", ToHex(last.tx)));
  }
  r.history.push_back(notary::Step{Status::kRevoked, ctx.height,
                                   ctx.block_time_ms, tx.sender, ctx.tx_hash,
                                   tx.args[1]});
  r.status = Status::kRevoked;
  Save(state, r);
  return ExecResult{
      ExecCode::kOk,
      absl::StrCat(
          Name(r.hash), " revoked by ",
          owner ? std::string("its owner ") : std::string("an admin of "),
          Who(*member, tx.sender), " at height ", ctx.height)};
}

}  // namespace

absl::StatusOr<ExecResult> NotaryApp::Execute(const TxContext& ctx,
                                              StateOverlay* state) const {
  const std::string& method = ctx.tx->method;
  if (method == "anchor") return Anchor(ctx, state);
  if (method == "revoke") return Revoke(ctx, state);
  return Fail(ExecCode::kUnknownMethod,
              absl::StrCat("notary has no method '", method,
                           "' (anchor, revoke; a lookup is a query)"));
}

void NotaryApp::AddReadHints(const Transaction& tx,
                             std::vector<std::string>* keys) const {
  if ((tx.method == "anchor" || tx.method == "revoke") && !tx.args.empty()) {
    absl::StatusOr<Hash32> hash = notary::ParseDocHash(tx.args[0]);
    if (hash.ok()) keys->push_back(notary::DocKey(*hash));
  }
}

void NotaryApp::AddOtherAppReadHints(const Transaction& tx,
                                     std::vector<AppStateKey>* keys) const {
  if (tx.method == "anchor" || tx.method == "revoke") {
    keys->push_back(
        AppStateKey{std::string(admin::kAppName), admin::MemberKey(tx.sender)});
  }
}

absl::Status NotaryApp::CheckQueryKey(std::string_view key) const {
  constexpr std::string_view kPrefix = "doc/";
  const bool ok = key.size() == kPrefix.size() + 64 &&
                  key.substr(0, 4) == kPrefix &&
                  std::all_of(key.begin() + 4, key.end(), [](char c) {
                    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                  });
  if (!ok) {
    return absl::InvalidArgumentError(
        "a notary key is doc/<64 lower-case hex digits of the document hash>");
  }
  return absl::OkStatus();
}

}  // namespace consortia::storage
