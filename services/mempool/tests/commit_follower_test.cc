#include "commit_follower.h"

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fake_query.h"
#include "gtest/gtest.h"
#include "mempool.h"
#include "test_util.h"

namespace consortia::mempool {
namespace {

using testing::Committed;
using testing::kChainId;
using testing::SignedTx;

using testing::FakeQuery;
using testing::WaitFor;

class CommitFollowerTest : public ::testing::Test {
 protected:
  void Start(uint64_t replay_window = 1000,
             absl::Duration reap_wait = absl::Seconds(2)) {
    MempoolOptions o;
    o.replay_window = replay_window;
    o.reap_wait = reap_wait;
    mempool_ = std::make_unique<Mempool>(o, kChainId, Ed25519Sha256(), nullptr);
    CommitFollower::Options f;
    f.replay_window = replay_window;
    f.retry_interval = absl::Milliseconds(5);
    f.idle_check = absl::Milliseconds(10);
    follower_ = std::make_unique<CommitFollower>(f, mempool_.get(), &query_);
    follower_->Start();
  }

  void Publish(const CommittedEvent& e, uint64_t missed = 0) {
    follower_->OnEvent(EncodeCommittedEvent(e), missed);
  }

  void TearDown() override {
    follower_.reset();
    mempool_.reset();
  }

  FakeQuery query_;
  std::unique_ptr<Mempool> mempool_;
  std::unique_ptr<CommitFollower> follower_;
  KeyPair alice_ = Ed25519Sha256().GenerateKey();
};

TEST_F(CommitFollowerTest, EmptyChainIsReadyAtHeightZero) {
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 0u);
  EXPECT_TRUE(query_.committed_calls().empty());
}

TEST_F(CommitFollowerTest, RebuildsTheReplayWindowInFewCalls) {
  Bytes old_tx = SignedTx(alice_, 1, 3000);
  Bytes recent_tx = SignedTx(alice_, 2, 3000);
  query_.GrowTo(99);
  query_.AddEvent({100, {}, {Committed(old_tx)}});  // outside the window
  query_.GrowTo(1599);
  query_.AddEvent({1600, {}, {Committed(recent_tx)}});
  query_.GrowTo(2600);

  Start(/*replay_window=*/2500);
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 2600u);
  // Heights 101..2600, at most 1000 per call.
  std::vector<std::pair<uint64_t, uint64_t>> calls = query_.committed_calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0], std::make_pair(uint64_t{101}, uint64_t{1100}));
  EXPECT_EQ(calls[2], std::make_pair(uint64_t{2101}, uint64_t{2600}));

  absl::StatusOr<std::vector<SubmitResult>> r = mempool_->Submit({recent_tx});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);
}

TEST_F(CommitFollowerTest, RetriesUntilStorageAnswers) {
  query_.GrowTo(5);
  query_.FailNext(4);
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 5u);
}

TEST_F(CommitFollowerTest, AppliesEventsAndFillsGapsFromStorage) {
  query_.GrowTo(5);
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  ASSERT_TRUE(mempool_->Submit({a, b}).ok());
  const size_t calls_before = query_.committed_calls().size();

  query_.AddEvent({6, {}, {}});
  Publish({6, {}, {}});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 6; }));

  // Heights 7 and 8 never reach the subscriber; 9 says so.
  query_.AddEvent({7, {}, {Committed(a)}});
  query_.AddEvent({8, {}, {}});
  query_.AddEvent({9, {}, {Committed(b)}});
  Publish({9, {}, {Committed(b)}}, /*missed=*/2);
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 9; }));
  EXPECT_EQ(mempool_->pending_count(), 0u);
  std::vector<std::pair<uint64_t, uint64_t>> calls = query_.committed_calls();
  ASSERT_EQ(calls.size(), calls_before + 1);
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{7}, uint64_t{8}));
  // a came in through the gap: it is in the replay window.
  absl::StatusOr<std::vector<SubmitResult>> r = mempool_->Submit({a});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);

  // Duplicates and old events are ignored.
  Publish({8, {}, {}});
  Publish({10, {}, {}});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 10; }));
}

TEST_F(CommitFollowerTest, EventsBeforeTheRebuildAreNotLost) {
  query_.GrowTo(3);
  query_.FailNext(3);
  Start();
  Publish({2, {}, {}});
  query_.AddEvent({4, {}, {}});
  Publish({4, {}, {}});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 4; }));
  EXPECT_TRUE(mempool_->ready());
}

TEST_F(CommitFollowerTest, AReapWaitingForALostEventFetchesIt) {
  query_.GrowTo(5);
  Start(1000, absl::Seconds(30));
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  ASSERT_TRUE(mempool_->Submit({a, b}).ok());
  // Block 6 is committed but its event is lost and nothing follows.
  query_.AddEvent({6, {}, {Committed(a)}});
  absl::StatusOr<std::vector<Bytes>> r = mempool_->Reap({100, 1 << 20, 6});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<Bytes>{b});
}

TEST_F(CommitFollowerTest, UndecodableEventsAreDropped) {
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  follower_->OnEvent(Bytes{0xde, 0xad}, 0);
  query_.AddEvent({1, {}, {}});
  Publish({1, {}, {}});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 1; }));
}

}  // namespace
}  // namespace consortia::mempool
