#include "smt.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "keys.h"

namespace consortia::storage {
namespace smt_internal {

// A decoded node.
struct Node {
  uint64_t written_at = 0;  // the version whose batch stored it
  bool is_leaf = false;
  Hash32 path{};             // leaf
  std::string value_record;  // leaf
  Hash32 left{};             // node
  Hash32 right{};            // node
  bool left_leaf = false;    // node
  bool right_leaf = false;   // node
};

// Node hashes are uniform already: their first 8 bytes are a good hash.
struct HashOfHash {
  size_t operator()(const Hash32& h) const {
    uint64_t v;
    std::memcpy(&v, h.data(), sizeof(v));
    return static_cast<size_t>(v);
  }
};

using NodePtr = std::shared_ptr<const Node>;
using NodeMap = absl::flat_hash_map<Hash32, NodePtr, HashOfHash>;

}  // namespace smt_internal

// Two generations of decoded nodes: lookups try both (a hit in the older
// moves the node to the newer), inserts go to the newer; when it is full it
// becomes the older and the older is dropped. So the nodes the last blocks
// wrote or read (the top of the tree, which every block rewrites) stay, and
// memory stays within two generations (each at most generation_entries
// nodes and about generation_bytes: leaves hold records of up to a few
// hundred KiB). Thread-safe.
struct SmtNodeCache {
  // Each generation holds half of the nodes, and of the bytes.
  explicit SmtNodeCache(size_t nodes)
      : generation_entries(std::max<size_t>(nodes / 2, 1)),
        generation_bytes(generation_entries * 256) {}

  const size_t generation_entries;
  const size_t generation_bytes;

  // The cached node of each hash (null where there is none), under one lock.
  void FindAll(const std::vector<Hash32>& hashes,
               std::vector<smt_internal::NodePtr>* out) {
    absl::MutexLock l(&mu);
    out->assign(hashes.size(), nullptr);
    for (size_t i = 0; i < hashes.size(); ++i) {
      if (auto it = young.find(hashes[i]); it != young.end()) {
        (*out)[i] = it->second;
      } else if (auto o = old.find(hashes[i]); o != old.end()) {
        (*out)[i] = o->second;
        InsertLocked(hashes[i], o->second);
      }
    }
  }
  void InsertAll(
      const std::vector<std::pair<Hash32, smt_internal::NodePtr>>& nodes) {
    absl::MutexLock l(&mu);
    for (const auto& [h, n] : nodes) InsertLocked(h, n);
  }
  void InsertLocked(const Hash32& h, smt_internal::NodePtr n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (young.size() >= generation_entries || young_bytes >= generation_bytes) {
      // The dropped generation (up to 65,536 nodes) is freed on another
      // thread: freeing it here would stall a commit for milliseconds.
      if (freeing.valid()) freeing.wait();
      freeing =
          std::async(std::launch::async,
                     [dropped = std::move(old)]() mutable { dropped.clear(); });
      old = std::move(young);
      young = smt_internal::NodeMap();
      young_bytes = 0;
    }
    // Sized once per generation rather than grown by rehashing.
    if (young.empty()) young.reserve(generation_entries);
    young_bytes += sizeof(smt_internal::Node) + n->value_record.size();
    young.insert_or_assign(h, std::move(n));
  }

  absl::Mutex mu;
  smt_internal::NodeMap young ABSL_GUARDED_BY(mu);
  size_t young_bytes ABSL_GUARDED_BY(mu) = 0;
  smt_internal::NodeMap old ABSL_GUARDED_BY(mu);
  std::future<void> freeing ABSL_GUARDED_BY(mu);  // waited for on destruction
};

// The versions the last Apply calls built whose batches are known written
// (smt.h): what each one wrote and retired, and for every node one of them
// wrote, the latest version that did. So pruning them reads nothing. Apply
// holds mu throughout.
struct SmtHistory {
  static constexpr size_t kMaxVersions = 64;

  struct Version {
    uint64_t version = 0;
    std::vector<Hash32> written;  // the nodes its batch stored
    std::vector<Hash32> retired;  // its P list
  };
  // What the last Apply built, settled by the next one.
  struct Pending {
    Version v;
    Hash32 root{};
    std::optional<uint64_t> pruned_through;  // when its batch prunes
  };

