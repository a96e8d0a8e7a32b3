// Free and total bytes of the filesystem that holds the node's data, as
// gauges (so that an SRE sees a disk filling before the store fails):
//
//   consortia_storage_disk_free_bytes   bytes an unprivileged writer can
//                                       still use (statvfs f_bavail)
//   consortia_storage_disk_size_bytes   size of that filesystem
//
// With the Redis backend the path is still the node's data directory (the
// consensus WAL lives there), not Redis's own disk.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_DISK_SPACE_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_DISK_SPACE_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "consortia/metrics.h"

namespace consortia::storage {

struct DiskSpace {
  uint64_t free_bytes = 0;
  uint64_t size_bytes = 0;
};

// The filesystem of `path`, or of its nearest existing ancestor when `path`
// does not exist yet. An error when statvfs fails on every ancestor.
absl::StatusOr<DiskSpace> ReadDiskSpace(const std::string& path);

// Default-constructed = no-op (tests); Create registers the two series.
struct DiskSpaceMetrics {
  Gauge free_bytes;
  Gauge size_bytes;

  static DiskSpaceMetrics Create(MetricsRegistry& registry);
};

// Sets the gauges from ReadDiskSpace(path) at construction and then every
// `interval` on a thread of its own, until destroyed (the destructor wakes
// and joins that thread). A failed read leaves the gauges as they were and
// counts in failures(). Thread-safe.
class DiskSpaceMonitor {
 public:
  DiskSpaceMonitor(std::string path, DiskSpaceMetrics metrics,
                   absl::Duration interval = absl::Seconds(10));
  ~DiskSpaceMonitor();
  DiskSpaceMonitor(const DiskSpaceMonitor&) = delete;
  DiskSpaceMonitor& operator=(const DiskSpaceMonitor&) = delete;

  // Reads now; returns what it set.
  absl::StatusOr<DiskSpace> Refresh();
  uint64_t refreshes() const;
  uint64_t failures() const;

 private:
  void Loop();

  const std::string path_;
  const DiskSpaceMetrics metrics_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t refreshes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_DISK_SPACE_H_
