#include "bench_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace consortia::cli {

int ConnectTcp(const std::string& host, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(),
                  &addr.sin_addr) != 1) {
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

namespace {

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads more bytes into buf; false at the end of the stream or on error.
bool ReadMore(int fd, std::string& buf) {
  char chunk[16384];
  while (true) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

// The value of header `name` (lower case) in a header block, or "".
std::string HeaderValue(std::string_view head, std::string_view name) {
  size_t pos = 0;
  while (true) {
    size_t nl = head.find("\r\n", pos);
    if (nl == std::string_view::npos) return "";
    std::string_view line = head.substr(pos, nl - pos);
    pos = nl + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (absl::AsciiStrToLower(std::string(line.substr(0, colon))) == name) {
      return std::string(
          absl::StripAsciiWhitespace(std::string(line.substr(colon + 1))));
    }
  }
}

}  // namespace

absl::Status KeepAliveConnection::Open() {
  Close();
  fd_ = ConnectTcp(host_, port_);
  if (fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", host_, ":", port_));
  }
  ++connects_;
  fresh_ = true;
  buf_.clear();
  return absl::OkStatus();
}

void KeepAliveConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::StatusOr<KeepAliveConnection::Response> KeepAliveConnection::Call(
    std::string_view method, std::string_view path, std::string_view body) {
  std::string req =
      absl::StrCat(std::string(method), " ", std::string(path),
                   " HTTP/1.1\r\nHost: ", host_, ":", port_, "\r\n");

  for (const auto& [name, value] : headers_) {
    absl::StrAppend(&req, name, ": ", value, "\r\n");
  }
  if (!body.empty() || method == "POST") {
    absl::StrAppend(&req, "Content-Type: application/json\r\nContent-Length: ",
                    body.size(), "\r\n");
  }
  req += "\r\n";
  req.append(body);
  fresh_ = false;
  if (fd_ < 0) {
    if (auto s = Open(); !s.ok()) return s;
  }
  auto res = Exchange(req);
  // A kept-alive connection the server closed meanwhile: once more on a new
  // one.
  if (!res.ok() && !fresh_) {
    if (auto s = Open(); !s.ok()) return s;
    res = Exchange(req);
  }
  if (!res.ok()) Close();
  return res;
}

absl::StatusOr<KeepAliveConnection::Response> KeepAliveConnection::Exchange(
    const std::string& request) {
  if (!SendAll(fd_, request)) return absl::UnavailableError("send failed");
  size_t head_end;
  while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!ReadMore(fd_, buf_)) {
      return absl::UnavailableError("connection closed before an answer");
    }
  }
  std::string head = buf_.substr(0, head_end + 2);
  buf_.erase(0, head_end + 4);
  Response r;
  if (head.size() < 12 || !absl::SimpleAtoi(head.substr(9, 3), &r.status)) {
    return absl::InternalError("bad HTTP status line");
  }
  const bool close =
      absl::AsciiStrToLower(HeaderValue(head, "connection")) == "close";
  const std::string te =
      absl::AsciiStrToLower(HeaderValue(head, "transfer-encoding"));
  if (te.find("chunked") != std::string::npos) {
    while (true) {
      size_t nl;
      while ((nl = buf_.find("\r\n")) == std::string::npos) {
        if (!ReadMore(fd_, buf_)) return absl::UnavailableError("cut off");
      }
      size_t size = std::strtoul(buf_.substr(0, nl).c_str(), nullptr, 16);
      while (buf_.size() < nl + 2 + size + 2) {
        if (!ReadMore(fd_, buf_)) return absl::UnavailableError("cut off");
      }
      r.body.append(buf_, nl + 2, size);
      buf_.erase(0, nl + 2 + size + 2);
      if (size == 0) break;
    }
  } else {
    size_t len = 0;
    std::string cl = HeaderValue(head, "content-length");
    if (!cl.empty() && !absl::SimpleAtoi(cl, &len)) {
      return absl::InternalError("bad Content-Length");
    }
    while (buf_.size() < len) {
      if (!ReadMore(fd_, buf_)) return absl::UnavailableError("cut off");
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
  }
  if (close) Close();
  return r;
}

uint64_t FollowEvents(const std::string& host, uint16_t port,
                      uint64_t from_height, const std::atomic<bool>& stop,
                      const std::function<void(const StreamEvent&)>& on_event) {
  std::string last_id;
  uint64_t resumes = 0;
  bool first = true;
  while (!stop.load()) {
    if (!first) {
      ++resumes;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    first = false;
    int fd = ConnectTcp(host, port);
    if (fd < 0) continue;
    timeval tv{0, 200 * 1000};  // to look at `stop` while the stream is idle
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    // HTTP/1.0: the body comes unchunked and ends with the connection.
    std::string req = absl::StrCat("GET /v1/events?from_height=", from_height,
                                   " HTTP/1.0\r\nHost: ", host, "\r\n");
    if (!last_id.empty())
      absl::StrAppend(&req, "Last-Event-ID: ", last_id, "\r\n");
    absl::StrAppend(&req, "Accept: text/event-stream\r\n\r\n");
    if (!SendAll(fd, req)) {
      ::close(fd);
      continue;
    }
    std::string buf;
    bool header_done = false;
    bool ended = false;
    char chunk[65536];
    while (!stop.load() && !ended) {
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 &&
          (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        continue;
      }
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      if (!header_done) {
        size_t end = buf.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        if (buf.compare(9, 3, "200") != 0) break;
        buf.erase(0, end + 4);
        header_done = true;
      }
      size_t pos = 0, end;
      while ((end = buf.find("\n\n", pos)) != std::string::npos) {
        std::string_view block(buf.data() + pos, end - pos);
        pos = end + 2;
        StreamEvent e;
        size_t lp = 0;
        while (lp < block.size()) {
          size_t nl = block.find('\n', lp);
          if (nl == std::string_view::npos) nl = block.size();
          std::string_view line = block.substr(lp, nl - lp);
          lp = nl + 1;
          if (line.starts_with("event: ")) {
            e.type = std::string(line.substr(7));
          } else if (line.starts_with("id: ")) {
            e.id = std::string(line.substr(4));
          } else if (line.starts_with("data: ")) {
            e.data.append(line.substr(6));
          }
        }
        if (e.type.empty()) continue;  // a heartbeat comment
        if (e.type == "cutoff") {
          ended = true;
          break;
        }
        if (!e.id.empty()) last_id = e.id;
        on_event(e);
      }
      buf.erase(0, pos);
    }
    ::close(fd);
  }
  return resumes;
}

absl::StatusOr<ProcUsage> ReadProcUsage(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) {
    return absl::NotFoundError(absl::StrCat("no process ", pid));
  }
  // Fields after the command name (which may hold spaces) in parentheses:
  // state is field 3, utime 14, stime 15.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return absl::InternalError("bad stat");
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (rest >> tok) f.push_back(tok);
  if (f.size() < 13) return absl::InternalError("short stat");
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  ProcUsage u;
  u.cpu_s = (std::strtod(f[11].c_str(), nullptr) +
             std::strtod(f[12].c_str(), nullptr)) /
            tick;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) {
      u.peak_rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
    } else if (line.starts_with("VmRSS:")) {
      u.rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
    }
  }
  return u;
}

