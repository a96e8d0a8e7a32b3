#include "store_factory.h"

#include "absl/time/time.h"
#include "keys.h"
#include "redis_store.h"

namespace consortia::storage {

std::string LedgerOrderedPrefixes() {
  // Meta (small), blocks (startup check), state records (listing an app's
  // keys), and the state tree's prune list.
  return std::string{keys::kMetaPrefix, keys::kBlockPrefix, keys::kStatePrefix,
                     keys::kPrunePrefix};
}

absl::StatusOr<std::unique_ptr<KvStore>> OpenConfiguredStore(
    const StorageOptions& opts, const std::string& data_dir) {
  if (opts.backend == "redis") {
    RedisStoreOptions ro;
    ro.host = opts.redis_host;
    ro.port = opts.redis_port;
    ro.db = opts.redis_db;
    ro.password = opts.redis_password;
    ro.key_prefix = opts.redis_key_prefix;
    ro.timeout = absl::Milliseconds(opts.redis_timeout_ms);
    ro.require_durability = !opts.redis_allow_weak_durability;
    ro.ordered_prefixes = LedgerOrderedPrefixes();
    return OpenRedisStore(ro);
  }
  const std::string path = opts.path.empty() ? data_dir + "/ledger" : opts.path;
  return OpenRocksDbStore(RocksDbStoreOptions{path, opts.sync});
}

}  // namespace consortia::storage