  bool Has(uint64_t v) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !versions.empty() && v >= versions.front().version &&
           v <= versions.back().version;
  }
  const Version& Get(uint64_t v) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return versions[v - versions.front().version];
  }
  // Whether node h was written at version v or later (v must be Has).
  bool WrittenSince(const Hash32& h, uint64_t v) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = written_at.find(h);
    return it != written_at.end() && it->second >= v;
  }

  // Called by Apply(root, version): the pending version was written when
  // this Apply builds the next version on its root (Apply's contract), and
  // is forgotten otherwise.
  void Settle(const Hash32& root, uint64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!pending.has_value()) return;
    Pending p = *std::move(pending);
    pending.reset();
    if (p.v.version + 1 != version || p.root != root) return;
    if (!versions.empty() && versions.back().version + 1 != p.v.version) {
      versions.clear();
      written_at.clear();
    }
    for (const Hash32& h : p.v.written) written_at[h] = p.v.version;
    versions.push_back(std::move(p.v));
    if (p.pruned_through.has_value()) pruned_through = p.pruned_through;
    // A pruned version is needed no more; past the bound, the store answers.
    while (!versions.empty() &&
           (versions.size() > kMaxVersions ||
            (pruned_through.has_value() &&
             versions.front().version <= *pruned_through))) {
      const Version& f = versions.front();
      for (const Hash32& h : f.written) {
        auto it = written_at.find(h);
        if (it != written_at.end() && it->second == f.version) {
          written_at.erase(it);
        }
      }
      versions.pop_front();
    }
  }

  absl::Mutex mu;
  std::deque<Version> versions ABSL_GUARDED_BY(mu);  // consecutive
  absl::flat_hash_map<Hash32, uint64_t, smt_internal::HashOfHash> written_at
      ABSL_GUARDED_BY(mu);
  // "M state_pruned_through" as stored, once read or written.
  std::optional<uint64_t> pruned_through ABSL_GUARDED_BY(mu);
  std::optional<Pending> pending ABSL_GUARDED_BY(mu);
};

