// `consortia apikey ...`: organisations and API keys in the api's key file
// (consortia/api_keys.h), and `consortia audit verify`: the audit log's
// hash chain (consortia/audit_chain.h).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "args.h"
#include "commands.h"
#include "consortia/api_keys.h"
#include "consortia/audit_chain.h"
#include "consortia/config.h"

namespace consortia::cli {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "consortia: %s\n", std::string(s.message()).c_str());
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// Holds an exclusive lock on the key file's directory while a command
// reads, changes and writes the file, so two operators' commands do not
// lose each other's changes. (Advisory: only `consortia apikey` takes it.)
class DirLock {
 public:
  static absl::StatusOr<DirLock> Take(const std::string& file) {
    fs::path dir = fs::path(file).parent_path();
    if (dir.empty()) dir = fs::current_path();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      return absl::NotFoundError(absl::StrCat("cannot open the directory ",
                                              dir.string(), " of ", file, ": ",
                                              std::strerror(errno)));
    }
    if (::flock(fd, LOCK_EX) != 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot lock ", dir.string()));
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

// The key file at `path`; an empty one when it does not exist and
// `may_create`. A file that exists but does not parse is an error: the
// command then writes nothing.
absl::StatusOr<ApiKeyFile> ReadKeyFile(const std::string& path,
                                       bool may_create) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      if (may_create) return ApiKeyFile{};
      return absl::NotFoundError(absl::StrCat(
          "no key file ", path,
          "; create an organisation first: consortia apikey set-quota --file ",
          path, " --org NAME"));
    }
    return text.status();
  }
  absl::StatusOr<ApiKeyFile> file = ParseApiKeyFile(*text);
  if (!file.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a valid key file, so it is left as it is: ",
                     file.status().message()));
  }
  return file;
}

// Writes atomically (temporary file + rename: the api never reads half a
// file), keeping the mode of the file it replaces (0600 for a new one).
absl::Status WriteKeyFile(const std::string& path, const ApiKeyFile& file) {
  if (absl::Status s = ValidateApiKeyFile(file); !s.ok()) return s;
  int mode = 0600;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) mode = st.st_mode & 07777;
  return WriteFileAtomic(path, ApiKeyFileToJson(file), mode);
}

// "2026-01-01T00:00:00Z" (RFC 3339) or a span from now: "90d", "12h",
// "30m", "45s".
absl::StatusOr<absl::Time> ParseWhen(const std::string& s, absl::Time now) {
  if (!s.empty() && std::string("smhd").find(s.back()) != std::string::npos) {
    uint64_t n = 0;
    if (absl::SimpleAtoi(s.substr(0, s.size() - 1), &n) &&
        n <= 36500ull * 86400) {
      const int64_t unit = s.back() == 's'   ? 1
                           : s.back() == 'm' ? 60
                           : s.back() == 'h' ? 3600
                                             : 86400;
      return now + absl::Seconds(static_cast<int64_t>(n) * unit);
    }
  }
  absl::StatusOr<absl::Time> t = ParseApiTime(s);
  if (!t.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", s,
        "' is neither an RFC 3339 time (2026-01-01T00:00:00Z) nor a span "
        "from now (90d, 12h, 30m, 45s)"));
  }
  return t;
}

// Now, to the second (the file shows whole seconds).
absl::Time Now() {
  return absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
}

std::string State(const ApiKeyEntry& k, absl::Time now) {
  if (k.revoked) return "revoked";
  if (k.expires_at.has_value() && *k.expires_at <= now) return "expired";
  return "active";
}

std::string Scopes(const ApiKeyEntry& k) {
  std::string out;
  for (ApiScope s : k.scopes) {
    if (!out.empty()) out += ",";
    out += std::string(ApiScopeName(s));
  }
  return out;
}

std::string Number(double v) {
  if (v == static_cast<double>(static_cast<uint64_t>(v))) {
    return std::to_string(static_cast<uint64_t>(v));
  }
  return absl::StrCat(v);
}

