// The state tree against an independent construction from the definition
// (state_proof.h), over an in-memory store and over RocksDB: roots, proofs
// of presence and absence, order independence, pruning of old versions, and
// thousands of random operations checked against a reference model.
#include "smt.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "consortia/state_proof.h"
#include "gtest/gtest.h"
#include "keys.h"
#include "kv_store.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::Suite;
using testing::TempDir;

// ----------------------------------------------------------------- stores

// An in-memory KvStore that counts MultiGet calls. Iterators read a copy
// (a snapshot). Thread-safe.
class MemStore : public KvStore {
 public:
  absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) override {
    absl::MutexLock l(&mu_);
    auto it = data_.find(std::string(key));
    if (it == data_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& ks) override {
    absl::MutexLock l(&mu_);
    ++multigets_;
    std::vector<std::optional<std::string>> out;
    for (const std::string& k : ks) {
      auto it = data_.find(k);
      out.push_back(it == data_.end() ? std::nullopt
                                      : std::optional<std::string>(it->second));
    }
    return out;
  }
  std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) override {
    absl::MutexLock l(&mu_);
    std::vector<std::pair<std::string, std::string>> rows;
    for (auto it = data_.lower_bound(std::string(prefix));
         it != data_.end() && it->first.starts_with(prefix); ++it) {
      rows.push_back(*it);
    }
    return std::make_unique<Iter>(std::string(prefix), std::move(rows));
  }
  absl::Status Write(const WriteBatch& batch) override {
    absl::MutexLock l(&mu_);
    for (const WriteBatch::Op& op : batch.ops()) {
      if (op.is_delete) {
        data_.erase(op.key);
      } else {
        data_[op.key] = op.value;
      }
    }
    return absl::OkStatus();
  }
  std::string Describe() const override { return "memory"; }

  int multigets() {
    absl::MutexLock l(&mu_);
    return multigets_;
  }
  void Set(const std::string& k, const std::string& v) {
    absl::MutexLock l(&mu_);
    data_[k] = v;
  }
  void Erase(const std::string& k) {
    absl::MutexLock l(&mu_);
    data_.erase(k);
  }

 private:
  class Iter : public KvIterator {
   public:
    Iter(std::string prefix,
         std::vector<std::pair<std::string, std::string>> rows)
        : prefix_(std::move(prefix)), rows_(std::move(rows)) {}
    void Seek(std::string_view suffix) override {
      const std::string target = prefix_ + std::string(suffix);
      pos_ = 0;
      while (pos_ < rows_.size() && rows_[pos_].first < target) ++pos_;
    }
    bool Valid() const override { return pos_ < rows_.size(); }
    void Next() override { ++pos_; }
    std::string_view key() const override { return rows_[pos_].first; }
    std::string_view value() const override { return rows_[pos_].second; }
    absl::Status status() const override { return absl::OkStatus(); }

   private:
    std::string prefix_;
    std::vector<std::pair<std::string, std::string>> rows_;
    size_t pos_ = 0;
  };

  absl::Mutex mu_;
  std::map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
  int multigets_ ABSL_GUARDED_BY(mu_) = 0;
};

// Every key of `store` under `prefix`.
std::vector<std::string> KeysUnder(KvStore& store, char prefix) {
  std::vector<std::string> out;
  std::unique_ptr<KvIterator> it = store.NewIterator(std::string(1, prefix));
  for (; it->Valid(); it->Next()) out.emplace_back(it->key());
  EXPECT_TRUE(it->status().ok());
  return out;
}

// ------------------------------------------------------- reference model

using Model = std::map<Hash32, std::string>;  // path -> value record

Hash32 RefRoot(const std::vector<std::pair<Hash32, std::string>>& leaves,
               size_t depth = 0) {
  if (leaves.empty()) return Hash32{};
  if (leaves.size() == 1) {
    return StateLeafHash(Suite(), leaves[0].first,
                         Suite().Hash(AsBytes(leaves[0].second)));
  }
  std::vector<std::pair<Hash32, std::string>> left, right;
  for (const auto& l : leaves) {
    (PathBit(l.first, depth) ? right : left).push_back(l);
  }
  return StateNodeHash(Suite(), RefRoot(left, depth + 1),
                       RefRoot(right, depth + 1));
}

Hash32 RefRoot(const Model& m) {
  return RefRoot(
      std::vector<std::pair<Hash32, std::string>>(m.begin(), m.end()));
}

