#include "consortia/state_proof.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"

namespace consortia {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

// True iff a and b agree on their first n bits.
bool SamePrefix(const Hash32& a, const Hash32& b, size_t n) {
  const size_t whole = n / 8;
  if (!std::equal(a.begin(), a.begin() + whole, b.begin())) return false;
  const size_t rest = n % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Hash32 StateKeyPath(const CryptoSuite& suite, std::string_view app,
                    std::string_view key) {
  Encoder e;
  e.PutString(app);
  e.PutString(key);
  return suite.Hash(e.data());
}

Bytes EncodeStateValue(ByteView value, ByteView owner) {
  Encoder e;
  e.PutBytes(value);
  e.PutBytes(owner);
  return e.Take();
}

Hash32 StateValueHash(const CryptoSuite& suite, ByteView value,
                      ByteView owner) {
  return suite.Hash(EncodeStateValue(value, owner));
}

Hash32 StateLeafHash(const CryptoSuite& suite, const Hash32& path,
                     const Hash32& value_hash) {
  const uint8_t prefix = kLeafPrefix;
  return suite.Hash({ByteView(&prefix, 1), path, value_hash});
}

Hash32 StateNodeHash(const CryptoSuite& suite, const Hash32& left,
                     const Hash32& right) {
  const uint8_t prefix = kNodePrefix;
  return suite.Hash({ByteView(&prefix, 1), left, right});
}

void EncodeStateProof(const StateProof& p, Encoder* e) {
  const size_t depth = p.siblings.size();
  e->PutVarint(depth);
  Bytes bitmap((depth + 7) / 8, 0);
  for (size_t i = 0; i < depth; ++i) {
    if (!IsZero(p.siblings[i])) {
      bitmap[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
    }
  }
  e->PutRaw(bitmap);
  for (const Hash32& s : p.siblings) {
    if (!IsZero(s)) e->PutHash(s);
  }
  e->PutBool(p.leaf.has_value());
  if (p.leaf.has_value()) {
    e->PutHash(p.leaf->path);
    e->PutHash(p.leaf->value_hash);
  }
}

absl::Status DecodeStateProof(Decoder* d, StateProof* p) {
  uint64_t depth = 0;
  if (absl::Status s = d->GetVarint(&depth); !s.ok()) return s;
  if (depth > kStateTreeDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state proof depth ", depth, " is over ", kStateTreeDepth));
  }
  Bytes bitmap((depth + 7) / 8, 0);
  if (absl::Status s = d->GetRaw(bitmap.data(), bitmap.size()); !s.ok()) {
    return s;
  }
  if (depth % 8 != 0) {
    const uint8_t padding = static_cast<uint8_t>(0xff >> (depth % 8));
    if ((bitmap.back() & padding) != 0) {
      return absl::InvalidArgumentError(
          "state proof bitmap has bits set past its depth");
    }
  }
  p->siblings.assign(depth, Hash32{});
  for (size_t i = 0; i < depth; ++i) {
    if ((bitmap[i / 8] & (0x80 >> (i % 8))) == 0) continue;
    if (absl::Status s = d->GetHash(&p->siblings[i]); !s.ok()) return s;
    if (IsZero(p->siblings[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state proof sibling ", i, " is zero but marked present"));
    }
  }
  bool has_leaf = false;
  if (absl::Status s = d->GetBool(&has_leaf); !s.ok()) return s;
  p->leaf.reset();
  if (has_leaf) {
    StateLeaf leaf;
    if (absl::Status s = d->GetHash(&leaf.path); !s.ok()) return s;
    if (absl::Status s = d->GetHash(&leaf.value_hash); !s.ok()) return s;
    p->leaf = leaf;
  }
  return absl::OkStatus();
}

Bytes EncodeStateProof(const StateProof& p) {
  Encoder e;
  EncodeStateProof(p, &e);
  return e.Take();
}

absl::StatusOr<StateProof> DecodeStateProof(ByteView data) {
  Decoder d(data);
  StateProof p;
  absl::Status s = DecodeStateProof(&d, &p);
  if (s.ok()) s = d.ExpectEnd();
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("state proof: ", s.message()));
  }
  return p;
}

Hash32 StateProofRoot(const CryptoSuite& suite, const Hash32& path,
                      const StateProof& proof) {
  Hash32 h{};
  if (proof.leaf.has_value()) {
    h = StateLeafHash(suite, proof.leaf->path, proof.leaf->value_hash);
  }
  for (size_t i = proof.siblings.size(); i-- > 0;) {
    h = PathBit(path, i) ? StateNodeHash(suite, proof.siblings[i], h)
                         : StateNodeHash(suite, h, proof.siblings[i]);
  }
  return h;
}

absl::Status VerifyStateProof(const CryptoSuite& suite, const Hash32& root,
                              const Hash32& path,
                              const std::optional<Hash32>& value_hash,
                              const StateProof& proof) {
  const size_t depth = proof.siblings.size();
  if (depth > kStateTreeDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state proof depth ", depth, " is over ", kStateTreeDepth));
  }
  if (proof.leaf.has_value()) {
    // The leaf must sit in the subtree the walk reached.
    if (!SamePrefix(proof.leaf->path, path, depth)) {
      return absl::InvalidArgumentError(
          "the proof's leaf is not on the key's path");
    }
    const bool own = proof.leaf->path == path;
    if (value_hash.has_value() && !own) {
      return absl::InvalidArgumentError(
          "the proof shows another key's record, not this key's");
    }
    if (!value_hash.has_value() && own) {
      return absl::InvalidArgumentError(
          "the proof shows a record for this key, not its absence");
    }
    if (value_hash.has_value() && proof.leaf->value_hash != *value_hash) {
      return absl::InvalidArgumentError(
          "the proof shows another value for this key");
    }
  } else if (value_hash.has_value()) {
    return absl::InvalidArgumentError("the proof shows no record for this key");
  }
  const Hash32 computed = StateProofRoot(suite, path, proof);
  if (computed != root) {
    return absl::InvalidArgumentError(
        absl::StrCat("the proof leads to state root ", ToHex(computed),
                     ", not ", ToHex(root)));
  }
  return absl::OkStatus();
}

}  // namespace consortia
