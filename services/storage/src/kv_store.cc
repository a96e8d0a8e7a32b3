#include "kv_store.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace consortia::storage {

void WriteBatch::Put(std::string_view key, std::string_view value) {
  bytes_ += key.size() + value.size();
  ops_.push_back(Op{false, std::string(key), std::string(value)});
}

void WriteBatch::PutOwned(std::string key, std::string value) {
  bytes_ += key.size() + value.size();
  ops_.push_back(Op{false, std::move(key), std::move(value)});
}

void WriteBatch::Append(WriteBatch&& other) {
  ops_.insert(ops_.end(), std::make_move_iterator(other.ops_.begin()),
              std::make_move_iterator(other.ops_.end()));
  bytes_ += other.bytes_;
  other.ops_.clear();
  other.bytes_ = 0;
}

void WriteBatch::Delete(std::string_view key) {
  bytes_ += key.size();
  ops_.push_back(Op{true, std::string(key), std::string()});
}

namespace {

rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("rocksdb ", what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit) {
    return absl::ResourceExhaustedError(msg);
  }
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

class RocksIterator : public KvIterator {
 public:
  RocksIterator(std::unique_ptr<rocksdb::Iterator> it, std::string prefix)
      : it_(std::move(it)), prefix_(std::move(prefix)) {
    it_->Seek(ToSlice(prefix_));
  }

  void Seek(std::string_view suffix) override {
    std::string target = prefix_;
    target.append(suffix);
    it_->Seek(ToSlice(target));
  }
  bool Valid() const override {
    return it_->Valid() && it_->key().starts_with(ToSlice(prefix_));
  }
  void Next() override { it_->Next(); }
  std::string_view key() const override {
    rocksdb::Slice k = it_->key();
    return std::string_view(k.data(), k.size());
  }
  std::string_view value() const override {
    rocksdb::Slice v = it_->value();
    return std::string_view(v.data(), v.size());
  }
  absl::Status status() const override {
    return FromRocks(it_->status(), "iterate");
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
  std::string prefix_;
};

// A batch op's place in key order: the first 8 bytes of its key as a
// big-endian number (zero-padded), which settles most comparisons without
// touching the key, and its index in the batch.
struct KeyOrder {
  uint64_t head = 0;
  uint32_t index = 0;
};

uint64_t KeyHead(std::string_view key) {
  uint64_t head = 0;
  for (size_t i = 0; i < 8; ++i) {
    head = (head << 8) | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0);
  }
  return head;
}

// Orders a batch's ops by key, and ops on the same key by their place in
// the batch, so that writing them in this order means what writing them in
// batch order means (the last op on a key wins). The memtable is a skip
// list: a block's batch (state tree nodes, keyed by their hash, and tx index
// entries, keyed by tx hash) comes in random order, and each insert searched
// the list from its top. In key order, with the insert hints of
// OpenRocksDbStore, each insert starts from where the one before it ended.
void SortByKey(const std::vector<WriteBatch::Op>& ops,
               std::vector<KeyOrder>* order) {
  order->clear();
  order->reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    order->push_back(KeyOrder{KeyHead(ops[i].key), static_cast<uint32_t>(i)});
  }
  std::sort(order->begin(), order->end(),
            [&ops](const KeyOrder& a, const KeyOrder& b) {
              if (a.head != b.head) return a.head < b.head;
              const int c = ops[a.index].key.compare(ops[b.index].key);
              if (c != 0) return c < 0;
              return a.index < b.index;
            });
}

// The largest write buffer RocksDbStore keeps for the next Write.
constexpr size_t kKeptBatchBytes = 64 << 20;

