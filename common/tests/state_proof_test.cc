// The state tree's hashing and proofs, checked against a small independent
// construction of the compact sparse Merkle tree from a set of records.
#include "consortia/state_proof.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"

namespace consortia {
namespace {

const CryptoSuite& Suite() { return Ed25519Sha256(); }

// The tree of a set of leaves, by its definition: empty = zero, one leaf =
// its leaf hash, more = node(left half, right half) split on bit `depth`.
Hash32 RefRoot(const std::vector<StateLeaf>& leaves, size_t depth = 0) {
  if (leaves.empty()) return Hash32{};
  if (leaves.size() == 1) {
    return StateLeafHash(Suite(), leaves[0].path, leaves[0].value_hash);
  }
  std::vector<StateLeaf> left, right;
  for (const StateLeaf& l : leaves) {
    (PathBit(l.path, depth) ? right : left).push_back(l);
  }
  return StateNodeHash(Suite(), RefRoot(left, depth + 1),
                       RefRoot(right, depth + 1));
}

StateProof RefProve(std::vector<StateLeaf> leaves, const Hash32& path) {
  StateProof p;
  size_t depth = 0;
  while (leaves.size() >= 2) {
    std::vector<StateLeaf> same, other;
    for (const StateLeaf& l : leaves) {
      (PathBit(l.path, depth) == PathBit(path, depth) ? same : other)
          .push_back(l);
    }
    p.siblings.push_back(RefRoot(other, depth + 1));
    leaves = std::move(same);
    ++depth;
  }
  if (leaves.size() == 1) p.leaf = leaves[0];
  return p;
}

Hash32 PathOf(const std::string& key) {
  return StateKeyPath(Suite(), "kv", key);
}

StateLeaf LeafOf(const std::string& key, const std::string& value) {
  return StateLeaf{PathOf(key),
                   StateValueHash(Suite(), AsBytes(value), AsBytes("owner"))};
}

TEST(StateProofTest, HashesAreTheDocumentedOnes) {
  Encoder e;
  e.PutString("kv");
  e.PutString("invoice/1");
  EXPECT_EQ(StateKeyPath(Suite(), "kv", "invoice/1"), Suite().Hash(e.data()));
  // The lengths keep (app, key) pairs apart.
  EXPECT_NE(StateKeyPath(Suite(), "kv", "x"), StateKeyPath(Suite(), "kvx", ""));

  Encoder v;
  v.PutBytes(AsBytes("paid"));
  v.PutBytes(AsBytes("alice"));
  EXPECT_EQ(EncodeStateValue(AsBytes("paid"), AsBytes("alice")), v.data());
  EXPECT_EQ(StateValueHash(Suite(), AsBytes("paid"), AsBytes("alice")),
            Suite().Hash(v.data()));

  const Hash32 a = PathOf("a");
  const Hash32 b = PathOf("b");
  const uint8_t zero = 0;
  const uint8_t one = 1;
  EXPECT_EQ(StateLeafHash(Suite(), a, b),
            Suite().Hash({ByteView(&zero, 1), a, b}));
  EXPECT_EQ(StateNodeHash(Suite(), a, b),
            Suite().Hash({ByteView(&one, 1), a, b}));
  EXPECT_NE(StateLeafHash(Suite(), a, b), StateNodeHash(Suite(), a, b));
}

TEST(StateProofTest, PathBitsAreReadMostSignificantFirst) {
  Hash32 p{};
  p[0] = 0x80;
  p[31] = 0x01;
  EXPECT_TRUE(PathBit(p, 0));
  EXPECT_FALSE(PathBit(p, 1));
  EXPECT_TRUE(PathBit(p, 255));
  EXPECT_FALSE(PathBit(p, 254));
}

TEST(StateProofTest, EmptyStateProvesAbsenceAgainstZeroRoot) {
  StateProof p = RefProve({}, PathOf("k"));
  EXPECT_TRUE(p.siblings.empty());
  EXPECT_FALSE(p.leaf.has_value());
  EXPECT_TRUE(
      VerifyStateProof(Suite(), Hash32{}, PathOf("k"), std::nullopt, p).ok());
  EXPECT_FALSE(VerifyStateProof(Suite(), Hash32{}, PathOf("k"),
                                LeafOf("k", "v").value_hash, p)
                   .ok());
}

TEST(StateProofTest, SingleRecordIsTheRoot) {
  const StateLeaf only = LeafOf("k", "v");
  const Hash32 root = RefRoot({only});
  EXPECT_EQ(root, StateLeafHash(Suite(), only.path, only.value_hash));
  StateProof p = RefProve({only}, only.path);
  EXPECT_TRUE(p.siblings.empty());
  EXPECT_TRUE(
      VerifyStateProof(Suite(), root, only.path, only.value_hash, p).ok());
  // Any other key's absence is shown by the same leaf.
  StateProof absent = RefProve({only}, PathOf("other"));
  EXPECT_TRUE(
      VerifyStateProof(Suite(), root, PathOf("other"), std::nullopt, absent)
          .ok());
  EXPECT_FALSE(
      VerifyStateProof(Suite(), root, only.path, std::nullopt, p).ok());
}

class StateProofSetTest : public ::testing::Test {
 protected:
  StateProofSetTest() {
    for (int i = 0; i < 200; ++i) {
      leaves_.push_back(
          LeafOf(absl::StrCat("key-", i), absl::StrCat("value-", i)));
    }
    root_ = RefRoot(leaves_);
  }
  std::vector<StateLeaf> leaves_;
  Hash32 root_{};
};

TEST_F(StateProofSetTest, EveryRecordAndManyAbsentKeysVerify) {
  for (const StateLeaf& l : leaves_) {
    StateProof p = RefProve(leaves_, l.path);
    ASSERT_TRUE(p.leaf.has_value());
    EXPECT_LT(p.siblings.size(), 40u);  // about log2(200), not 256
    EXPECT_TRUE(VerifyStateProof(Suite(), root_, l.path, l.value_hash, p).ok());
    // The same proof does not show absence, nor another value.
    EXPECT_FALSE(
        VerifyStateProof(Suite(), root_, l.path, std::nullopt, p).ok());
    Hash32 other_value = l.value_hash;
    other_value[0] ^= 1;
    EXPECT_FALSE(VerifyStateProof(Suite(), root_, l.path, other_value, p).ok());
  }
  int ended_at_leaf = 0;
  for (int i = 0; i < 200; ++i) {
    const Hash32 path = PathOf(absl::StrCat("absent-", i));
    StateProof p = RefProve(leaves_, path);
    ended_at_leaf += p.leaf.has_value() ? 1 : 0;
    EXPECT_TRUE(VerifyStateProof(Suite(), root_, path, std::nullopt, p).ok());
    // A value cannot be claimed for it.
    EXPECT_FALSE(
        VerifyStateProof(Suite(), root_, path, leaves_[0].value_hash, p).ok());
  }
  // Both kinds of absence (an empty subtree, another key's leaf) occur.
  EXPECT_GT(ended_at_leaf, 0);
  EXPECT_LT(ended_at_leaf, 200);
}

TEST_F(StateProofSetTest, TamperedProofsFail) {
  const StateLeaf& l = leaves_[17];
  const StateProof good = RefProve(leaves_, l.path);
  ASSERT_TRUE(
      VerifyStateProof(Suite(), root_, l.path, l.value_hash, good).ok());

  for (size_t i = 0; i < good.siblings.size(); ++i) {
    StateProof bad = good;
    bad.siblings[i][i % 32] ^= 0x10;
    EXPECT_FALSE(
        VerifyStateProof(Suite(), root_, l.path, l.value_hash, bad).ok())
        << "sibling " << i;
  }
  StateProof shorter = good;
  shorter.siblings.pop_back();
  EXPECT_FALSE(
      VerifyStateProof(Suite(), root_, l.path, l.value_hash, shorter).ok());
  StateProof longer = good;
  longer.siblings.push_back(Hash32{});
  EXPECT_FALSE(
      VerifyStateProof(Suite(), root_, l.path, l.value_hash, longer).ok());
  StateProof no_leaf = good;
  no_leaf.leaf.reset();
  EXPECT_FALSE(
      VerifyStateProof(Suite(), root_, l.path, std::nullopt, no_leaf).ok());
  Hash32 other_root = root_;
  other_root[31] ^= 1;
  EXPECT_FALSE(
      VerifyStateProof(Suite(), other_root, l.path, l.value_hash, good).ok());
  // A proof for one key does not prove another.
  const StateLeaf& m = leaves_[18];
  EXPECT_FALSE(
      VerifyStateProof(Suite(), root_, m.path, l.value_hash, good).ok());

  // An absence proof that swaps in a leaf from elsewhere in the tree fails:
  // the leaf is not on the path.
  const Hash32 absent = PathOf("absent-x");
  StateProof abs = RefProve(leaves_, absent);
  ASSERT_TRUE(VerifyStateProof(Suite(), root_, absent, std::nullopt, abs).ok());
  for (const StateLeaf& other : leaves_) {
    if (abs.leaf.has_value() && other == *abs.leaf) continue;
    StateProof swapped = abs;
    swapped.leaf = other;
    EXPECT_FALSE(
        VerifyStateProof(Suite(), root_, absent, std::nullopt, swapped).ok());
  }
}

TEST_F(StateProofSetTest, EncodingRoundTripsAndCompressesEmptySiblings) {
  for (size_t i = 0; i < leaves_.size(); i += 7) {
    StateProof p = RefProve(leaves_, leaves_[i].path);
    Bytes wire = EncodeStateProof(p);
    absl::StatusOr<StateProof> back = DecodeStateProof(wire);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, p);
  }
  // 256 siblings of which only two are not empty: 2 hashes on the wire.
  StateProof deep;
  deep.siblings.assign(256, Hash32{});
  deep.siblings[3] = PathOf("x");
  deep.siblings[255] = PathOf("y");
  deep.leaf = LeafOf("z", "v");
  Bytes wire = EncodeStateProof(deep);
  EXPECT_EQ(wire.size(), 2u + 32u + 2 * 32u + 1u + 64u);
  absl::StatusOr<StateProof> back = DecodeStateProof(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, deep);
}

TEST(StateProofDecodeTest, RefusesEverythingButTheOneEncoding) {
  StateProof p;
  p.siblings = {PathOf("a"), Hash32{}, PathOf("c")};
  p.leaf = LeafOf("k", "v");
  const Bytes wire = EncodeStateProof(p);
  ASSERT_TRUE(DecodeStateProof(wire).ok());
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_FALSE(DecodeStateProof(ByteView(wire.data(), n)).ok()) << n;
  }
  Bytes trailing = wire;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeStateProof(trailing).ok());

  // Depth 3 uses 3 bits of the bitmap byte; a set padding bit is refused.
  Bytes padding = wire;
  ASSERT_EQ(padding[0], 3);
  padding[1] |= 0x01;
  EXPECT_FALSE(DecodeStateProof(padding).ok());

  // A present sibling that is zero has a shorter encoding: refused.
  Encoder zero_sib;
  zero_sib.PutVarint(1);
  zero_sib.PutU8(0x80);
  zero_sib.PutHash(Hash32{});
  zero_sib.PutBool(false);
  EXPECT_FALSE(DecodeStateProof(zero_sib.data()).ok());

  Encoder too_deep;
  too_deep.PutVarint(257);
  too_deep.PutRaw(Bytes(33, 0));
  too_deep.PutBool(false);
  EXPECT_FALSE(DecodeStateProof(too_deep.data()).ok());

  Encoder bad_bool;
  bad_bool.PutVarint(0);
  bad_bool.PutU8(2);
  EXPECT_FALSE(DecodeStateProof(bad_bool.data()).ok());
}

TEST(StateProofDecodeTest, RandomBytesNeverCrashAndDecodedProofsReencode) {
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    Bytes in(rng() % 120);
    for (uint8_t& b : in) b = static_cast<uint8_t>(rng());
    if (!in.empty()) in[0] = static_cast<uint8_t>(in[0] % 4);
    absl::StatusOr<StateProof> p = DecodeStateProof(in);
    if (p.ok()) {
      EXPECT_EQ(EncodeStateProof(*p), in);
    }
  }
}

}  // namespace
}  // namespace consortia
