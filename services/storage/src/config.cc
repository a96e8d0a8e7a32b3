// The storage service's options, each declared once here (see
// consortia/options.h) and checked in Validate().
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/options.h"
#include "consortia/storage/storage_service.h"

CONSORTIA_OPTION_UNBOUNDED(
    "storage", std::string, storage_backend, "rocksdb",
    "Key-value store backend of the ledger: \"rocksdb\" (embedded, local "
    "disk) or \"redis\" (see docs/storage.md).");
CONSORTIA_OPTION_UNBOUNDED(
    "storage", std::string, storage_path, "",
    "Directory of the RocksDB store; empty means the folder ledger in "
    "--data_dir.");
CONSORTIA_OPTION_UNBOUNDED("storage", std::string, storage_redis_host,
                           "127.0.0.1",
                           "Redis host (storage_backend=redis; non-empty).");
CONSORTIA_OPTION("storage", int, storage_redis_port, 6379, 1, 65535,
                 "Redis port.");
CONSORTIA_OPTION("storage", int, storage_redis_db, 0, 0, 1023,
                 "Redis database number.");
CONSORTIA_OPTION_UNBOUNDED(
    "storage", std::string, storage_redis_password, "",
    "Redis AUTH password; empty = no AUTH. Prefer the environment variable "
    "CONSORTIA_STORAGE_REDIS_PASSWORD.");
CONSORTIA_OPTION("storage", int, storage_redis_timeout_ms, 2000, 10, 600000,
                 "Redis connect and command timeout in ms.");
CONSORTIA_OPTION_UNBOUNDED(
    "storage", std::string, storage_redis_key_prefix, "consortia:",
    "Prefix of this node's keys in Redis, so that nodes can share one Redis "
    "(non-empty).");
CONSORTIA_OPTION_UNBOUNDED(
    "storage", bool, storage_redis_allow_weak_durability, false,
    "Start even if Redis does not run with appendonly yes and appendfsync "
    "always. A Redis crash may then lose acknowledged blocks: for throw-away "
    "networks only.");
CONSORTIA_OPTION_UNBOUNDED(
    "storage", bool, storage_sync, true,
    "fsync each block's write batch before acknowledging the commit.");
CONSORTIA_OPTION("storage", int, storage_threads, 4, 1, 64,
                 "Threads that serve storage requests.");
CONSORTIA_OPTION(
    "storage", int64_t, storage_state_versions, 16, 2,
    consortia::storage::StorageOptions::kMaxStateVersions,
    "State versions kept for state queries and proofs at past heights: the "
    "latest height and the N - 1 before it (at least 2: block h + 1 "
    "certifies the state after block h). More versions cost more disk, not "
    "more time per block.");
CONSORTIA_OPTION(
    "storage", int64_t, storage_tree_cache_nodes, 524288,
    consortia::storage::StorageOptions::kMinTreeCacheNodes,
    consortia::storage::StorageOptions::kMaxTreeCacheNodes,
    "Decoded state tree nodes kept in memory: about 200 bytes each, so the "
    "default takes ~100 MiB. Each block reads the tree nodes on its writes' "
    "paths that are not cached.");

namespace consortia::storage {

StorageOptions StorageOptions::FromFlags() {
  StorageOptions o;
  o.backend = absl::GetFlag(FLAGS_storage_backend);
  o.path = absl::GetFlag(FLAGS_storage_path);
  o.redis_host = absl::GetFlag(FLAGS_storage_redis_host);
  o.redis_port = absl::GetFlag(FLAGS_storage_redis_port);
  o.redis_db = absl::GetFlag(FLAGS_storage_redis_db);
  o.redis_password = absl::GetFlag(FLAGS_storage_redis_password);
  o.redis_timeout_ms = absl::GetFlag(FLAGS_storage_redis_timeout_ms);
  o.redis_key_prefix = absl::GetFlag(FLAGS_storage_redis_key_prefix);
  o.redis_allow_weak_durability =
      absl::GetFlag(FLAGS_storage_redis_allow_weak_durability);
  o.sync = absl::GetFlag(FLAGS_storage_sync);
  o.threads = absl::GetFlag(FLAGS_storage_threads);
  o.state_versions = absl::GetFlag(FLAGS_storage_state_versions);
  o.tree_cache_nodes = absl::GetFlag(FLAGS_storage_tree_cache_nodes);
  return o;
}

absl::Status StorageOptions::Validate() const {
  if (backend != "rocksdb" && backend != "redis") {
    return absl::InvalidArgumentError(
        absl::StrCat("--storage_backend=\"", backend,
                     "\" is not supported: use \"rocksdb\" or \"redis\""));
  }
  if (backend == "redis") {
    if (redis_host.empty()) {
      return absl::InvalidArgumentError("--storage_redis_host is empty");
    }
    for (absl::Status s :
         {CheckOptionBounds(OPTION_storage_redis_port, int64_t{redis_port}),
          CheckOptionBounds(OPTION_storage_redis_db, int64_t{redis_db}),
          CheckOptionBounds(OPTION_storage_redis_timeout_ms,
                            int64_t{redis_timeout_ms})}) {
      if (!s.ok()) return s;
    }
    if (redis_key_prefix.empty()) {
      return absl::InvalidArgumentError("--storage_redis_key_prefix is empty");
    }
  }
  for (absl::Status s :
       {CheckOptionBounds(OPTION_storage_threads, int64_t{threads}),
        CheckOptionBounds(OPTION_storage_state_versions,
                          static_cast<int64_t>(state_versions)),
        CheckOptionBounds(OPTION_storage_tree_cache_nodes,
                          static_cast<int64_t>(tree_cache_nodes))}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace consortia::storage