// RocksDB's DB is thread-safe; the lock only guards the reused batch.
class RocksDbStore : public KvStore {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, std::string path, bool sync)
      : db_(std::move(db)), path_(std::move(path)) {
    write_options_.sync = sync;
  }

  absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "get");
    return std::optional<std::string>(std::move(value));
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (const std::string& k : keys) slices.push_back(ToSlice(k));
    rocksdb::ReadOptions ro;
    const rocksdb::Snapshot* snap = db_->GetSnapshot();
    ro.snapshot = snap;
    std::vector<std::string> values;
    std::vector<rocksdb::Status> st = db_->MultiGet(ro, slices, &values);
    db_->ReleaseSnapshot(snap);
    std::vector<std::optional<std::string>> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (st[i].IsNotFound()) continue;
      if (!st[i].ok()) return FromRocks(st[i], "multiget");
      out[i] = std::move(values[i]);
    }
    return out;
  }

  std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) override {
    return std::make_unique<RocksIterator>(
        std::unique_ptr<rocksdb::Iterator>(
            db_->NewIterator(rocksdb::ReadOptions())),
        std::string(prefix));
  }

  absl::Status Write(const WriteBatch& batch) override {
    // One rocksdb::WriteBatch, cleared and refilled: its buffer (a block's
    // batch is a megabyte or more) keeps its capacity, instead of growing
    // from nothing, and faulting in fresh pages, for every block.
    absl::MutexLock l(&write_mu_);
    rocksdb::WriteBatch& wb = write_batch_;
    wb.Clear();
    const std::vector<WriteBatch::Op>& ops = batch.ops();
    SortByKey(ops, &order_);
    for (const KeyOrder& o : order_) {
      const WriteBatch::Op& op = ops[o.index];
      rocksdb::Status s = op.is_delete
                              ? wb.Delete(ToSlice(op.key))
                              : wb.Put(ToSlice(op.key), ToSlice(op.value));
      if (!s.ok()) return FromRocks(s, "batch");
    }
    if (failed_.load()) {
      // A failed WAL write leaves RocksDB read-only until it is resumed;
      // Resume is a no-op when there is no background error.
      if (absl::Status s = FromRocks(db_->Resume(), "resume"); !s.ok()) {
        return s;
      }
    }
    absl::Status s = FromRocks(db_->Write(write_options_, &wb), "write");
    failed_.store(!s.ok());
    // An exceptional batch (a prune after a restart with fewer state
    // versions) does not pin its buffer.
    if (wb.GetDataSize() > kKeptBatchBytes) {
      wb = rocksdb::WriteBatch();
      order_ = std::vector<KeyOrder>();
    }
    return s;
  }

  std::string Describe() const override {
    return absl::StrCat("rocksdb:", path_);
  }

  std::optional<uint64_t> ApproximateSizeBytes() override {
    uint64_t sst = 0;
    uint64_t mem = 0;
    if (!db_->GetIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize,
                             &sst) ||
        !db_->GetIntProperty(rocksdb::DB::Properties::kSizeAllMemTables,
                             &mem)) {
      return std::nullopt;
    }
    return sst + mem;
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
  rocksdb::WriteOptions write_options_;
  std::atomic<bool> failed_{false};  // the last Write failed
  absl::Mutex write_mu_;
  rocksdb::WriteBatch write_batch_ ABSL_GUARDED_BY(write_mu_);
  std::vector<KeyOrder> order_ ABSL_GUARDED_BY(write_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksDbStore(
    const RocksDbStoreOptions& opts) {
  if (opts.path.empty()) {
    return absl::InvalidArgumentError("rocksdb path is empty");
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.path, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create store directory ",
                                            opts.path, ": ", ec.message()));
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  // Most of the ledger's reads look for keys that are not there: every tx
  // hash in the tx index (duplicate check), the state record of every new
  // key, the block above the latest. Bloom filters, in the memtable and in
  // each table file, answer those without searching (~10 bits per key).
  options.memtable_prefix_bloom_size_ratio = 0.02;
  options.memtable_whole_key_filtering = true;
  // Write sorts each batch by key (SortByKey): one insert hint per key
  // type (the first byte, keys.h) lets each insert into the memtable start
  // from the one before it instead of from the top of the skip list.
  options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(1));
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, opts.path, &raw);
  if (!s.ok()) {
    absl::Status st = FromRocks(s, "open");
    return absl::Status(st.code(), absl::StrCat("cannot open store at ",
                                                opts.path, ": ", st.message()));
  }
  return std::unique_ptr<KvStore>(std::make_unique<RocksDbStore>(
      std::unique_ptr<rocksdb::DB>(raw), opts.path, opts.sync));
}

}  // namespace consortia::storage
