// The storage service: executes committed blocks with the native apps,
// persists block + certificate + state + receipts + indexes in one atomic
// batch, answers queries with Merkle proofs, and publishes block.committed
// events. Consensus reaches it through LedgerApi and BlockSource, the mempool
// through CommitHistory, the api through ChainQueries and StateQueries
// (common/service_api.h, storage_queries.h), all on node.storage_endpoint.
#ifndef CONSORTIA_STORAGE_STORAGE_SERVICE_H_
#define CONSORTIA_STORAGE_STORAGE_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/config.h"
#include "consortia/metrics.h"

namespace zmq {
class context_t;
}

namespace consortia::storage {

// Options of the storage service; each is a flag declared in
// services/storage/src/config.cc (CONSORTIA_STORAGE_* in the environment).
struct StorageOptions {
  // --storage_backend: the KvStore backend, "rocksdb" (embedded, on local
  // disk) or "redis" (docs/storage.md says how to pick).
  std::string backend = "rocksdb";
  // --storage_path: the RocksDB store's directory; empty means
  // node.data_dir + "/ledger".
  std::string path;
  // --storage_redis_host / _port / _db: the Redis server (backend "redis").
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;  // 1..65535
  int redis_db = 0;       // 0..1023 (SELECT)
  // --storage_redis_password: AUTH password; empty = no AUTH. Prefer the
  // environment (CONSORTIA_STORAGE_REDIS_PASSWORD) from a Secret.
  std::string redis_password;
  // --storage_redis_timeout_ms: connect and per-command timeout
  // (10..600000).
  int redis_timeout_ms = 2000;
  // --storage_redis_key_prefix: prefix of the node's keys in Redis, so that
  // several nodes can share one Redis (non-empty).
  std::string redis_key_prefix = "consortia:";
  // --storage_redis_allow_weak_durability: start even when Redis does not
  // run with appendonly yes and appendfsync always (a crash of Redis may
  // then lose acknowledged blocks). For throw-away networks only.
  bool redis_allow_weak_durability = false;
  // --storage_sync: fsync every block's batch before acknowledging it. Turn
  // off only for throw-away test networks: a crash may lose the last blocks.
  bool sync = true;
  // --storage_threads: threads that serve requests (1..64).
  int threads = 4;
  // --storage_state_versions: state versions (the state tree after a block)
  // kept for GetStateAt and state proofs at past heights: the latest and the
  // state_versions - 1 before it; older tree nodes are deleted as blocks
  // commit. 2..kMaxStateVersions: at least 2 so that the state after block
  // h stays provable once block h + 1, which certifies it, exists.
  int64_t state_versions = 16;
  static constexpr int64_t kMaxStateVersions = 1000000;
  // --storage_tree_cache_nodes: decoded state tree nodes kept in memory
  // (about 200 bytes each): the nodes the last blocks built or read.
  int64_t tree_cache_nodes = 524288;
  static constexpr int64_t kMinTreeCacheNodes = 1024;
  static constexpr int64_t kMaxTreeCacheNodes = int64_t{1} << 26;

  // Reads the flags above.
  static StorageOptions FromFlags();
  // Field by field (a test checks that StorageOptions{} is FromFlags() with
  // every flag at its declared default).
  bool operator==(const StorageOptions&) const = default;
  // InvalidArgument naming the option that is out of bounds.
  absl::Status Validate() const;
};

// A running storage service. Thread-safe. Destruction stops serving (the
// endpoint is unbound, queued calls finish), then closes the store.
class StorageService {
 public:
  // Loads the genesis (node.genesis_path), opens the store (RocksDB at
  // opts.path, or node.data_dir + "/ledger"; or Redis at opts.redis_*) and
  // checks its consistency, binds node.storage_endpoint (LedgerApi and the
  // four query interfaces, calls served on a thread pool) and publishes
  // block.committed on node.storage_events.
  // Errors: InvalidArgument for bad options or genesis, NotFound for a
  // missing genesis file, FailedPrecondition "store at <path> is
  // inconsistent: ..." for a damaged store, Unavailable if an endpoint
  // cannot be bound, the store is locked by another process or Redis cannot
  // be reached; FailedPrecondition for a Redis that is not configured for
  // durability (docs/storage.md).
  static absl::StatusOr<std::unique_ptr<StorageService>> Start(
      const NodeConfig& node, const StorageOptions& opts, zmq::context_t& ctx,
      MetricsRegistry& metrics);

  virtual ~StorageService() = default;

  // True once serving and while the store answers (for /readyz): false
  // while a Redis backend cannot be reached. May take up to the Redis
  // timeout.
  virtual bool Ready() const = 0;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_STORAGE_STORAGE_SERVICE_H_
