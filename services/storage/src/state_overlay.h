// The write set of one block over the store. Apps read and write state only
// through it, so that executing a block changes nothing until the ledger
// writes the whole block in one batch, and a failed tx leaves no trace.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_STATE_OVERLAY_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_STATE_OVERLAY_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "keys.h"
#include "kv_store.h"

namespace consortia::storage {

using keys::StateEntry;

// Two layers over the store: the writes of the block's txs committed so far,
// and the writes of the tx being executed. Reads see the newest layer first,
// then the records prefetched from the store (Prefetch), then the store.
// The store must not change while a block executes (the ledger's commit lock
// sees to it), so a prefetched record stays what the store holds.
// Not thread-safe (one block executes on one thread).
class StateOverlay {
 public:
  // nullopt = the key is deleted.
  using WriteSet = std::map<std::string, std::optional<StateEntry>>;

  explicit StateOverlay(KvStore* store) : store_(store) {}

  // nullopt when the key has no value. Internal / DataLoss from the store
  // (the block cannot be executed then).
  absl::StatusOr<std::optional<StateEntry>> Get(std::string_view app,
                                                std::string_view key);
  void Put(std::string_view app, std::string_view key, StateEntry entry);
  void Delete(std::string_view app, std::string_view key);

  // Remembers the stored records of these store keys (State() keys), or
  // their absence, read earlier in one MultiGet: Get then answers them
  // without a store read. `values` holds one answer per key, in order.
  void Prefetched(std::vector<std::string> store_keys,
                  std::vector<std::optional<std::string>> values);

  // Keeps the current tx's writes / drops them.
  void CommitTx();
  void RollbackTx();

  // The block's writes (committed txs only), sorted by store key.
  const WriteSet& writes() const { return block_; }
  // The same, moved out (the overlay is done with then).
  WriteSet TakeWrites() { return std::move(block_); }

 private:
  KvStore* store_;
  std::map<std::string, std::optional<std::string>, std::less<>> base_;
  WriteSet block_;
  WriteSet tx_;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_STATE_OVERLAY_H_
