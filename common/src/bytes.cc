#include "consortia/bytes.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace consortia {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// The value of one hex digit, or -1.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ToHex(ByteView b) {
  std::string out(b.size() * 2, '\0');
  for (size_t i = 0; i < b.size(); ++i) {
    out[2 * i] = kHexDigits[b[i] >> 4];
    out[2 * i + 1] = kHexDigits[b[i] & 0x0f];
  }
  return out;
}

absl::StatusOr<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hex string has odd length ", hex.size()));
  }
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "non-hex digit at position ", hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return out;
}

absl::StatusOr<Hash32> HashFromHex(std::string_view hex) {
  Hash32 h{};
  if (hex.size() != 2 * h.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a hash is ", 2 * h.size(), " hex digits, got ", hex.size()));
  }
  absl::StatusOr<Bytes> b = FromHex(hex);
  if (!b.ok()) return b.status();
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

}  // namespace consortia
