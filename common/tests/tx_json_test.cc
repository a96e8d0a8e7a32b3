// The JSON form of a transaction at the API edge: strict parsing (every
// field, nothing else, within the encoding limits) and a lossless round trip.
#include "consortia/tx_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace consortia {
namespace {

using ::testing::HasSubstr;

const std::string kSender(64, 'a');
const std::string kSig(128, 'b');

std::string ValidJson() {
  return absl::StrCat(R"({"chain_id": "localnet", "nonce": "42",
      "valid_until": 1000, "sender": ")",
                      kSender, R"(", "app": "kv", "method": "set",
      "args": ["key", "värde ✓"], "signature": ")",
                      kSig, R"("})");
}

TEST(TxJsonTest, ParsesTheDocumentedForm) {
  absl::StatusOr<Transaction> tx = TxFromJson(ValidJson());
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_EQ(tx->chain_id, "localnet");
  EXPECT_EQ(tx->nonce, 42u);
  EXPECT_EQ(tx->valid_until, 1000u);
  EXPECT_EQ(ToHex(tx->sender), kSender);
  EXPECT_EQ(tx->app, "kv");
  EXPECT_EQ(tx->method, "set");
  EXPECT_THAT(tx->args, ::testing::ElementsAre("key", "värde ✓"));
  EXPECT_EQ(ToHex(tx->signature), kSig);
}

TEST(TxJsonTest, RoundTrip) {
  const Transaction tx = *TxFromJson(ValidJson());
  const std::string text = TxToJson(tx);
  absl::StatusOr<Transaction> back = TxFromJson(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(*back, tx);
}

TEST(TxJsonTest, EncodeTxFromJsonGivesTheEncodingAndTheHash) {
  const Transaction tx = *TxFromJson(ValidJson());
  absl::StatusOr<EncodedTx> encoded =
      EncodeTxFromJson(ValidJson(), Ed25519Sha256());
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->raw, EncodeTx(tx));
  EXPECT_EQ(encoded->hash, TxHash(Ed25519Sha256(), tx));
}

TEST(TxJsonTest, IntegersAccurateInDoublesAreNumbersOthersStrings) {
  Transaction tx = *TxFromJson(ValidJson());
  tx.nonce = uint64_t{1} << 53;
  tx.valid_until = (uint64_t{1} << 53) + 1;
  const std::string text = TxToJson(tx);
  EXPECT_THAT(text, HasSubstr(R"("nonce":9007199254740992)"));
  EXPECT_THAT(text, HasSubstr(R"("valid_until":"9007199254740993")"));
  tx.nonce = ~uint64_t{0};
  absl::StatusOr<Transaction> back = TxFromJson(TxToJson(tx));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, tx);
}

TEST(TxJsonTest, NonceAcceptsNumberOrDecimalString) {
  for (const auto& [literal, value] :
       std::vector<std::pair<std::string, uint64_t>>{
           {"0", 0},
           {"\"0\"", 0},
           {"7", 7},
           {"\"18446744073709551615\"", ~uint64_t{0}},
           {"18446744073709551615", ~uint64_t{0}}}) {
    const std::string text = absl::StrReplaceAll(
        ValidJson(),
        {{R"("nonce": "42")", absl::StrCat(R"("nonce": )", literal)}});
    absl::StatusOr<Transaction> tx = TxFromJson(text);
    ASSERT_TRUE(tx.ok()) << literal << ": " << tx.status();
    EXPECT_EQ(tx->nonce, value) << literal;
  }
}

// Replaces `from` (which must occur) with `to` and expects InvalidArgument
// whose message contains `needle`.
void ExpectRejected(const std::string& from, const std::string& to,
                    const std::string& needle) {
  const std::string valid = ValidJson();
  ASSERT_NE(valid.find(from), std::string::npos) << from;
  const std::string text = absl::StrReplaceAll(valid, {{from, to}});
  absl::StatusOr<Transaction> tx = TxFromJson(text);
  ASSERT_FALSE(tx.ok()) << text;
  EXPECT_EQ(tx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tx.status().message(), HasSubstr(needle)) << text;
  // The api's path refuses it with the same status.
  EXPECT_EQ(EncodeTxFromJson(text, Ed25519Sha256()).status(), tx.status());
}

TEST(TxJsonTest, BadNumbersAreRejected) {
  const std::string n = R"("nonce": "42")";
  for (const char* bad :
       {R"("nonce": -1)", R"("nonce": 1.5)", R"("nonce": 1e3)",
        R"("nonce": "18446744073709551616")",
        R"("nonce": 18446744073709551616)", R"("nonce": "")",
        R"("nonce": "042")", R"("nonce": "+4")", R"("nonce": " 4")",
        R"("nonce": "4x")", R"("nonce": "0x10")", R"("nonce": null)",
        R"("nonce": true)", R"("nonce": [4])"}) {
    ExpectRejected(n, bad, "nonce");
  }
  ExpectRejected(R"("valid_until": 1000)", R"("valid_until": -1000)",
                 "valid_until");
  ExpectRejected(R"("valid_until": 1000)", R"("valid_until": "1e3")",
                 "valid_until");
}

TEST(TxJsonTest, MissingUnknownAndRepeatedFieldsAreRejected) {
  ExpectRejected(R"("app": "kv", )", "", "'app' is missing");
  ExpectRejected(R"("app": "kv")", R"("app": "kv", "fee": 1)",
                 "'fee' is unknown");
  ExpectRejected(R"("app": "kv")", R"("App": "kv")", "App");
  ExpectRejected(R"("app": "kv")", R"("app": "kv", "app": "admin")",
                 "'app' appears twice");
  ExpectRejected(R"("nonce": "42")", R"("nonce": "42", "nonce": 43)",
                 "'nonce' appears twice");
}

