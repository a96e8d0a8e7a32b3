// The hash chain of the api's audit log (services/api, --api_audit_log):
// JSON lines, each sealed with the hash of the line before it, so that an
// edited, removed, inserted or reordered line is detected. The api writes
// the lines; `consortia audit verify FILE` checks a log. docs/api.md
// ("Audit log") documents the format.
//
// A line is a JSON object whose last two fields are
//   ..., "prev": "<hash of the line before, 64 hex digits>",
//        "hash": "<SHA-256 of the line's bytes up to ,"hash">"}
// The first line's prev is 64 zeros. So a line edited by hand no longer
// matches its own hash (detected at that line); one edited and re-hashed no
// longer matches the next line's prev (detected at the next line); a removed,
// inserted or moved line breaks prev at the first line after the change.
// Removing the last lines is only detected against a head hash kept
// elsewhere: `audit verify` prints the head (last hash) for that purpose.
//
// Pure functions and a single-threaded verifier: thread-compatible.
#ifndef CONSORTIA_COMMON_AUDIT_CHAIN_H_
#define CONSORTIA_COMMON_AUDIT_CHAIN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace consortia {

// The prev of the first line: 64 zeros.
std::string AuditChainStart();

// Seals one record. `record_json` is a JSON object with at least one field
// and neither "prev" nor "hash" (the caller builds it); the result is the
// line, without its newline: the record's fields, then "prev" and "hash".
std::string SealAuditLine(std::string_view record_json,
                          std::string_view prev_hash_hex);

// The seal of one line: the hash it claims for the line before it, and its
// own hash.
struct AuditSeal {
  std::string prev;
  std::string hash;
};
// Checks one line on its own: a JSON object (strict: no repeated field) that
// ends with "prev" and "hash" as SealAuditLine writes them, and whose hash is
// the SHA-256 of its bytes before ,"hash". InvalidArgument saying what is
// wrong otherwise.
absl::StatusOr<AuditSeal> CheckAuditLine(std::string_view line);

// Checks a whole log, line by line (streaming: any size).
class AuditChainVerifier {
 public:
  // The next line, without its newline. False (and from then on always
  // false) at the first bad line.
  bool Add(std::string_view line);
  AuditChainVerifier() = default;
  // Continues a chain whose last line had the hash `after`.
  explicit AuditChainVerifier(std::string after) : head_(std::move(after)) {}
  // Marks the last line given as cut short (the file did not end with a
  // newline: a write torn by a crash, or a truncated copy).
  void MarkIncompleteLastLine();

  bool ok() const { return bad_line_ == 0; }
  // Lines given so far (1-based number of the last one).
  uint64_t lines() const { return lines_; }
  // The first bad line's number (0 while all are good) and why it is bad.
  uint64_t bad_line() const { return bad_line_; }
  const std::string& reason() const { return reason_; }
  // The hash of the last good line (AuditChainStart() before any).
  const std::string& head() const { return head_; }

 private:
  uint64_t lines_ = 0;
  uint64_t bad_line_ = 0;
  std::string reason_;
  std::string head_ = AuditChainStart();
};

// What VerifyAuditLogFile found.
struct AuditReport {
  bool ok = false;
  uint64_t lines = 0;     // lines read (up to and including the bad one)
  uint64_t bad_line = 0;  // 1-based; 0 when ok
  std::string reason;     // why bad_line is bad
  std::string head;       // hash of the last good line
  // With several files: the file of bad_line (bad_line then counts the
  // lines of that file only), and the lines of all files read.
  std::string bad_file;
  uint64_t total_lines = 0;
};
// Reads the log at `path` with an AuditChainVerifier. NotFound /
// PermissionDenied / Internal when it cannot be read; a bad chain is an OK
// status with report.ok false.
absl::StatusOr<AuditReport> VerifyAuditLogFile(const std::string& path);
// The same over a log rotated into several files (--api_audit_log_max_bytes:
// audit.log.000001, audit.log.000002, ..., audit.log), given oldest first:
// one chain, each file's first line carrying the hash of the last line of
// the file before. `after` is the prev of the first line of the first file
// (AuditChainStart() for a log from its beginning; a head kept earlier to
// check only the files rotated since).
absl::StatusOr<AuditReport> VerifyAuditLogFiles(
    const std::vector<std::string>& paths,
    const std::string& after = AuditChainStart());

}  // namespace consortia

#endif  // CONSORTIA_COMMON_AUDIT_CHAIN_H_
