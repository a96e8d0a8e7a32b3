#include "wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "consortia/codec.h"
#include "spdlog/spdlog.h"

#define WAL_RETURN_IF_ERROR(expr)              \
  do {                                         \
    absl::Status wal_status_ = (expr);         \
    if (!wal_status_.ok()) return wal_status_; \
  } while (0)

namespace consortia::consensus {
namespace {

enum RecordKind : uint8_t {
  kKindVote = 1,
  kKindProposal = 2,
  kKindEndHeight = 3,
  kKindLockState = 4,
  kKindPolka = 5,
};

// Votes in one Polka record: at most every validator's vote.
constexpr uint64_t kMaxPolkaVotes = 1024;

// An encoded Vote is far below this (the signature is at most
// kMaxSignatureBytes).
constexpr size_t kMaxEncodedVoteBytes = 1024;

constexpr std::string_view kSegmentPrefix = "seg-";
constexpr std::string_view kSegmentSuffix = ".wal";
constexpr size_t kSegmentDigits = 20;

absl::Status GetVarint32(Decoder* d, uint32_t* v) {
  uint64_t x = 0;
  WAL_RETURN_IF_ERROR(d->GetVarint(&x));
  if (x > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("round over 32 bits at offset ", d->offset()));
  }
  *v = static_cast<uint32_t>(x);
  return absl::OkStatus();
}

void PutRoundValue(const std::optional<WalRoundValue>& rv, Encoder* e) {
  e->PutBool(rv.has_value());
  if (rv.has_value()) {
    e->PutVarint(rv->round);
    e->PutHash(rv->value_hash);
  }
}

absl::Status GetRoundValue(Decoder* d, std::optional<WalRoundValue>* rv) {
  bool present = false;
  WAL_RETURN_IF_ERROR(d->GetBool(&present));
  if (!present) {
    rv->reset();
    return absl::OkStatus();
  }
  WalRoundValue v;
  WAL_RETURN_IF_ERROR(GetVarint32(d, &v.round));
  WAL_RETURN_IF_ERROR(d->GetHash(&v.value_hash));
  *rv = v;
  return absl::OkStatus();
}

void PutU32Le(uint32_t v, uint8_t* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t GetU32Le(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(in[i]) << (8 * i);
  return v;
}

uint32_t FrameChecksum(const uint8_t* length_le, ByteView payload) {
  return Crc32c(Crc32c(0, ByteView(length_le, 4)), payload);
}

std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

const char* TailName(WalSegmentScan::Tail t) {
  switch (t) {
    case WalSegmentScan::Tail::kClean:
      return "clean";
    case WalSegmentScan::Tail::kTruncated:
      return "truncated frame";
    case WalSegmentScan::Tail::kBadLength:
      return "bad frame length";
    case WalSegmentScan::Tail::kBadChecksum:
      return "checksum mismatch";
    case WalSegmentScan::Tail::kUndecodable:
      return "undecodable record";
  }
  return "?";
}

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

// ---------------------------------------------------------------------------
// POSIX files

absl::Status ErrnoError(std::string_view what, const std::string& path,
                        int err) {
  return absl::InternalError(
      absl::StrCat(std::string(what), " ", path, ": ", std::strerror(err)));
}

class PosixWritableFile final : public WalWritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { ::close(fd_); }

  absl::Status Append(ByteView data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write", path_, errno);
      }
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoError("fdatasync", path_, errno);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileLock final : public WalFileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // releases the flock

 private:
  const int fd_;
};

class PosixWalEnv final : public WalEnv {
 public:
  absl::Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return absl::InvalidArgumentError("empty directory");
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
      if (pos != dir.size() && dir[pos] != '/') continue;
      std::string prefix = dir.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0755) != 0) {
        if (errno == EEXIST) continue;
        return ErrnoError("mkdir", prefix, errno);
      }
      // A new directory's entry must be durable too, or a power loss could
      // take the whole log with it.
      const size_t slash = prefix.find_last_of('/');
      const std::string parent = slash == std::string::npos ? "."
                                 : slash == 0               ? "/"
                                              : prefix.substr(0, slash);
      if (absl::Status s = SyncDir(parent); !s.ok()) return s;
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return ErrnoError("stat", dir, errno);
    if (!S_ISDIR(st.st_mode)) {
      return absl::InternalError(absl::StrCat(dir, " is not a directory"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoError("opendir", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  absl::StatusOr<Bytes> ReadFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    Bytes out;
    uint8_t buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return ErrnoError("read", path, err);
      }
      if (n == 0) break;
      out.insert(out.end(), buf, buf + n);
    }
    ::close(fd);
    return out;
  }

  absl::StatusOr<std::unique_ptr<WalWritableFile>> OpenAppend(
      const std::string& path) override {
    int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("open", path, errno);
    return std::unique_ptr<WalWritableFile>(new PosixWritableFile(path, fd));
  }

  absl::Status Truncate(const std::string& path, uint64_t size) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    absl::Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      s = ErrnoError("ftruncate", path, errno);
    } else if (::fsync(fd) != 0) {
      s = ErrnoError("fsync", path, errno);
    }
    ::close(fd);
    return s;
  }

  absl::Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", dir, errno);
    absl::Status s;
    if (::fsync(fd) != 0) s = ErrnoError("fsync", dir, errno);
    ::close(fd);
    return s;
  }

  absl::StatusOr<std::unique_ptr<WalFileLock>> Lock(
      const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("open", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, " is locked: another process (or Wal) uses this WAL"));
      }
      return ErrnoError("flock", path, err);
    }
    return std::unique_ptr<WalFileLock>(new PosixFileLock(fd));
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// Records and frames

