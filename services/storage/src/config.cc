// The storage service's flags, declared once here (see consortia/config.h).
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/storage/storage_service.h"

ABSL_FLAG(std::string, storage_backend, "rocksdb",
          "Key-value store backend of the ledger: \"rocksdb\" (embedded, "
          "local disk) or \"redis\" (see docs/storage.md).");
ABSL_FLAG(std::string, storage_path, "",
          "Directory of the RocksDB store; empty means <data_dir>/ledger.");
ABSL_FLAG(std::string, storage_redis_host, "127.0.0.1",
          "Redis host (storage_backend=redis).");
ABSL_FLAG(int, storage_redis_port, 6379, "Redis port (1..65535).");
ABSL_FLAG(int, storage_redis_db, 0, "Redis database number (0..1023).");
ABSL_FLAG(std::string, storage_redis_password, "",
          "Redis AUTH password; empty = no AUTH. Prefer the environment "
          "variable CONSORTIA_STORAGE_REDIS_PASSWORD.");
ABSL_FLAG(int, storage_redis_timeout_ms, 2000,
          "Redis connect and command timeout in ms (10..600000).");
ABSL_FLAG(std::string, storage_redis_key_prefix, "consortia:",
          "Prefix of this node's keys in Redis, so that nodes can share one "
          "Redis (non-empty).");
ABSL_FLAG(bool, storage_redis_allow_weak_durability, false,
          "Start even if Redis does not run with appendonly yes and "
          "appendfsync always. A Redis crash may then lose acknowledged "
          "blocks: for throw-away networks only.");
ABSL_FLAG(bool, storage_sync, true,
          "fsync each block's write batch before acknowledging the commit.");
ABSL_FLAG(int, storage_threads, 4,
          "Threads that serve storage requests (1..64).");
ABSL_FLAG(int64_t, storage_state_versions, 16,
          "State versions kept for state queries and proofs at past heights: "
          "the latest height and the N - 1 before it (2..1000000). More "
          "versions cost more disk, not more time per block.");

ABSL_FLAG(int64_t, storage_tree_cache_nodes, 524288,
          "Decoded state tree nodes kept in memory (1024..67108864): about "
          "200 bytes each, so the default takes ~100 MiB. Each block reads "
          "the tree nodes on its writes' paths that are not cached.");

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
        absl::StrCat("storage_backend \"", backend,
                     "\" is not supported: use \"rocksdb\" or \"redis\""));
  }
  if (backend == "redis") {
    if (redis_host.empty()) {
      return absl::InvalidArgumentError("storage_redis_host is empty");
    }
    if (redis_port < 1 || redis_port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "storage_redis_port must be in 1..65535, got ", redis_port));
    }
    if (redis_db < 0 || redis_db > 1023) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage_redis_db must be in 0..1023, got ", redis_db));
    }
    if (redis_timeout_ms < 10 || redis_timeout_ms > 600000) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage_redis_timeout_ms must be in 10..600000, got ",
                       redis_timeout_ms));
    }
    if (redis_key_prefix.empty()) {
      return absl::InvalidArgumentError("storage_redis_key_prefix is empty");
    }
  }
  if (threads < 1 || threads > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage_threads must be in 1..64, got ", threads));
  }
  if (state_versions < 2 || state_versions > kMaxStateVersions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "storage_state_versions must be in 2..", kMaxStateVersions, ", got ",
        state_versions,
        ": the latest state and the one before it are always needed "
        "(block h + 1 certifies the state after block h)"));
  }
  if (tree_cache_nodes < kMinTreeCacheNodes ||
      tree_cache_nodes > kMaxTreeCacheNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage_tree_cache_nodes must be in ", kMinTreeCacheNodes,
                     "..", kMaxTreeCacheNodes, ", got ", tree_cache_nodes));
  }
  return absl::OkStatus();
}

}  // namespace consortia::storage
