// One conformance suite for every KvStore backend: the same cases run on
// RocksDB (in a temp dir) and on Redis (a redis-server of the test's own,
// see redis_harness.h). A backend passes when callers cannot tell it apart.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "kv_store.h"
#include "redis_harness.h"
#include "redis_store.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::RedisServer;
using testing::TempDir;

// Opens the same store again and again (the data outlives each handle).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<std::unique_ptr<KvStore>> Open() = 0;
};

class RocksDbBackend : public Backend {
 public:
  absl::StatusOr<std::unique_ptr<KvStore>> Open() override {
    return OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("db"), true});
  }

 private:
  TempDir dir_;
};

class RedisBackend : public Backend {
 public:
  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<RedisServer>> s =
        RedisServer::Start(dir_.path());
    if (!s.ok()) return s.status();
    server_ = *std::move(s);
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<KvStore>> Open() override {
    return OpenRedisStore(server_->StoreOptions("conformance:"));
  }

 private:
  TempDir dir_;
  std::unique_ptr<RedisServer> server_;
};

class StorageKvConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      CONSORTIA_REQUIRE_REDIS_SERVER();
      auto redis = std::make_unique<RedisBackend>();
      ASSERT_TRUE(redis->Init().ok());
      backend_ = std::move(redis);
    } else {
      backend_ = std::make_unique<RocksDbBackend>();
    }
    Reopen();
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<KvStore>> s = backend_->Open();
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  void Write(const WriteBatch& b) {
    absl::Status s = store_->Write(b);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::optional<std::string> Get(std::string_view key) {
    absl::StatusOr<std::optional<std::string>> v = store_->Get(key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }

  // "key=value" for every key under `prefix`, in iteration order.
  std::vector<std::string> Scan(std::string_view prefix) {
    std::vector<std::string> out;
    std::unique_ptr<KvIterator> it = store_->NewIterator(prefix);
    for (; it->Valid(); it->Next()) {
      out.push_back(std::string(it->key()) + "=" + std::string(it->value()));
    }
    EXPECT_TRUE(it->status().ok()) << it->status();
    return out;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvStore> store_;
};

TEST_P(StorageKvConformanceTest, BatchIsAppliedAndSurvivesReopen) {
  WriteBatch b;
  b.Put("a", "1");
  b.Put(std::string("b\0x", 3), std::string("\0\1", 2));
  b.Put("c", "3");
  b.Delete("c");
  EXPECT_EQ(b.ByteSize(), 2u + 5u + 2u + 1u);
  Write(b);
  Reopen();

  EXPECT_EQ(Get("a"), std::optional<std::string>("1"));
  EXPECT_FALSE(Get("c").has_value());
  absl::StatusOr<std::vector<std::optional<std::string>>> many =
      store_->MultiGet({"a", std::string("b\0x", 3), "zz"});
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_EQ(many->size(), 3u);
  EXPECT_EQ((*many)[0], std::optional<std::string>("1"));
  EXPECT_EQ((*many)[1], std::optional<std::string>(std::string("\0\1", 2)));
  EXPECT_FALSE((*many)[2].has_value());
  EXPECT_EQ(Scan(""),
            (std::vector<std::string>{"a=1", std::string("b\0x=\0\1", 6)}));
}

TEST_P(StorageKvConformanceTest, LaterOpsOnAKeyWinWithinAndAcrossBatches) {
  WriteBatch b1;
  b1.Put("k", "1");
  b1.Put("k", "2");
  b1.Put("gone", "x");
  b1.Delete("gone");
  b1.Delete("gone");
  b1.Delete("never-existed");
  b1.Delete("back");
  b1.Put("back", "again");
  Write(b1);
  EXPECT_EQ(Get("k"), std::optional<std::string>("2"));
  EXPECT_FALSE(Get("gone").has_value());
  EXPECT_FALSE(Get("never-existed").has_value());
  EXPECT_EQ(Get("back"), std::optional<std::string>("again"));

  WriteBatch b2;
  b2.Put("k", "3");
  b2.Delete("back");
  Write(b2);
  EXPECT_EQ(Get("k"), std::optional<std::string>("3"));
  EXPECT_FALSE(Get("back").has_value());
  EXPECT_EQ(Scan(""), (std::vector<std::string>{"k=3"}));
}

// Runs of puts and deletes longer than a Redis command's 512 keys, with
// keys written, deleted and written again within one batch: the batch's
// order decides, and the ordered index agrees with the values.
TEST_P(StorageKvConformanceTest, LongRunsOfOpsKeepTheBatchOrder) {
  constexpr int kKeys = 1500;
  auto key = [](int i) { return absl::StrFormat("k%05d", i); };
  WriteBatch b;
  for (int i = 0; i < kKeys; ++i) b.Put(key(i), "first");
  for (int i = 0; i < kKeys; i += 2) b.Delete(key(i));  // evens go
  for (int i = 0; i < kKeys; i += 3) b.Put(key(i), "again");
  for (int i = 0; i < kKeys; i += 5) b.Delete(key(i));  // and fives go last
  Write(b);
  std::vector<std::string> expected;
  for (int i = 0; i < kKeys; ++i) {
    std::optional<std::string> want;
    if (i % 5 == 0) {
      want.reset();
    } else if (i % 3 == 0) {
      want = "again";
    } else if (i % 2 == 1) {
      want = "first";
    }
    EXPECT_EQ(Get(key(i)), want) << key(i);
    if (want.has_value()) expected.push_back(key(i) + "=" + *want);
  }
  EXPECT_EQ(Scan("k"), expected);
}

// Keys that agree in their first 8 bytes or more, or differ only by
// trailing NULs, with many ops per key in random order (the RocksDB store
// writes a batch in key order): the last op on each key wins.
TEST_P(StorageKvConformanceTest, LastOpPerKeyWinsWhateverTheKeyOrder) {
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) {
    const std::string common = absl::StrCat("N", std::string(12, '\x7f'));
    keys.push_back(absl::StrCat(common, absl::StrFormat("%03d", i)));
    keys.push_back(absl::StrCat("T", std::string(i % 8, '\0')));
    keys.push_back(std::string(1 + i % 9, static_cast<char>(0xff)));
  }
  std::mt19937 rng(7);
  std::map<std::string, std::optional<std::string>> model;
  WriteBatch b;
  for (int op = 0; op < 3000; ++op) {
    const std::string& k = keys[rng() % keys.size()];
    if (rng() % 3 == 0) {
      b.Delete(k);
      model[k].reset();
    } else {
      const std::string v = absl::StrCat("v", op);
      b.Put(k, v);
      model[k] = v;
    }
  }
  Write(b);
  for (const auto& [k, want] : model) {
    EXPECT_EQ(Get(k), want) << absl::CHexEscape(k);
  }
}

TEST_P(StorageKvConformanceTest, EmptyBatchChangesNothing) {
  WriteBatch b;
  b.Put("a", "1");
  Write(b);
  Write(WriteBatch());
  EXPECT_EQ(Scan(""), (std::vector<std::string>{"a=1"}));
}

TEST_P(StorageKvConformanceTest, MultiGetAnswersEveryKeyInOrder) {
  WriteBatch b;
  for (int i = 0; i < 100; i += 2) b.Put(absl::StrCat("m", i), absl::StrCat(i));
  Write(b);
  std::vector<std::string> keys;
  for (int i = 99; i >= 0; --i) keys.push_back(absl::StrCat("m", i));
  keys.push_back("m10");  // asked twice
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      store_->MultiGet(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  for (int i = 99; i >= 0; --i) {
    const std::optional<std::string>& v = (*got)[static_cast<size_t>(99 - i)];
    if (i % 2 == 0) {
      EXPECT_EQ(v, std::optional<std::string>(absl::StrCat(i))) << i;
    } else {
      EXPECT_FALSE(v.has_value()) << i;
    }
  }
  EXPECT_EQ(got->back(), std::optional<std::string>("10"));

  absl::StatusOr<std::vector<std::optional<std::string>>> none =
      store_->MultiGet({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// The ledger reads a whole block's keys in one call (its tx index and
// state records, most of them absent, before executing the block): one
// MultiGet of thousands of binary keys, answered in order, before and after
// a reopen (RocksDB then reads them from its table files).
TEST_P(StorageKvConformanceTest, BlockSizedMultiGetOfMostlyAbsentKeys) {
  auto key = [](int i) {
    std::string k = absl::StrCat("T", i);
    k.push_back('\0');
    k.push_back(static_cast<char>(i & 0xff));
    return k;
  };
  WriteBatch b;
  for (int i = 0; i < 6000; i += 10) {
    b.PutOwned(key(i), absl::StrCat("v", i));
  }
  Write(b);
  std::vector<std::string> keys;
  for (int i = 0; i < 6000; ++i) keys.push_back(key(i));
  for (int pass = 0; pass < 2; ++pass) {
    absl::StatusOr<std::vector<std::optional<std::string>>> got =
        store_->MultiGet(keys);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), keys.size());
    for (int i = 0; i < 6000; ++i) {
      const std::optional<std::string>& v = (*got)[static_cast<size_t>(i)];
      if (i % 10 == 0) {
        EXPECT_EQ(v, std::optional<std::string>(absl::StrCat("v", i))) << i;
      } else {
        EXPECT_FALSE(v.has_value()) << i;
      }
    }
    Reopen();
  }
}

TEST_P(StorageKvConformanceTest, PrefixIteratorStaysInPrefixInOrder) {
  WriteBatch b;
  b.Put("p3", "c");
  b.Put("p1", "a");
  b.Put("p2", "b");
  b.Put("q1", "x");
  b.Put("o9", "y");
  b.Put("p", "exact");
  Write(b);

  EXPECT_EQ(Scan("p"),
            (std::vector<std::string>{"p=exact", "p1=a", "p2=b", "p3=c"}));
  std::unique_ptr<KvIterator> it = store_->NewIterator("p");
  it->Seek("2");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "p2");
  it->Next();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "p3");
  it->Next();
  EXPECT_FALSE(it->Valid());
  it->Seek("25");  // between keys: the next one
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "p3");
  it->Seek("4");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());

  EXPECT_TRUE(Scan("r").empty());
  EXPECT_TRUE(Scan("p4").empty());
}

