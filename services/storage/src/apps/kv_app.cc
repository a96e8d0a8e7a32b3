#include "apps/kv_app.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace consortia::storage {
namespace {

ExecResult Fail(ExecCode code, std::string log) {
  return ExecResult{code, std::move(log)};
}

// Empty when the key is acceptable, else the reason.
std::string KeyProblem(std::string_view key) {
  if (key.empty()) return "key is empty";
  if (key.size() > kMaxKvKeyBytes) {
    return absl::StrCat("key is ", key.size(), " bytes, over the limit of ",
                        kMaxKvKeyBytes);
  }
  return "";
}

absl::StatusOr<ExecResult> Set(const TxContext& ctx, StateOverlay* state) {
  const Transaction& tx = *ctx.tx;
  if (tx.args.size() != 2) {
    return Fail(
        ExecCode::kBadArgs,
        absl::StrCat("set takes 2 args (key, value), got ", tx.args.size()));
  }
  const std::string& key = tx.args[0];
  const std::string& value = tx.args[1];
  if (std::string problem = KeyProblem(key); !problem.empty()) {
    return Fail(ExecCode::kBadArgs, std::move(problem));
  }
  if (value.size() > kMaxKvValueBytes) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("value is ", value.size(),
                             " bytes, over the limit of ", kMaxKvValueBytes));
  }
  absl::StatusOr<std::optional<StateEntry>> current =
      state->Get(KvApp::kName, key);
  if (!current.ok()) return current.status();
  StateEntry next;
  next.value = ToBytes(value);
  if (current->has_value()) {
    if ((*current)->owner != tx.sender) {
      return Fail(ExecCode::kNotOwner, "the record is owned by another sender");
    }
    next.owner = (*current)->owner;
    state->Put(KvApp::kName, key, std::move(next));
    return ExecResult{ExecCode::kOk, "updated"};
  }
  next.owner = tx.sender;
  state->Put(KvApp::kName, key, std::move(next));
  return ExecResult{ExecCode::kOk, "created"};
}

absl::StatusOr<ExecResult> Delete(const TxContext& ctx, StateOverlay* state) {
  const Transaction& tx = *ctx.tx;
  if (tx.args.size() != 1) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("delete takes 1 arg (key), got ", tx.args.size()));
  }
  const std::string& key = tx.args[0];
  if (std::string problem = KeyProblem(key); !problem.empty()) {
    return Fail(ExecCode::kBadArgs, std::move(problem));
  }
  absl::StatusOr<std::optional<StateEntry>> current =
      state->Get(KvApp::kName, key);
  if (!current.ok()) return current.status();
  if (!current->has_value()) return Fail(ExecCode::kNotFound, "no such key");
  if ((*current)->owner != tx.sender) {
    return Fail(ExecCode::kNotOwner, "the record is owned by another sender");
  }
  state->Delete(KvApp::kName, key);
  return ExecResult{ExecCode::kOk, "deleted"};
}

}  // namespace

absl::StatusOr<ExecResult> KvApp::Execute(const TxContext& ctx,
                                          StateOverlay* state) const {
  const std::string& method = ctx.tx->method;
  if (method == "set") return Set(ctx, state);
  if (method == "delete") return Delete(ctx, state);
  if (method == "get") {
    return Fail(ExecCode::kUnknownMethod,
                "kv.get is a query, not a transaction");
  }
  return Fail(ExecCode::kUnknownMethod,
              absl::StrCat("kv has no method '", method, "'"));
}

void KvApp::AddReadHints(const Transaction& tx,
                         std::vector<std::string>* keys) const {
  if ((tx.method == "set" || tx.method == "delete") && !tx.args.empty() &&
      KeyProblem(tx.args[0]).empty()) {
    keys->push_back(tx.args[0]);
  }
}

absl::Status KvApp::CheckQueryKey(std::string_view key) const {
  if (std::string problem = KeyProblem(key); !problem.empty()) {
    return absl::InvalidArgumentError(problem);
  }
  return absl::OkStatus();
}

}  // namespace consortia::storage
