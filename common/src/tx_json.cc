#include "consortia/tx_json.h"

#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/codec.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

using json_internal::JsonTypeName;
using nlohmann::json;

// Integers up to 2^53 survive a round trip through an IEEE double, so every
// JSON client reads them exactly; larger ones are written as strings.
constexpr uint64_t kMaxExactJsonInteger = uint64_t{1} << 53;

constexpr const char* kFields[] = {"chain_id", "nonce",    "valid_until",
                                   "sender",   "app",      "method",
                                   "args",     "signature"};

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("transaction: field '", field, "' ", problem));
}

// True iff s is well-formed UTF-8: no overlong forms, no surrogates, nothing
// above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::Status GetString(const json& j, const char* field, size_t max_len,
                       std::string* out) {
  const json& v = j.at(field);
  if (!v.is_string()) {
    return FieldError(field,
                      absl::StrCat("must be a string, got ", JsonTypeName(v)));
  }
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() > max_len) {
    return FieldError(
        field,
        absl::StrCat("is ", s.size(), " bytes, over the limit of ", max_len));
  }
  *out = s;
  return absl::OkStatus();
}

// A u64 given as a JSON number or as a decimal string (digits only, no sign,
// no leading zeros, so each value has one string form).
absl::Status GetU64(const json& j, const char* field, uint64_t* out) {
  const json& v = j.at(field);
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return absl::OkStatus();
  }
  if (v.is_number()) {
    return FieldError(field,
                      absl::StrCat("must be an unsigned 64-bit integer, got ",
                                   JsonTypeName(v)));
  }
  if (!v.is_string()) {
    return FieldError(field,
                      absl::StrCat("must be a number or a decimal string, got ",
                                   JsonTypeName(v)));
  }
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || (s.size() > 1 && s[0] == '0')) {
    return FieldError(field, "must be a decimal integer without leading zeros");
  }
  uint64_t r = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return FieldError(field, "must be a decimal integer (digits only)");
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (r > (UINT64_MAX - digit) / 10) {
      return FieldError(field,
                        "is out of range for an unsigned 64-bit integer");
    }
    r = r * 10 + digit;
  }
  *out = r;
  return absl::OkStatus();
}

absl::Status GetHex(const json& j, const char* field, size_t max_len,
                    Bytes* out) {
  const json& v = j.at(field);
  if (!v.is_string()) {
    return FieldError(
        field, absl::StrCat("must be a hex string, got ", JsonTypeName(v)));
  }
  const std::string& hex = v.get_ref<const std::string&>();
  // Two hex digits per byte; checked before decoding anything.
  if (hex.size() > 2 * max_len) {
    return FieldError(
        field,
        absl::StrCat("is ", hex.size(), " hex digits, over the limit of ",
                     2 * max_len, " (", max_len, " bytes)"));
  }
  absl::StatusOr<Bytes> b = FromHex(hex);
  if (!b.ok()) return FieldError(field, b.status().message());
  *out = *std::move(b);
  return absl::OkStatus();
}

// The tx of `j`, every field checked but the encoded size.
absl::StatusOr<Transaction> TxFromParsedJson(const json& j) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "transaction: top level must be an object, got ", JsonTypeName(j)));
  }
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const char* f : kFields) known = known || key == f;
    if (!known) return FieldError(key, "is unknown");
  }
  for (const char* f : kFields) {
    if (!j.contains(f)) return FieldError(f, "is missing");
  }

  Transaction tx;
  absl::Status s = GetString(j, "chain_id", kMaxChainIdBytes, &tx.chain_id);
  if (s.ok()) s = GetU64(j, "nonce", &tx.nonce);
  if (s.ok()) s = GetU64(j, "valid_until", &tx.valid_until);
  if (s.ok()) s = GetHex(j, "sender", kMaxPublicKeyBytes, &tx.sender);
  if (s.ok()) s = GetString(j, "app", kMaxAppBytes, &tx.app);
  if (s.ok()) s = GetString(j, "method", kMaxMethodBytes, &tx.method);
  if (s.ok()) s = GetHex(j, "signature", kMaxSignatureBytes, &tx.signature);
  if (!s.ok()) return s;

  const json& args = j.at("args");
  if (!args.is_array()) {
    return FieldError(
        "args", absl::StrCat("must be an array, got ", JsonTypeName(args)));
  }
  if (args.size() > kMaxArgs) {
    return FieldError("args",
                      absl::StrCat("has ", args.size(),
                                   " entries, over the limit of ", kMaxArgs));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string field = absl::StrCat("args[", i, "]");
    const json& a = args[i];
    if (!a.is_string()) {
      return FieldError(
          field, absl::StrCat("must be a string, got ", JsonTypeName(a)));
    }
    const std::string& arg = a.get_ref<const std::string&>();
    if (arg.size() > kMaxArgBytes) {
      return FieldError(
          field, absl::StrCat("is ", arg.size(), " bytes, over the limit of ",
                              kMaxArgBytes));
    }
    if (!IsValidUtf8(arg)) return FieldError(field, "is not valid UTF-8");
    tx.args.push_back(arg);
  }
  return tx;
}

absl::Status CheckEncodedSize(size_t encoded) {
  if (encoded > kMaxTxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("transaction: encodes to ", encoded,
                     " bytes, over the limit of ", kMaxTxBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<Transaction> ParseTx(std::string_view json_text) {
  absl::StatusOr<json> j =
      json_internal::ParseStrictJson(json_text, "transaction");
  if (!j.ok()) return j.status();
  try {
    return TxFromParsedJson(*j);
  } catch (const json::exception& e) {
    // Not expected: every access above checks the shape first.
    return absl::InvalidArgumentError(absl::StrCat("transaction: ", e.what()));
  }
}

nlohmann::ordered_json U64ToJson(uint64_t v) {
  if (v <= kMaxExactJsonInteger) return v;
  return absl::StrCat(v);
}

}  // namespace

absl::StatusOr<Transaction> TxFromJson(std::string_view json_text) {
  absl::StatusOr<Transaction> tx = ParseTx(json_text);
  if (!tx.ok()) return tx.status();
  if (absl::Status s = CheckEncodedSize(EncodeTx(*tx).size()); !s.ok()) {
    return s;
  }
  return tx;
}

absl::StatusOr<EncodedTx> EncodeTxFromJson(std::string_view json_text,
                                           const CryptoSuite& suite) {
  absl::StatusOr<Transaction> tx = ParseTx(json_text);
  if (!tx.ok()) return tx.status();
  EncodedTx encoded = EncodeTxAndHash(suite, *tx);
  if (absl::Status s = CheckEncodedSize(encoded.raw.size()); !s.ok()) {
    return s;
  }
  return encoded;
}

std::string TxToJson(const Transaction& tx) {
  nlohmann::ordered_json j;
  j["chain_id"] = tx.chain_id;
  j["nonce"] = U64ToJson(tx.nonce);
  j["valid_until"] = U64ToJson(tx.valid_until);
  j["sender"] = ToHex(tx.sender);
  j["app"] = tx.app;
  j["method"] = tx.method;
  j["args"] = tx.args;
  j["signature"] = ToHex(tx.signature);
  // Args are byte strings in the binary encoding but UTF-8 text in JSON. A tx
  // decoded from binary may carry args (or other strings) that are not valid
  // UTF-8: those bytes are written as U+FFFD (error_handler_t::replace)
  // rather than failing, so the JSON is for display and cannot be re-signed;
  // TxFromJson never produces such a tx, so its output round-trips exactly.
  return j.dump(-1, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace consortia
