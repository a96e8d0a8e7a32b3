// The crypto suite a chain picks at genesis. Every hash, signature and Merkle
// tree goes through this interface: the chain's suite is named in its
// genesis (`crypto_suite`), and no caller knows which one it holds.
#ifndef CONSORTIA_COMMON_CRYPTO_SUITE_H_
#define CONSORTIA_COMMON_CRYPTO_SUITE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"

namespace consortia {

struct KeyPair {
  Bytes public_key;
  Bytes secret_key;  // suite-specific form: for ed25519 the 32-byte seed,
                     // for sm2 the 32-byte big-endian scalar
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

// The national suite (OpenSSL 3's default provider): SM2 signatures
// (GB/T 32918.2) on the recommended curve with the default user id of
// GM/T 0009, "1234567812345678", in the Z value on both signing and
// verification; SM3 digests (GB/T 32905) for everything Hash serves.
//   public key  65 bytes, the uncompressed point 04 || X || Y; Verify
//               rejects any other form and any point not on the curve.
//   secret key  32 bytes, the big-endian scalar d, 1 <= d <= n-2.
//   KeyFromSeed d = SM3("consortia/sm2-keygen/v1" || seed || counter) mod n
//               for the first one-byte counter from 0 that gives a valid d.
//   signature   64 bytes r || s, each big-endian in [1, n-1]: one
//               signature, one encoding (DER is produced and parsed only
//               inside, to talk to OpenSSL). Verify returns false for any
//               other length or range, never throws.
// Signing derives the public key (the Z value hashes it) each time.
const CryptoSuite& Sm2Sm3();

// True iff signature is 64 bytes r || s with r and s in [1, n-1], the only
// form Sm2Sm3().Verify accepts (a cheap pre-check, no curve arithmetic).
bool Sm2SignatureWellFormed(ByteView signature);

// An sm2-sm3 suite whose Z value uses another user id: for known-answer
// tests and interoperability checks only; the chain uses Sm2Sm3().
std::unique_ptr<CryptoSuite> NewSm2Sm3WithUserId(std::string_view user_id);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_CRYPTO_SUITE_H_
