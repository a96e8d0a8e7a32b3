// The consensus write-ahead log: what this validator signed, persisted before
// it leaves the process, so that a restarted validator never signs a vote that
// conflicts with one it sent before.
//
// On-disk layout. A WAL is a directory (normally <data_dir>/consensus/wal)
// holding a LOCK file and numbered segments "seg-<20 digits>.wal". A segment
// is a sequence of CRC-32C frames (wal_frame.h), each holding one record
// (wal_record.h). File access goes through WalEnv (wal_env.h); a validator
// signs through DoubleSignGuard (double_sign_guard.h), which appends here
// before a signature leaves the process.
//
// Recovery rules (Wal::Open):
// - Only the last segment can end in a torn write: every earlier segment was
//   synced before the next one was created. In the last segment the first
//   frame that is short (truncated header or payload), has an impossible
//   length (0 or over max_record_bytes) or a checksum mismatch ends the log:
//   that frame and EVERYTHING after it is cut off (the file is truncated to
//   the end of the last good frame and synced), even if valid-looking frames
//   follow. A record after a bad one is never trusted, because nothing tells a
//   torn tail from a damaged middle. The cut is returned in WalOpenReport,
//   counted in WalStats and logged.
// - A bad frame in an earlier (sealed) segment is not a crash artefact but
//   damaged storage; cutting it would mean dropping the newer segments, which
//   hold votes already sent. Open refuses with DataLoss and the operator
//   decides.
// - A frame whose checksum verifies but whose payload does not decode (a
//   record kind from a newer version, or the retired kind 4, for example) is
//   refused with DataLoss too: it was written whole, so discarding it could
//   forget a vote.
//
// Segments and compaction: after an appended EndHeight, if the current segment
// has reached max_segment_bytes, a new segment is started, and the oldest
// segments whose records all lie at heights <= last EndHeight - keep_heights
// are deleted (oldest first, so the remaining segments stay contiguous).
#ifndef CONSORTIA_CONSENSUS_SRC_WAL_H_
#define CONSORTIA_CONSENSUS_SRC_WAL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"
#include "consortia/types.h"
#include "wal_env.h"
#include "wal_frame.h"
#include "wal_record.h"

namespace consortia::consensus {

struct WalOptions {
  // A new segment starts after an EndHeight once the current one has this
  // many bytes.
  uint64_t max_segment_bytes = 64ull << 20;
  // Segments whose records all lie at heights <= last EndHeight - keep_heights
  // are deleted at rotation; votes of later heights are always kept.
  uint64_t keep_heights = 1000;
  // Frames with a longer payload are treated as corrupt.
  size_t max_record_bytes = kDefaultMaxWalRecordBytes;
  // File access; nullptr = POSIX. Must outlive the Wal.
  WalEnv* env = nullptr;
};

// What Open found and repaired.
struct WalOpenReport {
  size_t segments = 0;      // segments read
  uint64_t records = 0;     // good records read
  bool tail_cut = false;    // a bad tail was cut off the last segment
  std::string cut_segment;  // its path
  uint64_t cut_offset = 0;  // the segment's size after the cut
  uint64_t cut_bytes = 0;   // how many bytes were dropped
  std::string cut_reason;   // what was wrong at cut_offset
  uint64_t last_end_height = 0;
};

// Counters since Open (the caller exports them as metrics).
struct WalStats {
  uint64_t tail_cuts = 0;  // 0 or 1: a bad tail cut at Open
  uint64_t bytes_cut = 0;
  uint64_t records_appended = 0;
  uint64_t syncs = 0;
  uint64_t write_failures = 0;  // failed writes or syncs
  uint64_t segments_created = 0;
  uint64_t segments_deleted = 0;
};

// The write-ahead log of one validator. Append returns only after the record
// is durable (written and fdatasync'ed): send a vote only after Append
// returned OK for it. The log also keeps in memory the votes and proposals of
// the retained heights, for the double-sign checks.
//
// Failure model: an error while writing or syncing is sticky. Every later
// Append returns FailedPrecondition, because after a failed fsync the kernel
// no longer tells what reached the disk; the process must treat the vote as
// not sent and restart, and Open then recovers from what is on disk (a record
// whose Append failed may or may not be there; either is safe, since it was
// not sent).
//
// Thread-safe; Append serialises callers (each one waits for its fsync).
class Wal {
 public:
  // Opens (creating if needed) the WAL in directory `dir` and reads every
  // segment, cutting a bad tail of the last one (see the file comment).
  // Errors: FailedPrecondition if another Wal holds the directory's lock;
  // DataLoss for damage that is not a torn tail (a bad frame in a sealed
  // segment, a whole frame that does not decode, a missing segment in the
  // middle); Internal for I/O errors. `report` may be nullptr.
  static absl::StatusOr<std::unique_ptr<Wal>> Open(const std::string& dir,
                                                   const WalOptions& options,
                                                   WalOpenReport* report);
  ~Wal();

  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Appends one record and syncs it before returning. Errors:
  // - FailedPrecondition: a vote that conflicts with a logged vote (same
  //   height, round and type, other block hash), or the log failed earlier.
  // - InvalidArgument: an EndHeight below the last one.
  // - Internal: the write or sync failed: the record is NOT durable, do not
  //   send it (and the log is now failed, see above).
  // A vote identical to a logged one is not written again and returns OK.
  absl::Status Append(const WalRecord& record);
  // As Append for several records with one write and one sync. They are
  // checked first: if any is refused, none is written.
  absl::Status AppendBatch(std::span<const WalRecord> records);

  // The records after the last EndHeight, in the order they were appended
  // (what a restarted engine replays to resume its height).
  std::vector<WalRecord> Replay() const;
  // The height of the last EndHeight record (0 if none).
  uint64_t last_end_height() const;

  // The logged vote for (height, round, type), if this validator signed one.
  // Kept for heights > last_end_height() - keep_heights.
  std::optional<Vote> FindSignedVote(uint64_t height, uint32_t round,
                                     VoteType type) const;
  // The logged proposal message for (height, round).
  std::optional<Bytes> FindProposal(uint64_t height, uint32_t round) const;

  WalStats stats() const;
  // Paths of the current segments, oldest first. A test hook: tests damage
  // segments through it.
  std::vector<std::string> TestOnlySegmentPaths() const;

 private:
  using VoteKey = std::tuple<uint64_t, uint32_t, uint8_t>;  // height,round,type
  struct Segment {
    uint64_t number = 0;
    uint64_t size = 0;
    uint64_t max_height = 0;  // highest height of any record in it
  };

  Wal(std::string dir, const WalOptions& options,
      std::unique_ptr<WalEnv> owned_env, WalEnv* env);
  std::string SegmentPath(uint64_t number) const;
  // Checks records against the logged state; fills *skip for duplicates.
  absl::Status CheckLocked(std::span<const WalRecord> records,
                           std::vector<bool>* skip) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a durable record to the in-memory state.
  void ApplyLocked(const WalRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a new segment and deletes old ones when due.
  void MaybeRotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const WalOptions options_;
  const std::unique_ptr<WalEnv> owned_env_;
  WalEnv* const env_;

  mutable absl::Mutex mu_;
  std::unique_ptr<WalFileLock> lock_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WalWritableFile> file_ ABSL_GUARDED_BY(mu_);
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu_);  // oldest first
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  uint64_t last_end_height_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<WalRecord> since_end_ ABSL_GUARDED_BY(mu_);
  std::map<VoteKey, Vote> votes_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<uint64_t, uint32_t>, Bytes> proposals_
      ABSL_GUARDED_BY(mu_);
  WalStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_WAL_H_
