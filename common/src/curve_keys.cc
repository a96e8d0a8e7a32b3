#include "consortia/curve_keys.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "json_strict.h"
#include "zmq.h"

namespace consortia {
namespace {

// The Z85 alphabet (ZeroMQ RFC 32), in digit order.
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";

constexpr char kKeyType[] = "curvezmq";

}  // namespace

absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  if (!zmq_has("curve")) {
    return absl::UnimplementedError("p2p: this libzmq has no CURVE support");
  }
  char pub[kCurveKeyZ85Chars + 1];
  char sec[kCurveKeyZ85Chars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return absl::InternalError(absl::StrCat("p2p: cannot generate a key pair: ",
                                            zmq_strerror(zmq_errno())));
  }
  absl::StatusOr<CurveKey> p = CurveKeyFromZ85(pub);
  absl::StatusOr<CurveKey> s = CurveKeyFromZ85(sec);
  std::memset(sec, 0, sizeof(sec));
  if (!p.ok() || !s.ok()) {
    return absl::InternalError("p2p: libzmq returned a malformed key pair");
  }
  return CurveKeyPair{*p, *s};
}

std::string CurveKeyToZ85(const CurveKey& key) {
  char out[kCurveKeyZ85Chars + 1];
  zmq_z85_encode(out, key.data(), key.size());
  return std::string(out, kCurveKeyZ85Chars);
}

absl::StatusOr<CurveKey> CurveKeyFromZ85(std::string_view text) {
  if (text.size() != kCurveKeyZ85Chars) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: Z85 text must be ", kCurveKeyZ85Chars,
                     " characters, not ", text.size()));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (kZ85Alphabet.find(text[i]) == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("key: character ", i, " is not in the Z85 alphabet"));
    }
  }
  // Every 5-character group is a base-85 number that must fit 32 bits; one
  // above wraps in a decoder, so a key would have several texts.
  for (size_t g = 0; g < text.size(); g += 5) {
    uint64_t v = 0;
    for (size_t i = g; i < g + 5; ++i) v = v * 85 + kZ85Alphabet.find(text[i]);
    if (v > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key: Z85 group at character ", g, " is out of range"));
    }
  }
  std::string z(text);
  CurveKey key;
  if (zmq_z85_decode(key.data(), z.c_str()) == nullptr) {
    return absl::InvalidArgumentError("key: not valid Z85");
  }
  return key;
}

absl::StatusOr<CurveKey> CurvePublicKeyOf(const CurveKey& secret_key) {
  std::string sec = CurveKeyToZ85(secret_key);
  char pub[kCurveKeyZ85Chars + 1];
  int rc = zmq_curve_public(pub, sec.c_str());
  std::fill(sec.begin(), sec.end(), '\0');
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("p2p: cannot derive a public key: ",
                                            zmq_strerror(zmq_errno())));
  }
  return CurveKeyFromZ85(std::string_view(pub, kCurveKeyZ85Chars));
}

std::string CurveKeyPairToJson(const CurveKeyPair& pair) {
  nlohmann::json j;
  j["key_type"] = kKeyType;
  j["public_key"] = CurveKeyToZ85(pair.public_key);
  j["secret_key"] = CurveKeyToZ85(pair.secret_key);
  return j.dump();
}

absl::StatusOr<CurveKeyPair> ParseCurveKeyPairJson(std::string_view text) {
  absl::StatusOr<nlohmann::json> j =
      json_internal::ParseStrictJson(text, "curve key");
  if (!j.ok()) return j.status();
  if (!j->is_object()) {
    return absl::InvalidArgumentError("curve key: not a JSON object");
  }
  auto field = [&](const char* name) -> absl::StatusOr<std::string> {
    auto it = j->find(name);
    if (it == j->end() || !it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "curve key: field \"", name, "\" is missing or not a string"));
    }
    return it->get<std::string>();
  };
  absl::StatusOr<std::string> type = field("key_type");
  if (!type.ok()) return type.status();
  if (*type != kKeyType) {
    return absl::InvalidArgumentError(absl::StrCat(
        "curve key: key_type is \"", *type, "\", expected \"", kKeyType, "\""));
  }
  CurveKeyPair pair;
  for (auto [name, out] :
       {std::pair<const char*, CurveKey*>{"public_key", &pair.public_key},
        std::pair<const char*, CurveKey*>{"secret_key", &pair.secret_key}}) {
    absl::StatusOr<std::string> z85 = field(name);
    if (!z85.ok()) return z85.status();
    absl::StatusOr<CurveKey> key = CurveKeyFromZ85(*z85);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "curve key: field \"", name, "\": ", key.status().message()));
    }
    *out = *key;
  }
  absl::StatusOr<CurveKey> derived = CurvePublicKeyOf(pair.secret_key);
  if (!derived.ok()) return derived.status();
  if (*derived != pair.public_key) {
    return absl::InvalidArgumentError(
        "curve key: public_key does not belong to secret_key");
  }
  return pair;
}

absl::StatusOr<CurveKeyPair> LoadCurveKeyPair(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<CurveKeyPair> pair = ParseCurveKeyPairJson(*text);
  if (!pair.ok()) {
    return absl::Status(pair.status().code(),
                        absl::StrCat(path, ": ", pair.status().message()));
  }
  return pair;
}

}  // namespace consortia