namespace {

using smt_internal::Node;
using smt_internal::NodePtr;

constexpr char kLeafTag = 0x00;
constexpr char kNodeTag = 0x01;
constexpr uint8_t kLeftIsLeaf = 0x01;
constexpr uint8_t kRightIsLeaf = 0x02;
// A leaf's record: a value and an owner, each bounded by the tx size.
constexpr size_t kMaxRecordBytes = 2 * kStateTreeDepth + 2 * 256 * 1024;
// Every stored node ends with the version that wrote it (u64 BE).
constexpr size_t kVersionBytes = 8;
// Blocks with at least this many writes update the two halves of the tree
// on two threads (below it, a thread costs more than it saves).
constexpr size_t kParallelWrites = 64;
// About how many nodes a write reads and builds in a large tree (its path
// below the levels the block's writes share), to size the Updater's maps.
constexpr size_t kNodesPerWrite = 8;

std::string_view HashView(const Hash32& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

Hash32 HashFrom(std::string_view v) {
  Hash32 h;
  std::copy(v.begin(), v.begin() + 32, h.begin());
  return h;
}

// A reference to a subtree: its hash (zero = empty) and whether it is a
// leaf (which decides whether it rises when its sibling empties).
struct Ref {
  Hash32 hash{};
  bool leaf = false;
  bool empty() const { return IsZero(hash); }
};

// Node encodings are built in one allocation of their final size: appending
// part by part regrew each string three times, which showed in the tree's
// CPU (a block builds thousands of nodes).
std::string EncodeLeaf(const Hash32& path, std::string_view record,
                       uint64_t version) {
  std::string out;
  out.reserve(1 + path.size() + record.size() + kVersionBytes);
  out.push_back(kLeafTag);
  out.append(HashView(path));
  out.append(record);
  out.append(keys::EncodeU64(version));
  return out;
}

std::string EncodeNode(const Ref& left, const Ref& right, uint64_t version) {
  std::string out;
  out.reserve(1 + 2 * left.hash.size() + 1 + kVersionBytes);
  out.push_back(kNodeTag);
  out.append(HashView(left.hash));
  out.append(HashView(right.hash));
  uint8_t kinds =
      (left.leaf ? kLeftIsLeaf : 0) | (right.leaf ? kRightIsLeaf : 0);
  out.push_back(static_cast<char>(kinds));
  out.append(keys::EncodeU64(version));
  return out;
}

// The version that wrote a stored node (its last kVersionBytes), without
// decoding the rest. The version is not covered by the node's hash: a
// corrupt one can only make pruning keep a node too long or drop one of a
// version no longer kept, never change what a proof proves.
absl::StatusOr<uint64_t> WrittenAt(std::string_view v) {
  if (v.size() < 1 + kVersionBytes) {
    return absl::DataLossError(
        absl::StrCat("state tree node of ", v.size(), " bytes"));
  }
  return keys::DecodeU64(v.substr(v.size() - kVersionBytes));
}

absl::Status Corrupt(const Hash32& hash, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("state tree node ", ToHex(hash), " is corrupt: ", what));
}

// Decodes the node stored under `hash` and checks that it hashes to it.
absl::StatusOr<Node> DecodeNode(const CryptoSuite& suite, const Hash32& hash,
                                std::string_view v) {
  Node n;
  if (v.size() < 1 + kVersionBytes) {
    return Corrupt(hash, absl::StrCat(v.size(), " bytes"));
  }
  n.written_at = *keys::DecodeU64(v.substr(v.size() - kVersionBytes));
  v.remove_suffix(kVersionBytes);
  if (v[0] == kLeafTag) {
    if (v.size() < 33 || v.size() - 33 > kMaxRecordBytes) {
      return Corrupt(hash, absl::StrCat("leaf of ", v.size(), " bytes"));
    }
    n.is_leaf = true;
    n.path = HashFrom(v.substr(1, 32));
    n.value_record = std::string(v.substr(33));
    if (StateLeafHash(suite, n.path, suite.Hash(AsBytes(n.value_record))) !=
        hash) {
      return Corrupt(hash, "leaf does not hash to its key");
    }
    return n;
  }
  if (v[0] != kNodeTag || v.size() != 66) {
    return Corrupt(hash, "unknown tag or size");
  }
  n.left = HashFrom(v.substr(1, 32));
  n.right = HashFrom(v.substr(33, 32));
  const auto kinds = static_cast<uint8_t>(v[65]);
  if ((kinds & ~(kLeftIsLeaf | kRightIsLeaf)) != 0) {
    return Corrupt(hash, "unknown child kinds");
  }
  n.left_leaf = (kinds & kLeftIsLeaf) != 0;
  n.right_leaf = (kinds & kRightIsLeaf) != 0;
  if ((n.left_leaf && IsZero(n.left)) || (n.right_leaf && IsZero(n.right))) {
    return Corrupt(hash, "an empty child marked as a leaf");
  }
  if (StateNodeHash(suite, n.left, n.right) != hash) {
    return Corrupt(hash, "node does not hash to its key");
  }
  return n;
}

absl::Status MissingNode(const Hash32& hash) {
  return absl::NotFoundError(
      absl::StrCat("state tree node ", ToHex(hash), " is not in the store"));
}

// One leaf to build: a path and its record.
struct Entry {
  Hash32 path;
  const std::string* record;
};

// The computation of one Apply. Not thread-safe; lives for one call.
class Updater {
 public:
  Updater(const CryptoSuite& suite, const std::vector<SmtWrite>& writes,
          uint64_t version)
      : suite_(suite), writes_(writes), version_(version) {}

  // A new node: its stored bytes and decoded form.
  struct Created {
    std::string encoded;
    NodePtr node;
  };

  // A node read from the old tree; kept when the new tree has it too.
  struct Loaded {
    NodePtr node;
    bool kept = false;
  };
  using LoadedMap =
      absl::flat_hash_map<Hash32, Loaded, smt_internal::HashOfHash>;

  LoadedMap& loaded() { return loaded_; }
  // Room for about `nodes` read and as many built.
  void Reserve(size_t nodes) {
    loaded_.reserve(nodes);
    created_.reserve(nodes);
  }
  // Whether the new tree (as far as this Updater built it) has node h.
  bool Produced(const Hash32& h) const {
    if (created_.contains(h)) return true;
    auto it = loaded_.find(h);
    return it != loaded_.end() && it->second.kept;
  }

