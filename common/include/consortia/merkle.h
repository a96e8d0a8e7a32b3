// Binary Merkle tree with domain-separated hashing (as RFC 6962):
//   leaf  = H(0x00 || leaf_bytes)
//   node  = H(0x01 || left || right)
//   empty = H()  (the digest of nothing)
// A tree of n > 1 leaves splits at k, the largest power of two below n; the
// left subtree holds the first k leaves. The shape is fixed by n alone, so
// an inclusion proof is the audit path from leaf to root.
#ifndef CONSORTIA_COMMON_MERKLE_H_
#define CONSORTIA_COMMON_MERKLE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"

namespace consortia {

struct MerkleProof {
  uint64_t index = 0;        // position of the leaf
  uint64_t leaf_count = 0;   // leaves in the tree
  std::vector<Hash32> path;  // siblings, leaf level first
};

Hash32 MerkleLeafHash(const CryptoSuite& suite, ByteView leaf);
Hash32 MerkleRoot(const CryptoSuite& suite,
                  const std::vector<ByteView>& leaves);
Hash32 MerkleRoot(const CryptoSuite& suite, const std::vector<Bytes>& leaves);

// OutOfRange if index >= leaves.size().
absl::StatusOr<MerkleProof> MerkleProve(const CryptoSuite& suite,
                                        const std::vector<Bytes>& leaves,
                                        uint64_t index);

// True iff proof shows that leaf sits at proof.index of a tree of
// proof.leaf_count leaves with this root. Any malformed proof (wrong path
// length, index out of range) is false.
bool MerkleVerify(const CryptoSuite& suite, const Hash32& root, ByteView leaf,
                  const MerkleProof& proof);

void EncodeMerkleProof(const MerkleProof& p, class Encoder* e);
absl::Status DecodeMerkleProof(class Decoder* d, MerkleProof* p);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_MERKLE_H_
