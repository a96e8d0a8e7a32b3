// The consensus write-ahead log: what this validator signed, persisted before
// it leaves the process, so that a restarted validator never signs a vote that
// conflicts with one it sent before.
//
// On-disk layout. A WAL is a directory (normally <data_dir>/consensus/wal)
// holding a LOCK file and numbered segments "seg-<20 digits>.wal". A segment
// is a sequence of frames:
//
//   [u32 length, little-endian][u32 crc32c, little-endian][payload]
//
// where length is the payload size (1 .. max_record_bytes) and the checksum is
// CRC-32C (Castagnoli) over the four length bytes followed by the payload, so
// a damaged length field is caught as well as a damaged payload. The payload is
// one record in the project codec (consortia/codec.h): a kind byte, then
//   1 SignedVote:     bytes EncodeVote(vote)       (signature included)
//   2 SignedProposal: varint height, varint round, bytes message (opaque)
//   3 EndHeight:      varint height
//   4 LockState:      varint height, varint round, then twice (locked, valid)
//                     bool present [, varint round, 32-byte value hash]
//   5 Polka:          varint height, varint count (<= 1024), then count
//                     times bytes EncodeVote(vote), then bytes proposal
//                     (opaque, empty when none)
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
//   record kind from a newer version, for example) is refused with DataLoss
//   too: it was written whole, so discarding it could forget a vote.
//
// Segments and compaction: after an appended EndHeight, if the current segment
// has reached max_segment_bytes, a new segment is started, and the oldest
// segments whose records all lie at heights <= last EndHeight - keep_heights
// are deleted (oldest first, so the remaining segments stay contiguous).
#ifndef CONSORTIA_CONSENSUS_SRC_WAL_H_
#define CONSORTIA_CONSENSUS_SRC_WAL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"
#include "consortia/types.h"

namespace consortia::consensus {

// ---------------------------------------------------------------------------
// Records

// A signed proposal, kept as the opaque encoding of the proposal message (the
// Tendermint engine defines it) with the height and round it is for.
struct WalProposal {
  uint64_t height = 0;
  uint32_t round = 0;
  Bytes message;
  bool operator==(const WalProposal&) const = default;
};

// Height `height` is committed: replay after a restart starts after the last
// one of these.
struct WalEndHeight {
  uint64_t height = 0;
  bool operator==(const WalEndHeight&) const = default;
};

// A round and the hash of the value (block) chosen in it.
struct WalRoundValue {
  uint32_t round = 0;
  Hash32 value_hash{};
  bool operator==(const WalRoundValue&) const = default;
};

// Tendermint's locking state at (height, round): lockedRound/lockedValue and
// validRound/validValue of the paper; absent = -1 / nil.
struct WalLockState {
  uint64_t height = 0;
  uint32_t round = 0;
  std::optional<WalRoundValue> locked;
  std::optional<WalRoundValue> valid;
  bool operator==(const WalLockState&) const = default;
};

// What made this validator lock on a block, logged before its precommit:
// the prevotes of more than two thirds of the power (the "polka", other
// validators' votes) and the proposal that carries the block (its encoding;
// empty when the proposal is this validator's own, logged already). A
// restarted validator replays them with its own messages, so it can show
// its lock's justification to its peers and re-propose the block: without
// them a lock whose polka or block no live peer still holds could never be
// released (a liveness loss the simulation finds).
struct WalPolka {
  uint64_t height = 0;
  std::vector<Vote> votes;
  Bytes proposal;
  bool operator==(const WalPolka&) const = default;
};

// One WAL record. A Vote is a vote this validator signed (with its signature).
using WalRecord =
    std::variant<Vote, WalProposal, WalEndHeight, WalLockState, WalPolka>;

// The height a record belongs to.
uint64_t WalRecordHeight(const WalRecord& r);

// The payload encoding of a record (kind byte + fields), and its inverse.
// DecodeWalRecord returns InvalidArgument for an unknown kind, malformed
// fields or trailing bytes.
Bytes EncodeWalRecord(const WalRecord& r);
absl::StatusOr<WalRecord> DecodeWalRecord(ByteView payload);

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of data, continuing
// from a previous value `crc` (0 to start).
uint32_t Crc32c(uint32_t crc, ByteView data);

inline constexpr size_t kWalFrameHeaderBytes = 8;
// Large enough for a proposal that carries a full block.
inline constexpr size_t kDefaultMaxWalRecordBytes = kMaxBlockBytes + (1 << 20);

// Appends the frame of one record (header + payload) to *out.
void AppendWalFrame(const WalRecord& r, Bytes* out);

// What ScanWalSegment found.
struct WalSegmentScan {
  enum class Tail {
    kClean,        // every byte belongs to a good frame
    kTruncated,    // a frame header or payload runs past the end of the data
    kBadLength,    // a length of 0 or over max_record_bytes
    kBadChecksum,  // the checksum does not match the length and payload
    kUndecodable,  // the checksum matches but the payload does not decode
  };
  std::vector<WalRecord> records;  // the good records, in order
  std::vector<uint64_t> offsets;   // where each record's frame starts
  uint64_t valid_bytes = 0;        // end of the last good frame
  Tail tail = Tail::kClean;
  std::string detail;  // what was wrong at valid_bytes, "" when clean
};

// Decodes the frames of one segment's bytes, stopping at the first bad frame
// (see the recovery rules above). Never fails and never reads past `data`;
// every returned record came from a frame whose checksum verified.
WalSegmentScan ScanWalSegment(
    ByteView data, size_t max_record_bytes = kDefaultMaxWalRecordBytes);

// ---------------------------------------------------------------------------
// Files

// An open file that is only appended to. Not thread-safe.
class WalWritableFile {
 public:
  virtual ~WalWritableFile() = default;
  // Writes all of data at the end of the file. Internal on an I/O error (the
  // file may then hold part of data).
  virtual absl::Status Append(ByteView data) = 0;
  // Makes everything appended so far durable (fdatasync). Internal on error:
  // then nothing written since the last successful Sync is known to be on
  // disk.
  virtual absl::Status Sync() = 0;
};

// A lock held as long as the object lives.
class WalFileLock {
 public:
  virtual ~WalFileLock() = default;
};

// The file operations the WAL needs, behind an interface so that tests can
// fail or slow them. Implementations are thread-safe. Errors are Internal with
// the path and errno text unless stated otherwise.
class WalEnv {
 public:
  virtual ~WalEnv() = default;
  // Creates dir and missing parents (like mkdir -p), each new directory
  // made durable in its parent.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  // Names (not paths) of the entries in dir.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  virtual absl::StatusOr<Bytes> ReadFile(const std::string& path) = 0;
  // Opens path for appending, creating it if missing.
  virtual absl::StatusOr<std::unique_ptr<WalWritableFile>> OpenAppend(
      const std::string& path) = 0;
  // Cuts path to size bytes and makes that durable.
  virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // Makes the directory's entries (created or removed files) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // An exclusive advisory lock on path (created if missing), also against
  // other opens in this process. FailedPrecondition if someone holds it.
  virtual absl::StatusOr<std::unique_ptr<WalFileLock>> Lock(
      const std::string& path) = 0;
};

// Plain POSIX files (open/write/fdatasync/ftruncate/flock).
std::unique_ptr<WalEnv> NewPosixWalEnv();

// ---------------------------------------------------------------------------
// The log

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
  // Every logged vote at height, by round then type.
  std::vector<Vote> LastSignedVotes(uint64_t height) const;
  // The logged proposal message for (height, round).
  std::optional<Bytes> FindProposal(uint64_t height, uint32_t round) const;

