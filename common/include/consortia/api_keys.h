// The api key file: organisations with their quotas, and the API keys of
// each, holding only a SHA-256 hash of every key's secret. Written by
// `consortia apikey ...` (cli/), read by the api service (services/api),
// which re-reads it whenever it changes (on Kubernetes it is a Secret mounted
// into every api replica). The format is documented in docs/api.md ("API
// keys") and services/api/README.md.
//
//   {"version": 1,
//    "organisations": [
//      {"name": "acme",
//       "quotas": {"requests_per_s": 50, "requests_burst": 100,
//                  "tx_bytes_per_s": 1048576, "tx_bytes_burst": 4194304}}],
//    "keys": [
//      {"id": "3f9c0a1b2c4d", "org": "acme", "label": "billing system",
//       "sha256": "<64 hex digits: SHA-256 of the whole secret>",
//       "scopes": ["read", "submit"],
//       "created": "2025-03-01T09:00:00Z",
//       "expires_at": "2026-03-01T00:00:00Z",   (optional)
//       "revoked": false,
//       "revoked_at": null}]}                    (set when revoked)
//
// A secret is "csk_<id>_<64 hex digits>", 256 random bits from libsodium's
// randombytes; it is shown once, when the key is created, and never stored.
//
// Everything here is a pure function of its arguments (the secret generator
// reads the system's random source): thread-safe.
#ifndef CONSORTIA_COMMON_API_KEYS_H_
#define CONSORTIA_COMMON_API_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/bytes.h"

namespace consortia {

// What a key may do. A request needs the scope of its route: `submit` for
// POST /v1/txs, `read` for the read routes when the api requires keys for
// reads (--api_reads_need_key). `audit` widens a read key: with
// --api_invoice_reads=parties it reads every organisation's invoices, not
// only those its organisation issued or received; it goes with `read`
// (ValidateApiKeyFile refuses it alone).
enum class ApiScope : uint8_t { kRead = 1, kSubmit = 2, kAudit = 3 };
// "read", "submit", "audit".
std::string_view ApiScopeName(ApiScope s);
// InvalidArgument for anything but "read", "submit" or "audit".
absl::StatusOr<ApiScope> ParseApiScope(std::string_view name);

// The rates of one organisation; each of its keys has buckets of this size
// of its own (token buckets: `*_per_s` refill per second, `*_burst` is the
// bucket's capacity). Rates are positive numbers, bursts whole numbers >= 1.
// tx_bytes counts the bytes of submitted request bodies.
struct OrgQuotas {
  double requests_per_s = 100;
  uint64_t requests_burst = 200;
  double tx_bytes_per_s = 1 << 20;
  uint64_t tx_bytes_burst = 4 << 20;
  bool operator==(const OrgQuotas&) const = default;
};

struct ApiOrganisation {
  std::string name;  // 1..64 of [A-Za-z0-9._-]; unique in the file
  OrgQuotas quotas;
  bool operator==(const ApiOrganisation&) const = default;
};

struct ApiKeyEntry {
  std::string id;     // 1..32 of [0-9a-z]; unique in the file
  std::string org;    // the name of an organisation of the file
  std::string label;  // free text for operators ("" when none)
  Hash32 sha256{};    // SHA-256 of the whole secret "csk_<id>_<random>"
  std::vector<ApiScope> scopes;  // non-empty, no repeats
  absl::Time created = absl::UnixEpoch();
  std::optional<absl::Time> expires_at;  // unusable from this instant on
  bool revoked = false;
  std::optional<absl::Time> revoked_at;  // set exactly when revoked

  bool HasScope(ApiScope s) const;
  bool operator==(const ApiKeyEntry&) const = default;
};

struct ApiKeyFile {
  std::vector<ApiOrganisation> organisations;
  std::vector<ApiKeyEntry> keys;

  // nullptr when absent.
  const ApiOrganisation* FindOrg(std::string_view name) const;
  const ApiKeyEntry* FindKey(std::string_view id) const;
  ApiOrganisation* FindOrg(std::string_view name);
  ApiKeyEntry* FindKey(std::string_view id);
  bool operator==(const ApiKeyFile&) const = default;
};

// Parses and validates a key file strictly: InvalidArgument naming the
// field (and the key id or organisation) for malformed JSON, a repeated or
// unknown field, a wrong type, a version other than 1, a bad or repeated
// name or id, a key of an organisation the file does not declare, a hash
// that is not 64 hex digits, an unknown or repeated scope, `audit` without
// `read`, a time that is not
// RFC 3339, a quota out of bounds, or revoked_at set without revoked (or the
// reverse). A typo never silently widens a key.
absl::StatusOr<ApiKeyFile> ParseApiKeyFile(std::string_view text);
// The file's JSON (what the CLI writes; parses back to an equal file).
std::string ApiKeyFileToJson(const ApiKeyFile& file);
// OK when `file` would survive ParseApiKeyFile(ApiKeyFileToJson(file)); the
// same errors otherwise (the CLI checks before it writes).
absl::Status ValidateApiKeyFile(const ApiKeyFile& file);

// A new key: a fresh id (12 hex digits, not one of `taken_ids`) and its
// secret "csk_<id>_<64 hex digits>" (256 bits from randombytes_buf).
struct NewApiKey {
  std::string id;
  std::string secret;
};
NewApiKey GenerateApiKey(const std::vector<std::string>& taken_ids);

// The id inside a secret of the form csk_<id>_<random>; nullopt when the
// string does not have that form (then it cannot be a key).
std::optional<std::string_view> ApiKeyIdOf(std::string_view secret);
// SHA-256 of the secret's bytes (what the key file stores).
Hash32 ApiKeySecretHash(std::string_view secret);
// True when `secret` hashes to `stored`. The comparison of the two digests
// takes the same time wherever they differ (sodium_memcmp): the only way the
// api compares a presented key with the file.
bool ApiKeySecretMatches(std::string_view secret, const Hash32& stored);

// Times in the key file and the audit log: RFC 3339 in UTC
// ("2025-03-01T09:00:00Z"; with a fraction of a second only when the time
// has one, so a time survives FormatApiTime/ParseApiTime exactly).
// ParseApiTime accepts any RFC 3339 time (fractions, offsets);
// InvalidArgument otherwise.
std::string FormatApiTime(absl::Time t);
absl::StatusOr<absl::Time> ParseApiTime(std::string_view s);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_API_KEYS_H_
