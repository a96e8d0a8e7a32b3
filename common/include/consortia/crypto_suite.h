// The crypto suite a chain picks at genesis. Every hash, signature and Merkle
// tree goes through this interface, so adding the national suite (sm2-sm3)
// touches no caller.
#ifndef CONSORTIA_COMMON_CRYPTO_SUITE_H_
#define CONSORTIA_COMMON_CRYPTO_SUITE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"

namespace consortia {

struct KeyPair {
  Bytes public_key;
  Bytes secret_key;  // suite-specific form; for ed25519 the 32-byte seed
};

// Hashing, signing and verification for one suite. Implementations are
// stateless and thread-safe.
class CryptoSuite {
 public:
  virtual ~CryptoSuite() = default;

  // "ed25519-sha256" or "sm2-sm3".
  virtual std::string_view name() const = 0;
  virtual size_t public_key_size() const = 0;
  virtual size_t max_signature_size() const = 0;

  // Digest of the concatenation of parts (saves callers a copy when hashing a
  // prefix byte and two children, as the Merkle tree does).
  virtual Hash32 Hash(std::initializer_list<ByteView> parts) const = 0;
  Hash32 Hash(ByteView data) const { return Hash({data}); }

  // A fresh random key pair.
  virtual KeyPair GenerateKey() const = 0;
  // The key pair for a 32-byte seed. InvalidArgument for a wrong-size seed.
  virtual absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const = 0;
  // InvalidArgument if secret_key is malformed.
  virtual absl::StatusOr<Bytes> Sign(ByteView secret_key,
                                     ByteView message) const = 0;
  // False for any malformed key or signature, never an error.
  virtual bool Verify(ByteView public_key, ByteView message,
                      ByteView signature) const = 0;
};

// NotFound for an unknown suite name. The returned suite lives as long as the
// process (suites are stateless singletons inside this factory only).
absl::StatusOr<const CryptoSuite*> GetCryptoSuite(std::string_view name);

// The default suite: ed25519 signatures (libsodium), SHA-256 digests (OpenSSL
// EVP, which uses the CPU's SHA extensions).
const CryptoSuite& Ed25519Sha256();

}  // namespace consortia

#endif  // CONSORTIA_COMMON_CRYPTO_SUITE_H_
