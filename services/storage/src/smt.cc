#include "smt.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "keys.h"

namespace consortia::storage {
namespace {

constexpr char kLeafTag = 0x00;
constexpr char kNodeTag = 0x01;
constexpr uint8_t kLeftIsLeaf = 0x01;
constexpr uint8_t kRightIsLeaf = 0x02;
// A leaf's record: a value and an owner, each bounded by the tx size.
constexpr size_t kMaxRecordBytes = 2 * kStateTreeDepth + 2 * 256 * 1024;

std::string_view HashView(const Hash32& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

Hash32 HashFrom(std::string_view v) {
  Hash32 h;
  std::copy(v.begin(), v.begin() + 32, h.begin());
  return h;
}

// A decoded node.
struct Node {
  bool is_leaf = false;
  Hash32 path{};             // leaf
  std::string value_record;  // leaf
  Hash32 left{};             // node
  Hash32 right{};            // node
  bool left_leaf = false;    // node
  bool right_leaf = false;   // node
};

// A reference to a subtree: its hash (zero = empty) and whether it is a
// leaf (which decides whether it rises when its sibling empties).
struct Ref {
  Hash32 hash{};
  bool leaf = false;
  bool empty() const { return IsZero(hash); }
};

std::string EncodeLeaf(const Hash32& path, std::string_view record) {
  std::string out(1, kLeafTag);
  out.append(HashView(path));
  out.append(record);
  return out;
}

std::string EncodeNode(const Ref& left, const Ref& right) {
  std::string out(1, kNodeTag);
  out.append(HashView(left.hash));
  out.append(HashView(right.hash));
  uint8_t kinds =
      (left.leaf ? kLeftIsLeaf : 0) | (right.leaf ? kRightIsLeaf : 0);
  out.push_back(static_cast<char>(kinds));
  return out;
}

absl::Status Corrupt(const Hash32& hash, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("state tree node ", ToHex(hash), " is corrupt: ", what));
}

// Decodes the node stored under `hash` and checks that it hashes to it.
absl::StatusOr<Node> DecodeNode(const CryptoSuite& suite, const Hash32& hash,
                                std::string_view v) {
  Node n;
  if (v.empty()) return Corrupt(hash, "empty");
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
  Updater(const CryptoSuite& suite, const std::vector<SmtWrite>& writes)
      : suite_(suite), writes_(writes) {}

  std::map<Hash32, Node>& loaded() { return loaded_; }
  const std::map<Hash32, std::string>& created() const { return created_; }
  const std::set<Hash32>& produced() const { return produced_; }

  // The first index in [lo, hi) whose path has bit `depth` set (the writes
  // are sorted by path, and share their first `depth` bits).
  size_t Split(size_t lo, size_t hi, size_t depth) const {
    auto it = std::partition_point(
        writes_.begin() + lo, writes_.begin() + hi,
        [depth](const SmtWrite& w) { return !PathBit(w.path, depth); });
    return static_cast<size_t>(it - writes_.begin());
  }

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
    const Node& node = it->second;
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
    Emit(h, [&] { return EncodeNode(l, r); });
    return Ref{h, false};
  }

  Ref EmitLeaf(const Entry& e) {
    const Hash32 h =
        StateLeafHash(suite_, e.path, suite_.Hash(AsBytes(*e.record)));
    Emit(h, [&] { return EncodeLeaf(e.path, *e.record); });
    return Ref{h, true};
  }

  // Records that node h is in the new tree; a node that was not read from
  // the old tree is new and must be stored.
  template <typename EncodeFn>
  void Emit(const Hash32& h, EncodeFn encode) {
    produced_.insert(h);
    if (loaded_.count(h) == 0 && created_.count(h) == 0) {
      created_.emplace(h, encode());
    }
  }

