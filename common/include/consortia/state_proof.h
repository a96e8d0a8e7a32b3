// The authenticated state: a sparse Merkle tree over every app's records,
// and the proofs a client checks offline against the state root that a
// certified block header carries (docs/adr/0005-sparse-merkle-state.md).
//
// The tree has depth 256. A record of `app` under `key` sits at the leaf
// whose path is StateKeyPath(app, key), a 256-bit digest read from its most
// significant bit (bit 0 chooses the root's child: 0 = left, 1 = right).
// Hashes, all through the chain's CryptoSuite:
//   value hash = H(EncodeStateValue(value, owner))
//   leaf       = H(0x00 || path || value hash)
//   node       = H(0x01 || left || right)
//   empty      = 32 zero bytes (an empty subtree of any height)
// The tree is "compact": a subtree that holds exactly one record is that
// record's leaf hash, placed as high as it can go, so a subtree is
//   - empty (zero) when it holds no record,
//   - the leaf hash of its record when it holds one,
//   - node(left subtree, right subtree) when it holds two or more.
// The root depends only on the set of records (never on the order of the
// writes that made it), the root of the empty state is zero, and a path from
// the root to a record is about log2(number of records) long, not 256.
//
// This module is what storage builds the tree with and what `consortia
// verify` checks proofs with, so both hash exactly the same bytes.
#ifndef CONSORTIA_COMMON_STATE_PROOF_H_
#define CONSORTIA_COMMON_STATE_PROOF_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"

namespace consortia {

class Encoder;
class Decoder;

// Bits of a path, and so the greatest depth of the tree.
inline constexpr size_t kStateTreeDepth = 256;

// The path of a record: H(len(app) || app || len(key) || key), lengths as
// varints (the canonical encoding of two byte strings).
Hash32 StateKeyPath(const CryptoSuite& suite, std::string_view app,
                    std::string_view key);

// The canonical bytes of a record's content: len(value) || value ||
// len(owner) || owner. Storage keeps records in this form.
Bytes EncodeStateValue(ByteView value, ByteView owner);
// H(EncodeStateValue(value, owner)).
Hash32 StateValueHash(const CryptoSuite& suite, ByteView value, ByteView owner);

// H(0x00 || path || value_hash).
Hash32 StateLeafHash(const CryptoSuite& suite, const Hash32& path,
                     const Hash32& value_hash);
// H(0x01 || left || right).
Hash32 StateNodeHash(const CryptoSuite& suite, const Hash32& left,
                     const Hash32& right);

// Bit `i` (0 = most significant bit of byte 0) of a path. i < 256.
inline bool PathBit(const Hash32& path, size_t i) {
  return ((path[i / 8] >> (7 - i % 8)) & 1) != 0;
}

// A leaf of the tree: a record's path and the hash of its content.
struct StateLeaf {
  Hash32 path{};
  Hash32 value_hash{};
  bool operator==(const StateLeaf&) const = default;
};

// The walk from the root towards one path, which ends where the path's
// subtree holds at most one record.
struct StateProof {
  // siblings[i] is the hash of the subtree beside the path at depth i + 1
  // (siblings[0] is the root's other child); zero for an empty subtree. The
  // walk ends at depth siblings.size() (at most 256).
  std::vector<Hash32> siblings;
  // What the walk ended at: nullopt for an empty subtree, otherwise the one
  // leaf there (the queried record's own, or, for a proof of absence,
  // another record whose path shares the first siblings.size() bits).
  std::optional<StateLeaf> leaf;
  bool operator==(const StateProof&) const = default;
};

// Wire form (the all-zero siblings cost one bit each):
//   varint depth (<= 256)
//   bitmap of ceil(depth / 8) bytes: bit i (most significant first) is set
//     iff siblings[i] is not zero; unused trailing bits are zero
//   the non-zero siblings, 32 bytes each, in order
//   bool has_leaf [path 32 || value hash 32]
// The decoder refuses anything that is not the one encoding of a proof (a
// set bit with a zero sibling, set padding bits, a depth over 256, trailing
// bytes) with InvalidArgument.
void EncodeStateProof(const StateProof& p, Encoder* e);
absl::Status DecodeStateProof(Decoder* d, StateProof* p);
Bytes EncodeStateProof(const StateProof& p);
absl::StatusOr<StateProof> DecodeStateProof(ByteView data);

// The root that `proof` leads to from `path` (whatever the proof claims
// about the path's record). Requires siblings.size() <= 256.
Hash32 StateProofRoot(const CryptoSuite& suite, const Hash32& path,
                      const StateProof& proof);

// OK iff `proof` shows that in the tree with `root` the record at `path`
// has content hash `*value_hash`, or, when value_hash is nullopt, that
// there is no record at `path`. InvalidArgument saying why otherwise (the
// proof leads to another root, shows another value, shows the record where
// absence was claimed or the other way round, or is malformed).
absl::Status VerifyStateProof(const CryptoSuite& suite, const Hash32& root,
                              const Hash32& path,
                              const std::optional<Hash32>& value_hash,
                              const StateProof& proof);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_STATE_PROOF_H_
