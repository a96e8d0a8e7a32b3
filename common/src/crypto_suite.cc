#include "consortia/crypto_suite.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace consortia {
namespace {

// A failure of a call that cannot fail on valid arguments (a broken
// invariant, such as OpenSSL without SHA-256): abort with a message.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "consortia crypto: %s\n", what);
  std::abort();
}

// libsodium must be initialised once before use; sodium_init() is itself
// idempotent, and the function-local static makes the first call
// thread-safe.
void EnsureSodium() {
  static const bool initialised = [] { return sodium_init() >= 0; }();
  if (!initialised) Fatal("sodium_init failed");
}

// SHA-256, fetched from the default provider once per process.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) Fatal("EVP_MD_fetch(SHA256) failed");
    return m;
  }();
  return md;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// One digest context per thread, reused across calls: saves an allocation
// per hash on the hot path (tx hashes, Merkle trees).
EVP_MD_CTX* ThreadMdCtx() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) Fatal("EVP_MD_CTX_new failed");
  return ctx.get();
}

constexpr size_t kSeedBytes = crypto_sign_SEEDBYTES;
constexpr size_t kPublicKeyBytes = crypto_sign_PUBLICKEYBYTES;
constexpr size_t kSignatureBytes = crypto_sign_BYTES;

// ed25519 signatures (libsodium) and SHA-256 digests (OpenSSL EVP). The
// secret key is the 32-byte seed; the 64-byte libsodium form is derived per
// signature and wiped afterwards. Stateless and thread-safe.
class Ed25519Sha256Suite final : public CryptoSuite {
 public:
  Ed25519Sha256Suite() {
    EnsureSodium();
    Sha256Md();
  }

  std::string_view name() const override { return "ed25519-sha256"; }
  size_t public_key_size() const override { return kPublicKeyBytes; }
  size_t max_signature_size() const override { return kSignatureBytes; }

  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    EVP_MD_CTX* ctx = ThreadMdCtx();
    if (EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr) != 1) {
      Fatal("EVP_DigestInit_ex2 failed");
    }
    for (ByteView p : parts) {
      if (!p.empty() && EVP_DigestUpdate(ctx, p.data(), p.size()) != 1) {
        Fatal("EVP_DigestUpdate failed");
      }
    }
    Hash32 out{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) {
      Fatal("EVP_DigestFinal_ex failed");
    }
    return out;
  }

  KeyPair GenerateKey() const override {
    uint8_t seed[kSeedBytes];
    randombytes_buf(seed, sizeof(seed));
    absl::StatusOr<KeyPair> kp = KeyFromSeed(ByteView(seed, sizeof(seed)));
    sodium_memzero(seed, sizeof(seed));
    if (!kp.ok()) Fatal("key generation from a fresh seed failed");
    return *std::move(kp);
  }

  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    if (seed.size() != kSeedBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ed25519 seed must be ", kSeedBytes, " bytes, got ", seed.size()));
    }
    KeyPair kp;
    kp.public_key.resize(kPublicKeyBytes);
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    if (crypto_sign_seed_keypair(kp.public_key.data(), sk, seed.data()) != 0) {
      sodium_memzero(sk, sizeof(sk));
      return absl::InternalError("crypto_sign_seed_keypair failed");
    }
    sodium_memzero(sk, sizeof(sk));
    kp.secret_key.assign(seed.begin(), seed.end());
    return kp;
  }

  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override {
    if (secret_key.size() != kSeedBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("ed25519 secret key must be the ", kSeedBytes,
                       "-byte seed, got ", secret_key.size(), " bytes"));
    }
    uint8_t pk[kPublicKeyBytes];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    if (crypto_sign_seed_keypair(pk, sk, secret_key.data()) != 0) {
      sodium_memzero(sk, sizeof(sk));
      return absl::InternalError("crypto_sign_seed_keypair failed");
    }
    Bytes sig(kSignatureBytes);
    const int rc = crypto_sign_detached(sig.data(), nullptr, message.data(),
                                        message.size(), sk);
    sodium_memzero(sk, sizeof(sk));
    if (rc != 0) return absl::InternalError("crypto_sign_detached failed");
    return sig;
  }

  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override {
    if (public_key.size() != kPublicKeyBytes ||
        signature.size() != kSignatureBytes) {
      return false;
    }
    return crypto_sign_verify_detached(signature.data(), message.data(),
                                       message.size(), public_key.data()) == 0;
  }
};

}  // namespace

const CryptoSuite& Ed25519Sha256() {
  static const Ed25519Sha256Suite suite;
  return suite;
}

absl::StatusOr<const CryptoSuite*> GetCryptoSuite(std::string_view name) {
  if (name == "ed25519-sha256") return &Ed25519Sha256();
  if (name == "sm2-sm3") return &Sm2Sm3();
  return absl::NotFoundError(
      absl::StrCat("unknown crypto suite '",
                   absl::string_view(name.data(), name.size()), "'"));
}

}  // namespace consortia
