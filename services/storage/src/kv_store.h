// The key-value store under the ledger. One small abstract interface with
// atomic write batches, so that the RocksDB backend (embedded default) and a
// Redis backend can be swapped, and tests can wrap a store to fail or slow it.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_KV_STORE_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_KV_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace consortia::storage {

// An ordered list of puts and deletes applied all or nothing by
// KvStore::Write. Keys and values are arbitrary bytes. Not thread-safe.
class WriteBatch {
 public:
  struct Op {
    bool is_delete = false;
    std::string key;
    std::string value;  // empty for a delete
  };

  void Put(std::string_view key, std::string_view value);
  // The same, taking over strings the caller built for the batch anyway
  // (saves a copy of each: a block's batch holds thousands of them).
  void PutOwned(std::string key, std::string value);
  void Delete(std::string_view key);
  // Room for n more ops without reallocating.
  void Reserve(size_t n) { ops_.reserve(ops_.size() + n); }
  // Moves the ops of `other` to the end of this batch.
  void Append(WriteBatch&& other);

  const std::vector<Op>& ops() const { return ops_; }
  // Total bytes of keys and values (what the batch costs to write).
  size_t ByteSize() const { return bytes_; }
  bool empty() const { return ops_.empty(); }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

// Walks the keys that start with one prefix, in byte order (memcmp order on
// every backend). Not thread-safe. RocksDB reads one consistent snapshot
// taken when the iterator was created; Redis reads pages of keys, each
// consistent, so a batch written during a long walk shows in the later pages
// only (redis_store.h).
class KvIterator {
 public:
  virtual ~KvIterator() = default;
  // Positions at the first key >= prefix + suffix (still within the prefix).
  virtual void Seek(std::string_view suffix) = 0;
  // False once past the prefix or on error (then status() says which).
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  // The full key, prefix included. Valid() must be true.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // OK, or the backend's read error.
  virtual absl::Status status() const = 0;
};

// A key-value store. Thread-safe: reads may run concurrently with each other
// and with a Write; a Write is atomic (after a crash either all or none of
// the batch is visible) and readers never see half of it.
// Errors: Internal / Unavailable for backend failures, with the backend's
// message; a missing key is not an error (nullopt).
class KvStore {
 public:
  virtual ~KvStore() = default;

  virtual absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) = 0;
  // One answer per key, in order, from one consistent snapshot. Fails as a
  // whole if any read fails.
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) = 0;
  // Iterates over the keys that start with `prefix`, from the first. A
  // backend configured to keep only some prefixes ordered (Redis) gives an
  // iterator whose status() is FailedPrecondition for any other prefix.
  virtual std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) = 0;
  // Applies the whole batch atomically (durably when the store was opened
  // with sync = true).
  virtual absl::Status Write(const WriteBatch& batch) = 0;
  // Human-readable location ("rocksdb:/var/lib/consortia/ledger").
  virtual std::string Describe() const = 0;

  // Health: OK when the backend can serve reads and writes right now, else
  // the error a call would get (Unavailable when a remote backend cannot be
  // reached). Cheap enough for a readiness probe. An embedded store that
  // opened is always healthy, hence the default.
  virtual absl::Status Ping() { return absl::OkStatus(); }
  // Approximate bytes the data occupies (on disk for RocksDB, in memory for
  // Redis), for the store size metric; nullopt when it cannot be told now.
  virtual std::optional<uint64_t> ApproximateSizeBytes() {
    return std::nullopt;
  }
};

struct RocksDbStoreOptions {
  std::string path;  // directory; created (with parents) when missing
  bool sync = true;  // fsync the write-ahead log on every Write
};

// Opens (creating if missing) a RocksDB database. Internal / Unavailable with
// RocksDB's message if it cannot be opened (for example another process holds
// its lock). Write errors: ResourceExhausted when the disk is full, DataLoss
// for corruption, Internal for other I/O errors; nothing of a failed batch is
// visible. After a failed write the next Write first asks RocksDB to resume
// from its background error, so commits continue once the fault is cleared.
absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksDbStore(
    const RocksDbStoreOptions& opts);

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_KV_STORE_H_