TEST(TxJsonTest, WrongTypesAreRejected) {
  ExpectRejected(R"("app": "kv")", R"("app": 5)", "app");
  ExpectRejected(R"("method": "set")", R"("method": null)", "method");
  ExpectRejected(R"(["key", "värde ✓"])", R"("key")", "args");
  ExpectRejected(R"(["key", "värde ✓"])", R"(["key", 5])", "args[1]");
  ExpectRejected(R"(["key", "värde ✓"])", R"(["key", ["x"]])", "args[1]");
  for (std::string_view top : {"[]", "5", "\"tx\"", "null"}) {
    absl::StatusOr<Transaction> tx = TxFromJson(top);
    EXPECT_EQ(tx.status().code(), absl::StatusCode::kInvalidArgument) << top;
  }
}

TEST(TxJsonTest, MalformedJsonIsRejected) {
  for (std::string_view bad :
       {"", "{", R"({"chain_id": })", "{} {}", "{\"a\":1,}", "/* c */ {}"}) {
    absl::StatusOr<Transaction> tx = TxFromJson(bad);
    EXPECT_EQ(tx.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  const std::string trailing = ValidJson() + " x";
  EXPECT_THAT(TxFromJson(trailing).status().message(),
              HasSubstr("malformed JSON"));
}

TEST(TxJsonTest, DeeplyNestedJsonIsRejectedWithoutCrashing) {
  const std::string arrays =
      std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(TxFromJson(arrays).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');
  EXPECT_EQ(TxFromJson(objects).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nested inside a known field: a wrong type, reported as such.
  const std::string nested = absl::StrReplaceAll(
      ValidJson(),
      {{R"("kv")", std::string(1000, '[') + std::string(1000, ']')}});
  EXPECT_THAT(TxFromJson(nested).status().message(), HasSubstr("app"));
}

TEST(TxJsonTest, BadHexIsRejected) {
  ExpectRejected(kSender, kSender.substr(1), "sender");
  ExpectRejected(kSender, "zz" + kSender.substr(2), "sender");
  ExpectRejected(kSig, kSig + "0", "signature");
}

TEST(TxJsonTest, InvalidUtf8ArgsAreRejected) {
  // Raw bytes that are not UTF-8 inside a JSON string.
  for (const char* bad :
       {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    const std::string text = absl::StrReplaceAll(
        ValidJson(), {{R"("key")", absl::StrCat("\"", bad, "\"")}});
    absl::StatusOr<Transaction> tx = TxFromJson(text);
    EXPECT_EQ(tx.status().code(), absl::StatusCode::kInvalidArgument);
  }
  // A lone surrogate written as an escape.
  ExpectRejected(R"("key")", R"("\ud800")", "");
}

TEST(TxJsonTest, EscapesDecodeToTheirBytes) {
  const std::string text =
      absl::StrReplaceAll(ValidJson(), {{R"("key")", R"("a\u0000b\n\u00e9")"}});
  absl::StatusOr<Transaction> tx = TxFromJson(text);
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_EQ(tx->args[0], std::string("a\0b\n\xc3\xa9", 6));
  absl::StatusOr<Transaction> back = TxFromJson(TxToJson(*tx));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *tx);
}

TEST(TxJsonTest, LimitsAreEnforced) {
  ExpectRejected(
      R"("localnet")",
      absl::StrCat("\"", std::string(kMaxChainIdBytes + 1, 'c'), "\""),
      "chain_id");
  ExpectRejected(R"("kv")",
                 absl::StrCat("\"", std::string(kMaxAppBytes + 1, 'a'), "\""),
                 "app");
  ExpectRejected(
      R"("set")",
      absl::StrCat("\"", std::string(kMaxMethodBytes + 1, 'm'), "\""),
      "method");
  ExpectRejected(kSender, std::string(2 * (kMaxPublicKeyBytes + 1), 'a'),
                 "sender");
  ExpectRejected(kSig, std::string(2 * (kMaxSignatureBytes + 1), 'b'),
                 "signature");

  std::string many = "[";
  for (size_t i = 0; i <= kMaxArgs; ++i) many += i ? ",\"x\"" : "\"x\"";
  many += "]";
  ExpectRejected(R"(["key", "värde ✓"])", many, "args");

  const std::string big(kMaxArgBytes + 1, 'x');
  ExpectRejected(R"("key")", absl::StrCat("\"", big, "\""), "args[0]");

  // Each arg within its limit, the whole tx over kMaxTxBytes.
  const std::string arg =
      absl::StrCat("\"", std::string(kMaxArgBytes, 'x'), "\"");
  std::string five = "[";
  for (int i = 0; i < 5; ++i) five += (i ? "," : "") + arg;
  five += "]";
  ExpectRejected(R"(["key", "värde ✓"])", five, "over the limit");
  // Three such args fit.
  const std::string three = absl::StrCat("[", arg, ",", arg, ",", arg, "]");
  const std::string fits =
      absl::StrReplaceAll(ValidJson(), {{R"(["key", "värde ✓"])", three}});
  EXPECT_TRUE(TxFromJson(fits).ok());
  EXPECT_TRUE(EncodeTxFromJson(fits, Ed25519Sha256()).ok());
}

TEST(TxJsonTest, NonUtf8ArgsFromBinaryAreReplacedWhenPrinted) {
  Transaction tx = *TxFromJson(ValidJson());
  tx.args = {std::string("ok\xff", 3)};
  const std::string text = TxToJson(tx);  // must not throw
  absl::StatusOr<Transaction> back = TxFromJson(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->args[0], "ok\xef\xbf\xbd");  // U+FFFD
}

}  // namespace
}  // namespace consortia
