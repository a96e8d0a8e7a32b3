#include "state_overlay.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace consortia::storage {

absl::StatusOr<std::optional<StateEntry>> StateOverlay::Get(
    std::string_view app, std::string_view key) {
  std::string k = keys::State(app, key);
  if (auto it = tx_.find(k); it != tx_.end()) return it->second;
  if (auto it = block_.find(k); it != block_.end()) return it->second;
  absl::StatusOr<std::optional<std::string>> raw;
  if (auto it = base_.find(k); it != base_.end()) {
    raw = it->second;
  } else {
    raw = store_->Get(k);
  }
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<StateEntry>();
  absl::StatusOr<StateEntry> entry = keys::DecodeStateEntry(**raw);
  if (!entry.ok()) {
    return absl::DataLossError(absl::StrCat("corrupt state entry for app ",
                                            std::string(app), ": ",
                                            entry.status().message()));
  }
  return std::optional<StateEntry>(*std::move(entry));
}

void StateOverlay::Prefetched(std::vector<std::string> store_keys,
                              std::vector<std::optional<std::string>> values) {
  for (size_t i = 0; i < store_keys.size() && i < values.size(); ++i) {
    base_.insert_or_assign(std::move(store_keys[i]), std::move(values[i]));
  }
}

void StateOverlay::Put(std::string_view app, std::string_view key,
                       StateEntry entry) {
  tx_[keys::State(app, key)] = std::move(entry);
}

void StateOverlay::Delete(std::string_view app, std::string_view key) {
  tx_[keys::State(app, key)] = std::nullopt;
}

void StateOverlay::CommitTx() {
  for (auto& [k, v] : tx_) block_[k] = std::move(v);
  tx_.clear();
}

void StateOverlay::RollbackTx() { tx_.clear(); }

}  // namespace consortia::storage