Hash32 PathOf(const std::string& key) {
  return StateKeyPath(Suite(), "kv", key);
}

std::string Record(const std::string& value) {
  return std::string(
      AsString(EncodeStateValue(AsBytes(value), AsBytes("owner-key"))));
}

SmtWrite Set(const std::string& key, const std::string& value) {
  return SmtWrite{PathOf(key), Record(value)};
}
SmtWrite Del(const std::string& key) {
  return SmtWrite{PathOf(key), std::nullopt};
}

// The nodes reachable from `root`, read straight from the store (the node
// layout of smt.h).
void Reachable(KvStore& store, const Hash32& root, std::set<Hash32>* out) {
  if (IsZero(root) || !out->insert(root).second) return;
  absl::StatusOr<std::optional<std::string>> raw = store.Get(keys::Node(root));
  ASSERT_TRUE(raw.ok() && raw->has_value()) << "node " << ToHex(root);
  const std::string& v = **raw;
  if (v[0] == 0x00) return;
  Hash32 l, r;
  std::copy(v.begin() + 1, v.begin() + 33, l.begin());
  std::copy(v.begin() + 33, v.begin() + 65, r.begin());
  Reachable(store, l, out);
  Reachable(store, r, out);
}

// A tree over a store with its version history: commits blocks of writes,
// keeping the latest `keep` versions. With `one_tree`, every block goes
// through one SparseMerkleTree (its cache and its memory of recent versions,
// as in the ledger); otherwise through a new one each time (as after a
// restart: everything comes from the store).
class Versions {
 public:
  Versions(KvStore* store, uint64_t keep, bool one_tree = false)
      : store_(store),
        keep_(keep),
        one_tree_(one_tree),
        tree_(store, &Suite()) {
    roots_.push_back(Hash32{});  // version 0: the empty state
  }

  // Applies one block; returns the new root (zero on failure).
  Hash32 Commit(std::vector<SmtWrite> writes, SmtApplyStats* stats = nullptr) {
    const uint64_t version = roots_.size();
    const uint64_t prune = version >= keep_ ? version - keep_ + 1 : 0;
    WriteBatch batch;
    absl::StatusOr<Hash32> root = tree().Apply(
        roots_.back(), version, std::move(writes), prune, &batch, stats);
    EXPECT_TRUE(root.ok()) << root.status();
    if (!root.ok()) return Hash32{};
    EXPECT_TRUE(store_->Write(batch).ok());
    roots_.push_back(*root);
    return *root;
  }

  // Copies of a tree share its cache and memory.
  SparseMerkleTree tree() const {
    return one_tree_ ? tree_ : SparseMerkleTree(store_, &Suite());
  }
  const Hash32& root(uint64_t v) const { return roots_[v]; }
  const Hash32& latest() const { return roots_.back(); }
  uint64_t version() const { return roots_.size() - 1; }
  uint64_t oldest_kept() const {
    return version() + 1 > keep_ ? version() + 1 - keep_ : 0;
  }

  // The store holds exactly the nodes of the kept versions, and its
  // bookkeeping only for nodes retired within the window.
  void ExpectOnlyKeptNodesStored() {
    std::set<Hash32> live;
    for (uint64_t v = oldest_kept(); v <= version(); ++v) {
      Reachable(*store_, roots_[v], &live);
    }
    std::set<Hash32> stored;
    for (const std::string& k : KeysUnder(*store_, keys::kNodePrefix)) {
      Hash32 h;
      std::copy(k.begin() + 1, k.end(), h.begin());
      stored.insert(h);
    }
    EXPECT_EQ(stored, live);
    for (const std::string& k : KeysUnder(*store_, keys::kPrunePrefix)) {
      absl::StatusOr<uint64_t> p = keys::ParsePruneList(k);
      ASSERT_TRUE(p.ok());
      EXPECT_GT(*p, oldest_kept());
    }
  }

 private:
  KvStore* store_;
  uint64_t keep_;
  bool one_tree_;
  SparseMerkleTree tree_;
  std::vector<Hash32> roots_;
};