  // The first index in [lo, hi) whose path has bit `depth` set (the writes
  // are sorted by path, and share their first `depth` bits).
  size_t Split(size_t lo, size_t hi, size_t depth) const {
    auto it = std::partition_point(
        writes_.begin() + lo, writes_.begin() + hi,
        [depth](const SmtWrite& w) { return !PathBit(w.path, depth); });
    return static_cast<size_t>(it - writes_.begin());
  }

  // What this Updater's part of the new tree changes.
  struct Output {
    std::vector<Hash32> written;  // the new nodes, in hash order
    std::vector<std::pair<std::string, std::string>> puts;  // their records
    std::vector<Hash32> gone;  // read from the old tree, not in the new;
                               // in hash order
  };
  // After Update: the new nodes to store, which also go into the cache (the
  // next block starts from them; should this batch not be written, they are
  // never reached from a stored root), and the nodes that leave. A created
  // node may be one retired by an earlier version and not pruned yet:
  // rewriting it stamps it with this version, which is what tells the
  // pruning of that earlier version to leave it alone. In hash order, as
  // the store keeps them: RocksDB inserts a sorted run into its memtable
  // faster. A node's hash fixes its place, so no other part has it.
  Output Finish(SmtNodeCache& cache) {
    Output out;
    std::vector<std::pair<Hash32, Created*>> order;
    order.reserve(created_.size());
    for (auto& [h, c] : created_) order.emplace_back(h, &c);
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<Hash32, NodePtr>> fresh;
    fresh.reserve(order.size());
    out.written.reserve(order.size());
    out.puts.reserve(order.size());
    for (auto& [h, c] : order) {
      out.written.push_back(h);
      out.puts.emplace_back(keys::Node(h), std::move(c->encoded));
      fresh.emplace_back(h, std::move(c->node));
    }
    cache.InsertAll(fresh);
    for (const auto& [h, l] : loaded_) {
      if (!l.kept) out.gone.push_back(h);
    }
    std::sort(out.gone.begin(), out.gone.end());
    return out;
  }

  // The parent of two new subtrees (see Combine).
  Ref Join(const Ref& l, const Ref& r) { return Combine(l, r); }

  // The new subtree for the writes [lo, hi) applied to `ref` at `depth`.
  absl::StatusOr<Ref> Update(const Ref& ref, size_t depth, size_t lo,
                             size_t hi) {
    if (lo == hi) return ref;
    if (ref.empty()) {
      std::vector<Entry> entries;
      for (size_t i = lo; i < hi; ++i) {
        if (writes_[i].value_record.has_value()) {
          entries.push_back({writes_[i].path, &*writes_[i].value_record});
        }
      }
      return Build(depth, entries, 0, entries.size());
    }
    auto it = loaded_.find(ref.hash);
    if (it == loaded_.end()) return MissingNode(ref.hash);
    const Node& node = *it->second.node;
    if (node.is_leaf) {
      // Merge the old record (unless a write replaces it) with the writes.
      std::vector<Entry> entries;
      bool replaced = false;
      for (size_t i = lo; i < hi; ++i) {
        const SmtWrite& w = writes_[i];
        replaced = replaced || w.path == node.path;
        if (w.value_record.has_value()) {
          entries.push_back({w.path, &*w.value_record});
        }
      }
      if (!replaced) entries.push_back({node.path, &node.value_record});
      std::sort(entries.begin(), entries.end(),
                [](const Entry& a, const Entry& b) { return a.path < b.path; });
      return Build(depth, entries, 0, entries.size());
    }
    if (depth >= kStateTreeDepth) {
      return Corrupt(ref.hash, "an inner node at the bottom of the tree");
    }
    const size_t mid = Split(lo, hi, depth);
    const Ref left{node.left, node.left_leaf};
    const Ref right{node.right, node.right_leaf};
    absl::StatusOr<Ref> l = Update(left, depth + 1, lo, mid);
    if (!l.ok()) return l.status();
    absl::StatusOr<Ref> r = Update(right, depth + 1, mid, hi);
    if (!r.ok()) return r.status();
    return Combine(*l, *r);
  }

