#include "kv_store.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::TempDir;

std::unique_ptr<KvStore> Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<KvStore>> s =
      OpenRocksDbStore(RocksDbStoreOptions{path, true});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(StorageRocksDbTest, BatchIsAppliedAndSurvivesReopen) {
  TempDir dir;
  {
    std::unique_ptr<KvStore> store = Open(dir.Sub("db"));
    ASSERT_NE(store, nullptr);
    WriteBatch b;
    b.Put("a", "1");
    b.Put(std::string("b\0x", 3), std::string("\0\1", 2));
    b.Put("c", "3");
    b.Delete("c");
    EXPECT_EQ(b.ByteSize(), 2u + 5u + 2u + 1u);
    ASSERT_TRUE(store->Write(b).ok());
  }
  std::unique_ptr<KvStore> store = Open(dir.Sub("db"));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<std::string>> a = store->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, std::optional<std::string>("1"));
  absl::StatusOr<std::optional<std::string>> c = store->Get("c");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());

  absl::StatusOr<std::vector<std::optional<std::string>>> many =
      store->MultiGet({"a", std::string("b\0x", 3), "zz"});
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_EQ(many->size(), 3u);
  EXPECT_EQ((*many)[0], std::optional<std::string>("1"));
  EXPECT_EQ((*many)[1], std::optional<std::string>(std::string("\0\1", 2)));
  EXPECT_FALSE((*many)[2].has_value());
}

TEST(StorageRocksDbTest, PrefixIteratorStaysInPrefixInOrder) {
  TempDir dir;
  std::unique_ptr<KvStore> store = Open(dir.Sub("db"));
  ASSERT_NE(store, nullptr);
  WriteBatch b;
  b.Put("p3", "c");
  b.Put("p1", "a");
  b.Put("p2", "b");
  b.Put("q1", "x");
  b.Put("o9", "y");
  ASSERT_TRUE(store->Write(b).ok());

  std::vector<std::string> seen;
  std::unique_ptr<KvIterator> it = store->NewIterator("p");
  for (; it->Valid(); it->Next()) {
    seen.push_back(std::string(it->key()) + "=" + std::string(it->value()));
  }
  EXPECT_TRUE(it->status().ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p1=a", "p2=b", "p3=c"}));

  it->Seek("2");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "p2");

  std::unique_ptr<KvIterator> none = store->NewIterator("r");
  EXPECT_FALSE(none->Valid());
}

TEST(StorageRocksDbTest, SecondOpenOfALockedStoreFails) {
  TempDir dir;
  std::unique_ptr<KvStore> first = Open(dir.Sub("db"));
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<KvStore>> second =
      OpenRocksDbStore(RocksDbStoreOptions{dir.Sub("db"), true});
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(dir.Sub("db")), std::string::npos);
}

}  // namespace
}  // namespace consortia::storage
