// The storage service: executes committed blocks with the native apps,
// persists block + certificate + state + receipts + indexes in one atomic
// batch, answers queries with Merkle proofs, and publishes block.committed
// events. Consensus reaches it through LedgerApi, the api and the mempool
// through QueryApi (common/service_api.h), all on node.storage_endpoint.
#ifndef CONSORTIA_STORAGE_STORAGE_SERVICE_H_
#define CONSORTIA_STORAGE_STORAGE_SERVICE_H_

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
  // --storage_backend: the KvStore backend. Only "rocksdb" for now.
  std::string backend = "rocksdb";
  // --storage_path: the store's directory; empty means
  // node.data_dir + "/ledger".
  std::string path;
  // --storage_sync: fsync every block's batch before acknowledging it. Turn
  // off only for throw-away test networks: a crash may lose the last blocks.
  bool sync = true;
  // --storage_threads: threads that serve requests (1..64).
  int threads = 4;

  // Reads the flags above.
  static StorageOptions FromFlags();
  // InvalidArgument naming the option that is out of bounds.
  absl::Status Validate() const;
};

// A running storage service. Thread-safe. Destruction stops serving (the
// endpoint is unbound, queued calls finish), then closes the store.
class StorageService {
 public:
  // Loads the genesis (node.genesis_path), opens the store (opts.path, or
  // node.data_dir + "/ledger") and checks its consistency, binds
  // node.storage_endpoint (LedgerApi and QueryApi, calls served on a thread
  // pool) and publishes block.committed on node.storage_events.
  // Errors: InvalidArgument for bad options or genesis, NotFound for a
  // missing genesis file, FailedPrecondition "store at <path> is
  // inconsistent: ..." for a damaged store, Unavailable if an endpoint
  // cannot be bound or the store is locked by another process.
  static absl::StatusOr<std::unique_ptr<StorageService>> Start(
      const NodeConfig& node, const StorageOptions& opts, zmq::context_t& ctx,
      MetricsRegistry& metrics);

  virtual ~StorageService() = default;

  // True once serving (for /readyz).
  virtual bool Ready() const = 0;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_STORAGE_STORAGE_SERVICE_H_