// Several thousand keys, written in random order over several batches and
// with deletions, come back in byte order (Redis pages through them).
TEST_P(StorageKvConformanceTest, OrderedScanAcrossManyKeys) {
  std::vector<uint32_t> ids(3000);
  for (uint32_t i = 0; i < ids.size(); ++i) ids[i] = i;
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);
  auto key = [](uint32_t i) {
    // Big-endian like the ledger's heights, so byte order = numeric order.
    std::string k = "B";
    for (int s = 24; s >= 0; s -= 8) k.push_back(static_cast<char>(i >> s));
    return k;
  };
  for (size_t start = 0; start < ids.size(); start += 700) {
    WriteBatch b;
    for (size_t j = start; j < std::min(ids.size(), start + 700); ++j) {
      b.Put(key(ids[j]), absl::StrCat("v", ids[j]));
    }
    Write(b);
  }
  WriteBatch neighbours;
  neighbours.Put("A\xff", "before");
  neighbours.Put("C", "after");
  for (uint32_t i = 0; i < 3000; i += 3) neighbours.Delete(key(i));
  Write(neighbours);

  std::vector<uint32_t> seen;
  std::unique_ptr<KvIterator> it = store_->NewIterator("B");
  std::string prev;
  for (; it->Valid(); it->Next()) {
    const std::string k(it->key());
    ASSERT_EQ(k.size(), 5u);
    if (!prev.empty()) {
      ASSERT_LT(prev, k);
    }
    prev = k;
    uint32_t i = 0;
    for (int s = 1; s <= 4; ++s)
      i = (i << 8) | static_cast<unsigned char>(k[s]);
    EXPECT_EQ(it->value(), absl::StrCat("v", i));
    seen.push_back(i);
  }
  ASSERT_TRUE(it->status().ok()) << it->status();
  std::vector<uint32_t> want;
  for (uint32_t i = 0; i < 3000; ++i) {
    if (i % 3 != 0) want.push_back(i);
  }
  EXPECT_EQ(seen, want);

  // Seek into the middle, past a page boundary.
  std::string target;
  for (int s = 24; s >= 0; s -= 8)
    target.push_back(static_cast<char>(1500 >> s));
  it->Seek(target);
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), key(1501));  // 1500 was deleted
  size_t rest = 0;
  for (; it->Valid(); it->Next()) ++rest;
  EXPECT_EQ(rest, static_cast<size_t>(
                      std::count_if(want.begin(), want.end(),
                                    [](uint32_t i) { return i >= 1500; })));
}