int SetQuota(const Args& args, const std::string& path) {
  auto org = args.Require("org");
  if (!org.ok()) return Fail(org.status());
  auto lock = DirLock::Take(path);
  if (!lock.ok()) return Fail(lock.status());
  auto file = ReadKeyFile(path, true);
  if (!file.ok()) return Fail(file.status());
  ApiOrganisation* o = file->FindOrg(*org);
  const bool created = o == nullptr;
  if (created) {
    file->organisations.push_back(ApiOrganisation{*org, OrgQuotas{}});
    o = &file->organisations.back();
  }
  auto rate = [&](const char* name, double* out) -> absl::Status {
    if (!args.Has(name)) return absl::OkStatus();
    double v = 0;
    if (!absl::SimpleAtod(args.Get(name), &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " must be a number"));
    }
    *out = v;
    return absl::OkStatus();
  };
  auto burst = [&](const char* name, uint64_t* out) -> absl::Status {
    if (!args.Has(name)) return absl::OkStatus();
    auto v = args.GetU64(name, 0);
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  };
  for (absl::Status s : {rate("requests-per-s", &o->quotas.requests_per_s),
                         burst("requests-burst", &o->quotas.requests_burst),
                         rate("tx-bytes-per-s", &o->quotas.tx_bytes_per_s),
                         burst("tx-bytes-burst", &o->quotas.tx_bytes_burst)}) {
    if (!s.ok()) return Fail(s);
  }
  const OrgQuotas q = o->quotas;
  if (auto s = WriteKeyFile(path, *file); !s.ok()) {
    return Fail(absl::InvalidArgumentError(s.message()));
  }
  std::printf(
      "%s organisation %s: %s requests/s (burst %llu), %s tx bytes/s (burst "
      "%llu) per key\n",
      created ? "created" : "updated", org->c_str(),
      Number(q.requests_per_s).c_str(),
      static_cast<unsigned long long>(q.requests_burst),
      Number(q.tx_bytes_per_s).c_str(),
      static_cast<unsigned long long>(q.tx_bytes_burst));
  return 0;
}

int Create(const Args& args, const std::string& path) {
  auto org = args.Require("org");
  if (!org.ok()) return Fail(org.status());
  auto scopes_arg = args.Require("scopes");
  if (!scopes_arg.ok()) return Fail(scopes_arg.status());
  ApiKeyEntry e;
  for (absl::string_view part : absl::StrSplit(*scopes_arg, ',')) {
    auto scope = ParseApiScope(std::string(part));
    if (!scope.ok()) return Fail(scope.status());
    if (!e.HasScope(*scope)) e.scopes.push_back(*scope);
  }
  const absl::Time now = Now();
  if (args.Has("expires")) {
    auto when = ParseWhen(args.Get("expires"), now);
    if (!when.ok()) return Fail(when.status());
    e.expires_at = *when;
  }
  e.label = args.Get("label");
  e.org = *org;
  e.created = now;
  auto lock = DirLock::Take(path);
  if (!lock.ok()) return Fail(lock.status());
  auto file = ReadKeyFile(path, false);
  if (!file.ok()) return Fail(file.status());
  if (file->FindOrg(*org) == nullptr) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("no organisation ", *org, " in ", path,
                     "; create it with: consortia apikey set-quota --file ",
                     path, " --org ", *org)));
  }
  std::vector<std::string> ids;
  for (const ApiKeyEntry& k : file->keys) ids.push_back(k.id);
  NewApiKey key = GenerateApiKey(ids);
  e.id = key.id;
  e.sha256 = ApiKeySecretHash(key.secret);
  file->keys.push_back(e);
  if (auto s = WriteKeyFile(path, *file); !s.ok()) {
    return Fail(absl::InvalidArgumentError(s.message()));
  }
  std::fprintf(
      stderr,
      "created key %s of organisation %s (scopes %s%s%s). Its secret "
      "follows; it is shown this once and stored nowhere:\n",
      key.id.c_str(), org->c_str(), Scopes(e).c_str(),
      e.expires_at.has_value() ? ", expires " : "",
      e.expires_at.has_value() ? FormatApiTime(*e.expires_at).c_str() : "");
  std::printf("%s\n", key.secret.c_str());
  return 0;
}

