// Private to consortia_app_records: reading the fields of a strictly decoded
// JSON record (json_strict.h), with InvalidArgument errors that name the
// record and the field. Used by the admin, invoice and notary records.
#ifndef CONSORTIA_COMMON_SRC_RECORD_FIELDS_H_
#define CONSORTIA_COMMON_SRC_RECORD_FIELDS_H_

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "consortia/bytes.h"
#include "nlohmann/json.hpp"

namespace consortia::records_internal {

using nlohmann::json;

// The object's fields must be exactly `names`.
inline absl::Status ExactFields(
    const json& j, absl::string_view what,
    std::initializer_list<absl::string_view> names) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an object"));
  }
  for (absl::string_view n : names) {
    if (!j.contains(std::string(n.data(), n.size()))) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field '", n, "' is missing"));
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(names.begin(), names.end(), it.key()) == names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown field '", std::string(it.key()), "'"));
    }
  }
  return absl::OkStatus();
}

inline absl::StatusOr<std::string> StringField(const json& j, const char* name,
                                               absl::string_view what) {
  const json& v = j.at(name);
  if (!v.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be a string"));
  }
  return v.get<std::string>();
}

inline absl::StatusOr<uint64_t> UintField(const json& j, const char* name,
                                          absl::string_view what) {
  const json& v = j.at(name);
  if (!v.is_number_unsigned()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "' must be an unsigned integer"));
  }
  return v.get<uint64_t>();
}

// Lower-case hex only (what ToHex writes), non-empty.
inline absl::StatusOr<Bytes> LowerHexField(const json& j, const char* name,
                                           absl::string_view what) {
  absl::StatusOr<std::string> s = StringField(j, name, what);
  if (!s.ok()) return s.status();
  const bool lower = std::all_of(s->begin(), s->end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  absl::StatusOr<Bytes> b = FromHex(*s);
  if (!lower || !b.ok() || b->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field '", name, "' must be non-empty lower-case hex"));
  }
  return *std::move(b);
}

inline absl::StatusOr<Hash32> LowerHashField(const json& j, const char* name,
                                             absl::string_view what) {
  absl::StatusOr<Bytes> b = LowerHexField(j, name, what);
  if (!b.ok()) return b.status();
  Hash32 h{};
  if (b->size() != h.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field '", name, "' must be 64 lower-case hex digits"));
  }
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, at
// most U+10FFFF): the JSON writer refuses anything else.
inline bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

// Valid UTF-8 of at most `max` bytes; InvalidArgument naming `what`.
inline absl::Status CheckText(std::string_view s, size_t max,
                              absl::string_view what) {
  if (s.size() > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", s.size(), " bytes, over the limit of ", max));
  }
  if (!IsUtf8(s)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not UTF-8"));
  }
  return absl::OkStatus();
}

// `s` in quotes for an error message when it is short printable ASCII,
// else only its length: a refused argument may be any bytes, and receipt
// logs are shown as text.
inline std::string Shown(std::string_view s) {
  const bool printable =
      s.size() <= 40 && std::all_of(s.begin(), s.end(), [](char c) {
        return c >= 0x20 && c < 0x7f;
      });
  if (printable)
    return absl::StrCat("'", absl::string_view(s.data(), s.size()), "'");
  return absl::StrCat("(", s.size(), " bytes)");
}

// 64 hex digits of either case -> 32 bytes.
inline absl::StatusOr<Hash32> ParseHash(std::string_view hex,
                                        absl::string_view what) {
  absl::StatusOr<Hash32> h = HashFromHex(hex);
  if (!h.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be 64 hex digits (", h.status().message(), ")"));
  }
  return h;
}

}  // namespace consortia::records_internal

#endif  // CONSORTIA_COMMON_SRC_RECORD_FIELDS_H_
