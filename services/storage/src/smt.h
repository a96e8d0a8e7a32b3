// The state tree: the compact sparse Merkle tree of state_proof.h, its nodes
// kept in the KvStore, updated once per block for all of the block's writes
// (the new nodes go into the block's own write batch), with proofs of
// presence and absence. See docs/adr/0005-sparse-merkle-state.md.
//
// Storage. Nodes are content-addressed (keys.h):
//   N<hash>  leaf:  0x00 || path (32) || value record (EncodeStateValue)
//            node:  0x01 || left (32) || right (32) || kinds (bit 0: left is
//                   a leaf, bit 1: right is a leaf)
// Empty subtrees (zero) are never stored. A leaf keeps the whole record, so
// the value of a key at any kept version is read from the tree itself.
//
// Versions. The tree of version v (the state after block v) is the one whose
// root is stored for height v. A node that leaves the tree at version v
// (no longer reachable from root v, though reachable from root v - 1) is
// marked X<hash> = v and listed under P<v><hash>; Apply(prune_through = t)
// deletes the nodes that left at versions <= t and were not re-created
// since. A caller that keeps the latest K versions passes t = v - K + 1, so
// the roots of versions v - K + 1 .. v stay whole and the store holds the
// latest tree plus what the last K - 1 blocks replaced: it grows with what
// changes, never with the number of blocks. The versions already pruned are
// remembered ("M state_pruned_through"), so each prune seeks to its first
// entry instead of walking the deleted ones.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_SMT_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_SMT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/crypto_suite.h"
#include "consortia/state_proof.h"
#include "kv_store.h"

namespace consortia::storage {

// One change to the tree: the record at `path` becomes `value_record` (its
// EncodeStateValue bytes), or is removed (nullopt; removing an absent record
// changes nothing).
struct SmtWrite {
  Hash32 path{};
  std::optional<std::string> value_record;
};

// What Apply did, for logs and metrics.
struct SmtApplyStats {
  size_t nodes_written = 0;  // new nodes put into the batch
  size_t nodes_retired = 0;  // nodes that left the tree at this version
  size_t nodes_pruned = 0;   // nodes of old versions deleted
};

// The end of a walk from a root towards one path.
struct SmtLookup {
  StateProof proof;
  // The path's own record (EncodeStateValue bytes) when the tree has one.
  std::optional<std::string> value_record;
};

// Stateless over its store: Prove may run on any thread, concurrently with
// anything. Apply calls must be serialized, in version order, each one's
// batch written before the next call (the ledger's commit lock does that).
//
// Errors: NotFound when a node that a root refers to is missing (its version
// was pruned, or the store lost it), DataLoss when a stored node is corrupt
// (does not decode or does not hash to its key), InvalidArgument for a bad
// write set, and the store's own errors as they come.
class SparseMerkleTree {
 public:
  SparseMerkleTree(KvStore* store, const CryptoSuite* suite)
      : store_(store), suite_(suite) {}

  // Applies `writes` (any order; each path at most once, else
  // InvalidArgument) to the tree whose root is `root` (version - 1's) and
  // returns the root of `version`. Adds to *batch, and to nothing else: the
  // deletions of the nodes pruned through `prune_through` (0 = prune
  // nothing), then the new nodes and the marks of the nodes that leave the
  // tree at `version`. Reads the touched nodes level by level, one MultiGet
  // per level. version must be > 0 and prune_through < version
  // (InvalidArgument otherwise): the tree just replaced stays whole.
  absl::StatusOr<Hash32> Apply(const Hash32& root, uint64_t version,
                               std::vector<SmtWrite> writes,
                               uint64_t prune_through, WriteBatch* batch,
                               SmtApplyStats* stats = nullptr) const;

  // The proof for `path` in the tree with `root` (one Get per level), and
  // the path's record if it has one.
  absl::StatusOr<SmtLookup> Prove(const Hash32& root, const Hash32& path) const;

 private:
  // Adds the deletion of the nodes retired at versions (last pruned,
  // through] that are not in `keep` (re-created by this version).
  absl::Status Prune(uint64_t through, const std::set<Hash32>& keep,
                     WriteBatch* batch, SmtApplyStats* stats) const;

  KvStore* const store_;
  const CryptoSuite* const suite_;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_SMT_H_