 private:
  // The subtree of entries [b, e) (sorted by path, sharing `depth` bits).
  absl::StatusOr<Ref> Build(size_t depth, const std::vector<Entry>& entries,
                            size_t b, size_t e) {
    if (b == e) return Ref{};
    if (e - b == 1) return EmitLeaf(entries[b]);
    if (depth >= kStateTreeDepth) {
      return absl::InvalidArgumentError("two writes have the same path");
    }
    auto it = std::partition_point(
        entries.begin() + b, entries.begin() + e,
        [depth](const Entry& x) { return !PathBit(x.path, depth); });
    const size_t m = static_cast<size_t>(it - entries.begin());
    absl::StatusOr<Ref> l = Build(depth + 1, entries, b, m);
    if (!l.ok()) return l.status();
    absl::StatusOr<Ref> r = Build(depth + 1, entries, m, e);
    if (!r.ok()) return r.status();
    return Combine(*l, *r);
  }

  // The parent of two subtrees: a lone leaf rises, two empties are empty.
  Ref Combine(const Ref& l, const Ref& r) {
    if (l.empty() && r.empty()) return Ref{};
    if (l.empty() && r.leaf) return r;
    if (r.empty() && l.leaf) return l;
    const Hash32 h = StateNodeHash(suite_, l.hash, r.hash);
    Emit(h, [&] {
      auto n = std::make_shared<Node>();
      n->written_at = version_;
      n->left = l.hash;
      n->right = r.hash;
      n->left_leaf = l.leaf;
      n->right_leaf = r.leaf;
      return Created{EncodeNode(l, r, version_), std::move(n)};
    });
    return Ref{h, false};
  }

  Ref EmitLeaf(const Entry& e) {
    const Hash32 h =
        StateLeafHash(suite_, e.path, suite_.Hash(AsBytes(*e.record)));
    Emit(h, [&] {
      auto n = std::make_shared<Node>();
      n->written_at = version_;
      n->is_leaf = true;
      n->path = e.path;
      n->value_record = *e.record;
      return Created{EncodeLeaf(e.path, *e.record, version_), std::move(n)};
    });
    return Ref{h, true};
  }

  // Records that node h is in the new tree; a node that was not read from
  // the old tree is new and must be stored.
  template <typename MakeFn>
  void Emit(const Hash32& h, MakeFn make) {
    if (auto it = loaded_.find(h); it != loaded_.end()) {
      it->second.kept = true;
    } else if (!created_.contains(h)) {
      created_.emplace(h, make());
    }
  }

  const CryptoSuite& suite_;
  const std::vector<SmtWrite>& writes_;
  const uint64_t version_;  // the version being built
  LoadedMap loaded_;        // read from the old tree
  absl::flat_hash_map<Hash32, Created, smt_internal::HashOfHash>
      created_;  // new nodes
};

// A subtree of the old tree to read: its root and the writes [lo, hi) that
// go into it.
struct Task {
  Hash32 hash;
  size_t lo;
  size_t hi;
};

// Puts into up.loaded() the nodes of the old tree that the tasks' writes
// touch, from `depth` down (or at `depth` only, with one_level): level by
// level, what the cache lacks in one MultiGet per level.
absl::Status LoadTouched(KvStore& store, const CryptoSuite& suite,
                         SmtNodeCache& cache, Updater& up,
                         std::vector<Task> level, size_t depth,
                         bool one_level) {
  std::vector<Hash32> hashes;
  std::vector<NodePtr> nodes;
  for (; !level.empty(); ++depth) {
    // Cached nodes need no read (nor hash check: they were checked or
    // built here).
    hashes.clear();
    for (const Task& t : level) hashes.push_back(t.hash);
    cache.FindAll(hashes, &nodes);
    std::vector<std::string> ks;
    std::vector<size_t> missing;
    for (size_t i = 0; i < level.size(); ++i) {
      if (nodes[i] == nullptr) {
        ks.push_back(keys::Node(level[i].hash));
        missing.push_back(i);
      }
    }
    if (!ks.empty()) {
      absl::StatusOr<std::vector<std::optional<std::string>>> vals =
          store.MultiGet(ks);
      if (!vals.ok()) return vals.status();
      std::vector<std::pair<Hash32, NodePtr>> read;
      read.reserve(missing.size());
      for (size_t j = 0; j < missing.size(); ++j) {
        const Hash32& h = level[missing[j]].hash;
        if (!(*vals)[j].has_value()) return MissingNode(h);
        absl::StatusOr<Node> node = DecodeNode(suite, h, *(*vals)[j]);
        if (!node.ok()) return node.status();
        nodes[missing[j]] = std::make_shared<const Node>(*std::move(node));
        read.emplace_back(h, nodes[missing[j]]);
      }
      cache.InsertAll(read);
    }
    std::vector<Task> next;
    for (size_t i = 0; i < level.size(); ++i) {
      const NodePtr& node = nodes[i];
      const Task& t = level[i];
      up.loaded().emplace(t.hash, Updater::Loaded{node});
      if (one_level || node->is_leaf) continue;
      if (depth >= kStateTreeDepth) {
        return Corrupt(t.hash, "an inner node at the bottom of the tree");
      }
      const size_t mid = up.Split(t.lo, t.hi, depth);
      if (t.lo < mid && !IsZero(node->left)) {
        next.push_back({node->left, t.lo, mid});
      }
      if (mid < t.hi && !IsZero(node->right)) {
        next.push_back({node->right, mid, t.hi});
      }
    }
    if (one_level) break;
    level = std::move(next);
  }
  return absl::OkStatus();
}

}  // namespace

