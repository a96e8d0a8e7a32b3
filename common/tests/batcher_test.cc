// The batcher: count, byte and linger limits, lanes, the queue bound, the
// in-flight limit and the stop rule. Most tests drive it with Tick and a
// clock of their own (no flusher thread, nothing depends on timing); the
// threaded ones wait for what they expect, never for a duration.
#include "consortia/batcher.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

using Batch = std::pair<size_t, std::vector<std::string>>;  // lane, items

// Records what the batcher hands out. Thread-safe.
class Recorder {
 public:
  Batcher<std::string>::Handlers Handlers() {
    return {
        .flush =
            [this](size_t lane, std::vector<std::string> batch) {
              absl::MutexLock l(&mu_);
              flushed_.emplace_back(lane, std::move(batch));
            },
        .bytes = [](const std::string& s) { return s.size(); },
        .drop =
            [this](size_t lane, std::vector<std::string> items) {
              absl::MutexLock l(&mu_);
              dropped_.emplace_back(lane, std::move(items));
            },
        .waiting =
            [this](size_t n) {
              absl::MutexLock l(&mu_);
              waiting_.push_back(n);
            },
    };
  }
  std::vector<Batch> flushed() {
    absl::MutexLock l(&mu_);
    return flushed_;
  }
  std::vector<Batch> dropped() {
    absl::MutexLock l(&mu_);
    return dropped_;
  }
  std::vector<size_t> waiting() {
    absl::MutexLock l(&mu_);
    return waiting_;
  }
  // Waits until `n` batches were flushed; false after 30 s (a hang, not a
  // timing assertion).
  bool WaitForFlushed(size_t n) {
    absl::MutexLock l(&mu_);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return flushed_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30));
  }
  bool WaitForDropped(size_t n) {
    absl::MutexLock l(&mu_);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return dropped_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30));
  }

 private:
  absl::Mutex mu_;
  std::vector<Batch> flushed_ ABSL_GUARDED_BY(mu_);
  std::vector<Batch> dropped_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> waiting_ ABSL_GUARDED_BY(mu_);
};

// A batcher driven by Tick on a clock the test moves.
class ManualBatcherTest : public ::testing::Test {
 protected:
  BatcherOptions Options() {
    BatcherOptions o;
    o.linger = absl::Seconds(1);
    o.test_only_clock = [this] { return now_; };
    return o;
  }
  absl::Status Add(Batcher<std::string>& b, size_t lane, std::string s) {
    return b.Add(lane, std::move(s));
  }

  absl::Time now_ = absl::UnixEpoch();
  Recorder rec_;
};

TEST_F(ManualBatcherTest, CountLimitCutsFullBatchesAndTheRestWaits) {
  BatcherOptions o = Options();
  o.max_items = 3;
  Batcher<std::string> b(o, rec_.Handlers());
  for (const char* s : {"a", "b", "c", "d", "e", "f", "g"}) {
    ASSERT_TRUE(Add(b, 0, s).ok());
  }
  EXPECT_EQ(b.Tick(), 2u);
  EXPECT_EQ(rec_.flushed(),
            (std::vector<Batch>{{0, {"a", "b", "c"}}, {0, {"d", "e", "f"}}}));
  EXPECT_EQ(b.waiting(), 1u);
  // "g" is not due before it has waited the linger.
  EXPECT_EQ(b.Tick(), 0u);
  now_ += absl::Seconds(1);
  EXPECT_EQ(b.Tick(), 1u);
  EXPECT_EQ(rec_.flushed().back(), (Batch{0, {"g"}}));
  EXPECT_EQ(b.waiting(), 0u);
}

TEST_F(ManualBatcherTest, ByteLimitCutsBatchesAndALargeItemGoesAlone) {
  BatcherOptions o = Options();
  o.max_bytes = 10;
  Batcher<std::string> b(o, rec_.Handlers());
  for (const char* s : {"aaaa", "bbbb", "cccccccccccccccccccc", "dd"}) {
    ASSERT_TRUE(Add(b, 0, s).ok());
  }
  EXPECT_EQ(b.Tick(), 2u);
  EXPECT_EQ(rec_.flushed(),
            (std::vector<Batch>{{0, {"aaaa", "bbbb"}},
                                {0, {"cccccccccccccccccccc"}}}));
  // 2 bytes left: below the limit, so they wait for the linger.
  EXPECT_EQ(b.waiting(), 1u);
  now_ += absl::Seconds(1);
  EXPECT_EQ(b.Tick(), 1u);
  EXPECT_EQ(rec_.flushed().back(), (Batch{0, {"dd"}}));
}