// Checks the proof of every key in `probe` against `root` and `model`.
void ExpectProofsMatch(const SparseMerkleTree& tree, const Hash32& root,
                       const Model& model,
                       const std::vector<std::string>& probe) {
  for (const std::string& key : probe) {
    const Hash32 path = PathOf(key);
    absl::StatusOr<SmtLookup> got = tree.Prove(root, path);
    ASSERT_TRUE(got.ok()) << got.status();
    auto it = model.find(path);
    if (it == model.end()) {
      EXPECT_FALSE(got->value_record.has_value()) << key;
      EXPECT_TRUE(
          VerifyStateProof(Suite(), root, path, std::nullopt, got->proof).ok())
          << key;
    } else {
      ASSERT_TRUE(got->value_record.has_value()) << key;
      EXPECT_EQ(*got->value_record, it->second);
      const Hash32 vh = Suite().Hash(AsBytes(it->second));
      EXPECT_TRUE(VerifyStateProof(Suite(), root, path, vh, got->proof).ok())
          << key;
      EXPECT_FALSE(
          VerifyStateProof(Suite(), root, path, std::nullopt, got->proof).ok());
    }
  }
}

// Commits `sets` (key -> value) as the next version, with its model in
// `models` (one per version, from version 0), then checks that the store
// keeps exactly the kept versions' nodes and that every kept version proves
// keys a, b and c as its model says.
void CommitAndCheck(
    Versions& v, std::vector<Model>& models,
    const std::vector<std::pair<std::string, std::string>>& sets) {
  Model m = models.back();
  std::vector<SmtWrite> ws;
  for (const auto& [k, val] : sets) {
    ws.push_back(Set(k, val));
    m[PathOf(k)] = Record(val);
  }
  v.Commit(ws);
  models.push_back(m);
  v.ExpectOnlyKeptNodesStored();
  for (uint64_t ver = v.oldest_kept(); ver <= v.version(); ++ver) {
    ExpectProofsMatch(v.tree(), v.root(ver), models[ver], {"a", "b", "c"});
  }
}

// A block of n random writes to keys key-0 .. key-<keys - 1>: a set (to
// value-0 .. value-<values - 1>) with probability set_tenths / 10, else a
// delete; the last write to a key wins. Applied to *model too.
std::vector<SmtWrite> RandomBlock(std::mt19937& rng, int n, int keys,
                                  int set_tenths, int values, Model* model) {
  std::map<std::string, std::optional<std::string>> block;
  for (int i = 0; i < n; ++i) {
    const std::string key = absl::StrCat("key-", rng() % keys);
    if (static_cast<int>(rng() % 10) < set_tenths) {
      block[key] = Record(absl::StrCat("value-", rng() % values));
    } else {
      block[key] = std::nullopt;
    }
  }
  std::vector<SmtWrite> ws;
  for (const auto& [key, rec] : block) {
    ws.push_back(SmtWrite{PathOf(key), rec});
    if (rec.has_value()) {
      (*model)[PathOf(key)] = *rec;
    } else {
      model->erase(PathOf(key));
    }
  }
  return ws;
}

// ------------------------------------------------------------------ tests

TEST(StorageSmtTest, EmptyTreeHasZeroRootAndProvesAbsence) {
  MemStore store;
  Versions v(&store, 2);
  EXPECT_TRUE(IsZero(v.Commit({})));
  EXPECT_TRUE(IsZero(v.Commit({Del("never-set")})));
  absl::StatusOr<SmtLookup> got = v.tree().Prove(Hash32{}, PathOf("k"));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->proof.siblings.empty());
  EXPECT_FALSE(got->proof.leaf.has_value());
  EXPECT_TRUE(
      VerifyStateProof(Suite(), Hash32{}, PathOf("k"), std::nullopt, got->proof)
          .ok());
  EXPECT_TRUE(KeysUnder(store, keys::kNodePrefix).empty());
}

