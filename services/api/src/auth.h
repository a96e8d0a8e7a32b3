// API keys at the api (issue 13): the keys in force, checked for every
// request that presents one (`Authorization: Bearer csk_...`), and the
// watcher that re-reads the key file (--api_keys_file) when it changes, so
// keys are created, expired and revoked without a restart.
#ifndef CONSORTIA_API_AUTH_H_
#define CONSORTIA_API_AUTH_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api_metrics.h"
#include "consortia/api_keys.h"

namespace consortia::api {

// Why a request's key was refused. 401 for kMissing and kUnknown, 403 for
// the others (src/problem.cc).
enum class AuthFailure {
  kNone,
  kMissing,  // no `Authorization: Bearer ...` where the route needs a key
  kUnknown,  // not a key of the file (or not of the form csk_<id>_<secret>)
  kRevoked,
  kExpired,
  kScope,  // the key lacks the route's scope
};
// The `kind` label of consortia_api_auth_failures_total: "missing",
// "unknown", "revoked", "expired", "scope" ("" for kNone).
const char* AuthFailureKind(AuthFailure f);

// Who sent a request: the key it presented and that key's organisation.
struct Caller {
  std::string key_id;
  std::string org;
  OrgQuotas quotas;
  // The key has scope `audit`: it reads every organisation's invoices under
  // --api_invoice_reads=parties (src/invoice_access.h).
  bool audit = false;
};

struct AuthResult {
  AuthFailure failure = AuthFailure::kNone;
  // Set when the request presented a key of the file whose secret matched,
  // even when it was refused (revoked, expired, scope): for the audit log.
  std::optional<Caller> caller;
};

// The keys in force, replaced as a whole on reload. Thread-safe: Check runs
// on any HTTP thread while Replace runs on the watcher's.
class Authenticator {
 public:
  explicit Authenticator(const ApiKeyFile& file);

  // Replaces the keys in force (requests already checked keep their result).
  void Replace(const ApiKeyFile& file);

  // Checks a request. `authorization` is its Authorization header (nullopt
  // when absent); `needed` the scope its route needs, nullopt for a public
  // route. A public route passes without a key, but a key presented there
  // is checked all the same (a revoked key is refused everywhere) and
  // identifies the caller (its quota applies). Checks in this order:
  // missing, unknown (the secret's SHA-256 compared in constant time with
  // the file's, ApiKeySecretMatches), revoked, expired (expires_at <= now),
  // scope.
  AuthResult Check(const std::optional<std::string>& authorization,
                   std::optional<ApiScope> needed, absl::Time now) const;

  // The ids of the keys in force.
  std::set<std::string> KeyIds() const;

 private:
  struct Key {
    Hash32 sha256;
    std::string org;
    OrgQuotas quotas;
    bool read = false;
    bool submit = false;
    bool audit = false;
    std::optional<absl::Time> expires_at;
    bool revoked = false;
  };
  using KeyMap = std::unordered_map<std::string, Key>;
  static std::shared_ptr<const KeyMap> Build(const ApiKeyFile& file);

  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyMap> keys_ ABSL_GUARDED_BY(mu_);
};

// Reads and parses the key file at `path` (ParseApiKeyFile); the errors of
// ReadFile and ParseApiKeyFile, with the path.
absl::StatusOr<ApiKeyFile> LoadApiKeyFile(const std::string& path);

// Polls the key file every `interval` on its own thread. When what `path`
// names has changed — stat() follows symbolic links, and the device, inode,
// size, modification and change times are compared, so an edit in place, a
// rename over the file (the CLI's atomic write) and a Kubernetes Secret
// update (which swaps a symbolic link to a new directory) are all seen — it
// reads and parses the file: a good file goes to `on_load` and counts as a
// successful reload; a bad or missing one keeps the keys in force, is logged
// (error) and counted as a failed reload, once per change.
//
// Thread-safe. The destructor stops the thread; `on_load` is not called
// after it returns.
class KeyFileWatcher {
 public:
  using OnLoad = std::function<void(const ApiKeyFile&)>;

  // Loads the file once (an error when it is missing or bad: the api does
  // not start without its keys), hands it to `on_load`, then starts polling.
  // `metrics` must outlive the watcher.
  static absl::StatusOr<std::unique_ptr<KeyFileWatcher>> Start(
      const std::string& path, absl::Duration interval, OnLoad on_load,
      ApiMetrics* metrics);
  ~KeyFileWatcher();
  KeyFileWatcher(const KeyFileWatcher&) = delete;
  KeyFileWatcher& operator=(const KeyFileWatcher&) = delete;

  // Test hook: one poll now, on the caller's thread.
  void PollNowForTest() { Poll(); }

 private:
  // What stat() says about the file; all zero when it cannot be stat'ed.
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  static Identity Stat(const std::string& path);

  KeyFileWatcher(std::string path, absl::Duration interval, OnLoad on_load,
                 ApiMetrics* metrics);
  void Poll();
  void Loop();

  const std::string path_;
  const absl::Duration interval_;
  const OnLoad on_load_;
  ApiMetrics* const metrics_;
  absl::Mutex poll_mu_;  // one Poll at a time
  Identity seen_ ABSL_GUARDED_BY(poll_mu_);
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_AUTH_H_
