// CurveZMQ transport keys of a node (consortia/peer_net.h): the key pair that
// encrypts and authenticates its p2p links, and the key file that holds it.
//
// Keys. A node has a CurveZMQ transport key pair (Curve25519), distinct from
// its signing key (consortia/config.h NodeKey): the transport key encrypts
// and authenticates the link, the signing key signs votes and blocks. Keys
// are 32 bytes; their text form is Z85 (40 characters), as ZeroMQ writes
// them. A key file is JSON:
//   {"key_type": "curvezmq", "public_key": "<z85>", "secret_key": "<z85>"}
#ifndef CONSORTIA_COMMON_CURVE_KEYS_H_
#define CONSORTIA_COMMON_CURVE_KEYS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace consortia {

// A Curve25519 public or secret key.
using CurveKey = std::array<uint8_t, 32>;

struct CurveKeyPair {
  CurveKey public_key{};
  CurveKey secret_key{};
};

// Length of a key's Z85 text.
inline constexpr size_t kCurveKeyZ85Chars = 40;

// A fresh key pair from the system's random source. Unimplemented if this
// libzmq was built without CURVE; Internal on any other failure.
absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair();

// The 40-character Z85 text of a key.
std::string CurveKeyToZ85(const CurveKey& key);
// Parses Z85 text. InvalidArgument (with the reason) unless it is exactly 40
// characters of the Z85 alphabet in canonical form (each 5-character group
// below 2^32), so one key has exactly one text.
absl::StatusOr<CurveKey> CurveKeyFromZ85(std::string_view text);

// The public key that belongs to `secret_key`. Internal if libzmq cannot
// derive it (built without CURVE).
absl::StatusOr<CurveKey> CurvePublicKeyOf(const CurveKey& secret_key);

// The key file text (see the top of this file), one line, no secret
// redaction: write it with mode 0600.
std::string CurveKeyPairToJson(const CurveKeyPair& pair);
// Parses a key file's text. InvalidArgument naming the field when the JSON is
// malformed, repeats a key, lacks a field, key_type is not "curvezmq", a key
// is not valid Z85, or the public key does not belong to the secret key.
absl::StatusOr<CurveKeyPair> ParseCurveKeyPairJson(std::string_view text);
// Reads and parses a key file: ReadFile's errors (NotFound, ...) or
// ParseCurveKeyPairJson's, with the path in the message.
absl::StatusOr<CurveKeyPair> LoadCurveKeyPair(const std::string& path);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_CURVE_KEYS_H_