TEST(StorageSmtTest, InsertUpdateDeleteFollowTheDefinition) {
  MemStore store;
  Versions v(&store, 2);  // the latest tree and the one before
  Model m;

  const Hash32 one = v.Commit({Set("a", "1")});
  m[PathOf("a")] = Record("1");
  EXPECT_EQ(one, StateLeafHash(Suite(), PathOf("a"),
                               Suite().Hash(AsBytes(Record("1")))));
  EXPECT_EQ(one, RefRoot(m));

  EXPECT_EQ(v.Commit({Set("b", "2"), Set("c", "3")}), [&] {
    m[PathOf("b")] = Record("2");
    m[PathOf("c")] = Record("3");
    return RefRoot(m);
  }());
  EXPECT_EQ(v.Commit({Set("b", "2b")}), [&] {
    m[PathOf("b")] = Record("2b");
    return RefRoot(m);
  }());
  // Writing the same value again changes nothing and stores nothing.
  SmtApplyStats same;
  const Hash32 before = v.latest();
  EXPECT_EQ(v.Commit({Set("b", "2b")}, &same), before);
  EXPECT_EQ(same.nodes_written, 0u);
  EXPECT_EQ(same.nodes_retired, 0u);

  // Deleting down to one record lifts that leaf back to the root.
  v.Commit({Del("b"), Del("c")});
  m.erase(PathOf("b"));
  m.erase(PathOf("c"));
  EXPECT_EQ(v.latest(), one);
  EXPECT_EQ(v.latest(), RefRoot(m));
  v.ExpectOnlyKeptNodesStored();

  EXPECT_TRUE(IsZero(v.Commit({Del("a")})));
  v.Commit({});
  v.ExpectOnlyKeptNodesStored();
  EXPECT_TRUE(KeysUnder(store, keys::kNodePrefix).empty());
  EXPECT_TRUE(KeysUnder(store, keys::kPrunePrefix).empty());
  EXPECT_TRUE(KeysUnder(store, keys::kStalePrefix).empty());
}

// What leaves the tree costs one list record per version, not a key per
// node: a block's batch is its new nodes, that list, and the prunes.
TEST(StorageSmtTest, RetiredNodesAreListedInOneRecordPerVersion) {
  MemStore store;
  Versions v(&store, 2);
  std::vector<SmtWrite> ws;
  for (int i = 0; i < 200; ++i) ws.push_back(Set(absl::StrCat("k", i), "v"));
  v.Commit(ws);
  std::vector<SmtWrite> update;
  for (int i = 0; i < 50; ++i) {
    update.push_back(Set(absl::StrCat("k", i * 4), "w"));
  }
  WriteBatch batch;
  SmtApplyStats stats;
  absl::StatusOr<Hash32> root =
      v.tree().Apply(v.latest(), 2, update, 0, &batch, &stats);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_GT(stats.nodes_retired, 50u);
  EXPECT_EQ(batch.ops().size(), stats.nodes_written + 1);
  size_t lists = 0;
  for (const WriteBatch::Op& op : batch.ops()) {
    ASSERT_FALSE(op.is_delete);
    if (op.key[0] == keys::kPrunePrefix) {
      ++lists;
      EXPECT_EQ(op.key, keys::PruneList(2));
      EXPECT_EQ(op.value.size(), 32 * stats.nodes_retired);
    } else {
      EXPECT_EQ(op.key[0], keys::kNodePrefix);
    }
  }
  EXPECT_EQ(lists, 1u);
}

TEST(StorageSmtTest, ProofsOfPresenceAndAbsenceVerifyAndTamperingFails) {
  MemStore store;
  Versions v(&store, 2);
  Model m;
  std::vector<SmtWrite> ws;
  std::vector<std::string> probe;
  for (int i = 0; i < 300; ++i) {
    const std::string key = absl::StrCat("invoice/", i);
    ws.push_back(Set(key, absl::StrCat("state-", i)));
    m[PathOf(key)] = Record(absl::StrCat("state-", i));
    probe.push_back(key);
    probe.push_back(absl::StrCat("absent/", i));
  }
  const Hash32 root = v.Commit(ws);
  EXPECT_EQ(root, RefRoot(m));
  ExpectProofsMatch(v.tree(), root, m, probe);

  absl::StatusOr<SmtLookup> got = v.tree().Prove(root, PathOf("invoice/7"));
  ASSERT_TRUE(got.ok());
  const Hash32 vh = Suite().Hash(AsBytes(Record("state-7")));
  EXPECT_LT(got->proof.siblings.size(), 30u);  // ~log2(300), not 256
  for (size_t i = 0; i < got->proof.siblings.size(); ++i) {
    StateProof bad = got->proof;
    bad.siblings[i][0] ^= 0x80;
    EXPECT_FALSE(
        VerifyStateProof(Suite(), root, PathOf("invoice/7"), vh, bad).ok());
  }
  const Hash32 wrong = Suite().Hash(AsBytes(Record("forged")));
  EXPECT_FALSE(
      VerifyStateProof(Suite(), root, PathOf("invoice/7"), wrong, got->proof)
          .ok());
  // The proof survives its wire form.
  absl::StatusOr<StateProof> wire =
      DecodeStateProof(EncodeStateProof(got->proof));
  ASSERT_TRUE(wire.ok());
  EXPECT_TRUE(
      VerifyStateProof(Suite(), root, PathOf("invoice/7"), vh, *wire).ok());
}

