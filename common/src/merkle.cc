#include "consortia/merkle.h"

#include <bit>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/codec.h"

namespace consortia {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;
// A proof for a tree of up to 2^64 leaves has at most 64 siblings.
constexpr size_t kMaxProofPath = 64;

Hash32 NodeHash(const CryptoSuite& suite, const Hash32& left,
                const Hash32& right) {
  const uint8_t prefix = kNodePrefix;
  return suite.Hash({ByteView(&prefix, 1), left, right});
}

// The split point of a tree of n > 1 leaves: the largest power of two
// strictly below n.
size_t SplitPoint(size_t n) { return std::bit_floor(n - 1); }

// Root of the subtree over leaf hashes [begin, end), end > begin.
Hash32 SubtreeRoot(const CryptoSuite& suite, const std::vector<Hash32>& leaves,
                   size_t begin, size_t end) {
  const size_t n = end - begin;
  if (n == 1) return leaves[begin];
  const size_t k = SplitPoint(n);
  return NodeHash(suite, SubtreeRoot(suite, leaves, begin, begin + k),
                  SubtreeRoot(suite, leaves, begin + k, end));
}

// Appends the audit path of leaf `index` (relative to begin) within the
// subtree [begin, end), deepest sibling first.
void AuditPath(const CryptoSuite& suite, const std::vector<Hash32>& leaves,
               size_t begin, size_t end, size_t index,
               std::vector<Hash32>* path) {
  const size_t n = end - begin;
  if (n == 1) return;
  const size_t k = SplitPoint(n);
  if (index < k) {
    AuditPath(suite, leaves, begin, begin + k, index, path);
    path->push_back(SubtreeRoot(suite, leaves, begin + k, end));
  } else {
    AuditPath(suite, leaves, begin + k, end, index - k, path);
    path->push_back(SubtreeRoot(suite, leaves, begin, begin + k));
  }
}

template <typename Leaves>
Hash32 RootOf(const CryptoSuite& suite, const Leaves& leaves) {
  if (leaves.empty()) return suite.Hash({});
  std::vector<Hash32> hashes;
  hashes.reserve(leaves.size());
  for (const auto& leaf : leaves) hashes.push_back(MerkleLeafHash(suite, leaf));
  return SubtreeRoot(suite, hashes, 0, hashes.size());
}

}  // namespace

Hash32 MerkleLeafHash(const CryptoSuite& suite, ByteView leaf) {
  const uint8_t prefix = kLeafPrefix;
  return suite.Hash({ByteView(&prefix, 1), leaf});
}

Hash32 MerkleRoot(const CryptoSuite& suite,
                  const std::vector<ByteView>& leaves) {
  return RootOf(suite, leaves);
}

Hash32 MerkleRoot(const CryptoSuite& suite, const std::vector<Bytes>& leaves) {
  return RootOf(suite, leaves);
}

absl::StatusOr<MerkleProof> MerkleProve(const CryptoSuite& suite,
                                        const std::vector<Bytes>& leaves,
                                        uint64_t index) {
  if (index >= leaves.size()) {
    return absl::OutOfRangeError(absl::StrCat(
        "leaf index ", index, " out of range for ", leaves.size(), " leaves"));
  }
  std::vector<Hash32> hashes;
  hashes.reserve(leaves.size());
  for (const Bytes& leaf : leaves)
    hashes.push_back(MerkleLeafHash(suite, leaf));
  MerkleProof proof;
  proof.index = index;
  proof.leaf_count = leaves.size();
  AuditPath(suite, hashes, 0, hashes.size(), index, &proof.path);
  return proof;
}

bool MerkleVerify(const CryptoSuite& suite, const Hash32& root, ByteView leaf,
                  const MerkleProof& proof) {
  if (proof.index >= proof.leaf_count || proof.path.size() > kMaxProofPath) {
    return false;
  }
  // Walk up from the leaf. `node` is the leaf's position at the current
  // level and `last` the position of the level's last node; a node that is
  // the last one and a left child has no sibling at this level and rises
  // unchanged (the RFC 6962 shape).
  uint64_t node = proof.index;
  uint64_t last = proof.leaf_count - 1;
  Hash32 h = MerkleLeafHash(suite, leaf);
  for (const Hash32& sibling : proof.path) {
    if (last == 0) return false;  // path longer than the tree is tall
    if ((node & 1) == 1 || node == last) {
      h = NodeHash(suite, sibling, h);
      if ((node & 1) == 0) {
        // A left child with no right sibling: climb until it is a right
        // child (or the root of the left part).
        while ((node & 1) == 0 && node != 0) {
          node >>= 1;
          last >>= 1;
        }
      }
    } else {
      h = NodeHash(suite, h, sibling);
    }
    node >>= 1;
    last >>= 1;
  }
  return last == 0 && h == root;
}

void EncodeMerkleProof(const MerkleProof& p, Encoder* e) {
  e->PutVarint(p.index);
  e->PutVarint(p.leaf_count);
  e->PutVarint(p.path.size());
  for (const Hash32& h : p.path) e->PutHash(h);
}

absl::Status DecodeMerkleProof(Decoder* d, MerkleProof* p) {
  const size_t start = d->offset();
  MerkleProof out;
  if (absl::Status s = d->GetVarint(&out.index); !s.ok()) return s;
  if (absl::Status s = d->GetVarint(&out.leaf_count); !s.ok()) return s;
  if (out.index >= out.leaf_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("merkle proof index ", out.index, " not below leaf count ",
                     out.leaf_count, " at offset ", start));
  }
  uint64_t n = 0;
  if (absl::Status s = d->GetCount(&n, kMaxProofPath, sizeof(Hash32));
      !s.ok()) {
    return s;
  }
  out.path.resize(n);
  for (Hash32& h : out.path) {
    if (absl::Status s = d->GetHash(&h); !s.ok()) return s;
  }
  *p = std::move(out);
  return absl::OkStatus();
}

}  // namespace consortia
