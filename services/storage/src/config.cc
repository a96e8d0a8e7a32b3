// The storage service's flags, declared once here (see consortia/config.h).
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/storage/storage_service.h"

ABSL_FLAG(std::string, storage_backend, "rocksdb",
          "Key-value store backend of the ledger. Only \"rocksdb\" for now.");
ABSL_FLAG(std::string, storage_path, "",
          "Directory of the ledger's store; empty means <data_dir>/ledger.");
ABSL_FLAG(bool, storage_sync, true,
          "fsync each block's write batch before acknowledging the commit.");
ABSL_FLAG(int, storage_threads, 4,
          "Threads that serve storage requests (1..64).");

namespace consortia::storage {

StorageOptions StorageOptions::FromFlags() {
  StorageOptions o;
  o.backend = absl::GetFlag(FLAGS_storage_backend);
  o.path = absl::GetFlag(FLAGS_storage_path);
  o.sync = absl::GetFlag(FLAGS_storage_sync);
  o.threads = absl::GetFlag(FLAGS_storage_threads);
  return o;
}

absl::Status StorageOptions::Validate() const {
  if (backend != "rocksdb") {
    return absl::InvalidArgumentError(
        absl::StrCat("storage_backend \"", backend,
                     "\" is not supported: the only backend is \"rocksdb\""));
  }
  if (threads < 1 || threads > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage_threads must be in 1..64, got ", threads));
  }
  return absl::OkStatus();
}

}  // namespace consortia::storage