  WalStats stats() const;
  // Paths of the current segments, oldest first.
  std::vector<std::string> SegmentPaths() const;

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

// ---------------------------------------------------------------------------
// The double-sign guard

// Signs votes and proposals only through the WAL: a new one is logged (and
// synced) before it is returned, and one that would conflict with a logged one
// is refused, the logged one being returned to re-send instead.
// Thread-safe (one sign-and-log at a time).
class DoubleSignGuard {
 public:
  // Makes a signed vote for exactly (type, height, round, block_hash).
  using SignVoteFn = std::function<absl::StatusOr<Vote>(
      VoteType type, uint64_t height, uint32_t round, const Hash32& hash)>;
  // Makes the signed proposal message for the guarded (height, round).
  using MakeProposalFn = std::function<absl::StatusOr<Bytes>()>;

  enum class Outcome {
    kSigned,    // newly signed and logged: send it
    kResent,    // the same vote/proposal was logged before: send it again
    kConflict,  // another one was logged for this slot: refused; `vote` /
                // `message` is the logged one, to re-send instead
  };
  struct VoteResult {
    Outcome outcome = Outcome::kSigned;
    Vote vote;
  };
  struct ProposalResult {
    Outcome outcome = Outcome::kSigned;
    Bytes message;
  };

  // `wal` must outlive the guard.
  DoubleSignGuard(Wal* wal, SignVoteFn sign_vote);

  // The vote to send for (type, height, round, block_hash). Errors (send
  // nothing): FailedPrecondition for a vote not logged before at a height
  // <= wal->last_end_height() (that height is over); the signer's error;
  // Internal if the signer returned a different vote; the WAL's Append error
  // (the vote is not durable).
  absl::StatusOr<VoteResult> SignVote(VoteType type, uint64_t height,
                                      uint32_t round, const Hash32& block_hash);
  // The proposal to send at (height, round): the logged one if any (kResent:
  // a proposer proposes once per round), else make() is called and its
  // result logged first. Errors as SignVote.
  absl::StatusOr<ProposalResult> SignProposal(uint64_t height, uint32_t round,
                                              const MakeProposalFn& make);

 private:
  Wal* const wal_;
  const SignVoteFn sign_vote_;
  absl::Mutex mu_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_WAL_H_
