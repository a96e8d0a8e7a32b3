#include "consortia/thread_pool.h"

#include <atomic>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

TEST(ThreadPoolTest, RunsEverythingQueuedBeforeDestruction) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(3);
    EXPECT_EQ(pool.size(), 3u);
    for (int i = 0; i < 10000; ++i) pool.Run([&] { done++; });
  }
  EXPECT_EQ(done.load(), 10000);
}

TEST(ThreadPoolTest, UsesSeveralThreads) {
  absl::Mutex mu;
  std::set<std::thread::id> ids;
  int arrived = 0;
  // Declared after the state its tasks use, so it joins them first.
  ThreadPool pool(4);
  // Four tasks that each wait until all four run at once.
  for (int i = 0; i < 4; ++i) {
    pool.Run([&] {
      absl::MutexLock l(&mu);
      ids.insert(std::this_thread::get_id());
      arrived++;
      auto all = [&] { return arrived == 4; };
      mu.Await(absl::Condition(&all));
    });
  }
  absl::MutexLock l(&mu);
  auto all = [&] { return arrived == 4; };
  mu.Await(absl::Condition(&all));
  EXPECT_EQ(ids.size(), 4u);
}

TEST(ThreadPoolTest, TasksMayQueueMoreTasks) {
  std::atomic<int> done{0};
  absl::Notification finished;
  {
    ThreadPool pool(1);
    Executor exec = pool.AsExecutor();
    exec([&] {
      // A single worker queuing far more than the bound must not deadlock.
      for (int i = 0; i < 70000; ++i) exec([&] { done++; });
      finished.Notify();
    });
    finished.WaitForNotification();
  }
  EXPECT_EQ(done.load(), 70000);
}

TEST(ThreadPoolTest, ZeroMeansOnePerCore) {
  ThreadPool pool(0);
  EXPECT_GE(pool.size(), 1u);
}

TEST(ThreadPoolTest, TryRunRefusesWhenTheQueueIsFullAndNeverBlocks) {
  absl::Notification release;
  absl::Notification running;
  std::atomic<int> done{0};
  {
    ThreadPool pool(1, /*max_queued=*/1);
    pool.Run([&] {
      running.Notify();
      release.WaitForNotification();
      done++;
    });
    running.WaitForNotification();  // the worker is busy, the queue empty
    EXPECT_TRUE(pool.TryRun([&] { done++; }));
    EXPECT_EQ(pool.queued(), 1u);
    // Full: refused at once, the task is dropped, not run.
    EXPECT_FALSE(pool.TryRun([&] { done += 100; }));
    EXPECT_FALSE(pool.TryRun([&] { done += 100; }));
    release.Notify();
  }
  EXPECT_EQ(done.load(), 2);
}

}  // namespace
}  // namespace consortia
