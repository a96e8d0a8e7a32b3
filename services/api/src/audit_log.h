// The api's audit log (--api_audit_log, issue 13): one JSON line per write
// request (a submission; per tx of a batch) from an identified caller, sealed
// into a hash chain (consortia/audit_chain.h) that `consortia audit verify
// FILE` checks.
//
// Durability: lines are written by the log's own thread, never by an HTTP or
// batcher thread. The lines that arrive while one write is under way are
// written together and made durable with one fdatasync; only then does each
// request get its answer (the `done` callback of Append). So an answered
// submission is always in the log, even after a crash, and concurrent
// submissions share the cost of one fdatasync.
#ifndef CONSORTIA_API_AUDIT_LOG_H_
#define CONSORTIA_API_AUDIT_LOG_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api_metrics.h"

namespace consortia::api {

// One write request as the audit log records it.
struct AuditRecord {
  absl::Time time;
  // The caller's key and organisation; nullopt (JSON null) when the api
  // checks no keys (no --api_keys_file).
  std::optional<std::string> org;
  std::optional<std::string> key_id;
  std::string client;  // the client's IP address (HttpRequest::client)
  std::string route;   // "POST /v1/txs" or "POST /v1/txs:batch"
  // The hashes of the request's transactions (none when the body was not a
  // transaction, or the request was refused before it was read).
  std::vector<std::string> tx_hashes;
  int status = 0;
  // "accepted", "already-pending", or the problem type's slug of the
  // refusal ("bad-signature", "quota-exceeded", "api-key-revoked", ...).
  std::string outcome;
  std::string trace;  // the request's X-Trace-Id
};

// The record's JSON object, fields in this order: time (RFC 3339, UTC, with
// milliseconds), org, key_id, client, route, tx_hashes, status, outcome,
// trace. (SealAuditLine appends prev and hash.)
std::string AuditRecordJson(const AuditRecord& r);

// Thread-safe. Destruction writes what is queued and runs every callback.
class AuditLog {
 public:
  // Opens `path` for appending (creating it, mode 0640) and continues its
  // chain from its last line. FailedPrecondition when another process holds
  // the file (an exclusive flock: two processes must not append to one log;
  // give every api replica its own file), or when the last complete line is
  // not a sealed audit line (the file was tampered with, or is not an audit
  // log: check it with `consortia audit verify` and move it away). A last
  // line without its newline is a write torn by a crash: no request was
  // answered for it (answers wait for fdatasync), so it is cut off, and
  // logged. Errors of open/read otherwise. `metrics` must outlive the log.
  //
  // Rotation (`max_bytes` > 0, --api_audit_log_max_bytes): before a write,
  // a file that has reached `max_bytes` is renamed to `path`.NNNNNN (000001,
  // 000002, ...: oldest first in name order) and a new `path` is started
  // whose first line carries the hash of the old file's last line, so that
  // `consortia audit verify path.* path` checks the files as one chain. When
  // `path` is empty or absent at Open (a crash right after a rotation), the
  // chain continues from the last line of the newest rotated file.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        size_t max_queued,
                                                        ApiMetrics* metrics,
                                                        uint64_t max_bytes = 0);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues a line; `done` runs on the log's thread once it is durable, or
  // once writing it failed (the line is then logged as an error with its
  // content, and counted). Never blocks on the disk.
  void Append(const AuditRecord& record, std::function<void()> done);

  // False while `max_queued` lines are waiting, or after a failed write
  // (then true for one moment per second, so that one request may find out
  // whether the disk is back): the api then refuses submissions with 503
  // audit-unavailable instead of sending them to the mempool unlogged.
  bool Accepting() const;

  // The hash of the last line on disk (the chain's head).
  std::string head() const;

 private:
  struct Pending {
    std::string json;
    std::function<void()> done;
  };

  AuditLog(std::string path, int fd, uint64_t size, std::string head,
           size_t max_queued, ApiMetrics* metrics, uint64_t max_bytes,
           uint64_t next_rotation);
  void Loop();
  // Renames the file to path_.NNNNNN and starts a new one (the writer
  // thread, before a write); on failure logs it and keeps the old file.
  void Rotate();
  // Seals and writes `batch`; true when it is durable.
  bool Write(const std::vector<Pending>& batch);

  const std::string path_;
  int fd_;  // changed by Rotate only (the writer thread)
  const uint64_t max_bytes_;
  const size_t max_queued_;
  ApiMetrics* const metrics_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::string head_ ABSL_GUARDED_BY(mu_);
  // Set while writes fail; the time of the last failure.
  std::optional<absl::Time> failed_at_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time last_probe_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  // Only the writer thread touches these.
  uint64_t size_;           // bytes of complete lines on disk
  uint64_t next_rotation_;  // the NNNNNN of the next rotated file

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_AUDIT_LOG_H_
