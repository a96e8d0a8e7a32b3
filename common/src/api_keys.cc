#include "consortia/api_keys.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

using json = nlohmann::json;
// Written in a fixed field order, for people reading the file.
using ojson = nlohmann::ordered_json;
using json_internal::JsonTypeName;

constexpr char kSecretPrefix[] = "csk_";
constexpr size_t kIdBytes = 6;       // 12 hex digits
constexpr size_t kRandomBytes = 32;  // 64 hex digits
constexpr size_t kMaxNameLength = 64;
constexpr size_t kMaxIdLength = 32;
constexpr size_t kMaxLabelLength = 256;
// Quota bounds: rates in (0, 1e12], bursts in [1, 1e15].
constexpr double kMaxRate = 1e12;
constexpr uint64_t kMaxBurst = 1'000'000'000'000'000;

void EnsureSodium() {
  static const bool ok = [] { return sodium_init() >= 0; }();
  if (!ok) std::abort();  // no randomness: nothing safe to do
}

bool ValidOrgName(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           c == '_' || c == '-';
  });
}

bool ValidKeyId(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
  });
}

absl::Status Invalid(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "api key file: ", std::string(where), ": ", std::string(what)));
}

// Checks that object `j` has only `allowed` fields.
absl::Status OnlyFields(const json& j, std::string_view where,
                        std::initializer_list<const char*> allowed) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known)
      return Invalid(where, absl::StrCat("unknown field \"", it.key(), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<const json*> Field(const json& j, std::string_view where,
                                  const char* name) {
  auto it = j.find(name);
  if (it == j.end())
    return Invalid(where, absl::StrCat("missing \"", name, "\""));
  return &*it;
}

absl::StatusOr<std::string> StringField(const json& j, std::string_view where,
                                        const char* name) {
  absl::StatusOr<const json*> f = Field(j, where, name);
  if (!f.ok()) return f.status();
  if (!(*f)->is_string()) {
    return Invalid(where, absl::StrCat("\"", name, "\" must be a string, not ",
                                       JsonTypeName(**f)));
  }
  return (*f)->get<std::string>();
}

absl::StatusOr<std::optional<absl::Time>> OptionalTimeField(
    const json& j, std::string_view where, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::optional<absl::Time>();
  if (!it->is_string()) {
    return Invalid(
        where, absl::StrCat("\"", name, "\" must be an RFC 3339 time or null"));
  }
  absl::StatusOr<absl::Time> t = ParseApiTime(it->get<std::string>());
  if (!t.ok()) {
    return Invalid(where,
                   absl::StrCat("\"", name, "\": ", t.status().message()));
  }
  return std::optional<absl::Time>(*t);
}

absl::Status CheckQuotas(const OrgQuotas& q, std::string_view where) {
  auto rate_ok = [](double r) {
    return std::isfinite(r) && r > 0 && r <= kMaxRate;
  };
  auto burst_ok = [](uint64_t b) { return b >= 1 && b <= kMaxBurst; };
  if (!rate_ok(q.requests_per_s)) {
    return Invalid(where,
                   "quotas.requests_per_s must be a number in (0, 1e12]");
  }
  if (!rate_ok(q.tx_bytes_per_s)) {
    return Invalid(where,
                   "quotas.tx_bytes_per_s must be a number in (0, 1e12]");
  }
  if (!burst_ok(q.requests_burst)) {
    return Invalid(where,
                   "quotas.requests_burst must be a whole number in [1, 1e15]");
  }
  if (!burst_ok(q.tx_bytes_burst)) {
    return Invalid(where,
                   "quotas.tx_bytes_burst must be a whole number in [1, 1e15]");
  }
  return absl::OkStatus();
}

absl::StatusOr<OrgQuotas> ParseQuotas(const json& j, std::string_view where) {
  if (!j.is_object()) return Invalid(where, "\"quotas\" must be an object");
  if (auto s = OnlyFields(j, where,
                          {"requests_per_s", "requests_burst", "tx_bytes_per_s",
                           "tx_bytes_burst"});
      !s.ok()) {
    return s;
  }
  OrgQuotas q;
  auto rate = [&](const char* name, double* out) -> absl::Status {
    absl::StatusOr<const json*> f = Field(j, where, name);
    if (!f.ok()) return f.status();
    if (!(*f)->is_number()) {
      return Invalid(where, absl::StrCat("quotas.", name, " must be a number"));
    }
    *out = (*f)->get<double>();
    return absl::OkStatus();
  };
  auto burst = [&](const char* name, uint64_t* out) -> absl::Status {
    absl::StatusOr<const json*> f = Field(j, where, name);
    if (!f.ok()) return f.status();
    if (!(*f)->is_number_unsigned()) {
      return Invalid(where,
                     absl::StrCat("quotas.", name, " must be a whole number"));
    }
    *out = (*f)->get<uint64_t>();
    return absl::OkStatus();
  };
  for (absl::Status s : {rate("requests_per_s", &q.requests_per_s),
                         burst("requests_burst", &q.requests_burst),
                         rate("tx_bytes_per_s", &q.tx_bytes_per_s),
                         burst("tx_bytes_burst", &q.tx_bytes_burst)}) {
    if (!s.ok()) return s;
  }
  if (auto s = CheckQuotas(q, where); !s.ok()) return s;
  return q;
}

absl::StatusOr<ApiKeyEntry> ParseKey(const json& j, size_t index) {
  std::string where = absl::StrCat("keys[", index, "]");
  if (!j.is_object()) return Invalid(where, "must be an object");
  if (auto s = OnlyFields(j, where,
                          {"id", "org", "label", "sha256", "scopes", "created",
                           "expires_at", "revoked", "revoked_at"});
      !s.ok()) {
    return s;
  }
  ApiKeyEntry k;
  absl::StatusOr<std::string> id = StringField(j, where, "id");
  if (!id.ok()) return id.status();
  if (!ValidKeyId(*id)) {
    return Invalid(where, "\"id\" must be 1 to 32 of 0-9 and a-z");
  }
  k.id = *id;
  where = absl::StrCat("key ", k.id);
  absl::StatusOr<std::string> org = StringField(j, where, "org");
  if (!org.ok()) return org.status();
  k.org = *org;
  if (j.contains("label")) {
    absl::StatusOr<std::string> label = StringField(j, where, "label");
    if (!label.ok()) return label.status();
    k.label = *label;
  }
  absl::StatusOr<std::string> hash = StringField(j, where, "sha256");
  if (!hash.ok()) return hash.status();
  absl::StatusOr<Hash32> digest = HashFromHex(*hash);
  if (hash->size() != 64 || !digest.ok()) {
    return Invalid(where, "\"sha256\" must be 64 hex digits");
  }
  k.sha256 = *digest;
  absl::StatusOr<const json*> scopes = Field(j, where, "scopes");
  if (!scopes.ok()) return scopes.status();
  if (!(*scopes)->is_array()) {
    return Invalid(
        where,
        "\"scopes\" must be an array of \"read\", \"submit\", \"audit\"");
  }
  for (const json& s : **scopes) {
    if (!s.is_string()) return Invalid(where, "a scope must be a string");
    absl::StatusOr<ApiScope> scope = ParseApiScope(s.get<std::string>());
    if (!scope.ok())
      return Invalid(where, std::string(scope.status().message()));
    k.scopes.push_back(*scope);
  }
  absl::StatusOr<std::string> created = StringField(j, where, "created");
  if (!created.ok()) return created.status();
  absl::StatusOr<absl::Time> created_t = ParseApiTime(*created);
  if (!created_t.ok()) {
    return Invalid(where,
                   absl::StrCat("\"created\": ", created_t.status().message()));
  }
  k.created = *created_t;
  absl::StatusOr<std::optional<absl::Time>> expires =
      OptionalTimeField(j, where, "expires_at");
  if (!expires.ok()) return expires.status();
  k.expires_at = *expires;
  absl::StatusOr<const json*> revoked = Field(j, where, "revoked");
  if (!revoked.ok()) return revoked.status();
  if (!(*revoked)->is_boolean()) {
    return Invalid(where, "\"revoked\" must be true or false");
  }
  k.revoked = (*revoked)->get<bool>();
  absl::StatusOr<std::optional<absl::Time>> revoked_at =
      OptionalTimeField(j, where, "revoked_at");
  if (!revoked_at.ok()) return revoked_at.status();
  k.revoked_at = *revoked_at;
  return k;
}

// A whole rate as an integer (50, not 50.0).
ojson Rate(double r) {
  if (r >= 1 && r <= 9e15 && std::floor(r) == r) {
    return static_cast<uint64_t>(r);
  }
  return r;
}

ojson TimeOrNull(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return nullptr;
  return FormatApiTime(*t);
}

}  // namespace

std::string_view ApiScopeName(ApiScope s) {
  switch (s) {
    case ApiScope::kRead:
      return "read";
    case ApiScope::kSubmit:
      return "submit";
    case ApiScope::kAudit:
      return "audit";
  }
  return "unknown";
}

absl::StatusOr<ApiScope> ParseApiScope(std::string_view name) {
  if (name == "read") return ApiScope::kRead;
  if (name == "submit") return ApiScope::kSubmit;
  if (name == "audit") return ApiScope::kAudit;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scope \"", std::string(name),
                   "\" (scopes are \"read\", \"submit\" and \"audit\")"));
}

