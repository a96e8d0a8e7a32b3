// The national suite sm2-sm3 over OpenSSL 3's default provider: SM2
// signatures (GB/T 32918, GM/T 0003) with the user id of GM/T 0009, SM3
// digests (GB/T 32905). Encodings are documented in crypto_suite.h.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/crypto_suite.h"

namespace consortia {
namespace {

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "consortia crypto (sm2-sm3): %s\n", what);
  std::abort();
}

constexpr size_t kScalarBytes = 32;
constexpr size_t kPublicKeyBytes = 65;  // 04 || X || Y
constexpr size_t kSignatureBytes = 64;  // r || s, each 32 bytes big-endian
constexpr std::string_view kDefaultUserId = "1234567812345678";
constexpr std::string_view kKeygenDomain = "consortia/sm2-keygen/v1";

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
struct BnCtxDeleter {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
struct PointDeleter {
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using BnCtxPtr = std::unique_ptr<BN_CTX, BnCtxDeleter>;
using PointPtr = std::unique_ptr<EC_POINT, PointDeleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;

// A refused input leaves OpenSSL errors in the thread's queue; they must not
// reach the next OpenSSL user on this thread (TLS reads SSL_get_error, which
// looks at the queue). Every entry point that may fail clears it on exit.
struct ClearErrorsOnExit {
  ~ClearErrorsOnExit() { ERR_clear_error(); }
};

PkeyPtr ImportKey(ByteView public_key, const BIGNUM* secret);

// What is built once per process and then only read: the SM3 digest, the
// SM2 group (for the public key of a secret scalar) and its order n, and a
// public key (the generator) that Verify copies and gives the signer's
// point. All are immutable after construction, so threads share them
// without locks.
struct Sm2Globals {
  const EVP_MD* sm3 = nullptr;
  EC_GROUP* group = nullptr;
  BIGNUM* order = nullptr;          // n
  BIGNUM* order_minus_1 = nullptr;  // n - 1
  std::array<uint8_t, kScalarBytes> order_be{};
  EVP_PKEY* public_template = nullptr;

