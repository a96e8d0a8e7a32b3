// PollLoop, the I/O thread of the bus and PeerNet endpoints. No test here
// waits for a time: each waits for a counter the loop moves, or joins.
#include "poll_loop.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "zmq.hpp"

namespace consortia {
namespace {

// What the loop's callbacks saw, for the test thread to wait on.
class Record {
 public:
  void Turn() {
    absl::MutexLock l(&mu_);
    ++turns_;
    threads_.push_back(std::this_thread::get_id());
    changed_.SignalAll();
  }
  void Read(int n) {
    absl::MutexLock l(&mu_);
    read_ += n;
    threads_.push_back(std::this_thread::get_id());
    changed_.SignalAll();
  }
  int turns() const {
    absl::MutexLock l(&mu_);
    return turns_;
  }
  int read() const {
    absl::MutexLock l(&mu_);
    return read_;
  }
  void AwaitTurns(int n) const {
    absl::MutexLock l(&mu_);
    while (turns_ < n) changed_.Wait(&mu_);
  }
  void AwaitRead(int n) const {
    absl::MutexLock l(&mu_);
    while (read_ < n) changed_.Wait(&mu_);
  }
  // Every callback ran on one thread, and it is not `other`.
  bool AllOnOneThreadOtherThan(std::thread::id other) const {
    absl::MutexLock l(&mu_);
    for (std::thread::id id : threads_) {
      if (id == other || id != threads_.front()) return false;
    }
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  int turns_ ABSL_GUARDED_BY(mu_) = 0;
  int read_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

// Two connected PAIR sockets: the test writes `out`, the loop watches `in`.
struct Channel {
  explicit Channel(const char* endpoint)
      : in(ctx, zmq::socket_type::pair), out(ctx, zmq::socket_type::pair) {
    in.set(zmq::sockopt::linger, 0);
    out.set(zmq::sockopt::linger, 0);
    in.bind(endpoint);
    out.connect(endpoint);
  }
  zmq::context_t ctx;
  zmq::socket_t in;
  zmq::socket_t out;
};

// Reads every message waiting on `sock` without blocking; returns how many.
int Drain(zmq::socket_t& sock) {
  int n = 0;
  zmq::message_t m;
  while (sock.recv(m, zmq::recv_flags::dontwait)) ++n;
  return n;
}

TEST(PollLoopTest, WakeFromAnotherThreadRunsATurnOnTheLoopThread) {
  Record rec;
  PollLoop loop;
  ASSERT_TRUE(loop.ok());
  loop.OnTurn([&] {
    rec.Turn();
    return absl::InfiniteFuture();
  });
  loop.Start(nullptr);
  // Nothing is watched and there is no deadline: only the wake-up can make
  // the loop turn.
  std::thread waker([&] { loop.Wake(); });
  waker.join();
  rec.AwaitTurns(1);
  loop.Stop();
  EXPECT_GE(rec.turns(), 1);
  EXPECT_TRUE(rec.AllOnOneThreadOtherThan(std::this_thread::get_id()));
}

TEST(PollLoopTest, ReadableSocketDispatchesThenTheTurnRuns) {
  Channel ch("inproc://poll-loop-readable");
  zmq::socket_t& in = ch.in;
  zmq::socket_t& out = ch.out;

  Record rec;
  std::atomic<bool> read_before_turn{false};
  PollLoop loop;
  ASSERT_TRUE(loop.ok());
  loop.Watch(in, [&] { rec.Read(Drain(in)); });
  loop.OnTurn([&] {
    if (rec.read() > 0 && rec.turns() == 0) read_before_turn.store(true);
    rec.Turn();
    return absl::InfiniteFuture();
  });
  loop.Start([&] { in.close(); });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(out.send(zmq::str_buffer("m"), zmq::send_flags::none));
  }
  rec.AwaitRead(3);
  rec.AwaitTurns(1);  // the read's turn (Stop would skip one to come)
  loop.Stop();
  EXPECT_EQ(rec.read(), 3);
  // No wake-up was signalled: the turn that read the socket ran its turn
  // callback after the read.
  EXPECT_TRUE(read_before_turn.load());
  EXPECT_TRUE(rec.AllOnOneThreadOtherThan(std::this_thread::get_id()));
  EXPECT_EQ(in.handle(), nullptr);  // the exit callback closed it
}

TEST(PollLoopTest, DeadlineInThePastTurnsAgainWithoutAWakeUp) {
  Record rec;
  PollLoop loop;
  ASSERT_TRUE(loop.ok());
  loop.OnTurn([&] {
    rec.Turn();
    // Due at once for the first two turns, then never.
    return rec.turns() < 3 ? absl::InfinitePast() : absl::InfiniteFuture();
  });
  loop.Start(nullptr);
  loop.Wake();  // the one wake-up: turn 1; turns 2 and 3 are the deadlines'
  rec.AwaitTurns(3);
  loop.Stop();
  EXPECT_EQ(rec.turns(), 3);
}

TEST(PollLoopTest, FutureDeadlineFires) {
  Record rec;
  PollLoop loop;
  ASSERT_TRUE(loop.ok());
  loop.OnTurn([&] {
    rec.Turn();
    return rec.turns() == 1 ? absl::Now() + absl::Milliseconds(2)
                            : absl::InfiniteFuture();
  });
  loop.Start(nullptr);
  loop.Wake();
  rec.AwaitTurns(2);  // the second turn is the deadline's
  loop.Stop();
  EXPECT_EQ(rec.turns(), 2);
}

TEST(PollLoopTest, StopJoinsAfterTheExitCallbackAndNothingRunsAfter) {
  Record rec;
  std::atomic<int> exits{0};
  std::thread::id exit_thread;
  {
    PollLoop loop;
    ASSERT_TRUE(loop.ok());
    loop.OnTurn([&] {
      rec.Turn();
      return absl::InfinitePast();  // turns for ever until stopped
    });
    loop.Start([&] {
      exit_thread = std::this_thread::get_id();
      exits.fetch_add(1);
    });
    loop.Wake();
    rec.AwaitTurns(1);
    loop.Stop();
    // Joined: the exit callback has run, once, on the loop's thread.
    EXPECT_EQ(exits.load(), 1);
    EXPECT_NE(exit_thread, std::this_thread::get_id());
    EXPECT_TRUE(loop.stopping());
    const int turns = rec.turns();
    loop.Stop();  // a second Stop does nothing
    loop.Wake();  // nor does a wake-up after it
    EXPECT_EQ(rec.turns(), turns);
  }  // nor the destructor
  EXPECT_EQ(exits.load(), 1);
}

TEST(PollLoopTest, StoppingIsVisibleToARunningCallback) {
  Channel ch("inproc://poll-loop-stopping");
  zmq::socket_t& in = ch.in;
  zmq::socket_t& out = ch.out;

  std::atomic<bool> entered{false};
  std::atomic<bool> saw_stopping{false};
  std::atomic<int> turns_after_stop{0};
  PollLoop loop;
  ASSERT_TRUE(loop.ok());
  loop.Watch(in, [&] {
    Drain(in);
    entered.store(true);
    // A batch reader's check: ends once Stop has been called.
    while (!loop.stopping()) std::this_thread::yield();
    saw_stopping.store(true);
  });
  loop.OnTurn([&] {
    if (loop.stopping()) turns_after_stop.fetch_add(1);
    return absl::InfiniteFuture();
  });
  loop.Start([&] { in.close(); });
  ASSERT_TRUE(out.send(zmq::str_buffer("m"), zmq::send_flags::none));
  while (!entered.load()) std::this_thread::yield();
  loop.Stop();  // returns only once the callback has seen the request
  EXPECT_TRUE(saw_stopping.load());
  EXPECT_EQ(turns_after_stop.load(), 0);  // the turn callback did not start
}

TEST(PollLoopTest, TerminatedContextEndsTheLoopAndRunsTheExitCallback) {
  zmq::context_t ctx;
  zmq::socket_t in(ctx, zmq::socket_type::pair);
  in.set(zmq::sockopt::linger, 0);
  in.bind("inproc://poll-loop-eterm");

  std::atomic<bool> exited{false};
  PollLoop loop;
  ASSERT_TRUE(loop.ok());
  loop.Watch(in, [&] { Drain(in); });
  loop.Start([&] {
    exited.store(true);
    in.close();  // lets the context finish
  });
  // zmq::poll fails with ETERM from now on; the loop ends by itself, and
  // the context can then be closed (this would block for ever otherwise).
  ctx.shutdown();
  ctx.close();
  EXPECT_TRUE(exited.load());
  loop.Stop();  // joins the thread that has ended
}

}  // namespace
}  // namespace consortia
