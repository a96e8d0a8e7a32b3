// --storage_state_versions and --storage_tree_cache_nodes: validation and
// the flags. That the service keeps exactly that many versions is tested
// with the service (storage_service_test.cc).
#include <cstdint>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/storage/storage_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger.h"

ABSL_DECLARE_FLAG(int64_t, storage_state_versions);
ABSL_DECLARE_FLAG(int64_t, storage_tree_cache_nodes);

namespace consortia::storage {
namespace {

using ::testing::HasSubstr;

TEST(StateVersionsOptionTest, DefaultIsTheLedgerDefault) {
  EXPECT_EQ(static_cast<uint64_t>(StorageOptions{}.state_versions),
            kDefaultStateVersions);
  EXPECT_EQ(absl::GetFlag(FLAGS_storage_state_versions),
            StorageOptions{}.state_versions);
}

TEST(StateVersionsOptionTest, ValidatesTheRange) {
  for (int64_t bad :
       {int64_t{0}, int64_t{1}, int64_t{-3},
        StorageOptions::kMaxStateVersions + 1, int64_t{1} << 40}) {
    StorageOptions o;
    o.state_versions = bad;
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(),
                HasSubstr(absl::StrCat("--storage_state_versions=", bad,
                                       " is out of bounds [2, ")))
        << bad;
  }
  for (int64_t good : {int64_t{2}, int64_t{16}, int64_t{5000},
                       StorageOptions::kMaxStateVersions}) {
    StorageOptions o;
    o.state_versions = good;
    EXPECT_TRUE(o.Validate().ok()) << good;
  }
}

TEST(StateVersionsOptionTest, FromFlagsReadsTheFlag) {
  const int64_t saved = absl::GetFlag(FLAGS_storage_state_versions);
  absl::SetFlag(&FLAGS_storage_state_versions, 100);
  EXPECT_EQ(StorageOptions::FromFlags().state_versions, 100);
  absl::SetFlag(&FLAGS_storage_state_versions, saved);
}

TEST(TreeCacheNodesOptionTest, DefaultsAgreeAndTheRangeIsChecked) {
  EXPECT_EQ(static_cast<size_t>(StorageOptions{}.tree_cache_nodes),
            kDefaultTreeCacheNodes);
  EXPECT_EQ(absl::GetFlag(FLAGS_storage_tree_cache_nodes),
            StorageOptions{}.tree_cache_nodes);
  for (int64_t bad : {int64_t{0}, int64_t{-1}, int64_t{1023},
                      StorageOptions::kMaxTreeCacheNodes + 1}) {
    StorageOptions o;
    o.tree_cache_nodes = bad;
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("--storage_tree_cache_nodes=")) << bad;
  }
  StorageOptions o;
  o.tree_cache_nodes = 1024;
  EXPECT_TRUE(o.Validate().ok());
  const int64_t saved = absl::GetFlag(FLAGS_storage_tree_cache_nodes);
  absl::SetFlag(&FLAGS_storage_tree_cache_nodes, 4096);
  EXPECT_EQ(StorageOptions::FromFlags().tree_cache_nodes, 4096);
  absl::SetFlag(&FLAGS_storage_tree_cache_nodes, saved);
}

}  // namespace
}  // namespace consortia::storage