  Sm2Globals() {
    sm3 = EVP_MD_fetch(nullptr, "SM3", nullptr);
    if (sm3 == nullptr) Fatal("EVP_MD_fetch(SM3) failed: no SM3 in OpenSSL");
    group = EC_GROUP_new_by_curve_name(NID_sm2);
    if (group == nullptr) Fatal("EC_GROUP_new_by_curve_name(SM2) failed");
    order = BN_dup(EC_GROUP_get0_order(group));
    order_minus_1 = BN_dup(order);
    if (order == nullptr || order_minus_1 == nullptr ||
        BN_sub_word(order_minus_1, 1) != 1 ||
        BN_bn2binpad(order, order_be.data(), kScalarBytes) !=
            static_cast<int>(kScalarBytes)) {
      Fatal("SM2 group order setup failed");
    }
    uint8_t g_point[kPublicKeyBytes];
    if (EC_POINT_point2oct(group, EC_GROUP_get0_generator(group),
                           POINT_CONVERSION_UNCOMPRESSED, g_point,
                           sizeof(g_point), nullptr) != kPublicKeyBytes) {
      Fatal("SM2 generator encoding failed");
    }
    public_template =
        ImportKey(ByteView(g_point, sizeof(g_point)), nullptr).release();
    if (public_template == nullptr) Fatal("SM2 template key import failed");
  }
};

const Sm2Globals& Globals() {
  static const Sm2Globals* g = new Sm2Globals();  // never destroyed
  return *g;
}

// One SM3 context per thread, reused across calls (as the SHA-256 suite
// does): saves an allocation per hash on the hot path.
EVP_MD_CTX* ThreadMdCtx() {
  thread_local MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) Fatal("EVP_MD_CTX_new failed");
  return ctx.get();
}

// Big-endian 32-byte compare, constant-time is not needed (public values).
bool LessThan(const uint8_t* a, const uint8_t* b) {
  return std::memcmp(a, b, kScalarBytes) < 0;
}
bool IsZero(const uint8_t* a) {
  uint8_t acc = 0;
  for (size_t i = 0; i < kScalarBytes; ++i) acc |= a[i];
  return acc == 0;
}

// A secret scalar d is valid for SM2 signing when 1 <= d <= n - 2 (the
// signature divides by 1 + d). Not constant-time in d's value, only in
// whether it is valid, which a caller learns anyway.
bool ValidSecretScalar(const BIGNUM* d) {
  return !BN_is_zero(d) && !BN_is_negative(d) &&
         BN_cmp(d, Globals().order_minus_1) < 0;
}

// The public key 04 || X || Y of a valid secret scalar d.
absl::StatusOr<Bytes> PublicKeyOf(const BIGNUM* d) {
  const Sm2Globals& g = Globals();
  BnCtxPtr bn_ctx(BN_CTX_secure_new());
  PointPtr p(EC_POINT_new(g.group));
  if (bn_ctx == nullptr || p == nullptr ||
      EC_POINT_mul(g.group, p.get(), d, nullptr, nullptr, bn_ctx.get()) != 1) {
    return absl::InternalError("SM2 public key derivation failed");
  }
  Bytes out(kPublicKeyBytes);
  if (EC_POINT_point2oct(g.group, p.get(), POINT_CONVERSION_UNCOMPRESSED,
                         out.data(), out.size(),
                         bn_ctx.get()) != kPublicKeyBytes) {
    return absl::InternalError("SM2 public key encoding failed");
  }
  return out;
}

// The public key of a signer for Verify: a copy of the template with its
// point replaced, which checks that the point is on the curve. About 6 us,
// where importing from scratch (ImportKey, which builds the group from its
// name) takes about 40 us, a tenth of a verification.
PkeyPtr PublicKeyForVerify(ByteView public_key) {
  PkeyPtr key(EVP_PKEY_dup(Globals().public_template));
  if (key == nullptr ||
      EVP_PKEY_set1_encoded_public_key(key.get(), public_key.data(),
                                       public_key.size()) != 1) {
    return nullptr;
  }
  return key;
}

// Imports a key into the default provider: the public point always (SM2's
// Z value hashes it, on signing too), the secret scalar when signing. The
// import checks that the point is on the curve. The group is named, so the
// provider builds it from its built-in table of named curves.
PkeyPtr ImportKey(ByteView public_key, const BIGNUM* secret) {
  OSSL_PARAM params[4];
  size_t n = 0;
  static char kGroupName[] = "SM2";
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 kGroupName, 3);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(public_key.data()),
      public_key.size());
  // OSSL_PARAM_BN wants the native-endian magnitude.
  std::array<uint8_t, kScalarBytes> secret_le{};
  if (secret != nullptr) {
    if (BN_bn2lebinpad(secret, secret_le.data(), kScalarBytes) !=
        static_cast<int>(kScalarBytes)) {
      return nullptr;
    }
    params[n++] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY,
                                          secret_le.data(), kScalarBytes);
  }
  params[n++] = OSSL_PARAM_construct_end();
  (void)n;

  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "SM2", nullptr));
  EVP_PKEY* key = nullptr;
  const bool ok = ctx != nullptr && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
                  EVP_PKEY_fromdata(ctx.get(), &key,
                                    secret != nullptr ? EVP_PKEY_KEYPAIR
                                                      : EVP_PKEY_PUBLIC_KEY,
                                    params) == 1;
  OPENSSL_cleanse(secret_le.data(), secret_le.size());
  if (!ok) {
    EVP_PKEY_free(key);
    return nullptr;
  }
  return PkeyPtr(key);
}

