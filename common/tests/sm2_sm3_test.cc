// The sm2-sm3 suite against published vectors (GB/T 32905 for SM3; the
// signature example of GM/T 0003.5-2012 / GB/T 32918.5-2017 annex A, on the
// recommended curve), round trips, and the inputs Verify must refuse.
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <string>
#include <thread>
#include <vector>

#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"

namespace consortia {
namespace {

Bytes Hex(std::string_view h) {
  absl::StatusOr<Bytes> b = FromHex(h);
  EXPECT_TRUE(b.ok()) << h;
  return b.ok() ? *b : Bytes{};
}

const CryptoSuite& Suite() { return Sm2Sm3(); }

// The recommended curve's order n (GB/T 32918.5), big-endian.
constexpr std::string_view kOrder =
    "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123";

// GM/T 0003.5-2012 annex A.2 (= GB/T 32918.5-2017 annex A): a signature of
// "message digest" on the recommended curve with user id
// "1234567812345678", the GM/T 0009 default this suite uses. The annex also
// gives the secret d, but the nonce k it used is not reproducible through
// OpenSSL's API, so only verification is checked.
constexpr std::string_view kAnnexSecret =
    "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8";
constexpr std::string_view kAnnexPublic =
    "04"
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";
constexpr std::string_view kAnnexSignature =
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";

TEST(Sm2Sm3Test, Sizes) {
  EXPECT_EQ(Suite().name(), "sm2-sm3");
  EXPECT_EQ(Suite().public_key_size(), 65u);
  EXPECT_EQ(Suite().max_signature_size(), 64u);
}

TEST(Sm2Sm3Test, Sm3KnownVectors) {
  // GB/T 32905-2016 appendix A: example 1 ("abc") and example 2 ("abcd"
  // sixteen times, 512 bits).
  EXPECT_EQ(ToHex(Suite().Hash(AsBytes("abc"))),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  std::string abcd16;
  for (int i = 0; i < 16; ++i) abcd16 += "abcd";
  EXPECT_EQ(ToHex(Suite().Hash(AsBytes(abcd16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
  // Parts hash as their concatenation.
  EXPECT_EQ(Suite().Hash({AsBytes("a"), AsBytes(""), AsBytes("bc")}),
            Suite().Hash(AsBytes("abc")));
}

TEST(Sm2Sm3Test, VerifiesThePublishedSignature) {
  EXPECT_TRUE(Suite().Verify(Hex(kAnnexPublic), AsBytes("message digest"),
                             Hex(kAnnexSignature)));
  EXPECT_FALSE(Suite().Verify(Hex(kAnnexPublic), AsBytes("message digesT"),
                              Hex(kAnnexSignature)));
  // Z covers the user id: the same signature under another id fails, so
  // the id really reaches OpenSSL on the verify side.
  EXPECT_FALSE(NewSm2Sm3WithUserId("ALICE123@YAHOO.COM")
                   ->Verify(Hex(kAnnexPublic), AsBytes("message digest"),
                            Hex(kAnnexSignature)));
}

TEST(Sm2Sm3Test, AnnexSecretSignsForAnnexPublicKey) {
  // Signing with the annex's d: the signature verifies under the annex's
  // public key (so Sign derives the same point) with the default id.
  absl::StatusOr<Bytes> sig =
      Suite().Sign(Hex(kAnnexSecret), AsBytes("message digest"));
  ASSERT_TRUE(sig.ok()) << sig.status();
  ASSERT_EQ(sig->size(), 64u);
  EXPECT_TRUE(
      Suite().Verify(Hex(kAnnexPublic), AsBytes("message digest"), *sig));
}

TEST(Sm2Sm3Test, UserIdIsInTheSignatureOnBothSides) {
  const KeyPair kp = Suite().GenerateKey();
  const Bytes msg = ToBytes("vote");
  std::unique_ptr<CryptoSuite> alice = NewSm2Sm3WithUserId("ALICE123");
  absl::StatusOr<Bytes> by_alice = alice->Sign(kp.secret_key, msg);
  absl::StatusOr<Bytes> by_default = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(by_alice.ok() && by_default.ok());
  EXPECT_TRUE(alice->Verify(kp.public_key, msg, *by_alice));
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, *by_alice));
  EXPECT_FALSE(alice->Verify(kp.public_key, msg, *by_default));
  EXPECT_TRUE(Suite().Verify(kp.public_key, msg, *by_default));
}

TEST(Sm2Sm3Test, KeyFromSeedIsDeterministic) {
  const Bytes seed(32, 7);
  absl::StatusOr<KeyPair> a = Suite().KeyFromSeed(seed);
  absl::StatusOr<KeyPair> b = Suite().KeyFromSeed(seed);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->public_key, b->public_key);
  EXPECT_EQ(a->secret_key, b->secret_key);
  ASSERT_EQ(a->public_key.size(), 65u);
  EXPECT_EQ(a->public_key[0], 0x04);
  ASSERT_EQ(a->secret_key.size(), 32u);
  EXPECT_NE(a->secret_key, seed);  // hashed, not the seed itself
  absl::StatusOr<KeyPair> c = Suite().KeyFromSeed(Bytes(32, 8));
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->public_key, a->public_key);
  EXPECT_EQ(Suite().KeyFromSeed(Bytes(31, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suite().KeyFromSeed(Bytes(33, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Sm2Sm3Test, RoundTripAndTampering) {
  const KeyPair kp = Suite().GenerateKey();
  const Bytes msg = ToBytes("transfer 10 to bob");
  absl::StatusOr<Bytes> sig = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(sig.ok());
  ASSERT_TRUE(Suite().Verify(kp.public_key, msg, *sig));
  EXPECT_TRUE(Sm2SignatureWellFormed(*sig));
  // Randomised signing: two signatures of one message differ, both verify.
  absl::StatusOr<Bytes> again = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sig);
  EXPECT_TRUE(Suite().Verify(kp.public_key, msg, *again));
  // The empty message signs and verifies too.
  absl::StatusOr<Bytes> empty = Suite().Sign(kp.secret_key, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(Suite().Verify(kp.public_key, {}, *empty));
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, *empty));

  for (size_t bit = 0; bit < msg.size() * 8; bit += 7) {
    Bytes m = msg;
    m[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(Suite().Verify(kp.public_key, m, *sig)) << "msg bit " << bit;
  }
  for (size_t bit = 0; bit < sig->size() * 8; bit += 3) {
    Bytes s = *sig;
    s[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(Suite().Verify(kp.public_key, msg, s)) << "sig bit " << bit;
  }
  for (size_t bit = 8; bit < kp.public_key.size() * 8; bit += 5) {
    Bytes k = kp.public_key;
    k[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(Suite().Verify(k, msg, *sig)) << "key bit " << bit;
  }
  const KeyPair other = Suite().GenerateKey();
  EXPECT_FALSE(Suite().Verify(other.public_key, msg, *sig));
}

TEST(Sm2Sm3Test, MalformedInputsAreFalseOrInvalidArgument) {
  const KeyPair kp = Suite().GenerateKey();
  const Bytes msg = ToBytes("m");
  absl::StatusOr<Bytes> sig = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(sig.ok());
  const Bytes n = Hex(kOrder);

  // Wrong lengths.
  Bytes short_sig(sig->begin(), sig->end() - 1);
  Bytes long_sig = *sig;
  long_sig.push_back(0);
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, short_sig));
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, long_sig));
  EXPECT_FALSE(Suite().Verify({}, msg, {}));
  Bytes short_key(kp.public_key.begin(), kp.public_key.end() - 1);
  EXPECT_FALSE(Suite().Verify(short_key, msg, *sig));
  // The DER form OpenSSL itself would take is not this suite's encoding.
  Bytes der = {0x30, 0x44, 0x02, 0x20};
  der.insert(der.end(), sig->begin(), sig->begin() + 32);
  der.insert(der.end(), {0x02, 0x20});
  der.insert(der.end(), sig->begin() + 32, sig->end());
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, der));

  // r or s out of [1, n-1]: zero, n, n + (the same value, non-canonical),
  // all ones.
  auto with = [&](size_t off, const Bytes& v) {
    Bytes s = *sig;
    std::copy(v.begin(), v.end(), s.begin() + off);
    return s;
  };
  for (size_t off : {size_t{0}, size_t{32}}) {
    for (const Bytes& v : {Bytes(32, 0), n, Bytes(32, 0xff)}) {
      const Bytes bad = with(off, v);
      EXPECT_FALSE(Sm2SignatureWellFormed(bad));
      EXPECT_FALSE(Suite().Verify(kp.public_key, msg, bad));
    }
  }

  // Public keys: compressed prefix, the point at infinity, hybrid prefix,
  // a point off the curve, coordinates >= p.
  Bytes compressed = kp.public_key;
  compressed[0] = 0x02;
  EXPECT_FALSE(Suite().Verify(compressed, msg, *sig));
  Bytes hybrid = kp.public_key;
  hybrid[0] = 0x06 | (kp.public_key[64] & 1);
  EXPECT_FALSE(Suite().Verify(hybrid, msg, *sig));
  EXPECT_FALSE(Suite().Verify(Bytes(65, 0), msg, *sig));
  Bytes off_curve = kp.public_key;
  off_curve[64] ^= 1;
  EXPECT_FALSE(Suite().Verify(off_curve, msg, *sig));
  Bytes big = Bytes(65, 0xff);
  big[0] = 0x04;
  EXPECT_FALSE(Suite().Verify(big, msg, *sig));
  // A refusal leaves nothing in OpenSSL's error queue for this thread's
  // next OpenSSL user (TLS reads it).
  EXPECT_EQ(ERR_peek_error(), 0u);

  // Secret keys: wrong size, zero, n - 1 (1 + d = n has no inverse), n.
  EXPECT_EQ(Suite().Sign(Bytes(31, 1), msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suite().Sign(Bytes(64, 1), msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suite().Sign(Bytes(32, 0), msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  Bytes n_minus_1 = n;
  n_minus_1[31] -= 1;
  EXPECT_EQ(Suite().Sign(n_minus_1, msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suite().Sign(n, msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  Bytes n_minus_2 = n;
  n_minus_2[31] -= 2;
  EXPECT_TRUE(Suite().Sign(n_minus_2, msg).ok());
}

TEST(Sm2Sm3Test, HashSignAndVerifyFromManyThreads) {
  const KeyPair kp = Suite().GenerateKey();
  const Bytes msg = ToBytes("shared");
  absl::StatusOr<Bytes> sig = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(sig.ok());
  const Hash32 expected = Suite().Hash(msg);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (Suite().Hash(msg) != expected) ++failures[t];
        if (!Suite().Verify(kp.public_key, msg, *sig)) ++failures[t];
        absl::StatusOr<Bytes> s = Suite().Sign(kp.secret_key, msg);
        if (!s.ok() || !Suite().Verify(kp.public_key, msg, *s)) ++failures[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace consortia
