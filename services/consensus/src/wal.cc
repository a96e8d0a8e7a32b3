#include "wal.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"
#include "wal_return_if_error.h"

namespace consortia::consensus {
namespace {

constexpr std::string_view kSegmentPrefix = "seg-";
constexpr std::string_view kSegmentSuffix = ".wal";
constexpr size_t kSegmentDigits = 20;

// "seg-00000000000000000042.wal" -> 42.
std::optional<uint64_t> ParseSegmentName(std::string_view name) {
  if (name.size() !=
          kSegmentPrefix.size() + kSegmentDigits + kSegmentSuffix.size() ||
      name.substr(0, kSegmentPrefix.size()) != kSegmentPrefix ||
      name.substr(name.size() - kSegmentSuffix.size()) != kSegmentSuffix) {
    return std::nullopt;
  }
  uint64_t n = 0;
  for (char c : name.substr(kSegmentPrefix.size(), kSegmentDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
    if (n > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
      return std::nullopt;
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------
// Wal

Wal::Wal(std::string dir, const WalOptions& options,
         std::unique_ptr<WalEnv> owned_env, WalEnv* env)
    : dir_(std::move(dir)),
      options_(options),
      owned_env_(std::move(owned_env)),
      env_(env) {}

Wal::~Wal() {
  absl::MutexLock l(&mu_);
  file_.reset();
  lock_.reset();
}

std::string Wal::SegmentPath(uint64_t number) const {
  return absl::StrFormat("%s/%s%020u%s", dir_, std::string(kSegmentPrefix),
                         number, std::string(kSegmentSuffix));
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(const std::string& dir,
                                               const WalOptions& options,
                                               WalOpenReport* report) {
  WalOpenReport local_report;
  if (report == nullptr) report = &local_report;
  *report = WalOpenReport();
  if (options.max_record_bytes == 0 ||
      options.max_record_bytes > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("max_record_bytes out of range");
  }

  std::unique_ptr<WalEnv> owned_env;
  WalEnv* env = options.env;
  if (env == nullptr) {
    owned_env = NewPosixWalEnv();
    env = owned_env.get();
  }
  std::unique_ptr<Wal> wal(new Wal(dir, options, std::move(owned_env), env));
  absl::MutexLock l(&wal->mu_);

  WAL_RETURN_IF_ERROR(env->CreateDirs(dir));
  absl::StatusOr<std::unique_ptr<WalFileLock>> lock = env->Lock(dir + "/LOCK");
  if (!lock.ok()) return lock.status();
  wal->lock_ = *std::move(lock);

  absl::StatusOr<std::vector<std::string>> names = env->ListDir(dir);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> numbers;
  for (const std::string& name : *names) {
    if (std::optional<uint64_t> n = ParseSegmentName(name)) {
      numbers.push_back(*n);
    }
  }
  std::sort(numbers.begin(), numbers.end());
  for (size_t i = 1; i < numbers.size(); ++i) {
    if (numbers[i] != numbers[i - 1] + 1) {
      return absl::DataLossError(absl::StrCat(
          "WAL ", dir, ": segment ", numbers[i - 1] + 1, " is missing between ",
          numbers[i - 1], " and ", numbers[i]));
    }
  }

  for (size_t i = 0; i < numbers.size(); ++i) {
    const std::string path = wal->SegmentPath(numbers[i]);
    const bool last = i + 1 == numbers.size();
    absl::StatusOr<Bytes> data = env->ReadFile(path);
    if (!data.ok()) return data.status();
    WalSegmentScan scan = ScanWalSegment(*data, options.max_record_bytes);
    if (scan.tail == WalSegmentScan::Tail::kUndecodable) {
      return absl::DataLossError(absl::StrCat(
          "WAL segment ", path, ": a whole record does not decode (",
          scan.detail, "); refusing to drop it"));
    }
    if (scan.tail != WalSegmentScan::Tail::kClean) {
      if (!last) {
        return absl::DataLossError(absl::StrCat(
            "WAL segment ", path, " is damaged (", scan.detail,
            ") but newer segments follow it: not a torn write; refusing to "
            "start"));
      }
      WAL_RETURN_IF_ERROR(env->Truncate(path, scan.valid_bytes));
      report->tail_cut = true;
      report->cut_segment = path;
      report->cut_offset = scan.valid_bytes;
      report->cut_bytes = data->size() - scan.valid_bytes;
      report->cut_reason = scan.detail;
      wal->stats_.tail_cuts = 1;
      wal->stats_.bytes_cut = report->cut_bytes;
      spdlog::warn(
          "consensus WAL: cut {} bytes off the tail of {} ({}); kept {} "
          "records",
          report->cut_bytes, path, scan.detail, scan.records.size());
    }
    Segment seg;
    seg.number = numbers[i];
    seg.size = scan.valid_bytes;
    for (const WalRecord& r : scan.records) {
      seg.max_height = std::max(seg.max_height, WalRecordHeight(r));
      wal->ApplyLocked(r);
    }
    wal->segments_.push_back(seg);
    report->records += scan.records.size();
  }
  report->segments = numbers.size();

  const bool create = wal->segments_.empty();
  if (create) wal->segments_.push_back(Segment{1, 0, 0});
  absl::StatusOr<std::unique_ptr<WalWritableFile>> file =
      env->OpenAppend(wal->SegmentPath(wal->segments_.back().number));
  if (!file.ok()) return file.status();
  wal->file_ = *std::move(file);
  if (create) {
    WAL_RETURN_IF_ERROR(env->SyncDir(dir));
    wal->stats_.segments_created = 1;
  }
  report->last_end_height = wal->last_end_height_;
  return wal;
}

void Wal::ApplyLocked(const WalRecord& record) {
  if (const Vote* v = std::get_if<Vote>(&record)) {
    votes_.emplace(VoteKey{v->height, v->round, static_cast<uint8_t>(v->type)},
                   *v);
    since_end_.push_back(record);
  } else if (const WalProposal* p = std::get_if<WalProposal>(&record)) {
    proposals_.emplace(std::make_pair(p->height, p->round), p->message);
    since_end_.push_back(record);
  } else if (const WalEndHeight* e = std::get_if<WalEndHeight>(&record)) {
    last_end_height_ = std::max(last_end_height_, e->height);
    since_end_.clear();
    if (last_end_height_ > options_.keep_heights) {
      const uint64_t forget = last_end_height_ - options_.keep_heights;
      votes_.erase(votes_.begin(),
                   votes_.upper_bound(VoteKey{forget, UINT32_MAX, 255}));
      proposals_.erase(proposals_.begin(),
                       proposals_.upper_bound({forget, UINT32_MAX}));
    }
  } else {
    since_end_.push_back(record);
  }
}

absl::Status Wal::CheckLocked(std::span<const WalRecord> records,
                              std::vector<bool>* skip) const {
  if (!failed_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "WAL failed earlier (", failed_.message(), "); restart to recover"));
  }
  // Earlier records of the same batch count as logged.
  std::map<VoteKey, const Vote*> batch_votes;
  std::map<std::pair<uint64_t, uint32_t>, const Bytes*> batch_proposals;
  uint64_t end = last_end_height_;
  skip->assign(records.size(), false);
  for (size_t i = 0; i < records.size(); ++i) {
    const WalRecord& r = records[i];
    if (const Vote* v = std::get_if<Vote>(&r)) {
      VoteKey key{v->height, v->round, static_cast<uint8_t>(v->type)};
      const Vote* logged = nullptr;
      if (auto it = votes_.find(key); it != votes_.end()) {
        logged = &it->second;
      } else if (auto bt = batch_votes.find(key); bt != batch_votes.end()) {
        logged = bt->second;
      }
      if (logged != nullptr) {
        if (logged->block_hash != v->block_hash) {
          return absl::FailedPreconditionError(absl::StrCat(
              "refusing a conflicting vote: height ", v->height, " round ",
              v->round, " type ", static_cast<int>(v->type),
              " was already signed for block ", ToHex(logged->block_hash)));
        }
        (*skip)[i] = true;
      } else {
        batch_votes.emplace(key, v);
      }
    } else if (const WalProposal* p = std::get_if<WalProposal>(&r)) {
      std::pair<uint64_t, uint32_t> key{p->height, p->round};
      const Bytes* logged = nullptr;
      if (auto it = proposals_.find(key); it != proposals_.end()) {
        logged = &it->second;
      } else if (auto bt = batch_proposals.find(key);
                 bt != batch_proposals.end()) {
        logged = bt->second;
      }
      if (logged != nullptr) {
        if (*logged != p->message) {
          return absl::FailedPreconditionError(
              absl::StrCat("refusing a second proposal for height ", p->height,
                           " round ", p->round));
        }
        (*skip)[i] = true;
      } else {
        batch_proposals.emplace(key, &p->message);
      }
    } else if (const WalEndHeight* e = std::get_if<WalEndHeight>(&r)) {
      if (e->height < end) {
        return absl::InvalidArgumentError(absl::StrCat(
            "EndHeight ", e->height, " below the last one, ", end));
      }
      end = e->height;
    }
  }
  return absl::OkStatus();
}

absl::Status Wal::Append(const WalRecord& record) {
  return AppendBatch(std::span<const WalRecord>(&record, 1));
}

absl::Status Wal::AppendBatch(std::span<const WalRecord> records) {
  absl::MutexLock l(&mu_);
  std::vector<bool> skip;
  WAL_RETURN_IF_ERROR(CheckLocked(records, &skip));
  Bytes buf;
  size_t written = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (skip[i]) continue;
    const size_t start = buf.size();
    AppendWalFrame(records[i], &buf);
    if (buf.size() - start - kWalFrameHeaderBytes > options_.max_record_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "WAL record over ", options_.max_record_bytes, " bytes"));
    }
    ++written;
  }
  if (written == 0) return absl::OkStatus();

  absl::Status s = file_->Append(buf);
  if (s.ok()) {
    s = file_->Sync();
    ++stats_.syncs;
  }
  if (!s.ok()) {
    ++stats_.write_failures;
    failed_ = s;
    spdlog::error(
        "consensus WAL: {}; the record is not durable and the WAL refuses "
        "further appends until restart",
        s.ToString());
    return s;
  }
  stats_.records_appended += written;
  Segment& seg = segments_.back();
  seg.size += buf.size();
  bool ended = false;
  for (size_t i = 0; i < records.size(); ++i) {
    if (skip[i]) continue;
    seg.max_height = std::max(seg.max_height, WalRecordHeight(records[i]));
    ApplyLocked(records[i]);
    ended = std::holds_alternative<WalEndHeight>(records[i]);
  }
  if (ended && seg.size >= options_.max_segment_bytes) MaybeRotateLocked();
  return absl::OkStatus();
}

void Wal::MaybeRotateLocked() {
  const uint64_t next = segments_.back().number + 1;
  const std::string path = SegmentPath(next);
  absl::StatusOr<std::unique_ptr<WalWritableFile>> file =
      env_->OpenAppend(path);
  absl::Status s = file.ok() ? env_->SyncDir(dir_) : file.status();
  if (!s.ok()) {
    // The current segment stays usable; rotation is tried again at the next
    // EndHeight.
    spdlog::warn("consensus WAL: cannot start segment {}: {}", path,
                 s.ToString());
    return;
  }
  file_ = *std::move(file);
  segments_.push_back(Segment{next, 0, 0});
  ++stats_.segments_created;

  if (last_end_height_ <= options_.keep_heights) return;
  const uint64_t forget = last_end_height_ - options_.keep_heights;
  bool removed = false;
  while (segments_.size() > 1 && segments_.front().max_height <= forget) {
    const std::string old = SegmentPath(segments_.front().number);
    if (absl::Status r = env_->Remove(old); !r.ok()) {
      spdlog::warn("consensus WAL: cannot delete old segment {}: {}", old,
                   r.ToString());
      break;
    }
    segments_.erase(segments_.begin());
    ++stats_.segments_deleted;
    removed = true;
  }
  if (removed) {
    if (absl::Status r = env_->SyncDir(dir_); !r.ok()) {
      spdlog::warn("consensus WAL: {}", r.ToString());
    }
  }
}

std::vector<WalRecord> Wal::Replay() const {
  absl::MutexLock l(&mu_);
  return since_end_;
}

uint64_t Wal::last_end_height() const {
  absl::MutexLock l(&mu_);
  return last_end_height_;
}

std::optional<Vote> Wal::FindSignedVote(uint64_t height, uint32_t round,
                                        VoteType type) const {
  absl::MutexLock l(&mu_);
  auto it = votes_.find(VoteKey{height, round, static_cast<uint8_t>(type)});
  if (it == votes_.end()) return std::nullopt;
  return it->second;
}

std::optional<Bytes> Wal::FindProposal(uint64_t height, uint32_t round) const {
  absl::MutexLock l(&mu_);
  auto it = proposals_.find({height, round});
  if (it == proposals_.end()) return std::nullopt;
  return it->second;
}

WalStats Wal::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

std::vector<std::string> Wal::TestOnlySegmentPaths() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const Segment& s : segments_) out.push_back(SegmentPath(s.number));
  return out;
}

}  // namespace consortia::consensus
