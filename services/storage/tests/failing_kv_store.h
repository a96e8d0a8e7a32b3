// Test-only: a KvStore that forwards to a real one and fails on demand, to
// check what the ledger does when its store fails (a full disk, a broken
// connection) and once the fault clears.
#ifndef CONSORTIA_SERVICES_STORAGE_TESTS_FAILING_KV_STORE_H_
#define CONSORTIA_SERVICES_STORAGE_TESTS_FAILING_KV_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "kv_store.h"

namespace consortia::storage::testing {

// Thread-safe. While a write fault is set, Write returns it and writes
// nothing (as a real store that fails a batch); while a read fault is set,
// Get and MultiGet return it.
class FailingKvStoreForTest : public KvStore {
 public:
  explicit FailingKvStoreForTest(KvStore* inner) : inner_(inner) {}

  void FailWrites(absl::Status s) {
    absl::MutexLock l(&mu_);
    write_fault_ = std::move(s);
  }
  void FailReads(absl::Status s) {
    absl::MutexLock l(&mu_);
    read_fault_ = std::move(s);
  }
  int failed_writes() const {
    absl::MutexLock l(&mu_);
    return failed_writes_;
  }

  absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) override {
    if (absl::Status s = ReadFault(); !s.ok()) return s;
    return inner_->Get(key);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    if (absl::Status s = ReadFault(); !s.ok()) return s;
    return inner_->MultiGet(keys);
  }
  std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) override {
    return inner_->NewIterator(prefix);
  }
  absl::Status Write(const WriteBatch& batch) override {
    {
      absl::MutexLock l(&mu_);
      if (!write_fault_.ok()) {
        ++failed_writes_;
        return write_fault_;
      }
    }
    return inner_->Write(batch);
  }
  std::string Describe() const override {
    return "failing:" + inner_->Describe();
  }
  absl::Status Ping() override {
    absl::MutexLock l(&mu_);
    return write_fault_.ok() ? read_fault_ : write_fault_;
  }

 private:
  absl::Status ReadFault() const {
    absl::MutexLock l(&mu_);
    return read_fault_;
  }

  KvStore* inner_;
  mutable absl::Mutex mu_;
  absl::Status write_fault_ ABSL_GUARDED_BY(mu_);
  absl::Status read_fault_ ABSL_GUARDED_BY(mu_);
  int failed_writes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace consortia::storage::testing

#endif  // CONSORTIA_SERVICES_STORAGE_TESTS_FAILING_KV_STORE_H_
