#include "auth.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "spdlog/spdlog.h"

namespace consortia::api {
namespace {

// The token of "Bearer <token>" (scheme case-insensitive, RFC 6750);
// nullopt for any other header.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(
          absl::string_view(header.data(), kScheme.size()),
          absl::string_view(kScheme.data(), kScheme.size())) ||
      header[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  if (header.empty()) return std::nullopt;
  return header;
}

int64_t Nanos(const timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

const char* AuthFailureKind(AuthFailure f) {
  switch (f) {
    case AuthFailure::kNone:
      return "";
    case AuthFailure::kMissing:
      return "missing";
    case AuthFailure::kUnknown:
      return "unknown";
    case AuthFailure::kRevoked:
      return "revoked";
    case AuthFailure::kExpired:
      return "expired";
    case AuthFailure::kScope:
      return "scope";
  }
  return "unknown";
}

// ----------------------------------------------------------- Authenticator

Authenticator::Authenticator(const ApiKeyFile& file) : keys_(Build(file)) {}

std::shared_ptr<const Authenticator::KeyMap> Authenticator::Build(
    const ApiKeyFile& file) {
  auto keys = std::make_shared<KeyMap>();
  for (const ApiKeyEntry& e : file.keys) {
    const ApiOrganisation* org = file.FindOrg(e.org);
    Key k;
    k.sha256 = e.sha256;
    k.org = e.org;
    if (org != nullptr) k.quotas = org->quotas;  // always, in a parsed file
    k.read = e.HasScope(ApiScope::kRead);
    k.submit = e.HasScope(ApiScope::kSubmit);
    k.audit = e.HasScope(ApiScope::kAudit);
    k.expires_at = e.expires_at;
    k.revoked = e.revoked;
    keys->emplace(e.id, std::move(k));
  }
  return keys;
}

void Authenticator::Replace(const ApiKeyFile& file) {
  std::shared_ptr<const KeyMap> keys = Build(file);
  absl::MutexLock l(&mu_);
  keys_ = std::move(keys);
}

std::set<std::string> Authenticator::KeyIds() const {
  std::shared_ptr<const KeyMap> keys;
  {
    absl::ReaderMutexLock l(&mu_);
    keys = keys_;
  }
  std::set<std::string> ids;
  for (const auto& [id, key] : *keys) ids.insert(id);
  return ids;
}

AuthResult Authenticator::Check(const std::optional<std::string>& authorization,
                                std::optional<ApiScope> needed,
                                absl::Time now) const {
  AuthResult r;
  std::optional<std::string_view> token;
  if (authorization.has_value()) token = BearerToken(*authorization);
  if (!token.has_value()) {
    if (needed.has_value()) r.failure = AuthFailure::kMissing;
    return r;
  }
  std::shared_ptr<const KeyMap> keys;
  {
    absl::ReaderMutexLock l(&mu_);
    keys = keys_;
  }
  std::optional<std::string_view> id = ApiKeyIdOf(*token);
  auto it = id.has_value() ? keys->find(std::string(*id)) : keys->end();
  // The id is not secret (it is in the key file and the audit log); the
  // secret is compared through its hash, in constant time.
  if (it == keys->end() || !ApiKeySecretMatches(*token, it->second.sha256)) {
    r.failure = AuthFailure::kUnknown;
    return r;
  }
  const Key& key = it->second;
  r.caller = Caller{it->first, key.org, key.quotas, key.audit};
  if (key.revoked) {
    r.failure = AuthFailure::kRevoked;
  } else if (key.expires_at.has_value() && *key.expires_at <= now) {
    r.failure = AuthFailure::kExpired;
  } else if (needed == ApiScope::kRead && !key.read) {
    r.failure = AuthFailure::kScope;
  } else if (needed == ApiScope::kSubmit && !key.submit) {
    r.failure = AuthFailure::kScope;
  }
  return r;
}

absl::StatusOr<ApiKeyFile> LoadApiKeyFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<ApiKeyFile> file = ParseApiKeyFile(*text);
  if (!file.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", file.status().message()));
  }
  return file;
}

// ---------------------------------------------------------- KeyFileWatcher

KeyFileWatcher::KeyFileWatcher(std::string path, absl::Duration interval,
                               OnLoad on_load, ApiMetrics* metrics)
    : path_(std::move(path)),
      interval_(interval),
      on_load_(std::move(on_load)),
      metrics_(metrics) {}

absl::StatusOr<std::unique_ptr<KeyFileWatcher>> KeyFileWatcher::Start(
    const std::string& path, absl::Duration interval, OnLoad on_load,
    ApiMetrics* metrics) {
  std::unique_ptr<KeyFileWatcher> w(
      new KeyFileWatcher(path, interval, std::move(on_load), metrics));
  {
    absl::MutexLock l(&w->poll_mu_);
    // Stat first: a change made while the file is read is seen next poll.
    w->seen_ = Stat(path);
    absl::StatusOr<ApiKeyFile> file = LoadApiKeyFile(path);
    if (!file.ok()) return file.status();
    w->on_load_(*file);
    metrics->KeysLoaded(file->keys.size());
    spdlog::info("api: {} API keys of {} organisations from {}",
                 file->keys.size(), file->organisations.size(), path);
  }
  KeyFileWatcher* raw = w.get();
  w->thread_ = std::thread([raw] { raw->Loop(); });
  return w;
}

KeyFileWatcher::~KeyFileWatcher() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

KeyFileWatcher::Identity KeyFileWatcher::Stat(const std::string& path) {
  struct stat st {};
  Identity id;
  if (::stat(path.c_str(), &st) != 0) return id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = st.st_size;
  id.mtime_ns = Nanos(st.st_mtim);
  id.ctime_ns = Nanos(st.st_ctim);
  return id;
}

void KeyFileWatcher::Poll() {
  absl::MutexLock l(&poll_mu_);
  Identity now = Stat(path_);
  if (now == seen_) return;
  seen_ = now;
  absl::StatusOr<ApiKeyFile> file = LoadApiKeyFile(path_);
  if (!file.ok()) {
    metrics_->KeyFileReload(false);
    spdlog::error(
        "api: key file reload failed, the keys loaded before stay in force: "
        "{}",
        file.status().ToString());
    return;
  }
  on_load_(*file);
  metrics_->KeyFileReload(true);
  metrics_->KeysLoaded(file->keys.size());
  spdlog::info("api: reloaded {}: {} API keys of {} organisations", path_,
               file->keys.size(), file->organisations.size());
}

void KeyFileWatcher::Loop() {
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), interval_)) return;
    }
    Poll();
  }
}

}  // namespace consortia::api