int List(const std::string& path) {
  auto file = ReadKeyFile(path, false);
  if (!file.ok()) return Fail(file.status());
  const absl::Time now = absl::Now();
  std::printf("%-20s %14s %14s %16s %16s\n", "ORGANISATION", "REQUESTS/S",
              "REQ BURST", "TX BYTES/S", "TX BYTES BURST");
  for (const ApiOrganisation& o : file->organisations) {
    std::printf("%-20s %14s %14llu %16s %16llu\n", o.name.c_str(),
                Number(o.quotas.requests_per_s).c_str(),
                static_cast<unsigned long long>(o.quotas.requests_burst),
                Number(o.quotas.tx_bytes_per_s).c_str(),
                static_cast<unsigned long long>(o.quotas.tx_bytes_burst));
  }
  std::printf("\n%-14s %-16s %-12s %-8s %-21s %-21s %s\n", "KEY",
              "ORGANISATION", "SCOPES", "STATE", "CREATED", "EXPIRES", "LABEL");
  for (const ApiKeyEntry& k : file->keys) {
    std::string expires =
        k.expires_at.has_value() ? FormatApiTime(*k.expires_at) : "-";
    if (k.revoked) expires = "revoked " + FormatApiTime(*k.revoked_at);
    std::printf("%-14s %-16s %-12s %-8s %-21s %-21s %s\n", k.id.c_str(),
                k.org.c_str(), Scopes(k).c_str(), State(k, now).c_str(),
                FormatApiTime(k.created).c_str(), expires.c_str(),
                k.label.c_str());
  }
  return 0;
}

// expire and revoke: change one key, by id.
int ChangeKey(const Args& args, const std::string& path, bool revoke) {
  auto id = args.Require("id");
  if (!id.ok()) return Fail(id.status());
  const absl::Time now = Now();
  absl::Time at = now;
  if (!revoke && args.Has("at")) {
    auto when = ParseWhen(args.Get("at"), now);
    if (!when.ok()) return Fail(when.status());
    at = *when;
  }
  auto lock = DirLock::Take(path);
  if (!lock.ok()) return Fail(lock.status());
  auto file = ReadKeyFile(path, false);
  if (!file.ok()) return Fail(file.status());
  ApiKeyEntry* k = file->FindKey(*id);
  if (k == nullptr) {
    return Fail(absl::NotFoundError(
        absl::StrCat("no key ", *id, " in ", path, " (see apikey list)")));
  }
  if (revoke) {
    if (k->revoked) {
      std::printf("key %s was already revoked at %s\n", id->c_str(),
                  FormatApiTime(*k->revoked_at).c_str());
      return 0;
    }
    k->revoked = true;
    k->revoked_at = now;
  } else {
    k->expires_at = at;
  }
  if (auto s = WriteKeyFile(path, *file); !s.ok()) return Fail(s);
  if (revoke) {
    std::printf("revoked key %s of organisation %s\n", id->c_str(),
                k->org.c_str());
  } else {
    std::printf("key %s of organisation %s expires at %s\n", id->c_str(),
                k->org.c_str(), FormatApiTime(at).c_str());
  }
  return 0;
}

}  // namespace

int ApikeyCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(
      argv,
      {"file", "org", "scopes", "expires", "label", "id", "at",
       "requests-per-s", "requests-burst", "tx-bytes-per-s", "tx-bytes-burst"},
      {});
  if (!args.ok()) return Fail(args.status());
  const auto& pos = args->positional();
  const std::string usage =
      "usage: consortia apikey create|list|expire|revoke|set-quota --file "
      "FILE ... (consortia apikey --help)";
  if (pos.size() != 1) return Fail(absl::InvalidArgumentError(usage));
  auto path = args->Require("file");
  if (!path.ok()) return Fail(path.status());
  const std::string& sub = pos[0];
  if (sub == "set-quota") return SetQuota(*args, *path);
  if (sub == "create") return Create(*args, *path);
  if (sub == "list") return List(*path);
  if (sub == "expire") return ChangeKey(*args, *path, false);
  if (sub == "revoke") return ChangeKey(*args, *path, true);
  return Fail(absl::InvalidArgumentError(usage));
}

int AuditCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"after"}, {});
  if (!args.ok()) return Fail(args.status());
  const auto& pos = args->positional();
  if (pos.size() < 2 || pos[0] != "verify") {
    return Fail(absl::InvalidArgumentError(
        "usage: consortia audit verify [--after HASH] FILE..."));
  }
  const std::vector<std::string> files(pos.begin() + 1, pos.end());
  const std::string after =
      args->Has("after") ? args->Get("after") : AuditChainStart();
  auto report = VerifyAuditLogFiles(files, after);
  if (!report.ok()) return Fail(report.status());
  const std::string name =
      files.size() == 1 ? files[0]
                        : absl::StrCat(files.size(), " files (", files.front(),
                                       " ... ", files.back(), ")");
  if (!report->ok) {
    std::printf("BAD: %s line %llu: %s\n", report->bad_file.c_str(),
                static_cast<unsigned long long>(report->bad_line),
                report->reason.c_str());
    if (report->total_lines > 1) {
      std::printf("the lines before it are intact (head %s)\n",
                  report->head.c_str());
    }
    return 1;
  }
  std::printf(
      "OK: %s: %llu lines, chain intact; head %s\n(keep the head elsewhere: "
      "removing the last lines is only detected against it)\n",
      name.c_str(), static_cast<unsigned long long>(report->total_lines),
      report->head.c_str());
  return 0;
}

absl::StatusOr<std::string> EnsureApiKey(const std::string& keys_path,
                                         const std::string& secret_path,
                                         const std::string& org,
                                         const OrgQuotas& quotas,
                                         const std::string& label) {
  auto file = ReadKeyFile(keys_path, true);
  if (!file.ok()) return file.status();
  if (auto secret = ReadFile(secret_path); secret.ok()) {
    std::string s = *secret;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    auto id = ApiKeyIdOf(s);
    const ApiKeyEntry* k =
        id.has_value() ? file->FindKey(std::string(*id)) : nullptr;
    if (k != nullptr && ApiKeySecretMatches(s, k->sha256)) return s;
  }
  if (file->FindOrg(org) == nullptr) {
    file->organisations.push_back(ApiOrganisation{org, quotas});
  }
  std::vector<std::string> ids;
  for (const ApiKeyEntry& k : file->keys) ids.push_back(k.id);
  NewApiKey key = GenerateApiKey(ids);
  ApiKeyEntry e;
  e.id = key.id;
  e.org = org;
  e.label = label;
  e.sha256 = ApiKeySecretHash(key.secret);
  e.scopes = {ApiScope::kRead, ApiScope::kSubmit};
  e.created = Now();
  file->keys.push_back(e);
  if (auto s = WriteFileAtomic(secret_path, key.secret + "\n"); !s.ok()) {
    return s;
  }
  if (auto s = WriteKeyFile(keys_path, *file); !s.ok()) return s;
  return key.secret;
}

// The local network's development key: organisation "dev", generous quotas
// (a developer's scripts, not a tenant to keep in check).
absl::StatusOr<std::string> EnsureDevApiKey(const std::string& keys_path,
                                            const std::string& secret_path) {
  return EnsureApiKey(keys_path, secret_path, "dev",
                      OrgQuotas{1000, 2000, 64 << 20, 256 << 20},
                      "localnet development key");
}

}  // namespace consortia::cli