TEST(StorageSmtTest, RootDependsOnlyOnTheSetOfRecords) {
  std::vector<SmtWrite> ws;
  for (int i = 0; i < 100; ++i) {
    ws.push_back(Set(absl::StrCat("k", i), absl::StrCat("v", i)));
  }
  ws.push_back(Del("k-absent"));

  MemStore s1;
  Versions v1(&s1, 2);
  const Hash32 forward = v1.Commit(ws);

  std::mt19937 rng(99);
  std::vector<SmtWrite> shuffled = ws;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  MemStore s2;
  Versions v2(&s2, 2);
  EXPECT_EQ(v2.Commit(shuffled), forward);

  // The same records over ten blocks, with detours, give the same root.
  MemStore s3;
  Versions v3(&s3, 3);
  for (size_t b = 0; b < 10; ++b) {
    std::vector<SmtWrite> block(shuffled.begin() + b * 10,
                                shuffled.begin() + b * 10 + 10);
    block.push_back(Set(absl::StrCat("temp", b), "x"));
    v3.Commit(block);
    v3.Commit({Del(absl::StrCat("temp", b))});
  }
  v3.Commit({shuffled.back()});
  EXPECT_EQ(v3.latest(), forward);
}

TEST(StorageSmtTest, TwoWritesToOnePathAreRefused) {
  MemStore store;
  SparseMerkleTree tree(&store, &Suite());
  WriteBatch batch;
  absl::StatusOr<Hash32> r =
      tree.Apply(Hash32{}, 1, {Set("k", "1"), Set("k", "2")}, 0, &batch);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StorageSmtTest, ReadsOneMultiGetPerLevelNotPerWrite) {
  MemStore store;
  Versions v(&store, 2);
  std::vector<SmtWrite> ws;
  for (int i = 0; i < 2000; ++i) ws.push_back(Set(absl::StrCat("k", i), "v"));
  v.Commit(ws);
  std::vector<SmtWrite> update;
  for (int i = 0; i < 500; ++i) {
    update.push_back(Set(absl::StrCat("k", i * 4), "w"));
  }
  const int before = store.multigets();
  v.Commit(update);
  // About log2(2000) levels plus the prune lookup, whatever the write count.
  EXPECT_LE(store.multigets() - before, 40);
}

// The pruning tests run twice: with one tree for all blocks (pruning from
// its memory of recent versions) and with a new tree per block (pruning
// from the store).
class StorageSmtPruneTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(OneTreeOrFreshPerBlock, StorageSmtPruneTest,
                         ::testing::Bool());

TEST_P(StorageSmtPruneTest, OldVersionsArePrunedAndKeptOnesStillProve) {
  MemStore store;
  constexpr uint64_t kKeep = 4;
  Versions v(&store, kKeep, GetParam());
  std::vector<Model> models(1);
  for (int b = 1; b <= 60; ++b) {
    Model m = models.back();
    std::vector<SmtWrite> ws;
    for (int k = 0; k < 20; ++k) {
      const std::string key = absl::StrCat("hot", k);
      ws.push_back(Set(key, absl::StrCat(b)));
      m[PathOf(key)] = Record(absl::StrCat(b));
    }
    v.Commit(ws);
    models.push_back(m);
    v.ExpectOnlyKeptNodesStored();
  }
  // Kept versions answer as they were; pruned ones are NotFound.
  for (uint64_t ver = v.oldest_kept(); ver <= v.version(); ++ver) {
    ExpectProofsMatch(v.tree(), v.root(ver), models[ver], {"hot3", "cold"});
  }
  absl::StatusOr<SmtLookup> gone =
      v.tree().Prove(v.root(v.oldest_kept() - 1), PathOf("hot3"));
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  // The store holds a bounded number of nodes however many blocks passed.
  EXPECT_LT(KeysUnder(store, keys::kNodePrefix).size(), kKeep * 2 * 20 * 6);
}

