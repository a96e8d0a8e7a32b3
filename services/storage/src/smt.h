// The state tree: the compact sparse Merkle tree of state_proof.h, its nodes
// kept in the KvStore, updated once per block for all of the block's writes
// (the new nodes go into the block's own write batch), with proofs of
// presence and absence. See docs/adr/0005-sparse-merkle-state.md.
//
// Storage. Nodes are content-addressed (keys.h):
//   N<hash>  leaf:  0x00 || path (32) || value record (EncodeStateValue)
//                   || written at (u64 BE)
//            node:  0x01 || left (32) || right (32) || kinds (bit 0: left is
//                   a leaf, bit 1: right is a leaf) || written at (u64 BE)
// "Written at" is the version whose batch stored the node (not part of its
// hash). Empty subtrees (zero) are never stored. A leaf keeps the whole
// record, so the value of a key at any kept version is read from the tree
// itself.
//
// Versions. The tree of version v (the state after block v) is the one whose
// root is stored for height v. The nodes that leave the tree at version v
// (no longer reachable from root v, though reachable from root v - 1) are
// listed in one record, P<v> (their hashes); nothing else is written for
// them. Apply(prune_through = t) deletes the nodes listed for versions <= t,
// except those written again after they left (written at >= v: a later
// version re-created the same node, so it is in a newer tree, and in a
// newer list if it left again). A caller that keeps the latest K versions
// passes t = v - K + 1, so the roots of versions v - K + 1 .. v stay whole
// and the store holds the latest tree plus what the last K - 1 blocks
// replaced: it grows with what changes, never with the number of blocks. The
// versions already pruned are remembered ("M state_pruned_through"), so each
// prune seeks to its first list instead of walking the deleted ones.
// Per block this writes the new nodes, one list, and the deletions of the
// pruned nodes and list (smt-v1 also wrote a mark and a queue key per
// retired node and deleted a mark per new node: about twice the keys).
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_SMT_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_SMT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
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

// Decoded state tree nodes a SparseMerkleTree keeps in memory by default:
// about 200 bytes each (more for a leaf with a large record), so ~100 MiB.
inline constexpr size_t kDefaultTreeCacheNodes = 1 << 19;

struct SmtNodeCache;  // smt.cc
struct SmtHistory;    // smt.cc

// Stateless over its store but for a cache of decoded nodes (the ones the
// last Apply calls built or read, at most `cache_nodes` of them, and about
// 256 bytes of node and record each on average),
// which Apply consults before reading the store: nodes are
// content-addressed, so a cached node is always right for its hash (Apply
// then does not notice that the store lost it; the ledger's startup check
// and Prove do). Prove does not use it (a proof reads the store, and sees a
// pruned or lost node as missing). Prove may run
// on any thread, concurrently with anything. Apply calls must be
// serialized, in version order, each one's batch written before the next
// call (the ledger's commit lock does that); copies share the cache.
//
// It also remembers, for up to the last 64 versions it applied, which nodes
// each one wrote and retired: an Apply that builds on the root the previous
// one returned takes that one's batch as written. Pruning such a version
// then needs no read of the store (neither its list nor the nodes' "written
// at"); older versions (before this process, or past 64) are pruned from
// what the store says. A batch that was not written (the next Apply starts
// from another root, or repeats the version) is forgotten.
//
// Errors: NotFound when a node that a root refers to is missing (its version
// was pruned, or the store lost it), DataLoss when a stored node is corrupt
// (does not decode or does not hash to its key), InvalidArgument for a bad
// write set, and the store's own errors as they come.
class SparseMerkleTree {
 public:
  SparseMerkleTree(KvStore* store, const CryptoSuite* suite,
                   size_t cache_nodes = kDefaultTreeCacheNodes);

  // Applies `writes` (any order; each path at most once, else
  // InvalidArgument) to the tree whose root is `root` (version - 1's) and
  // returns the root of `version`. Adds to *batch, and to nothing else: the
  // deletions of the nodes pruned through `prune_through` (0 = prune
  // nothing), then the new nodes and the list of the nodes that leave the
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
  // What pruning through `through` deletes: the nodes retired at versions
  // (last pruned, through] that were not written again since (to delete
  // unless the tree this version builds has them), and those versions'
  // lists. `advances` when through is past the last pruned version.
  // `history` is *history_, whose lock Apply holds.
  struct PrunePlan {
    bool advances = false;
    std::vector<Hash32> nodes;
    std::vector<std::string> lists;
  };
  absl::StatusOr<PrunePlan> PlanPrune(uint64_t through,
                                      SmtHistory& history) const;

  KvStore* const store_;
  const CryptoSuite* const suite_;
  std::shared_ptr<SmtNodeCache> cache_;
  std::shared_ptr<SmtHistory> history_;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_SMT_H_