  const CryptoSuite& suite_;
  const std::vector<SmtWrite>& writes_;
  std::map<Hash32, Node> loaded_;          // read from the old tree
  std::map<Hash32, std::string> created_;  // new nodes, encoded
  std::set<Hash32> produced_;              // every node of the new tree built
};

}  // namespace

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
  Updater up(*suite_, writes);

  // Read the touched nodes of the old tree, one level per MultiGet.
  struct Task {
    Hash32 hash;
    size_t lo;
    size_t hi;
  };
  std::vector<Task> level;
  if (!IsZero(root) && !writes.empty()) {
    level.push_back({root, 0, writes.size()});
  }
  for (size_t depth = 0; !level.empty(); ++depth) {
    std::vector<std::string> ks;
    std::vector<Hash32> hs;
    for (const Task& t : level) {
      ks.push_back(keys::Node(t.hash));
      hs.push_back(t.hash);
    }
    absl::StatusOr<std::vector<std::optional<std::string>>> vals =
        store_->MultiGet(ks);
    if (!vals.ok()) return vals.status();
    std::vector<Task> next;
    for (size_t i = 0; i < level.size(); ++i) {
      if (!(*vals)[i].has_value()) return MissingNode(hs[i]);
      absl::StatusOr<Node> node = DecodeNode(*suite_, hs[i], *(*vals)[i]);
      if (!node.ok()) return node.status();
      const Task& t = level[i];
      if (!node->is_leaf) {
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
      up.loaded().emplace(hs[i], *std::move(node));
    }
    level = std::move(next);
  }

  absl::StatusOr<Ref> new_root =
      up.Update(Ref{root, false}, 0, 0, writes.size());
  if (!new_root.ok()) return new_root.status();

  // Prune first, so that whatever this version writes wins within the batch.
  if (prune_through > 0) {
    absl::Status s = Prune(prune_through, up.produced(), batch, stats);
    if (!s.ok()) return s;
  }

  for (const auto& [h, encoded] : up.created()) {
    batch->Put(keys::Node(h), encoded);
    // It may have been retired by an earlier version and not pruned yet.
    batch->Delete(keys::Stale(h));
    ++stats->nodes_written;
  }
  for (const auto& [h, node] : up.loaded()) {
    if (up.produced().count(h) > 0) continue;
    batch->Put(keys::Stale(h), keys::EncodeU64(version));
    batch->Put(keys::Prune(version, h), "");
    ++stats->nodes_retired;
  }
  return new_root->hash;
}

absl::Status SparseMerkleTree::Prune(uint64_t through,
                                     const std::set<Hash32>& keep,
                                     WriteBatch* batch,
                                     SmtApplyStats* stats) const {
  absl::StatusOr<std::optional<std::string>> floor_raw =
      store_->Get(keys::PrunedThrough());
  if (!floor_raw.ok()) return floor_raw.status();
  uint64_t floor = 0;
  if (floor_raw->has_value()) {
    absl::StatusOr<uint64_t> f = keys::DecodeU64(**floor_raw);
    if (!f.ok()) {
      return absl::DataLossError(
          absl::StrCat("bad state tree prune floor: ", f.status().message()));
    }
    floor = *f;
  }
  if (through <= floor) return absl::OkStatus();

  std::vector<std::pair<uint64_t, Hash32>> due;
  std::vector<std::string> mark_keys;
  {
    std::unique_ptr<KvIterator> it =
        store_->NewIterator(std::string(1, keys::kPrunePrefix));
    it->Seek(keys::EncodeU64(floor + 1));
    for (; it->Valid(); it->Next()) {
      absl::StatusOr<std::pair<uint64_t, Hash32>> entry =
          keys::ParsePrune(it->key());
      if (!entry.ok()) {
        return absl::DataLossError(absl::StrCat("bad state tree prune entry: ",
                                                entry.status().message()));
      }
      if (entry->first > through) break;
      due.push_back(*entry);
      mark_keys.push_back(keys::Stale(entry->second));
    }
    if (absl::Status s = it->status(); !s.ok()) return s;
  }
  if (!due.empty()) {
    absl::StatusOr<std::vector<std::optional<std::string>>> marks =
        store_->MultiGet(mark_keys);
    if (!marks.ok()) return marks.status();
    for (size_t i = 0; i < due.size(); ++i) {
      const auto& [v, h] = due[i];
      batch->Delete(keys::Prune(v, h));
      // Re-created since (mark gone) or retired again later (newer mark):
      // the node is not this entry's to delete.
      const std::optional<std::string>& mark = (*marks)[i];
      if (!mark.has_value() || *mark != keys::EncodeU64(v) ||
          keep.count(h) > 0) {
        continue;
      }
      batch->Delete(keys::Node(h));
      batch->Delete(keys::Stale(h));
      ++stats->nodes_pruned;
    }
  }
  batch->Put(keys::PrunedThrough(), keys::EncodeU64(through));
  return absl::OkStatus();
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