uint32_t Crc32c(uint32_t crc, ByteView data) {
  static const std::array<uint32_t, 256> kTable = MakeCrc32cTable();
  uint32_t c = ~crc;
  for (uint8_t b : data) c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
  return ~c;
}

uint64_t WalRecordHeight(const WalRecord& r) {
  return std::visit([](const auto& x) -> uint64_t { return x.height; }, r);
}

Bytes EncodeWalRecord(const WalRecord& r) {
  Encoder e;
  if (const Vote* v = std::get_if<Vote>(&r)) {
    e.PutU8(kKindVote);
    e.PutBytes(EncodeVote(*v));
  } else if (const WalProposal* p = std::get_if<WalProposal>(&r)) {
    e.PutU8(kKindProposal);
    e.PutVarint(p->height);
    e.PutVarint(p->round);
    e.PutBytes(p->message);
  } else if (const WalEndHeight* h = std::get_if<WalEndHeight>(&r)) {
    e.PutU8(kKindEndHeight);
    e.PutVarint(h->height);
  } else if (const WalPolka* pv = std::get_if<WalPolka>(&r)) {
    e.PutU8(kKindPolka);
    e.PutVarint(pv->height);
    e.PutVarint(pv->votes.size());
    for (const Vote& v : pv->votes) e.PutBytes(EncodeVote(v));
    e.PutBytes(pv->proposal);
  } else {
    const WalLockState& l = std::get<WalLockState>(r);
    e.PutU8(kKindLockState);
    e.PutVarint(l.height);
    e.PutVarint(l.round);
    PutRoundValue(l.locked, &e);
    PutRoundValue(l.valid, &e);
  }
  return e.Take();
}

absl::StatusOr<WalRecord> DecodeWalRecord(ByteView payload) {
  Decoder d(payload);
  uint8_t kind = 0;
  WAL_RETURN_IF_ERROR(d.GetU8(&kind));
  WalRecord out;
  switch (kind) {
    case kKindVote: {
      Bytes enc;
      WAL_RETURN_IF_ERROR(d.GetBytes(&enc, kMaxEncodedVoteBytes));
      absl::StatusOr<Vote> v = DecodeVote(enc);
      if (!v.ok()) return v.status();
      out = *std::move(v);
      break;
    }
    case kKindProposal: {
      WalProposal p;
      WAL_RETURN_IF_ERROR(d.GetVarint(&p.height));
      WAL_RETURN_IF_ERROR(GetVarint32(&d, &p.round));
      WAL_RETURN_IF_ERROR(d.GetBytes(&p.message, payload.size()));
      out = std::move(p);
      break;
    }
    case kKindEndHeight: {
      WalEndHeight h;
      WAL_RETURN_IF_ERROR(d.GetVarint(&h.height));
      out = h;
      break;
    }
    case kKindLockState: {
      WalLockState l;
      WAL_RETURN_IF_ERROR(d.GetVarint(&l.height));
      WAL_RETURN_IF_ERROR(GetVarint32(&d, &l.round));
      WAL_RETURN_IF_ERROR(GetRoundValue(&d, &l.locked));
      WAL_RETURN_IF_ERROR(GetRoundValue(&d, &l.valid));
      out = l;
      break;
    }
    case kKindPolka: {
      WalPolka pv;
      WAL_RETURN_IF_ERROR(d.GetVarint(&pv.height));
      uint64_t n = 0;
      // Each vote takes at least a length byte and a few fields.
      WAL_RETURN_IF_ERROR(d.GetCount(&n, kMaxPolkaVotes, 8));
      pv.votes.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        Bytes enc;
        WAL_RETURN_IF_ERROR(d.GetBytes(&enc, kMaxEncodedVoteBytes));
        absl::StatusOr<Vote> v = DecodeVote(enc);
        if (!v.ok()) return v.status();
        pv.votes.push_back(*std::move(v));
      }
      WAL_RETURN_IF_ERROR(d.GetBytes(&pv.proposal, payload.size()));
      out = std::move(pv);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown WAL record kind ", kind));
  }
  WAL_RETURN_IF_ERROR(d.ExpectEnd());
  return out;
}

void AppendWalFrame(const WalRecord& r, Bytes* out) {
  Bytes payload = EncodeWalRecord(r);
  uint8_t header[kWalFrameHeaderBytes];
  PutU32Le(static_cast<uint32_t>(payload.size()), header);
  PutU32Le(FrameChecksum(header, payload), header + 4);
  out->insert(out->end(), header, header + kWalFrameHeaderBytes);
  out->insert(out->end(), payload.begin(), payload.end());
}