TEST_P(StorageSmtPruneTest, NodeRecreatedAfterRetirementIsNotPruned) {
  MemStore store;
  Versions v(&store, 2, GetParam());
  v.Commit({Set("a", "1"), Set("b", "1")});
  v.Commit({Set("a", "2")});  // leaf (a,1) and the root retire at 2
  v.Commit({Set("a", "1")});  // ... and come back at 3
  v.Commit({Set("c", "1")});  // pruning of version 2's retirements runs
  v.Commit({Set("d", "1")});
  v.ExpectOnlyKeptNodesStored();
  Model m{{PathOf("a"), Record("1")},
          {PathOf("b"), Record("1")},
          {PathOf("c"), Record("1")},
          {PathOf("d"), Record("1")}};
  EXPECT_EQ(v.latest(), RefRoot(m));
  ExpectProofsMatch(v.tree(), v.latest(), m, {"a", "b", "c", "d", "e"});
}

TEST_P(StorageSmtPruneTest,
       NodeThatFlapsInAndOutIsKeptWhileAKeptVersionNeedsIt) {
  MemStore store;
  Versions v(&store, 4, GetParam());
  std::vector<Model> models(1);
  auto commit = [&](std::vector<std::pair<std::string, std::string>> sets) {
    CommitAndCheck(v, models, sets);
  };
  commit({{"a", "1"}, {"b", "1"}});
  commit({{"a", "2"}});  // leaf (a,1) retires at 2
  commit({{"a", "1"}});  // back at 3; (a,2) retires
  commit({{"a", "2"}});  // (a,1) retires again at 4
  commit({{"c", "1"}});  // prunes version 2's list: (a,1) is still in tree 3
  commit({{"c", "2"}});
  commit({{"c", "3"}});
  commit({{"c", "4"}});
}

// A batch that was never written (the store failed) is forgotten: the
// version is built again, differently, and the pruning that follows deletes
// exactly what left the kept trees, with one tree throughout.
TEST(StorageSmtTest, AnUnwrittenBatchIsForgottenByPruning) {
  MemStore store;
  constexpr uint64_t kKeep = 3;
  Versions v(&store, kKeep, /*one_tree=*/true);
  std::vector<Model> models(1);
  auto commit = [&](std::vector<std::pair<std::string, std::string>> sets) {
    CommitAndCheck(v, models, sets);
  };
  commit({{"a", "1"}, {"b", "1"}});
  commit({{"a", "2"}});
  commit({{"a", "3"}, {"c", "1"}});
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Version 4 built twice and never written: (a,1) comes back in it,
    // and it would prune version 2's list.
    WriteBatch lost;
    const uint64_t next = v.version() + 1;
    ASSERT_TRUE(v.tree()
                    .Apply(v.latest(), next, {Set("a", "1"), Set("b", "9")},
                           next - kKeep + 1, &lost)
                    .ok());
  }
  // The version as it really is: (a,1) was not written again, so pruning
  // version 2 deletes it; nothing of the lost batch is counted as stored.
  for (int b = 0; b < 6; ++b) {
    commit({{"c", absl::StrCat(b + 2)}});
  }
}

TEST(StorageSmtTest, CorruptOrMissingNodesAreReported) {
  MemStore store;
  Versions v(&store, 2);
  v.Commit({Set("a", "1"), Set("b", "2"), Set("c", "3")});
  const Hash32 root = v.latest();
  absl::StatusOr<std::optional<std::string>> raw = store.Get(keys::Node(root));
  ASSERT_TRUE(raw.ok() && raw->has_value());

  std::string flipped = **raw;
  flipped[5] ^= 1;
  store.Set(keys::Node(root), flipped);
  EXPECT_EQ(v.tree().Prove(root, PathOf("a")).status().code(),
            absl::StatusCode::kDataLoss);
  WriteBatch batch;
  EXPECT_EQ(v.tree().Apply(root, 2, {Set("d", "4")}, 0, &batch).status().code(),
            absl::StatusCode::kDataLoss);

  store.Erase(keys::Node(root));
  EXPECT_EQ(v.tree().Prove(root, PathOf("a")).status().code(),
            absl::StatusCode::kNotFound);
}

// Blocks of hundreds of writes, with one tree (so its node cache) across
// blocks, records that come back to earlier values (nodes re-created after
// they left) and pruning: every root matches the reference model, the store
// keeps exactly the nodes of the kept versions, and their proofs verify.
// Large blocks update the two halves of the tree on two threads; with a
// cache of 16 nodes, most reads go to the store and the cache turns over
// many times per block.
class StorageSmtLargeBlocksTest : public ::testing::TestWithParam<size_t> {};
INSTANTIATE_TEST_SUITE_P(CacheNodes, StorageSmtLargeBlocksTest,
                         ::testing::Values(kDefaultTreeCacheNodes, 16));

