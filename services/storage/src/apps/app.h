// Native apps: deterministic state machines compiled into storage. An app
// reads and writes state only through the StateOverlay it is given, so the
// same block executed on any node yields the same writes and receipts.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_APPS_APP_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_APPS_APP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/types.h"
#include "state_overlay.h"

namespace consortia::storage {

// What an app may look at besides state. Everything here is part of the
// block, so it is the same on every node.
struct TxContext {
  const Transaction* tx = nullptr;
  Hash32 tx_hash{};
  uint64_t height = 0;
  uint64_t block_time_ms = 0;
};

// The outcome recorded in the tx's receipt.
struct ExecResult {
  ExecCode code = ExecCode::kOk;
  std::string log;
};

// A state key of a named app: a read hint for a record of another app.
struct AppStateKey {
  std::string app;
  std::string key;
};

// Implementations are stateless and thread-safe.
class NativeApp {
 public:
  virtual ~NativeApp() = default;
  virtual std::string_view name() const = 0;
  // Executes one tx. A rejected tx is an ExecResult with a non-OK code (its
  // writes are dropped by the caller); a non-OK Status means state could not
  // be read, and the whole block fails to commit.
  virtual absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                             StateOverlay* state) const = 0;
  // InvalidArgument if `key` can never name a record of this app (used to
  // answer state queries without touching the store).
  virtual absl::Status CheckQueryKey(std::string_view key) const = 0;
  // A hint: appends to *keys the state keys (of this app) that Execute will
  // probably read for `tx`, so that the ledger reads the whole block's keys
  // from the store in one batch before executing it instead of one read per
  // tx. Execute must not rely on it: a key left out is read when asked for,
  // an extra one costs a wasted read. The default hints nothing.
  virtual void AddReadHints(const Transaction& tx,
                            std::vector<std::string>* keys) const {
    (void)tx;
    (void)keys;
  }
  // The same hint for records of other apps that Execute will probably read
  // (invoice and notary read the sender's member record and an organisation
  // record of the `admin` app). The default hints nothing.
  virtual void AddOtherAppReadHints(const Transaction& tx,
                                    std::vector<AppStateKey>* keys) const {
    (void)tx;
    (void)keys;
  }
};

// The apps a node knows, by name. Immutable after construction: thread-safe.
class AppRegistry {
 public:
  // kv, admin, invoice and notary; `genesis_rules` are the chain's
  // genesis rules (the admin app bounds set_rule by them; the default suits
  // tests of a chain with the default rules).
  static AppRegistry WithBuiltins(const ChainRules& genesis_rules = {});

  void Add(std::unique_ptr<NativeApp> app);
  // nullptr when there is no such app.
  const NativeApp* Find(std::string_view name) const;

 private:
  std::map<std::string, std::unique_ptr<NativeApp>, std::less<>> apps_;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_APPS_APP_H_
