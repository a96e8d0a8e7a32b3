#include "consortia/api_keys.h"

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

using Json = nlohmann::json;

absl::Time At(const char* rfc3339) { return *ParseApiTime(rfc3339); }

ApiKeyFile SampleFile() {
  ApiKeyFile f;
  f.organisations.push_back(
      ApiOrganisation{"acme", OrgQuotas{50, 100, 1 << 20, 4 << 20}});
  f.organisations.push_back(
      ApiOrganisation{"tax-bureau", OrgQuotas{0.5, 1, 1000.5, 2000}});
  ApiKeyEntry k;
  k.id = "0123456789ab";
  k.org = "acme";
  k.label = "billing";
  k.sha256 = ApiKeySecretHash("csk_0123456789ab_secret");
  k.scopes = {ApiScope::kRead, ApiScope::kSubmit};
  k.created = At("2025-03-01T09:00:00Z");
  k.expires_at = At("2026-03-01T00:00:00.25Z");
  f.keys.push_back(k);
  ApiKeyEntry r = k;
  r.id = "revoked1";
  r.org = "tax-bureau";
  r.label = "";
  r.scopes = {ApiScope::kRead};
  r.expires_at.reset();
  r.revoked = true;
  r.revoked_at = At("2025-04-01T00:00:00Z");
  f.keys.push_back(r);
  return f;
}

TEST(ApiKeyFileTest, RoundTripsThroughJson) {
  ApiKeyFile f = SampleFile();
  std::string text = ApiKeyFileToJson(f);
  absl::StatusOr<ApiKeyFile> back = ParseApiKeyFile(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(*back, f);
  Json j = Json::parse(text);
  EXPECT_EQ(j["version"], 1);
  // Whole rates are written as integers; times as RFC 3339 in UTC.
  EXPECT_EQ(j["organisations"][0]["quotas"]["requests_per_s"].dump(), "50");
  EXPECT_EQ(j["keys"][0]["created"], "2025-03-01T09:00:00Z");
  EXPECT_EQ(j["keys"][0]["expires_at"], "2026-03-01T00:00:00.25Z");
  EXPECT_TRUE(j["keys"][1]["expires_at"].is_null());
  // Never the secret: only its hash.
  EXPECT_EQ(text.find("secret"), std::string::npos);
}

TEST(ApiKeyFileTest, EmptyFileIsValid) {
  absl::StatusOr<ApiKeyFile> f =
      ParseApiKeyFile(R"({"version":1,"organisations":[],"keys":[]})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->keys.empty());
}

// Each mutation of a valid file is refused with a message naming the cause.
TEST(ApiKeyFileTest, RefusesEveryMalformedFileNamingTheCause) {
  const Json good = Json::parse(ApiKeyFileToJson(SampleFile()));
  struct Case {
    const char* name;
    std::function<void(Json&)> mutate;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"unknown top field", [](Json& j) { j["extra"] = 1; },
       "unknown field \"extra\""},
      {"wrong version", [](Json& j) { j["version"] = 2; },
       "\"version\" must be 1"},
      {"typo in a key field",
       [](Json& j) {
         j["keys"][0].erase("expires_at");
         j["keys"][0]["expire_at"] = "2020-01-01T00:00:00Z";
       },
       "unknown field \"expire_at\""},
      {"unknown scope", [](Json& j) { j["keys"][0]["scopes"] = {"admin"}; },
       "unknown scope \"admin\""},
      {"repeated scope",
       [](Json& j) {
         j["keys"][0]["scopes"] = {"read", "read"};
       },
       "appears twice"},
      {"audit without read",
       [](Json& j) { j["keys"][0]["scopes"] = {"audit"}; },
       "scope \"audit\" widens what a key reads: give it \"read\" too"},
      {"no scope", [](Json& j) { j["keys"][0]["scopes"] = Json::array(); },
       "\"scopes\" is empty"},
      {"short hash", [](Json& j) { j["keys"][0]["sha256"] = "abcd"; },
       "\"sha256\" must be 64 hex digits"},
      {"undeclared org", [](Json& j) { j["keys"][0]["org"] = "nobody"; },
       "organisation \"nobody\" is not declared"},
      {"repeated id", [](Json& j) { j["keys"][1]["id"] = "0123456789ab"; },
       "key 0123456789ab: appears twice"},
      {"bad id", [](Json& j) { j["keys"][0]["id"] = "Has Space"; },
       "\"id\" must be 1 to 32"},
      {"repeated org", [](Json& j) { j["organisations"][1]["name"] = "acme"; },
       "organisation acme: appears twice"},
      {"bad time", [](Json& j) { j["keys"][0]["created"] = "yesterday"; },
       "not an RFC 3339 time"},
      {"revoked without time",
       [](Json& j) { j["keys"][1]["revoked_at"] = nullptr; },
       "\"revoked_at\" is set exactly when"},
      {"revoked not a bool", [](Json& j) { j["keys"][0]["revoked"] = "no"; },
       "\"revoked\" must be true or false"},
      {"zero rate",
       [](Json& j) { j["organisations"][0]["quotas"]["requests_per_s"] = 0; },
       "requests_per_s must be a number in (0, 1e12]"},
      {"zero burst",
       [](Json& j) { j["organisations"][0]["quotas"]["tx_bytes_burst"] = 0; },
       "tx_bytes_burst must be a whole number in [1, 1e15]"},
      {"fractional burst",
       [](Json& j) { j["organisations"][0]["quotas"]["requests_burst"] = 1.5; },
       "requests_burst must be a whole number"},
      {"missing quota",
       [](Json& j) { j["organisations"][0]["quotas"].erase("tx_bytes_per_s"); },
       "missing \"tx_bytes_per_s\""},
  };
  for (const Case& c : cases) {
    Json j = good;
    c.mutate(j);
    absl::StatusOr<ApiKeyFile> f = ParseApiKeyFile(j.dump());
    ASSERT_FALSE(f.ok()) << c.name;
    EXPECT_TRUE(absl::IsInvalidArgument(f.status())) << c.name;
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos)
        << c.name << ": " << f.status();
  }
  // Not JSON, a repeated field, a truncated file.
  EXPECT_FALSE(ParseApiKeyFile("").ok());
  EXPECT_FALSE(ParseApiKeyFile(good.dump().substr(0, 40)).ok());
  EXPECT_FALSE(ParseApiKeyFile(
                   R"({"version":1,"version":1,"organisations":[],"keys":[]})")
                   .ok());
}