SparseMerkleTree::SparseMerkleTree(KvStore* store, const CryptoSuite* suite,
                                   size_t cache_nodes)
    : store_(store),
      suite_(suite),
      cache_(std::make_shared<SmtNodeCache>(cache_nodes)),
      history_(std::make_shared<SmtHistory>()) {}

absl::StatusOr<Hash32> SparseMerkleTree::Apply(
    const Hash32& root, uint64_t version, std::vector<SmtWrite> writes,
    uint64_t prune_through, WriteBatch* batch, SmtApplyStats* stats) const {
  SmtApplyStats local;
  if (stats == nullptr) stats = &local;
  *stats = SmtApplyStats{};
  if (version == 0 || prune_through >= version) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot apply version ", version, " pruning through ", prune_through));
  }
  std::sort(
      writes.begin(), writes.end(),
      [](const SmtWrite& a, const SmtWrite& b) { return a.path < b.path; });
  for (size_t i = 1; i < writes.size(); ++i) {
    if (writes[i].path == writes[i - 1].path) {
      return absl::InvalidArgumentError(
          absl::StrCat("two writes to state path ", ToHex(writes[i].path)));
    }
  }
  // The history is settled and the pruning planned on another thread while
  // the tree is updated (this call holds the history's lock throughout; the
  // plan is joined before anything else touches the history). A future from
  // std::async waits for its thread when destroyed, on every return path.
  absl::MutexLock history_lock(&history_->mu);
  SmtHistory& history = *history_;
  std::future<absl::StatusOr<PrunePlan>> prune_plan =
      std::async(std::launch::async, [&]() -> absl::StatusOr<PrunePlan> {
        history.Settle(root, version);
        if (prune_through == 0) return PrunePlan{};
        return PlanPrune(prune_through, history);
      });
  // The old tree's touched nodes are read and the new ones built by the
  // Updaters in `parts`: `top` alone, or, for a block that writes under both
  // children of an inner root, `top` for the root and one per child, the
  // two children on two threads. A node's hash fixes its place in the
  // tree, so the halves never share a node.
  const size_t n = writes.size();
  Updater top(*suite_, writes, version);
  std::optional<Updater> left;
  std::optional<Updater> right;
  std::vector<Updater*> parts{&top};
  Updater::Output top_out;
  Updater::Output left_out;
  Updater::Output right_out;
  std::vector<Updater::Output*> outputs{&top_out};
  NodePtr root_node;
  if (!IsZero(root) && n > 0) {
    absl::Status s = LoadTouched(*store_, *suite_, *cache_, top, {{root, 0, n}},
                                 0, /*one_level=*/true);
    if (!s.ok()) return s;
    root_node = top.loaded().at(root).node;
  }
  const size_t mid =
      root_node != nullptr && !root_node->is_leaf ? top.Split(0, n, 0) : 0;
  absl::StatusOr<Ref> new_root;
  if (n >= kParallelWrites && mid > 0 && mid < n) {
    left.emplace(*suite_, writes, version);
    right.emplace(*suite_, writes, version);
    auto half = [&](Updater& up, const Ref& child, size_t lo, size_t hi,
                    Updater::Output* out) -> absl::StatusOr<Ref> {
      up.Reserve((hi - lo) * kNodesPerWrite);
      if (!child.empty()) {
        absl::Status s = LoadTouched(*store_, *suite_, *cache_, up,
                                     {{child.hash, lo, hi}}, 1, false);
        if (!s.ok()) return s;
      }
      absl::StatusOr<Ref> sub = up.Update(child, 1, lo, hi);
      if (sub.ok()) *out = up.Finish(*cache_);
      return sub;
    };
    std::future<absl::StatusOr<Ref>> r = std::async(std::launch::async, [&] {
      return half(*right, Ref{root_node->right, root_node->right_leaf}, mid, n,
                  &right_out);
    });
    absl::StatusOr<Ref> l = half(
        *left, Ref{root_node->left, root_node->left_leaf}, 0, mid, &left_out);
    absl::StatusOr<Ref> rr = r.get();
    if (!l.ok()) return l.status();
    if (!rr.ok()) return rr.status();
    new_root = top.Join(*l, *rr);
    parts.push_back(&*left);
    parts.push_back(&*right);
    outputs.push_back(&left_out);
    outputs.push_back(&right_out);
  } else {
    top.Reserve(n * kNodesPerWrite);
    if (root_node != nullptr) {
      absl::Status s = LoadTouched(*store_, *suite_, *cache_, top,
                                   {{root, 0, n}}, 0, /*one_level=*/false);
      if (!s.ok()) return s;
    }
    new_root = top.Update(Ref{root, false}, 0, 0, n);
  }
  if (!new_root.ok()) return new_root.status();
  top_out = top.Finish(*cache_);
  auto produced = [&parts](const Hash32& h) {
    for (const Updater* up : parts) {
      if (up->Produced(h)) return true;
    }
    return false;
  };

  // Prune first, so that whatever this version writes wins within the
  // batch; a node in the tree this version builds is not pruned.
  SmtHistory::Pending pending;
  absl::StatusOr<PrunePlan> plan = prune_plan.get();
  if (!plan.ok()) return plan.status();
  for (const std::string& list : plan->lists) batch->Delete(list);
  for (const Hash32& h : plan->nodes) {
    if (produced(h)) continue;
    batch->Delete(keys::Node(h));
    ++stats->nodes_pruned;
  }
  if (plan->advances) {
    batch->Put(keys::PrunedThrough(), keys::EncodeU64(prune_through));
    pending.pruned_through = prune_through;
  }

  // The new nodes, each part's in hash order (see Updater::Finish).
  std::vector<Hash32> gone;
  for (Updater::Output* out : outputs) {
    batch->Reserve(out->puts.size() + 1);
    for (auto& [key, value] : out->puts) {
      batch->PutOwned(std::move(key), std::move(value));
    }
    pending.v.written.insert(pending.v.written.end(), out->written.begin(),
                             out->written.end());
    // Each part's are sorted: merged, all are (the same bytes on every
    // node).
    std::vector<Hash32> merged;
    merged.reserve(gone.size() + out->gone.size());
    std::merge(gone.begin(), gone.end(), out->gone.begin(), out->gone.end(),
               std::back_inserter(merged));
    gone = std::move(merged);
  }
  stats->nodes_written = pending.v.written.size();
  // One record lists every node that leaves the tree at this version: the
  // nodes themselves are not touched until their version is pruned.
  std::string retired;
  retired.reserve(gone.size() * 32);
  for (const Hash32& h : gone) retired.append(HashView(h));
  stats->nodes_retired = gone.size();
  if (!retired.empty()) batch->Put(keys::PruneList(version), retired);
  pending.v.version = version;
  pending.v.retired = std::move(gone);
  pending.root = new_root->hash;
  history.pending = std::move(pending);
  return new_root->hash;
}

