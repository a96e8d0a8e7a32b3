#include "disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace consortia::storage {

absl::StatusOr<DiskSpace> ReadDiskSpace(const std::string& path) {
  std::filesystem::path p = path.empty() ? "." : path;
  int last_errno = 0;
  for (;;) {
    struct statvfs s {};
    if (::statvfs(p.c_str(), &s) == 0) {
      return DiskSpace{static_cast<uint64_t>(s.f_bavail) * s.f_frsize,
                       static_cast<uint64_t>(s.f_blocks) * s.f_frsize};
    }
    last_errno = errno;
    if (!p.has_parent_path() || p.parent_path() == p) break;
    p = p.parent_path();
  }
  return absl::UnavailableError(
      absl::StrCat("statvfs ", path, ": ", std::strerror(last_errno)));
}

DiskSpaceMetrics DiskSpaceMetrics::Create(MetricsRegistry& r) {
  DiskSpaceMetrics m;
  m.free_bytes = r.GetGauge(
      "consortia_storage_disk_free_bytes",
      "Bytes still available to the node on the filesystem of its data");
  m.size_bytes = r.GetGauge("consortia_storage_disk_size_bytes",
                            "Size of the filesystem of the node's data");
  return m;
}

DiskSpaceMonitor::DiskSpaceMonitor(std::string path, DiskSpaceMetrics metrics,
                                   absl::Duration interval)
    : path_(std::move(path)), metrics_(metrics), interval_(interval) {
  (void)Refresh();
  thread_ = std::thread([this] { Loop(); });
}

DiskSpaceMonitor::~DiskSpaceMonitor() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::StatusOr<DiskSpace> DiskSpaceMonitor::Refresh() {
  absl::StatusOr<DiskSpace> d = ReadDiskSpace(path_);
  if (d.ok()) {
    Gauge free_bytes = metrics_.free_bytes;
    Gauge size_bytes = metrics_.size_bytes;
    free_bytes.Set(static_cast<double>(d->free_bytes));
    size_bytes.Set(static_cast<double>(d->size_bytes));
  }
  absl::MutexLock l(&mu_);
  ++(d.ok() ? refreshes_ : failures_);
  return d;
}

uint64_t DiskSpaceMonitor::refreshes() const {
  absl::MutexLock l(&mu_);
  return refreshes_;
}

uint64_t DiskSpaceMonitor::failures() const {
  absl::MutexLock l(&mu_);
  return failures_;
}

void DiskSpaceMonitor::Loop() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_)) return;
    }
    (void)Refresh();
  }
}

}  // namespace consortia::storage
