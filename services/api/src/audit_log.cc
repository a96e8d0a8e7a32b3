#include "audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/audit_chain.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace consortia::api {
namespace {

// The longest last line Open reads back (a line holds one request).
constexpr uint64_t kMaxLineBytes = 16 << 20;
constexpr uint64_t kChunk = 64 << 10;
// While writes fail, one request per interval may try again.
constexpr absl::Duration kProbeInterval = absl::Seconds(1);

absl::Status Errno(int err, const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<std::string> ReadAt(int fd, uint64_t offset, uint64_t len) {
  std::string out(len, '\0');
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out.data() + done, len - done,
                        static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, "pread");
    if (n == 0) return absl::InternalError("the file shrank while read");
    done += static_cast<uint64_t>(n);
  }
  return out;
}

// The offset just after the last '\n' before `end` (0 when there is none),
// looking back at most kMaxLineBytes.
absl::StatusOr<uint64_t> LineStartBefore(int fd, uint64_t end) {
  uint64_t pos = end;
  while (pos > 0) {
    if (end - pos > kMaxLineBytes) {
      return absl::FailedPreconditionError(
          "its last line is longer than 16 MiB: not an audit log");
    }
    uint64_t len = std::min(kChunk, pos);
    absl::StatusOr<std::string> chunk = ReadAt(fd, pos - len, len);
    if (!chunk.ok()) return chunk.status();
    size_t nl = chunk->rfind('\n');
    if (nl != std::string::npos) return pos - len + nl + 1;
    pos -= len;
  }
  return 0;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The hash of the last line of the `size` bytes of complete lines of fd;
// FailedPrecondition when that line is not a sealed audit line.
absl::StatusOr<std::string> LastLineHash(int fd, uint64_t size,
                                         const std::string& path) {
  absl::StatusOr<uint64_t> start = LineStartBefore(fd, size - 1);
  if (!start.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit log ", path, ": ", start.status().message()));
  }
  absl::StatusOr<std::string> line = ReadAt(fd, *start, size - 1 - *start);
  if (!line.ok()) return line.status();
  absl::StatusOr<AuditSeal> seal = CheckAuditLine(*line);
  if (!seal.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "audit log ", path, ": its last line is not a sealed audit line (",
        seal.status().message(),
        "); check it with `consortia audit verify` and move it away"));
  }
  return seal->hash;
}

// The numbers NNNNNN of the rotated files path.NNNNNN that exist.
std::vector<uint64_t> RotatedNumbers(const std::string& path) {
  std::vector<uint64_t> out;
  const std::filesystem::path p(path);
  const std::string prefix = p.filename().string() + ".";
  std::error_code ec;
  const std::filesystem::path dir =
      p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != prefix.size() + 6 ||
        name.compare(0, prefix.size(), prefix) != 0) {
      continue;
    }
    uint64_t n = 0;
    if (absl::SimpleAtoi(name.substr(prefix.size()), &n) &&
        std::all_of(name.begin() + prefix.size(), name.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string RotatedName(const std::string& path, uint64_t n) {
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".%06llu",
                static_cast<unsigned long long>(n));
  return path + suffix;
}

}  // namespace

std::string AuditRecordJson(const AuditRecord& r) {
  // nlohmann::ordered_json keeps the fields in the documented order.
  nlohmann::ordered_json j;
  j["time"] =
      absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", r.time, absl::UTCTimeZone());
  j["org"] = r.org.has_value() ? nlohmann::ordered_json(*r.org) : nullptr;
  j["key_id"] =
      r.key_id.has_value() ? nlohmann::ordered_json(*r.key_id) : nullptr;
  j["client"] = r.client;
  j["route"] = r.route;
  j["tx_hashes"] = r.tx_hashes;
  j["status"] = r.status;
  j["outcome"] = r.outcome;
  j["trace"] = r.trace;
  // Invalid UTF-8 (from a client) is replaced, never thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    const std::string& path, size_t max_queued, ApiMetrics* metrics,
    uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Errno(errno, absl::StrCat("audit log ", path));
  auto fail = [fd](absl::Status s) {
    ::close(fd);
    return s;
  };
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "audit log ", path,
          " is in use by another process (give every api its own file)")));
    }
    return fail(Errno(err, absl::StrCat("flock audit log ", path)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return fail(Errno(errno, absl::StrCat("fstat audit log ", path)));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  std::string head = AuditChainStart();
  if (size > 0) {
    absl::StatusOr<std::string> last = ReadAt(fd, size - 1, 1);
    if (!last.ok()) return fail(last.status());
    if (*last != "\n") {
      // A torn write: cut it off (no request was answered for it).
      absl::StatusOr<uint64_t> start = LineStartBefore(fd, size);
      if (!start.ok()) {
        return fail(absl::FailedPreconditionError(
            absl::StrCat("audit log ", path, ": ", start.status().message())));
      }
      spdlog::warn(
          "api: audit log {} ends in an incomplete line ({} bytes, a write "
          "torn by a crash); cutting it off",
          path, size - *start);
      if (::ftruncate(fd, static_cast<off_t>(*start)) != 0 ||
          ::fdatasync(fd) != 0) {
        return fail(Errno(errno, absl::StrCat("truncate audit log ", path)));
      }
      size = *start;
    }
  }
  const std::vector<uint64_t> rotated = RotatedNumbers(path);
  if (size > 0) {
    absl::StatusOr<std::string> last = LastLineHash(fd, size, path);
    if (!last.ok()) return fail(last.status());
    head = *last;
  } else if (!rotated.empty()) {
    // A new file after a rotation: continue the chain of the newest
    // rotated file.
    const std::string old = RotatedName(path, rotated.back());
    int ofd = ::open(old.c_str(), O_RDONLY | O_CLOEXEC);
    if (ofd < 0) return fail(Errno(errno, absl::StrCat("audit log ", old)));
    struct stat ost {};
    absl::StatusOr<std::string> last =
        ::fstat(ofd, &ost) != 0 ? Errno(errno, "fstat " + old)
        : ost.st_size == 0
            ? absl::StatusOr<std::string>(AuditChainStart())
            : LastLineHash(ofd, static_cast<uint64_t>(ost.st_size), old);
    ::close(ofd);
    if (!last.ok()) return fail(last.status());
    head = *last;
  }
  const uint64_t next_rotation = rotated.empty() ? 1 : rotated.back() + 1;
  spdlog::info("api: audit log {} ({} bytes), chain head {}", path, size, head);
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, size, std::move(head),
                                                max_queued, metrics, max_bytes,
                                                next_rotation));
}

