// The file operations the consensus WAL needs (wal.h), behind an interface so
// that tests can fail or slow them, and their POSIX implementation.
#ifndef CONSORTIA_CONSENSUS_SRC_WAL_ENV_H_
#define CONSORTIA_CONSENSUS_SRC_WAL_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"

namespace consortia::consensus {

class WalWritableFile {
 public:
  virtual ~WalWritableFile() = default;
  // Writes all of data at the end of the file. Internal on an I/O error (the
  // file may then hold part of data).
  virtual absl::Status Append(ByteView data) = 0;
  // Makes everything appended so far durable (fdatasync). Internal on error:
  // then nothing written since the last successful Sync is known to be on
  // disk.
  virtual absl::Status Sync() = 0;
};

// A lock held as long as the object lives.
class WalFileLock {
 public:
  virtual ~WalFileLock() = default;
};

// The file operations the WAL needs, behind an interface so that tests can
// fail or slow them. Implementations are thread-safe. Errors are Internal with
// the path and errno text unless stated otherwise.
class WalEnv {
 public:
  virtual ~WalEnv() = default;
  // Creates dir and missing parents (like mkdir -p), each new directory
  // made durable in its parent.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  // Names (not paths) of the entries in dir.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  virtual absl::StatusOr<Bytes> ReadFile(const std::string& path) = 0;
  // Opens path for appending, creating it if missing.
  virtual absl::StatusOr<std::unique_ptr<WalWritableFile>> OpenAppend(
      const std::string& path) = 0;
  // Cuts path to size bytes and makes that durable.
  virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // Makes the directory's entries (created or removed files) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // An exclusive advisory lock on path (created if missing), also against
  // other opens in this process. FailedPrecondition if someone holds it.
  virtual absl::StatusOr<std::unique_ptr<WalFileLock>> Lock(
      const std::string& path) = 0;
};

// Plain POSIX files (open/write/fdatasync/ftruncate/flock).
std::unique_ptr<WalEnv> NewPosixWalEnv();

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_WAL_ENV_H_
