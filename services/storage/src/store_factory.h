// Opens the ledger's KvStore as the storage options say: RocksDB under the
// data directory, or Redis. One place for the backend switch, shared by the
// service and its tests.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_STORE_FACTORY_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_STORE_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "consortia/storage/storage_service.h"
#include "kv_store.h"

namespace consortia::storage {

// The one-byte key prefixes (keys.h) that the ledger and the state tree
// iterate over; a Redis store keeps only these in its ordered index. A new
// iteration over another prefix must be added here (the Redis ledger tests
// fail with FailedPrecondition otherwise).
std::string LedgerOrderedPrefixes();

// The store of opts.backend: "rocksdb" at opts.path (or data_dir/ledger),
// "redis" at opts.redis_*. Errors as OpenRocksDbStore / OpenRedisStore.
absl::StatusOr<std::unique_ptr<KvStore>> OpenConfiguredStore(
    const StorageOptions& opts, const std::string& data_dir);

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_STORE_FACTORY_H_
