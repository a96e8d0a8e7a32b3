// The I/O thread of every ZeroMQ endpoint in common/: the bus client, bus
// server and subscriber (bus.cc), PeerNet (peer_net.cc) and the ZAP handler
// (zap_authenticator.cc). Private to the bus and p2p libraries and their
// tests; not part of the public API.
#ifndef CONSORTIA_COMMON_SRC_POLL_LOOP_H_
#define CONSORTIA_COMMON_SRC_POLL_LOOP_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "zmq.hpp"

namespace consortia {

// Messages a readable socket's callback reads in one turn before it returns
// (what it leaves keeps the socket readable), so that one busy socket does
// not starve the loop's other work.
inline constexpr int kMaxBatchPerWake = 1024;

// For a readable socket's callback: reads one whole multipart message
// without blocking; false when nothing is waiting. Frames past max_frames
// are consumed and dropped, and *too_many is set.
bool RecvMultipart(zmq::socket_t& sock, std::vector<zmq::message_t>* parts,
                   size_t max_frames, bool* too_many);

// A Linux eventfd that wakes a thread blocked in zmq::poll (which polls raw
// file descriptors beside sockets). Signal() is thread-safe and never blocks;
// Drain() is for the polling thread. ok() is false when the eventfd could not
// be created (out of file descriptors).
class Waker {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Signal();
  void Drain();

 private:
  int fd_;
};

// One thread that waits on a set of ZeroMQ sockets and a Waker, and calls
// back when there is something to do:
//
//   PollLoop loop;                       // creates the Waker
//   loop.Watch(sock, [&] { Read(); });   // before Start, one per socket
//   loop.OnTurn([&] { SendQueued(); return NextDeadline(); });
//   loop.Start([&] { sock.close(); });   // the thread's last act
//   ...   queue work, then loop.Wake()   // from any thread
//   loop.Stop();                         // wakes the thread and joins it
//
// Each turn of the thread: zmq::poll on the sockets and the Waker until one
// is readable, the Waker is signalled, or the deadline the last turn asked
// for has come; drain the Waker; call on_readable of each readable socket,
// in the order they were watched; call the turn callback (every turn,
// whatever woke the thread). Stop is honoured before either kind of
// callback. A zmq::error_t thrown by zmq::poll or an on_readable callback
// skips the rest of them (the turn callback still runs), and one thrown by
// the turn callback makes the next turn start at once; but ETERM (the
// context was terminated) ends the loop.
// When the loop ends, for either reason, the exit callback runs on the
// thread: it must close the sockets, or the context cannot terminate.
//
// Thread safety: Watch, OnTurn and Start on one thread, before the loop
// runs; Wake, stopping and waker from any thread; Stop from one thread at a
// time (the owner's destructor), never from the loop's own (its callbacks
// must not call it). The callbacks run on the loop's thread, one at a time.
class PollLoop {
 public:
  // Runs when a watched socket is readable. It should read what is waiting
  // without blocking (a bounded batch: what it leaves makes the socket
  // readable again at the next poll).
  using OnReadable = std::function<void()>;
  // Runs at the end of every turn; returns when the next turn must start even
  // if nothing wakes the loop (absl::InfiniteFuture(): no deadline; a time in
  // the past: at once).
  using OnTurnFn = std::function<absl::Time()>;

  PollLoop();
  // Stops the loop if it runs. The owner must call Stop() itself before the
  // state its callbacks use is destroyed.
  ~PollLoop();
  PollLoop(const PollLoop&) = delete;
  PollLoop& operator=(const PollLoop&) = delete;

  // False when the Waker could not be created; the loop must not be started
  // (the factories fail with ResourceExhausted).
  bool ok() const { return waker_->ok(); }

  // Calls `on_readable` whenever `sock` has a message waiting. `sock` must be
  // open, and stay so until the exit callback closes it.
  void Watch(zmq::socket_t& sock, OnReadable on_readable);
  // Sets the callback that ends every turn. Without one, the loop waits with
  // no deadline.
  void OnTurn(OnTurnFn on_turn);

  // Starts the thread. `on_exit` (may be empty) runs on it after the last
  // turn. At most once.
  void Start(std::function<void()> on_exit);

  // Makes the loop take a turn soon: its thread returns from zmq::poll (or
  // does not block in the next one) and runs the turn callback. Thread-safe;
  // cheap when the loop is awake already.
  void Wake() { waker_->Signal(); }
  // The Waker, for a producer that may outlive this loop (a reply handed
  // over after the server has gone): signalling it then does nothing.
  std::shared_ptr<Waker> waker() const { return waker_; }

  // Ends the loop and joins its thread, which runs on_exit last. The thread
  // looks for the request after every wake-up and before the turn callback;
  // a callback that is running finishes first (a batch may end early on
  // stopping()). Does nothing when the loop never started or was stopped
  // already.
  void Stop();
  // True once Stop was called: a callback reading a batch may end it early.
  bool stopping() const { return stopping_.load(); }

 private:
  void Run();
  // One poll and its callbacks; false when the loop must end.
  bool Turn();

  const std::shared_ptr<Waker> waker_;
  // [waker, watched sockets...]
  std::vector<zmq_pollitem_t> items_;
  std::vector<OnReadable> on_readable_;  // one per watched socket
  OnTurnFn on_turn_;
  std::function<void()> on_exit_;
  absl::Time next_turn_ = absl::InfiniteFuture();  // the thread's only
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace consortia

#endif  // CONSORTIA_COMMON_SRC_POLL_LOOP_H_
