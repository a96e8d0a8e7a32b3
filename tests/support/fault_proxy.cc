#include "fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace consortia::testing {
namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Writes all of buf; false when the socket is gone.
bool WriteAll(int fd, const char* buf, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    buf += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy() {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) std::abort();
  thread_ = std::thread([this] { Loop(); });
}

FaultProxy::~FaultProxy() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  const char b = 0;
  (void)!::write(wake_[1], &b, 1);
  thread_.join();
  for (Conn& c : conns_) CloseConn(c);
  absl::MutexLock lock(&mu_);
  for (Link& l : links_) ::close(l.listen_fd);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

absl::StatusOr<uint16_t> FaultProxy::AddLink(uint16_t target_port, int* id) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot listen: errno ", errno));
  }
  {
    absl::MutexLock lock(&mu_);
    *id = static_cast<int>(links_.size());
    links_.push_back(Link{fd, target_port, false});
  }
  const char b = 0;
  (void)!::write(wake_[1], &b, 1);
  return ntohs(a.sin_port);
}

void FaultProxy::SetCut(int id, bool cut) {
  {
    absl::MutexLock lock(&mu_);
    if (id < 0 || static_cast<size_t>(id) >= links_.size()) return;
    links_[id].cut = cut;
  }
  const char b = 0;
  (void)!::write(wake_[1], &b, 1);
}

uint64_t FaultProxy::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

void FaultProxy::CloseConn(Conn& c) {
  if (c.client >= 0) ::close(c.client);
  if (c.server >= 0) ::close(c.server);
  c.client = c.server = -1;
}

void FaultProxy::Loop() {
  std::vector<Link> links;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      links = links_;
    }
    // A cut link loses its connections.
    for (Conn& c : conns_) {
      if (links[c.link].cut) CloseConn(c);
    }
    std::erase_if(conns_, [](const Conn& c) { return c.client < 0; });

    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    for (const Link& l : links) fds.push_back({l.listen_fd, POLLIN, 0});
    for (const Conn& c : conns_) {
      fds.push_back({c.client, POLLIN, 0});
      fds.push_back({c.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof(buf)) > 0) {
      }
    }
    for (size_t i = 0; i < links.size(); ++i) {
      if ((fds[1 + i].revents & POLLIN) == 0) continue;
      const int client =
          ::accept4(links[i].listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      {
        absl::MutexLock lock(&mu_);
        ++accepted_;
      }
      if (links[i].cut) {
        ::close(client);
        continue;
      }
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in target = Loopback(links[i].target_port);
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&target),
                                  sizeof(target)) != 0) {
        if (server >= 0) ::close(server);
        ::close(client);
        continue;
      }
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      conns_.push_back(Conn{client, server, static_cast<int>(i)});
    }
    const size_t base = 1 + links.size();
    // Only the connections that were polled (accepts above come after).
    const size_t polled = (fds.size() - base) / 2;
    for (size_t k = 0; k < polled; ++k) {
      Conn& c = conns_[k];
      for (int side = 0; side < 2; ++side) {
        const pollfd& p = fds[base + 2 * k + side];
        if (c.client < 0 || p.revents == 0) continue;
        const int from = side == 0 ? c.client : c.server;
        const int to = side == 0 ? c.server : c.client;
        char buf[64 * 1024];
        const ssize_t n = ::recv(from, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0 || !WriteAll(to, buf, static_cast<size_t>(n))) {
          CloseConn(c);
        }
      }
    }
  }
}

}  // namespace consortia::testing
