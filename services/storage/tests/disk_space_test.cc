#include "disk_space.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "consortia/metrics.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::TempDir;

// The value of an unlabelled sample in the exposition text, or -1.
double Sample(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, name + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return -1;
}

TEST(DiskSpaceTest, ReadsTheFilesystemOfAPathOrOfItsNearestAncestor) {
  TempDir dir;
  absl::StatusOr<DiskSpace> d = ReadDiskSpace(dir.path());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_GT(d->size_bytes, 0u);
  EXPECT_LE(d->free_bytes, d->size_bytes);
  // A store directory that is not created yet: its parent's filesystem.
  absl::StatusOr<DiskSpace> later = ReadDiskSpace(dir.Sub("not/yet/there"));
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->size_bytes, d->size_bytes);
}

TEST(DiskSpaceTest, MonitorExportsFreeAndSizeBytes) {
  TempDir dir;
  MetricsRegistry registry;
  DiskSpaceMonitor monitor(dir.path(), DiskSpaceMetrics::Create(registry),
                           absl::Hours(1));
  EXPECT_EQ(monitor.refreshes(), 1u);  // read once at construction
  EXPECT_EQ(monitor.failures(), 0u);
  const std::string text = registry.Serialize();
  const double free_bytes = Sample(text, "consortia_storage_disk_free_bytes");
  const double size_bytes = Sample(text, "consortia_storage_disk_size_bytes");
  EXPECT_GT(free_bytes, 0);
  EXPECT_GT(size_bytes, 0);
  EXPECT_LE(free_bytes, size_bytes);
  ASSERT_TRUE(monitor.Refresh().ok());
  EXPECT_EQ(monitor.refreshes(), 2u);
}

TEST(DiskSpaceTest, MonitorRefreshesOnItsOwnThread) {
  TempDir dir;
  DiskSpaceMonitor monitor(dir.path(), DiskSpaceMetrics{},
                           absl::Milliseconds(5));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (monitor.refreshes() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(monitor.refreshes(), 3u);
}

}  // namespace
}  // namespace consortia::storage