TEST_P(StorageKvConformanceTest, BinaryKeysWithNulAndHighBytes) {
  const std::string nul_prefix("\0\0", 2);
  WriteBatch b;
  b.Put(nul_prefix + "a", "1");
  b.Put(nul_prefix + std::string("\0", 1), "2");
  b.Put(std::string("\0\1", 2), "3");
  b.Put("\xff", "4");
  b.Put("\xff\xff", "5");
  b.Put(std::string("\xff\x00z", 3), "6");
  b.Put("a\xff", "7");
  b.Put("b", "8");
  Write(b);

  EXPECT_EQ(Get(nul_prefix + "a"), std::optional<std::string>("1"));
  EXPECT_FALSE(Get(nul_prefix).has_value());
  EXPECT_EQ(Scan(nul_prefix),
            (std::vector<std::string>{nul_prefix + std::string("\0", 1) + "=2",
                                      nul_prefix + "a=1"}));
  EXPECT_EQ(Scan(std::string("\0", 1)).size(), 3u);
  // A prefix of 0xff bytes has no successor: the scan runs to the end.
  EXPECT_EQ(Scan("\xff"),
            (std::vector<std::string>{"\xff=4", std::string("\xff\x00z=6", 5),
                                      "\xff\xff=5"}));
  EXPECT_EQ(Scan("\xff\xff"), (std::vector<std::string>{"\xff\xff=5"}));
  EXPECT_EQ(Scan("a"), (std::vector<std::string>{"a\xff=7"}));
  EXPECT_EQ(Scan("").size(), 8u);
}

