#include "membership_cache.h"

#include <string_view>
#include <utility>

#include "absl/strings/string_view.h"

namespace consortia::mempool {

MembershipCache::MembershipCache(Gauge members, Gauge permissioned)
    : members_gauge_(std::move(members)),
      permissioned_gauge_(std::move(permissioned)) {}

void MembershipCache::Load(uint64_t height, bool permissioned,
                           absl::flat_hash_set<std::string> keys) {
  absl::MutexLock lock(&mu_);
  height_ = height;
  permissioned_ = permissioned;
  keys_ = std::move(keys);
  UpdateGauges();
}

void MembershipCache::Apply(const CommittedEvent& event) {
  absl::MutexLock lock(&mu_);
  if (event.height <= height_) return;
  for (const MemberChange& c : event.member_changes) {
    std::string key(AsString(c.public_key));
    if (c.registered) {
      keys_.insert(std::move(key));
    } else {
      keys_.erase(key);
    }
  }
  permissioned_ = event.permissioned;
  height_ = event.height;
  UpdateGauges();
}

bool MembershipCache::Admits(ByteView sender) const {
  absl::ReaderMutexLock lock(&mu_);
  // absl::string_view: the set's heterogeneous lookup, no copy of the key.
  const std::string_view key = AsString(sender);
  return !permissioned_ ||
         keys_.contains(absl::string_view(key.data(), key.size()));
}

uint64_t MembershipCache::height() const {
  absl::ReaderMutexLock lock(&mu_);
  return height_;
}

bool MembershipCache::permissioned() const {
  absl::ReaderMutexLock lock(&mu_);
  return permissioned_;
}

size_t MembershipCache::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return keys_.size();
}

void MembershipCache::UpdateGauges() {
  members_gauge_.Set(static_cast<double>(keys_.size()));
  permissioned_gauge_.Set(permissioned_ ? 1 : 0);
}

}  // namespace consortia::mempool