TEST_F(ManualBatcherTest, LingerCountsFromTheOldestItem) {
  Batcher<std::string> b(Options(), rec_.Handlers());
  ASSERT_TRUE(Add(b, 0, "old").ok());
  now_ += absl::Milliseconds(600);
  ASSERT_TRUE(Add(b, 0, "new").ok());
  EXPECT_EQ(b.Tick(), 0u);
  now_ += absl::Milliseconds(399);
  EXPECT_EQ(b.Tick(), 0u);
  now_ += absl::Milliseconds(1);
  // The oldest has waited the linger: the batch takes the younger one too.
  EXPECT_EQ(b.Tick(), 1u);
  EXPECT_EQ(rec_.flushed(), (std::vector<Batch>{{0, {"old", "new"}}}));
}

TEST_F(ManualBatcherTest, ZeroLingerMakesEveryItemDueAtOnce) {
  BatcherOptions o = Options();
  o.linger = absl::ZeroDuration();
  Batcher<std::string> b(o, rec_.Handlers());
  ASSERT_TRUE(Add(b, 0, "a").ok());
  EXPECT_EQ(b.Tick(), 1u);
  EXPECT_EQ(rec_.flushed(), (std::vector<Batch>{{0, {"a"}}}));
}

TEST_F(ManualBatcherTest, LanesAreBatchedApartAndServedRoundRobin) {
  BatcherOptions o = Options();
  o.max_items = 2;
  Batcher<std::string> b(o, rec_.Handlers());
  for (const char* s : {"a1", "a2", "a3", "a4"}) ASSERT_TRUE(Add(b, 0, s).ok());
  for (const char* s : {"b1", "b2"}) ASSERT_TRUE(Add(b, 1, s).ok());
  EXPECT_EQ(b.Tick(), 3u);
  EXPECT_EQ(rec_.flushed(),
            (std::vector<Batch>{
                {0, {"a1", "a2"}}, {1, {"b1", "b2"}}, {0, {"a3", "a4"}}}));
}

TEST_F(ManualBatcherTest, AFullLaneRefusesAndLeavesTheItemAlone) {
  BatcherOptions o = Options();
  o.max_queued = 2;
  Batcher<std::string> b(o, rec_.Handlers());
  ASSERT_TRUE(Add(b, 0, "a").ok());
  ASSERT_TRUE(Add(b, 0, "b").ok());
  std::string refused = "c";
  absl::Status s = b.Add(0, std::move(refused));
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(refused, "c");  // not moved from
  // The bound is per lane.
  EXPECT_TRUE(Add(b, 1, "x").ok());
  // Once a batch has left, the lane has room again.
  now_ += absl::Seconds(1);
  EXPECT_EQ(b.Tick(), 2u);
  EXPECT_TRUE(b.Add(0, std::move(refused)).ok());
}

TEST_F(ManualBatcherTest, WaitingHookFollowsTheQueue) {
  BatcherOptions o = Options();
  o.max_items = 2;
  Batcher<std::string> b(o, rec_.Handlers());
  for (const char* s : {"a", "b", "c"}) ASSERT_TRUE(Add(b, 0, s).ok());
  EXPECT_EQ(b.Tick(), 1u);
  b.Stop();
  EXPECT_EQ(rec_.waiting(), (std::vector<size_t>{1, 2, 3, 1, 0}));
}

TEST_F(ManualBatcherTest, StopDropsWhatWaitsAndRefusesLaterAdds) {
  Batcher<std::string> b(Options(), rec_.Handlers());
  ASSERT_TRUE(Add(b, 0, "a").ok());
  ASSERT_TRUE(Add(b, 2, "c").ok());
  ASSERT_TRUE(Add(b, 0, "b").ok());
  b.Stop();
  EXPECT_TRUE(rec_.flushed().empty());
  EXPECT_EQ(rec_.dropped(), (std::vector<Batch>{{0, {"a", "b"}}, {2, {"c"}}}));
  std::string late = "late";
  absl::Status s = b.Add(0, std::move(late));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(late, "late");
  now_ += absl::Seconds(10);
  EXPECT_EQ(b.Tick(), 0u);
  b.Stop();  // idempotent
  EXPECT_EQ(rec_.dropped().size(), 2u);
}