absl::StatusOr<SparseMerkleTree::PrunePlan> SparseMerkleTree::PlanPrune(
    uint64_t through, SmtHistory& history) const {
  PrunePlan plan;
  if (!history.pruned_through.has_value()) {
    absl::StatusOr<std::optional<std::string>> floor_raw =
        store_->Get(keys::PrunedThrough());
    if (!floor_raw.ok()) return floor_raw.status();
    uint64_t stored = 0;
    if (floor_raw->has_value()) {
      absl::StatusOr<uint64_t> f = keys::DecodeU64(**floor_raw);
      if (!f.ok()) {
        return absl::DataLossError(
            absl::StrCat("bad state tree prune floor: ", f.status().message()));
      }
      stored = *f;
    }
    history.pruned_through = stored;
  }
  const uint64_t floor = *history.pruned_through;
  if (through <= floor) return plan;
  plan.advances = true;

  // The versions the history has (the latest ones) are pruned from memory:
  // a node retired at v goes unless a version >= v wrote it again.
  const uint64_t remembered =
      history.Has(through) ? history.versions.front().version : through + 1;
  for (uint64_t v = std::max(floor + 1, remembered); v <= through; ++v) {
    const SmtHistory::Version& ver = history.Get(v);
    if (ver.retired.empty()) continue;
    for (const Hash32& h : ver.retired) {
      if (!history.WrittenSince(h, v)) plan.nodes.push_back(h);
    }
    plan.lists.push_back(keys::PruneList(v));
  }
  // Older ones from the lists and the nodes' "written at" in the store.
  const uint64_t store_through = std::min(through, remembered - 1);
  std::vector<std::pair<uint64_t, Hash32>> due;  // (retired at, node)
  std::vector<std::string> node_keys;
  if (floor < store_through) {
    std::unique_ptr<KvIterator> it =
        store_->NewIterator(std::string(1, keys::kPrunePrefix));
    it->Seek(keys::EncodeU64(floor + 1));
    for (; it->Valid(); it->Next()) {
      absl::StatusOr<uint64_t> v = keys::ParsePruneList(it->key());
      if (!v.ok()) {
        return absl::DataLossError(
            absl::StrCat("bad state tree prune list: ", v.status().message()));
      }
      if (*v > store_through) break;
      const std::string_view list = it->value();
      if (list.size() % 32 != 0) {
        return absl::DataLossError(
            absl::StrCat("state tree prune list of version ", *v, " has ",
                         list.size(), " bytes, not a multiple of 32"));
      }
      for (size_t i = 0; i < list.size(); i += 32) {
        const Hash32 h = HashFrom(list.substr(i, 32));
        due.emplace_back(*v, h);
        node_keys.push_back(keys::Node(h));
      }
      plan.lists.emplace_back(it->key());
    }
    if (absl::Status s = it->status(); !s.ok()) return s;
  }
  if (!due.empty()) {
    absl::StatusOr<std::vector<std::optional<std::string>>> nodes =
        store_->MultiGet(node_keys);
    if (!nodes.ok()) return nodes.status();
    for (size_t i = 0; i < due.size(); ++i) {
      const auto& [v, h] = due[i];
      const std::optional<std::string>& raw = (*nodes)[i];
      // Not stored (nothing to delete), or written again since it left at
      // v (re-created: it is in a newer tree, and in a newer list if it
      // left again): not this entry's to delete.
      if (!raw.has_value()) continue;
      absl::StatusOr<uint64_t> written = WrittenAt(*raw);
      if (!written.ok()) return Corrupt(h, written.status().message());
      if (*written < v) plan.nodes.push_back(h);
    }
  }
  return plan;
}

absl::StatusOr<SmtLookup> SparseMerkleTree::Prove(const Hash32& root,
                                                  const Hash32& path) const {
  SmtLookup out;
  Hash32 h = root;
  for (size_t depth = 0; !IsZero(h); ++depth) {
    absl::StatusOr<std::optional<std::string>> raw = store_->Get(keys::Node(h));
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) return MissingNode(h);
    absl::StatusOr<Node> node = DecodeNode(*suite_, h, **raw);
    if (!node.ok()) return node.status();
    if (node->is_leaf) {
      out.proof.leaf =
          StateLeaf{node->path, suite_->Hash(AsBytes(node->value_record))};
      if (node->path == path) out.value_record = std::move(node->value_record);
      return out;
    }
    if (depth >= kStateTreeDepth) {
      return Corrupt(h, "an inner node at the bottom of the tree");
    }
    const bool right = PathBit(path, depth);
    out.proof.siblings.push_back(right ? node->left : node->right);
    h = right ? node->right : node->left;
  }
  return out;
}

}  // namespace consortia::storage