WalSegmentScan ScanWalSegment(ByteView data, size_t max_record_bytes) {
  WalSegmentScan scan;
  size_t pos = 0;
  auto stop = [&](WalSegmentScan::Tail tail, std::string detail) {
    scan.tail = tail;
    scan.detail = absl::StrCat(TailName(tail), " at offset ", pos, ": ",
                               std::move(detail));
  };
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    if (left < kWalFrameHeaderBytes) {
      stop(WalSegmentScan::Tail::kTruncated,
           absl::StrCat(left, " bytes, less than a frame header"));
      break;
    }
    const uint8_t* header = data.data() + pos;
    const uint32_t length = GetU32Le(header);
    if (length == 0 || length > max_record_bytes) {
      stop(WalSegmentScan::Tail::kBadLength, absl::StrCat("length ", length));
      break;
    }
    if (left - kWalFrameHeaderBytes < length) {
      stop(WalSegmentScan::Tail::kTruncated,
           absl::StrCat("length ", length, " but ", left - kWalFrameHeaderBytes,
                        " bytes left"));
      break;
    }
    ByteView payload = data.subspan(pos + kWalFrameHeaderBytes, length);
    if (FrameChecksum(header, payload) != GetU32Le(header + 4)) {
      stop(WalSegmentScan::Tail::kBadChecksum, absl::StrCat("length ", length));
      break;
    }
    absl::StatusOr<WalRecord> rec = DecodeWalRecord(payload);
    if (!rec.ok()) {
      stop(WalSegmentScan::Tail::kUndecodable,
           std::string(rec.status().message()));
      break;
    }
    scan.records.push_back(*std::move(rec));
    scan.offsets.push_back(pos);
    pos += kWalFrameHeaderBytes + length;
    scan.valid_bytes = pos;
  }
  return scan;
}

std::unique_ptr<WalEnv> NewPosixWalEnv() {
  return std::make_unique<PosixWalEnv>();
}

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

std::vector<Vote> Wal::LastSignedVotes(uint64_t height) const {
  absl::MutexLock l(&mu_);
  std::vector<Vote> out;
  for (auto it = votes_.lower_bound(VoteKey{height, 0, 0});
       it != votes_.end() && std::get<0>(it->first) == height; ++it) {
    out.push_back(it->second);
  }
  return out;
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

std::vector<std::string> Wal::SegmentPaths() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const Segment& s : segments_) out.push_back(SegmentPath(s.number));
  return out;
}

// ---------------------------------------------------------------------------
// DoubleSignGuard

DoubleSignGuard::DoubleSignGuard(Wal* wal, SignVoteFn sign_vote)
    : wal_(wal), sign_vote_(std::move(sign_vote)) {}

absl::StatusOr<DoubleSignGuard::VoteResult> DoubleSignGuard::SignVote(
    VoteType type, uint64_t height, uint32_t round, const Hash32& block_hash) {
  absl::MutexLock l(&mu_);
  if (std::optional<Vote> logged = wal_->FindSignedVote(height, round, type)) {
    const Outcome outcome = logged->block_hash == block_hash
                                ? Outcome::kResent
                                : Outcome::kConflict;
    if (outcome == Outcome::kConflict) {
      spdlog::warn(
          "consensus: refused to sign a conflicting vote at height {} round "
          "{}; re-sending the logged one",
          height, round);
    }
    return VoteResult{outcome, *std::move(logged)};
  }
  if (height <= wal_->last_end_height()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to sign a new vote at height ", height,
                     ": the WAL marks heights up to ", wal_->last_end_height(),
                     " as ended"));
  }
  absl::StatusOr<Vote> vote = sign_vote_(type, height, round, block_hash);
  if (!vote.ok()) return vote.status();
  if (vote->type != type || vote->height != height || vote->round != round ||
      vote->block_hash != block_hash) {
    return absl::InternalError("the signer returned a different vote");
  }
  WAL_RETURN_IF_ERROR(wal_->Append(*vote));
  return VoteResult{Outcome::kSigned, *std::move(vote)};
}

absl::StatusOr<DoubleSignGuard::ProposalResult> DoubleSignGuard::SignProposal(
    uint64_t height, uint32_t round, const MakeProposalFn& make) {
  absl::MutexLock l(&mu_);
  if (std::optional<Bytes> logged = wal_->FindProposal(height, round)) {
    return ProposalResult{Outcome::kResent, *std::move(logged)};
  }
  if (height <= wal_->last_end_height()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to propose at height ", height,
                     ": the WAL marks heights up to ", wal_->last_end_height(),
                     " as ended"));
  }
  absl::StatusOr<Bytes> message = make();
  if (!message.ok()) return message.status();
  WAL_RETURN_IF_ERROR(wal_->Append(WalProposal{height, round, *message}));
  return ProposalResult{Outcome::kSigned, *std::move(message)};
}

}  // namespace consortia::consensus