VerifyRate MeasureVerifyRate(const CryptoSuite& suite, uint64_t threads,
                             double seconds) {
  struct Item {
    Bytes pk, msg, sig;
  };
  std::vector<Item> items;
  for (int i = 0; i < 64; ++i) {
    KeyPair kp = suite.GenerateKey();
    // About a tx's signed bytes.
    Bytes msg(160, static_cast<uint8_t>(i));
    auto sig = suite.Sign(kp.secret_key, msg);
    if (!sig.ok()) continue;
    items.push_back(Item{kp.public_key, msg, *sig});
  }
  std::atomic<uint64_t> total{0};
  std::atomic<int64_t> cpu_ns{0};
  std::atomic<uint64_t> bad{0};
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> pool;
  for (uint64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      uint64_t n = 0;
      size_t i = t;
      while (std::chrono::steady_clock::now() < until) {
        for (int k = 0; k < 16; ++k, ++n) {
          const Item& it = items[i++ % items.size()];
          if (!suite.Verify(it.pk, it.msg, it.sig)) bad.fetch_add(1);
        }
      }
      total.fetch_add(n);
      timespec ts{};
      ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      cpu_ns.fetch_add(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
    });
  }
  for (auto& th : pool) th.join();
  VerifyRate r;
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  r.threads = threads;
  r.verified = total.load() - bad.load();
  r.per_s = r.seconds > 0 ? static_cast<double>(r.verified) / r.seconds : 0;
  r.per_cpu_s = cpu_ns.load() > 0 ? static_cast<double>(r.verified) * 1e9 /
                                        static_cast<double>(cpu_ns.load())
                                  : 0;
  return r;
}

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank =
      static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  if (rank == 0) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

}  // namespace consortia::cli