bool ApiKeyEntry::HasScope(ApiScope s) const {
  return std::find(scopes.begin(), scopes.end(), s) != scopes.end();
}

const ApiOrganisation* ApiKeyFile::FindOrg(std::string_view name) const {
  for (const ApiOrganisation& o : organisations) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const ApiKeyEntry* ApiKeyFile::FindKey(std::string_view id) const {
  for (const ApiKeyEntry& k : keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

ApiOrganisation* ApiKeyFile::FindOrg(std::string_view name) {
  return const_cast<ApiOrganisation*>(std::as_const(*this).FindOrg(name));
}

ApiKeyEntry* ApiKeyFile::FindKey(std::string_view id) {
  return const_cast<ApiKeyEntry*>(std::as_const(*this).FindKey(id));
}

absl::Status ValidateApiKeyFile(const ApiKeyFile& file) {
  std::set<std::string> names;
  for (size_t i = 0; i < file.organisations.size(); ++i) {
    const ApiOrganisation& o = file.organisations[i];
    std::string where = absl::StrCat("organisations[", i, "]");
    if (!ValidOrgName(o.name)) {
      return Invalid(
          where, "\"name\" must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'");
    }
    where = absl::StrCat("organisation ", o.name);
    if (!names.insert(o.name).second) return Invalid(where, "appears twice");
    if (auto s = CheckQuotas(o.quotas, where); !s.ok()) return s;
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < file.keys.size(); ++i) {
    const ApiKeyEntry& k = file.keys[i];
    if (!ValidKeyId(k.id)) {
      return Invalid(absl::StrCat("keys[", i, "]"),
                     "\"id\" must be 1 to 32 of 0-9 and a-z");
    }
    std::string where = absl::StrCat("key ", k.id);
    if (!ids.insert(k.id).second) return Invalid(where, "appears twice");
    if (names.count(k.org) == 0) {
      return Invalid(where, absl::StrCat("organisation \"", k.org,
                                         "\" is not declared in the file"));
    }
    if (k.label.size() > kMaxLabelLength) {
      return Invalid(where, "\"label\" is longer than 256 bytes");
    }
    if (k.scopes.empty()) return Invalid(where, "\"scopes\" is empty");
    std::set<ApiScope> seen;
    for (ApiScope s : k.scopes) {
      if (s != ApiScope::kRead && s != ApiScope::kSubmit &&
          s != ApiScope::kAudit) {
        return Invalid(where, "unknown scope");
      }
      if (!seen.insert(s).second) {
        return Invalid(where,
                       absl::StrCat("scope \"", std::string(ApiScopeName(s)),
                                    "\" appears twice"));
      }
    }
    if (seen.count(ApiScope::kAudit) > 0 && seen.count(ApiScope::kRead) == 0) {
      return Invalid(where,
                     "scope \"audit\" widens what a key reads: give it "
                     "\"read\" too");
    }
    if (k.revoked != k.revoked_at.has_value()) {
      return Invalid(where,
                     "\"revoked_at\" is set exactly when \"revoked\" is true");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ApiKeyFile> ParseApiKeyFile(std::string_view text) {
  absl::StatusOr<json> parsed =
      json_internal::ParseStrictJson(text, "api key file");
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return Invalid("top level", "must be a JSON object");
  if (auto s = OnlyFields(j, "top level", {"version", "organisations", "keys"});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<const json*> version = Field(j, "top level", "version");
  if (!version.ok()) return version.status();
  if (!(*version)->is_number_unsigned() || (*version)->get<uint64_t>() != 1) {
    return Invalid("top level", "\"version\" must be 1");
  }
  ApiKeyFile file;
  absl::StatusOr<const json*> orgs = Field(j, "top level", "organisations");
  if (!orgs.ok()) return orgs.status();
  if (!(*orgs)->is_array()) {
    return Invalid("top level", "\"organisations\" must be an array");
  }
  for (size_t i = 0; i < (*orgs)->size(); ++i) {
    const json& o = (**orgs)[i];
    std::string where = absl::StrCat("organisations[", i, "]");
    if (!o.is_object()) return Invalid(where, "must be an object");
    if (auto s = OnlyFields(o, where, {"name", "quotas"}); !s.ok()) return s;
    absl::StatusOr<std::string> name = StringField(o, where, "name");
    if (!name.ok()) return name.status();
    ApiOrganisation org;
    org.name = *name;
    absl::StatusOr<const json*> quotas = Field(o, where, "quotas");
    if (!quotas.ok()) return quotas.status();
    absl::StatusOr<OrgQuotas> q =
        ParseQuotas(**quotas, absl::StrCat("organisation ", org.name));
    if (!q.ok()) return q.status();
    org.quotas = *q;
    file.organisations.push_back(std::move(org));
  }
  absl::StatusOr<const json*> keys = Field(j, "top level", "keys");
  if (!keys.ok()) return keys.status();
  if (!(*keys)->is_array()) {
    return Invalid("top level", "\"keys\" must be an array");
  }
  for (size_t i = 0; i < (*keys)->size(); ++i) {
    absl::StatusOr<ApiKeyEntry> k = ParseKey((**keys)[i], i);
    if (!k.ok()) return k.status();
    file.keys.push_back(*std::move(k));
  }
  if (auto s = ValidateApiKeyFile(file); !s.ok()) return s;
  return file;
}

std::string ApiKeyFileToJson(const ApiKeyFile& file) {
  ojson orgs = ojson::array();
  for (const ApiOrganisation& o : file.organisations) {
    ojson q = ojson::object();
    q["requests_per_s"] = Rate(o.quotas.requests_per_s);
    q["requests_burst"] = o.quotas.requests_burst;
    q["tx_bytes_per_s"] = Rate(o.quotas.tx_bytes_per_s);
    q["tx_bytes_burst"] = o.quotas.tx_bytes_burst;
    orgs.push_back({{"name", o.name}, {"quotas", q}});
  }
  ojson keys = ojson::array();
  for (const ApiKeyEntry& k : file.keys) {
    ojson scopes = ojson::array();
    for (ApiScope s : k.scopes) scopes.push_back(std::string(ApiScopeName(s)));
    ojson e = ojson::object();
    e["id"] = k.id;
    e["org"] = k.org;
    if (!k.label.empty()) e["label"] = k.label;
    e["sha256"] = ToHex(ByteView(k.sha256));
    e["scopes"] = scopes;
    e["created"] = FormatApiTime(k.created);
    e["expires_at"] = TimeOrNull(k.expires_at);
    e["revoked"] = k.revoked;
    e["revoked_at"] = TimeOrNull(k.revoked_at);
    keys.push_back(std::move(e));
  }
  ojson j = ojson::object();
  j["version"] = 1;
  j["organisations"] = orgs;
  j["keys"] = keys;
  // A label that is not UTF-8 is repaired, never thrown on.
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

NewApiKey GenerateApiKey(const std::vector<std::string>& taken_ids) {
  EnsureSodium();
  NewApiKey key;
  do {
    uint8_t id[kIdBytes];
    randombytes_buf(id, sizeof(id));
    key.id = ToHex(ByteView(id, sizeof(id)));
  } while (std::find(taken_ids.begin(), taken_ids.end(), key.id) !=
           taken_ids.end());
  uint8_t random[kRandomBytes];
  randombytes_buf(random, sizeof(random));
  key.secret = absl::StrCat(kSecretPrefix, key.id, "_",
                            ToHex(ByteView(random, sizeof(random))));
  sodium_memzero(random, sizeof(random));
  return key;
}

std::optional<std::string_view> ApiKeyIdOf(std::string_view secret) {
  if (secret.substr(0, sizeof(kSecretPrefix) - 1) != kSecretPrefix) {
    return std::nullopt;
  }
  secret.remove_prefix(sizeof(kSecretPrefix) - 1);
  size_t sep = secret.find('_');
  if (sep == std::string_view::npos) return std::nullopt;
  std::string_view id = secret.substr(0, sep);
  std::string_view random = secret.substr(sep + 1);
  if (!ValidKeyId(id) || random.empty()) return std::nullopt;
  return id;
}

Hash32 ApiKeySecretHash(std::string_view secret) {
  EnsureSodium();
  Hash32 out;
  crypto_hash_sha256(out.data(),
                     reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size());
  return out;
}

bool ApiKeySecretMatches(std::string_view secret, const Hash32& stored) {
  Hash32 presented = ApiKeySecretHash(secret);
  return sodium_memcmp(presented.data(), stored.data(), presented.size()) == 0;
}

std::string FormatApiTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseApiTime(std::string_view s) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(s), &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(s),
                     "\" is not an RFC 3339 time (like 2025-03-01T09:00:00Z)"));
  }
  return t;
}

}  // namespace consortia
