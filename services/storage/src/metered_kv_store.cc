#include "metered_kv_store.h"

#include <atomic>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace consortia::storage {
namespace {

std::vector<double> OpsBuckets() {
  std::vector<double> b;
  for (double v = 1; v <= 1024.0 * 1024; v *= 4) b.push_back(v);
  return b;
}

std::vector<double> ByteBuckets() {
  std::vector<double> b;
  for (double v = 1024; v <= 256.0 * 1024 * 1024; v *= 4) b.push_back(v);
  return b;
}

class MeteredKvStore : public KvStore {
 public:
  MeteredKvStore(std::unique_ptr<KvStore> inner, StoreMetrics m,
                 absl::Duration size_refresh)
      : inner_(std::move(inner)), m_(m), size_refresh_(size_refresh) {
    m_.up.Set(1);
    RefreshSize(absl::Now());
  }

  absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) override {
    auto r = inner_->Get(key);
    Note(r.status());
    return r;
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    auto r = inner_->MultiGet(keys);
    Note(r.status());
    return r;
  }

  std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) override {
    return inner_->NewIterator(prefix);
  }

  absl::Status Write(const WriteBatch& batch) override {
    const absl::Time start = absl::Now();
    absl::Status s = inner_->Write(batch);
    const absl::Time end = absl::Now();
    Note(s);
    if (s.ok()) {
      m_.write_duration.Observe(absl::ToDoubleSeconds(end - start));
      m_.write_batch_ops.Observe(static_cast<double>(batch.ops().size()));
      m_.write_batch_bytes.Observe(static_cast<double>(batch.ByteSize()));
      bool due = false;
      {
        absl::MutexLock l(&mu_);
        if (end - last_size_ >= size_refresh_) {
          last_size_ = end;
          due = true;
        }
      }
      if (due) RefreshSize(end);
    }
    return s;
  }

  std::string Describe() const override { return inner_->Describe(); }

  absl::Status Ping() override {
    absl::Status s = inner_->Ping();
    m_.up.Set(s.ok() ? 1 : 0);
    return s;
  }

  std::optional<uint64_t> ApproximateSizeBytes() override {
    return inner_->ApproximateSizeBytes();
  }

 private:
  void Note(const absl::Status& s) {
    if (s.ok()) {
      m_.up.Set(1);
      return;
    }
    const std::string_view kind = StoreErrorKind(s);
    if (kind == "unavailable") {
      m_.error_unavailable.Inc();
      m_.up.Set(0);
    } else if (kind == "timeout") {
      m_.error_timeout.Inc();
      m_.up.Set(0);
    } else if (kind == "full") {
      m_.error_full.Inc();
    } else if (kind == "corruption") {
      m_.error_corruption.Inc();
    } else {
      m_.error_internal.Inc();
    }
  }

  void RefreshSize(absl::Time now) {
    std::optional<uint64_t> size = inner_->ApproximateSizeBytes();
    if (size.has_value()) m_.size_bytes.Set(static_cast<double>(*size));
    absl::MutexLock l(&mu_);
    last_size_ = now;
  }

  std::unique_ptr<KvStore> inner_;
  StoreMetrics m_;  // handles are thread-safe
  const absl::Duration size_refresh_;
  absl::Mutex mu_;
  absl::Time last_size_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

StoreMetrics StoreMetrics::Create(MetricsRegistry& r,
                                  const std::string& backend) {
  const std::map<std::string, std::string> b = {{"backend", backend}};
  StoreMetrics m;
  m.write_duration =
      r.GetHistogram("consortia_storage_store_write_duration_seconds",
                     "Time for the store to apply one atomic batch durably",
                     LatencyBuckets(), b);
  m.write_batch_ops =
      r.GetHistogram("consortia_storage_store_write_batch_ops",
                     "Puts and deletes in one atomic batch", OpsBuckets(), b);
  m.write_batch_bytes = r.GetHistogram(
      "consortia_storage_store_write_batch_bytes",
      "Bytes of keys and values in one atomic batch", ByteBuckets(), b);
  m.size_bytes = r.GetGauge(
      "consortia_storage_store_size_bytes",
      "Approximate size of the store (disk for rocksdb, memory for redis)", b);
  m.up =
      r.GetGauge("consortia_storage_store_up",
                 "1 while the store answers, 0 while it cannot be reached", b);
  const std::string e = "consortia_storage_store_errors_total";
  const std::string eh = "Failed store reads and writes, by kind";
  auto kind = [&](const char* k) {
    return r.GetCounter(e, eh, {{"backend", backend}, {"kind", k}});
  };
  m.error_unavailable = kind("unavailable");
  m.error_timeout = kind("timeout");
  m.error_full = kind("full");
  m.error_corruption = kind("corruption");
  m.error_internal = kind("internal");
  return m;
}

std::string_view StoreErrorKind(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kResourceExhausted:
      return "full";
    case absl::StatusCode::kDataLoss:
      return "corruption";
    default:
      return "internal";
  }
}

std::unique_ptr<KvStore> WithStoreMetrics(std::unique_ptr<KvStore> inner,
                                          StoreMetrics metrics,
                                          absl::Duration size_refresh) {
  return std::make_unique<MeteredKvStore>(std::move(inner), metrics,
                                          size_refresh);
}

}  // namespace consortia::storage