TEST(ApiKeyTest, GeneratedSecretsHaveTheirIdAndDiffer) {
  std::set<std::string> secrets;
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    NewApiKey k = GenerateApiKey(ids);
    EXPECT_EQ(k.id.size(), 12u);
    EXPECT_EQ(k.secret.size(), 4 + 12 + 1 + 64u) << k.secret;
    EXPECT_EQ(k.secret.rfind("csk_" + k.id + "_", 0), 0u) << k.secret;
    ASSERT_TRUE(ApiKeyIdOf(k.secret).has_value());
    EXPECT_EQ(*ApiKeyIdOf(k.secret), k.id);
    EXPECT_TRUE(secrets.insert(k.secret).second);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), k.id), 0);
    ids.push_back(k.id);
  }
}

TEST(ApiKeyTest, IdOfRefusesWhatIsNotAKey) {
  EXPECT_FALSE(ApiKeyIdOf("").has_value());
  EXPECT_FALSE(ApiKeyIdOf("csk_").has_value());
  EXPECT_FALSE(ApiKeyIdOf("csk_abc").has_value());
  EXPECT_FALSE(ApiKeyIdOf("csk_abc_").has_value());
  EXPECT_FALSE(ApiKeyIdOf("csk__xyz").has_value());
  EXPECT_FALSE(ApiKeyIdOf("abc_def_ghi").has_value());
  EXPECT_FALSE(ApiKeyIdOf("csk_ABC_def").has_value());
  EXPECT_EQ(*ApiKeyIdOf("csk_abc_def"), "abc");
}

// The one comparison of a presented key with the file's hash: equal only
// when every byte is, wherever they differ (first, middle, last byte).
TEST(ApiKeyTest, SecretMatchesOnlyItsOwnHash) {
  const std::string secret = GenerateApiKey({}).secret;
  const Hash32 stored = ApiKeySecretHash(secret);
  EXPECT_TRUE(ApiKeySecretMatches(secret, stored));
  for (size_t pos : {size_t{0}, size_t{15}, size_t{31}}) {
    Hash32 other = stored;
    other[pos] ^= 1;
    EXPECT_FALSE(ApiKeySecretMatches(secret, other)) << pos;
  }
  std::string changed = secret;
  changed.back() = changed.back() == '0' ? '1' : '0';
  EXPECT_FALSE(ApiKeySecretMatches(changed, stored));
  // SHA-256 of "abc" (FIPS 180-2 test vector).
  EXPECT_EQ(ToHex(ByteView(ApiKeySecretHash("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyTest, TimesAreRfc3339InUtc) {
  absl::Time t = At("2025-03-01T10:00:00+01:00");
  EXPECT_EQ(FormatApiTime(t), "2025-03-01T09:00:00Z");
  EXPECT_EQ(*ParseApiTime(FormatApiTime(t)), t);
  EXPECT_FALSE(ParseApiTime("2025-03-01").ok());
  EXPECT_FALSE(ParseApiTime("1740819600").ok());
}

TEST(ApiKeyTest, ScopesByName) {
  EXPECT_EQ(*ParseApiScope("read"), ApiScope::kRead);
  EXPECT_EQ(*ParseApiScope("submit"), ApiScope::kSubmit);
  EXPECT_EQ(*ParseApiScope("audit"), ApiScope::kAudit);
  EXPECT_EQ(ApiScopeName(ApiScope::kAudit), "audit");
  EXPECT_FALSE(ParseApiScope("Submit").ok());
  ApiKeyEntry k;
  k.scopes = {ApiScope::kSubmit};
  EXPECT_TRUE(k.HasScope(ApiScope::kSubmit));
  EXPECT_FALSE(k.HasScope(ApiScope::kRead));
}

}  // namespace
}  // namespace consortia