TEST_F(ManualBatcherTest, ItemsWaitUntilStartOrTick) {
  Batcher<std::string> b(Options(), rec_.Handlers());
  ASSERT_TRUE(Add(b, 0, "a").ok());
  now_ += absl::Seconds(5);
  EXPECT_TRUE(rec_.flushed().empty());
  EXPECT_EQ(b.waiting(), 1u);
}

// ------------------------------------------------------- flusher thread

TEST(BatcherThreadTest, AFullBatchLeavesWithoutWaitingForTheLinger) {
  Recorder rec;
  BatcherOptions o;
  o.max_items = 3;
  o.linger = absl::InfiniteDuration();
  Batcher<std::string> b(o, rec.Handlers());
  b.Start();
  for (const char* s : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(b.Add(std::string(s)).ok());
  }
  ASSERT_TRUE(rec.WaitForFlushed(1));
  b.Stop();
  EXPECT_EQ(rec.flushed(), (std::vector<Batch>{{0, {"a", "b", "c"}}}));
  EXPECT_EQ(rec.dropped(), (std::vector<Batch>{{0, {"d"}}}));
}

TEST(BatcherThreadTest, ALoneItemLeavesAfterTheLinger) {
  Recorder rec;
  BatcherOptions o;
  o.linger = absl::Milliseconds(1);
  Batcher<std::string> b(o, rec.Handlers());
  b.Start();
  ASSERT_TRUE(b.Add(std::string("a")).ok());
  ASSERT_TRUE(rec.WaitForFlushed(1));
  EXPECT_EQ(rec.flushed(), (std::vector<Batch>{{0, {"a"}}}));
}

// A flush handler that holds its first batch until released.
class HoldingFlush {
 public:
  Batcher<std::string>::Handlers Handlers() {
    Batcher<std::string>::Handlers h = rec_.Handlers();
    h.flush = [this, inner = h.flush](size_t lane,
                                      std::vector<std::string> batch) {
      if (!held_.HasBeenNotified()) {
        held_.Notify();
        release_.WaitForNotification();
      }
      inner(lane, std::move(batch));
    };
    return h;
  }
  Recorder& rec() { return rec_; }
  void WaitUntilHeld() { held_.WaitForNotification(); }
  void Release() { release_.Notify(); }

 private:
  Recorder rec_;
  absl::Notification held_, release_;
};

TEST(BatcherThreadTest, ItemsGatherWhileEveryFlushThreadIsBusy) {
  HoldingFlush hold;
  BatcherOptions o;
  o.max_items = 4;
  o.linger = absl::ZeroDuration();
  o.flush_threads = 1;
  Batcher<std::string> b(o, hold.Handlers());
  b.Start();
  ASSERT_TRUE(b.Add(std::string("first")).ok());
  hold.WaitUntilHeld();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.Add(std::to_string(i)).ok());
  // One batch is in flight, the limit: nothing else is cut meanwhile.
  EXPECT_EQ(b.waiting(), 5u);
  hold.Release();
  ASSERT_TRUE(hold.rec().WaitForFlushed(3));
  std::vector<size_t> sizes;
  for (const Batch& batch : hold.rec().flushed()) {
    sizes.push_back(batch.second.size());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 4, 1}));
}

TEST(BatcherThreadTest, StopDropsAtOnceThenWaitsForTheBatchInFlight) {
  HoldingFlush hold;
  BatcherOptions o;
  o.linger = absl::ZeroDuration();
  o.flush_threads = 1;
  auto b = std::make_unique<Batcher<std::string>>(o, hold.Handlers());
  b->Start();
  ASSERT_TRUE(b->Add(std::string("held")).ok());
  hold.WaitUntilHeld();
  ASSERT_TRUE(b->Add(std::string("x")).ok());
  ASSERT_TRUE(b->Add(std::string("y")).ok());
  absl::Notification stopped;
  std::thread stopper([&] {
    b->Stop();
    stopped.Notify();
  });
  // The waiting two are dropped while the held batch is still in flight;
  // Stop does not return before that batch is done.
  ASSERT_TRUE(hold.rec().WaitForDropped(1));
  EXPECT_FALSE(stopped.HasBeenNotified());
  EXPECT_EQ(hold.rec().dropped(), (std::vector<Batch>{{0, {"x", "y"}}}));
  hold.Release();
  stopper.join();
  EXPECT_EQ(hold.rec().flushed(), (std::vector<Batch>{{0, {"held"}}}));
}

}  // namespace
}  // namespace consortia