TEST_P(StorageKvConformanceTest, EmptyValuesAreStoredNotMissing) {
  WriteBatch b;
  b.Put("e", "");
  b.Put("f", "x");
  Write(b);
  Reopen();
  EXPECT_EQ(Get("e"), std::optional<std::string>(""));
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      store_->MultiGet({"e", "g"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0], std::optional<std::string>(""));
  EXPECT_FALSE((*got)[1].has_value());
  EXPECT_EQ(Scan(""), (std::vector<std::string>{"e=", "f=x"}));
}

TEST_P(StorageKvConformanceTest, LargeValuesRoundTrip) {
  std::string big(8 << 20, '\0');
  std::mt19937 rng(3);
  for (char& c : big) c = static_cast<char>(rng());
  WriteBatch b;
  b.Put("big", big);
  for (int i = 0; i < 200; ++i) {
    b.Put(absl::StrFormat("v%03d", i), std::string(64 * 1024, 'a' + i % 26));
  }
  Write(b);
  Reopen();
  EXPECT_EQ(Get("big"), std::optional<std::string>(big));
  std::vector<std::string> scanned = Scan("v");
  ASSERT_EQ(scanned.size(), 200u);
  EXPECT_EQ(scanned[27], "v027=" + std::string(64 * 1024, 'b'));
}

// Readers running beside a writer never see half of a batch.
TEST_P(StorageKvConformanceTest, ReadersNeverSeeHalfABatch) {
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back(absl::StrCat("atomic/", i));
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        absl::StatusOr<std::vector<std::optional<std::string>>> got =
            store_->MultiGet(keys);
        if (!got.ok()) {
          ++torn;
          continue;
        }
        for (const auto& v : *got) {
          if (v != got->front()) ++torn;
        }
        std::unique_ptr<KvIterator> it = store_->NewIterator("atomic/");
        std::optional<std::string> first;
        for (; it->Valid(); it->Next()) {
          if (!first.has_value()) first = std::string(it->value());
          if (it->value() != *first) ++torn;
        }
        ++reads;
      }
    });
  }
  for (int n = 0; n < 200; ++n) {
    WriteBatch b;
    for (const std::string& k : keys) b.Put(k, absl::StrCat(n));
    Write(b);
  }
  // Let the readers overlap with writes at least a little.
  while (reads.load() < 10) std::this_thread::yield();
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(Get(keys[7]), std::optional<std::string>("199"));
}

TEST_P(StorageKvConformanceTest, HealthySizedAndDescribed) {
  EXPECT_TRUE(store_->Ping().ok());
  WriteBatch b;
  for (int i = 0; i < 100; ++i)
    b.Put(absl::StrCat("s", i), std::string(1000, 'x'));
  Write(b);
  std::optional<uint64_t> size = store_->ApproximateSizeBytes();
  ASSERT_TRUE(size.has_value());
  EXPECT_GT(*size, 0u);
  EXPECT_NE(store_->Describe().find(GetParam()), std::string::npos)
      << store_->Describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageKvConformanceTest,
                         ::testing::Values("rocksdb", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           return i.param;
                         });

}  // namespace
}  // namespace consortia::storage