void AuditLog::Rotate() {
  const std::string old = RotatedName(path_, next_rotation_);
  if (::rename(path_.c_str(), old.c_str()) != 0) {
    spdlog::error("api: cannot rotate the audit log {} to {}: {}", path_, old,
                  std::strerror(errno));
    return;
  }
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    // Keep writing to the renamed file: the chain stays whole.
    spdlog::error("api: cannot start a new audit log {} after rotating: {}",
                  path_, std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return;
  }
  // The rename and the new file are durable before the first line.
  const std::filesystem::path dir =
      std::filesystem::path(path_).has_parent_path()
          ? std::filesystem::path(path_).parent_path()
          : std::filesystem::path(".");
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
  spdlog::info("api: audit log rotated to {}; {} continues its chain", old,
               path_);
  ++next_rotation_;
}

AuditLog::AuditLog(std::string path, int fd, uint64_t size, std::string head,
                   size_t max_queued, ApiMetrics* metrics, uint64_t max_bytes,
                   uint64_t next_rotation)
    : path_(std::move(path)),
      fd_(fd),
      max_bytes_(max_bytes),
      max_queued_(max_queued),
      metrics_(metrics),
      head_(std::move(head)),
      size_(size),
      next_rotation_(next_rotation),
      thread_([this] { Loop(); }) {}

AuditLog::~AuditLog() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
  ::close(fd_);  // also releases the flock
}

void AuditLog::Append(const AuditRecord& record, std::function<void()> done) {
  Pending p{AuditRecordJson(record), std::move(done)};
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(p));
}

bool AuditLog::Accepting() const {
  absl::MutexLock l(&mu_);
  if (queue_.size() >= max_queued_) return false;
  if (!failed_at_.has_value()) return true;
  absl::Time now = absl::Now();
  if (now - last_probe_ < kProbeInterval) return false;
  last_probe_ = now;
  return true;
}

std::string AuditLog::head() const {
  absl::MutexLock l(&mu_);
  return head_;
}

bool AuditLog::Write(const std::vector<Pending>& batch) {
  if (max_bytes_ > 0 && size_ >= max_bytes_) Rotate();
  std::string head;
  {
    absl::MutexLock l(&mu_);
    head = head_;
  }
  std::string buf;
  for (const Pending& p : batch) {
    std::string line = SealAuditLine(p.json, head);
    // The hash is the line's last 64 hex digits before "}.
    head = line.substr(line.size() - 66, 64);
    buf.append(line).push_back('\n');
  }
  int err = 0;
  if (!WriteAll(fd_, buf)) {
    err = errno;
  } else if (::fdatasync(fd_) != 0) {
    err = errno;
  }
  if (err == 0) {
    size_ += buf.size();
    absl::MutexLock l(&mu_);
    head_ = std::move(head);
    failed_at_.reset();
    return true;
  }
  // Take back whatever part reached the file, so the chain stays whole.
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
    spdlog::error("api: cannot truncate the audit log {} back to {} bytes: {}",
                  path_, size_, std::strerror(errno));
  }
  spdlog::error(
      "api: cannot write the audit log {}: {}; submissions are refused "
      "(503 audit-unavailable) until a write succeeds. Lost lines:",
      path_, std::strerror(err));
  for (const Pending& p : batch) spdlog::error("api: audit: {}", p.json);
  absl::MutexLock l(&mu_);
  failed_at_ = absl::Now();
  return false;
}

void AuditLog::Loop() {
  while (true) {
    std::vector<Pending> batch;
    bool stopping = false;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.end()));
      queue_.clear();
      stopping = stop_;
    }
    if (!batch.empty()) {
      if (Write(batch)) {
        metrics_->AuditLines(batch.size());
      } else {
        metrics_->AuditWriteError(batch.size());
      }
      for (Pending& p : batch) {
        if (p.done) p.done();
      }
    }
    if (stopping) {
      absl::MutexLock l(&mu_);
      if (queue_.empty()) return;
    }
  }
}

}  // namespace consortia::api
