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

// The cases every backend must pass are in kv_store_conformance_test.cc;
// these are RocksDB's own.

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