TEST_P(StorageSmtLargeBlocksTest, MatchTheReferenceModel) {
  MemStore store;
  constexpr uint64_t kKeep = 2;
  std::mt19937 rng(7);
  SparseMerkleTree tree(&store, &Suite(), GetParam());
  Model model;
  std::vector<Hash32> roots{Hash32{}};
  for (int b = 1; b <= 12; ++b) {
    const int n = 300 + static_cast<int>(rng() % 400);
    std::vector<SmtWrite> ws = RandomBlock(rng, n, 2000, 8, 3, &model);
    const uint64_t version = roots.size();
    WriteBatch batch;
    const uint64_t prune = version >= kKeep ? version - kKeep + 1 : 0;
    absl::StatusOr<Hash32> root =
        tree.Apply(roots.back(), version, ws, prune, &batch);
    ASSERT_TRUE(root.ok()) << root.status();
    ASSERT_TRUE(store.Write(batch).ok());
    ASSERT_EQ(*root, RefRoot(model)) << "version " << version;
    roots.push_back(*root);
  }
  std::set<Hash32> live;
  for (size_t v = roots.size() - kKeep; v < roots.size(); ++v) {
    Reachable(store, roots[v], &live);
  }
  std::set<Hash32> stored;
  for (const std::string& k : KeysUnder(store, keys::kNodePrefix)) {
    Hash32 h;
    std::copy(k.begin() + 1, k.end(), h.begin());
    stored.insert(h);
  }
  EXPECT_EQ(stored, live);
  std::vector<std::string> probe;
  for (int i = 0; i < 60; ++i) probe.push_back(absl::StrCat("key-", i * 37));
  ExpectProofsMatch(tree, roots.back(), model, probe);
}

// Thousands of random sets and deletes in blocks, against the reference
// model, on RocksDB, closing and reopening the store half way.
TEST(StorageSmtTest, RandomOperationsMatchTheReferenceModelAcrossReopen) {
  TempDir dir;
  constexpr uint64_t kKeep = 3;
  std::mt19937 rng(20240229);
  Model model;
  std::vector<Hash32> roots{Hash32{}};
  int ops = 0;

  auto run_blocks = [&](KvStore* store, int blocks) {
    SparseMerkleTree tree(store, &Suite());
    for (int b = 0; b < blocks; ++b) {
      const uint64_t version = roots.size();
      const int n = 1 + static_cast<int>(rng() % 40);
      std::vector<SmtWrite> ws = RandomBlock(rng, n, 400, 7, 5, &model);
      ops += static_cast<int>(ws.size());
      WriteBatch batch;
      const uint64_t prune = version >= kKeep ? version - kKeep + 1 : 0;
      absl::StatusOr<Hash32> root =
          tree.Apply(roots.back(), version, ws, prune, &batch);
      ASSERT_TRUE(root.ok()) << root.status();
      ASSERT_TRUE(store->Write(batch).ok());
      ASSERT_EQ(*root, RefRoot(model)) << "version " << version;
      roots.push_back(*root);
      if (version % 25 == 0) {
        std::vector<std::string> probe;
        for (int i = 0; i < 40; ++i) {
          probe.push_back(absl::StrCat("key-", rng() % 450));
        }
        ExpectProofsMatch(tree, *root, model, probe);
      }
    }
  };

  {
    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenRocksDbStore(RocksDbStoreOptions{dir.Sub("db"), false});
    ASSERT_TRUE(store.ok()) << store.status();
    run_blocks(store->get(), 100);
  }
  {
    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenRocksDbStore(RocksDbStoreOptions{dir.Sub("db"), false});
    ASSERT_TRUE(store.ok()) << store.status();
    // The reopened store proves the last root as it was...
    SparseMerkleTree tree(store->get(), &Suite());
    std::vector<std::string> all;
    for (int i = 0; i < 450; ++i) all.push_back(absl::StrCat("key-", i));
    ExpectProofsMatch(tree, roots.back(), model, all);
    // ... and carries on from it.
    run_blocks(store->get(), 100);
    ExpectProofsMatch(tree, roots.back(), model, all);
  }
  EXPECT_GE(ops, 3000);
}

}  // namespace
}  // namespace consortia::storage
