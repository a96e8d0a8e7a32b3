// The ed25519-sha256 suite against published vectors (RFC 8032 section 7.1,
// FIPS 180-2 SHA-256), and tampering that verification must catch.
#include <gtest/gtest.h>

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

struct Rfc8032Vector {
  const char* name;
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc).
const Rfc8032Vector kVectors[] = {
    {"TEST 1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb88215"
     "90a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e4"
     "3e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b53"
     "8d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"TEST SHA(abc)",
     "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a"
     "274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9"
     "ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

const CryptoSuite& Suite() { return Ed25519Sha256(); }

TEST(CryptoTest, SuiteIsFoundByName) {
  absl::StatusOr<const CryptoSuite*> s = GetCryptoSuite("ed25519-sha256");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, &Ed25519Sha256());
  EXPECT_EQ((*s)->name(), "ed25519-sha256");
  EXPECT_EQ((*s)->public_key_size(), 32u);
  EXPECT_EQ((*s)->max_signature_size(), 64u);
  EXPECT_EQ(GetCryptoSuite("rsa").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<const CryptoSuite*> sm2 = GetCryptoSuite("sm2-sm3");
  ASSERT_TRUE(sm2.ok()) << sm2.status();
  EXPECT_EQ(*sm2, &Sm2Sm3());
  EXPECT_EQ((*sm2)->name(), "sm2-sm3");
}

TEST(CryptoTest, Rfc8032Vectors) {
  for (const Rfc8032Vector& v : kVectors) {
    SCOPED_TRACE(v.name);
    absl::StatusOr<KeyPair> kp = Suite().KeyFromSeed(Hex(v.seed));
    ASSERT_TRUE(kp.ok()) << kp.status();
    EXPECT_EQ(ToHex(kp->public_key), v.public_key);
    EXPECT_EQ(ToHex(kp->secret_key), v.seed);

    const Bytes msg = Hex(v.message);
    absl::StatusOr<Bytes> sig = Suite().Sign(kp->secret_key, msg);
    ASSERT_TRUE(sig.ok()) << sig.status();
    EXPECT_EQ(ToHex(*sig), v.signature);
    EXPECT_TRUE(Suite().Verify(Hex(v.public_key), msg, Hex(v.signature)));
  }
}

TEST(CryptoTest, Sha256KnownVectors) {
  // FIPS 180-2 appendix B.1, and the digest of the empty string.
  EXPECT_EQ(ToHex(Suite().Hash(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Suite().Hash(AsBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Suite().Hash({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // FIPS 180-2 appendix B.2 (two blocks).
  EXPECT_EQ(ToHex(Suite().Hash(AsBytes(
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(CryptoTest, HashOfPartsEqualsHashOfConcatenation) {
  const Hash32 whole = Suite().Hash(AsBytes("abc"));
  EXPECT_EQ(Suite().Hash({AsBytes("a"), AsBytes(""), AsBytes("bc")}), whole);
  EXPECT_NE(Suite().Hash(AsBytes("abd")), whole);
}

TEST(CryptoTest, TamperingFailsVerification) {
  const KeyPair kp = Suite().GenerateKey();
  ASSERT_EQ(kp.public_key.size(), 32u);
  ASSERT_EQ(kp.secret_key.size(), 32u);
  const Bytes msg = ToBytes("transfer 10 to bob");
  absl::StatusOr<Bytes> sig = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(sig.ok());
  ASSERT_TRUE(Suite().Verify(kp.public_key, msg, *sig));

  for (size_t bit = 0; bit < msg.size() * 8; bit += 7) {
    Bytes m = msg;
    m[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(Suite().Verify(kp.public_key, m, *sig)) << "msg bit " << bit;
  }
  for (size_t bit = 0; bit < sig->size() * 8; ++bit) {
    Bytes s = *sig;
    s[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(Suite().Verify(kp.public_key, msg, s)) << "sig bit " << bit;
  }
  for (size_t bit = 0; bit < kp.public_key.size() * 8; ++bit) {
    Bytes k = kp.public_key;
    k[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_FALSE(Suite().Verify(k, msg, *sig)) << "key bit " << bit;
  }
  // Another key's valid signature does not pass for this key.
  const KeyPair other = Suite().GenerateKey();
  EXPECT_NE(other.public_key, kp.public_key);
  EXPECT_FALSE(Suite().Verify(other.public_key, msg, *sig));
}

TEST(CryptoTest, MalformedInputsAreFalseOrInvalidArgument) {
  const KeyPair kp = Suite().GenerateKey();
  const Bytes msg = ToBytes("m");
  absl::StatusOr<Bytes> sig = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(sig.ok());

  Bytes short_key(kp.public_key.begin(), kp.public_key.end() - 1);
  Bytes long_key = kp.public_key;
  long_key.push_back(0);
  Bytes short_sig(sig->begin(), sig->end() - 1);
  Bytes long_sig = *sig;
  long_sig.push_back(0);
  EXPECT_FALSE(Suite().Verify(short_key, msg, *sig));
  EXPECT_FALSE(Suite().Verify(long_key, msg, *sig));
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, short_sig));
  EXPECT_FALSE(Suite().Verify(kp.public_key, msg, long_sig));
  EXPECT_FALSE(Suite().Verify({}, msg, {}));

  EXPECT_EQ(Suite().Sign(Bytes(31, 1), msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suite().Sign(Bytes(64, 1), msg).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suite().KeyFromSeed(Bytes(33, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CryptoTest, GeneratedKeysDiffer) {
  EXPECT_NE(Suite().GenerateKey().secret_key, Suite().GenerateKey().secret_key);
}

TEST(CryptoTest, HashAndVerifyFromManyThreads) {
  const KeyPair kp = Suite().GenerateKey();
  const Bytes msg = ToBytes("shared");
  absl::StatusOr<Bytes> sig = Suite().Sign(kp.secret_key, msg);
  ASSERT_TRUE(sig.ok());
  const Hash32 expected = Suite().Hash(msg);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (Suite().Hash(msg) != expected) ++failures[t];
        if (!Suite().Verify(kp.public_key, msg, *sig)) ++failures[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace consortia