// SM2 with SM3 digests and one user id. Keys: the public key is the 65-byte
// uncompressed point, the secret key the 32-byte big-endian scalar d with
// 1 <= d <= n-2. Signatures: 64 bytes r || s, each 32-byte big-endian in
// [1, n-1]; one signature has one encoding (no DER length games), so the
// bytes a tx id or a certificate covers cannot be rewritten. Stateless and
// thread-safe.
class Sm2Sm3Suite final : public CryptoSuite {
 public:
  explicit Sm2Sm3Suite(std::string_view user_id) : user_id_(user_id) {
    Globals();
  }

  std::string_view name() const override { return "sm2-sm3"; }
  size_t public_key_size() const override { return kPublicKeyBytes; }
  size_t max_signature_size() const override { return kSignatureBytes; }

  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    EVP_MD_CTX* ctx = ThreadMdCtx();
    if (EVP_DigestInit_ex2(ctx, Globals().sm3, nullptr) != 1) {
      Fatal("EVP_DigestInit_ex2(SM3) failed");
    }
    for (ByteView p : parts) {
      if (!p.empty() && EVP_DigestUpdate(ctx, p.data(), p.size()) != 1) {
        Fatal("EVP_DigestUpdate(SM3) failed");
      }
    }
    Hash32 out{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) {
      Fatal("EVP_DigestFinal_ex(SM3) failed");
    }
    return out;
  }

  KeyPair GenerateKey() const override {
    uint8_t seed[kScalarBytes];
    if (RAND_priv_bytes(seed, sizeof(seed)) != 1) Fatal("RAND_priv_bytes");
    absl::StatusOr<KeyPair> kp = KeyFromSeed(ByteView(seed, sizeof(seed)));
    OPENSSL_cleanse(seed, sizeof(seed));
    if (!kp.ok()) Fatal("key generation from a fresh seed failed");
    return *std::move(kp);
  }

  // d = SM3(domain || seed || counter) mod n, the first counter (from 0)
  // that gives 1 <= d <= n-2; a retry has probability about 2^-256.
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    if (seed.size() != kScalarBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sm2 seed must be ", kScalarBytes, " bytes, got ", seed.size()));
    }
    const ClearErrorsOnExit clear_errors;
    const Sm2Globals& g = Globals();
    BnCtxPtr bn_ctx(BN_CTX_secure_new());
    BnPtr d(BN_secure_new());
    if (bn_ctx == nullptr || d == nullptr) {
      return absl::InternalError("BN allocation failed");
    }
    for (uint8_t counter = 0;; ++counter) {
      if (counter == 255) return absl::InternalError("no valid SM2 scalar");
      Hash32 h = Hash({AsBytes(kKeygenDomain), seed, ByteView(&counter, 1)});
      const bool ok = BN_bin2bn(h.data(), h.size(), d.get()) != nullptr &&
                      BN_nnmod(d.get(), d.get(), g.order, bn_ctx.get()) == 1;
      OPENSSL_cleanse(h.data(), h.size());
      if (!ok) return absl::InternalError("SM2 scalar reduction failed");
      if (ValidSecretScalar(d.get())) break;
    }
    KeyPair kp;
    absl::StatusOr<Bytes> pub = PublicKeyOf(d.get());
    if (!pub.ok()) return pub.status();
    kp.public_key = *std::move(pub);
    kp.secret_key.resize(kScalarBytes);
    if (BN_bn2binpad(d.get(), kp.secret_key.data(), kScalarBytes) !=
        static_cast<int>(kScalarBytes)) {
      return absl::InternalError("SM2 scalar encoding failed");
    }
    return kp;
  }

  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override {
    if (secret_key.size() != kScalarBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("sm2 secret key must be the ", kScalarBytes,
                       "-byte scalar, got ", secret_key.size(), " bytes"));
    }
    const ClearErrorsOnExit clear_errors;
    BnPtr d(BN_secure_new());
    if (d == nullptr ||
        BN_bin2bn(secret_key.data(), kScalarBytes, d.get()) == nullptr) {
      return absl::InternalError("BN allocation failed");
    }
    if (!ValidSecretScalar(d.get())) {
      return absl::InvalidArgumentError(
          "sm2 secret key is not a scalar in [1, n-2]");
    }
    // Z hashes the public key, so signing needs it: one scalar
    // multiplication, about as much as the signature itself.
    absl::StatusOr<Bytes> pub = PublicKeyOf(d.get());
    if (!pub.ok()) return pub.status();
    PkeyPtr key = ImportKey(*pub, d.get());
    if (key == nullptr) return absl::InternalError("SM2 key import failed");

    MdCtxPtr md(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by md
    uint8_t der[80];
    size_t der_len = sizeof(der);
    if (md == nullptr ||
        EVP_DigestSignInit_ex(md.get(), &pctx, "SM3", nullptr, nullptr,
                              key.get(), nullptr) != 1 ||
        !SetUserId(pctx) ||
        EVP_DigestSign(md.get(), der, &der_len, message.data(),
                       message.size()) != 1) {
      return absl::InternalError("SM2 signing failed");
    }
    const uint8_t* p = der;
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
    if (sig == nullptr) return absl::InternalError("SM2 signature decode");
    Bytes out(kSignatureBytes);
    if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), kScalarBytes) !=
            static_cast<int>(kScalarBytes) ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + kScalarBytes,
                     kScalarBytes) != static_cast<int>(kScalarBytes)) {
      return absl::InternalError("SM2 signature encoding failed");
    }
    return out;
  }

  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override {
    if (!Sm2SignatureWellFormed(signature) ||
        public_key.size() != kPublicKeyBytes || public_key[0] != 0x04) {
      return false;
    }
    const ClearErrorsOnExit clear_errors;
    const uint8_t* raw = signature.data();
    EcdsaSigPtr sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(raw, kScalarBytes, nullptr);
    BIGNUM* s = BN_bin2bn(raw + kScalarBytes, kScalarBytes, nullptr);
    if (sig == nullptr || r == nullptr || s == nullptr ||
        ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    uint8_t der[80];
    uint8_t* q = der;
    const int der_len = i2d_ECDSA_SIG(sig.get(), nullptr);
    if (der_len <= 0 || der_len > static_cast<int>(sizeof(der)) ||
        i2d_ECDSA_SIG(sig.get(), &q) != der_len) {
      return false;
    }
    PkeyPtr key = PublicKeyForVerify(public_key);
    if (key == nullptr) return false;  // not a point on the curve
    MdCtxPtr md(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by md
    return md != nullptr &&
           EVP_DigestVerifyInit_ex(md.get(), &pctx, "SM3", nullptr, nullptr,
                                   key.get(), nullptr) == 1 &&
           SetUserId(pctx) &&
           EVP_DigestVerify(md.get(), der, static_cast<size_t>(der_len),
                            message.data(), message.size()) == 1;
  }

 private:
  // The user id enters Z, which OpenSSL computes at the first digest
  // update. It must be set after DigestSignInit/DigestVerifyInit: OpenSSL
  // 3.0 refuses a "distid" passed to the init call itself (its SM2
  // signature context only accepts one once the init has armed the Z
  // computation).
  bool SetUserId(EVP_PKEY_CTX* pctx) const {
    return pctx != nullptr &&
           EVP_PKEY_CTX_set1_id(pctx, user_id_.data(), user_id_.size()) > 0;
  }

  const std::string user_id_;
};

}  // namespace

bool Sm2SignatureWellFormed(ByteView signature) {
  if (signature.size() != kSignatureBytes) return false;
  const uint8_t* r = signature.data();
  const uint8_t* s = r + kScalarBytes;
  const uint8_t* n = Globals().order_be.data();
  return !IsZero(r) && !IsZero(s) && LessThan(r, n) && LessThan(s, n);
}

const CryptoSuite& Sm2Sm3() {
  static const Sm2Sm3Suite suite(kDefaultUserId);
  return suite;
}

std::unique_ptr<CryptoSuite> NewSm2Sm3WithUserId(std::string_view user_id) {
  return std::make_unique<Sm2Sm3Suite>(user_id);
}

}  // namespace consortia
