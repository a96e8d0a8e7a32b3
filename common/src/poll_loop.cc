#include "poll_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/time/clock.h"

namespace consortia {
namespace {

// Milliseconds to wait in zmq::poll for `deadline`: -1 for none, at most an
// hour (the loop simply polls again), rounded up so a turn is never early.
std::chrono::milliseconds PollTimeout(absl::Time deadline, absl::Time now) {
  if (deadline == absl::InfiniteFuture()) return std::chrono::milliseconds(-1);
  absl::Duration left = deadline - now;
  if (left <= absl::ZeroDuration()) return std::chrono::milliseconds(0);
  if (left > absl::Hours(1)) left = absl::Hours(1);
  return std::chrono::milliseconds(
      absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
}

}  // namespace

bool RecvMultipart(zmq::socket_t& sock, std::vector<zmq::message_t>* parts,
                   size_t max_frames, bool* too_many) {
  parts->clear();
  *too_many = false;
  while (true) {
    zmq::message_t m;
    if (!sock.recv(m, zmq::recv_flags::dontwait)) {
      return !parts->empty();  // parts after the first are never late
    }
    const bool more = m.more();
    if (parts->size() < max_frames) {
      parts->push_back(std::move(m));
    } else {
      *too_many = true;
    }
    if (!more) return true;
  }
}

Waker::Waker() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Waker::~Waker() {
  if (fd_ >= 0) close(fd_);
}

void Waker::Signal() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: the poller is awake anyway.
  ssize_t n = write(fd_, &one, sizeof(one));
  (void)n;
}

void Waker::Drain() {
  uint64_t count;
  ssize_t n = read(fd_, &count, sizeof(count));
  (void)n;
}

PollLoop::PollLoop() : waker_(std::make_shared<Waker>()) {
  zmq_pollitem_t wake{};
  wake.fd = waker_->fd();
  wake.events = ZMQ_POLLIN;
  items_.push_back(wake);
}

PollLoop::~PollLoop() { Stop(); }

void PollLoop::Watch(zmq::socket_t& sock, OnReadable on_readable) {
  zmq_pollitem_t item{};
  item.socket = sock.handle();
  item.events = ZMQ_POLLIN;
  items_.push_back(item);
  on_readable_.push_back(std::move(on_readable));
}

void PollLoop::OnTurn(OnTurnFn on_turn) { on_turn_ = std::move(on_turn); }

void PollLoop::Start(std::function<void()> on_exit) {
  on_exit_ = std::move(on_exit);
  thread_ = std::thread([this] { Run(); });
}

void PollLoop::Stop() {
  stopping_.store(true);
  if (!thread_.joinable()) return;
  waker_->Signal();
  thread_.join();
}

void PollLoop::Run() {
  while (!stopping_.load() && Turn()) {
  }
  if (on_exit_) on_exit_();
}

bool PollLoop::Turn() {
  try {
    for (zmq_pollitem_t& item : items_) item.revents = 0;
    zmq::poll(items_, PollTimeout(next_turn_, absl::Now()));
    if (items_[0].revents & ZMQ_POLLIN) waker_->Drain();
    if (stopping_.load()) return false;
    for (size_t i = 1; i < items_.size(); ++i) {
      if (items_[i].revents & ZMQ_POLLIN) on_readable_[i - 1]();
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return false;
    // EINTR, or unexpected: the turn callback still runs, and the loop goes
    // on.
  }
  if (stopping_.load()) return false;
  try {
    next_turn_ = on_turn_ ? on_turn_() : absl::InfiniteFuture();
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return false;
    next_turn_ = absl::Now();  // try again at once
  }
  return true;
}

}  // namespace consortia
