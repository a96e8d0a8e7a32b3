// Byte strings and fixed-size hashes shared by every module.
#ifndef CONSORTIA_COMMON_BYTES_H_
#define CONSORTIA_COMMON_BYTES_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace consortia {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

// A 32-byte digest (SHA-256 or SM3). All-zero means "none" where a field is
// optional (for example a nil vote).
using Hash32 = std::array<uint8_t, 32>;

inline ByteView AsBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsString(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Lower-case hexadecimal.
std::string ToHex(ByteView b);
// Accepts upper or lower case; an odd length or a non-hex digit is
// InvalidArgument.
absl::StatusOr<Bytes> FromHex(std::string_view hex);
// As FromHex, and the result must be exactly 32 bytes.
absl::StatusOr<Hash32> HashFromHex(std::string_view hex);

inline bool IsZero(const Hash32& h) {
  for (uint8_t b : h)
    if (b != 0) return false;
  return true;
}

}  // namespace consortia

#endif  // CONSORTIA_COMMON_BYTES_H_
