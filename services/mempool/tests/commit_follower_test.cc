#include "commit_follower.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/metrics.h"
#include "consortia/testing/fake_storage_queries.h"
#include "gtest/gtest.h"
#include "mempool.h"
#include "mempool_metrics.h"
#include "test_util.h"

namespace consortia::mempool {
namespace {

using testing::Committed;
using testing::kChainId;
using testing::SignedTx;

using ::consortia::testing::FakeCommitHistory;
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
    f.retry_interval = absl::Milliseconds(5);
    f.idle_check = absl::Milliseconds(10);
    follower_ = std::make_unique<CommitFollower>(f, mempool_.get(), &history_);
    follower_->Start();
  }

  void Publish(const CommittedEvent& e, uint64_t missed = 0) {
    follower_->OnEvent(EncodeCommittedEvent(e), missed);
  }

  void TearDown() override {
    follower_.reset();
    mempool_.reset();
  }

  FakeCommitHistory history_;
  std::unique_ptr<Mempool> mempool_;
  std::unique_ptr<CommitFollower> follower_;
  KeyPair alice_ = Ed25519Sha256().GenerateKey();
};

TEST_F(CommitFollowerTest, EmptyChainIsReadyAtHeightZero) {
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 0u);
  EXPECT_TRUE(history_.committed_calls().empty());
}

TEST_F(CommitFollowerTest, RebuildsTheReplayWindowInFewCalls) {
  Bytes old_tx = SignedTx(alice_, 1, 3000);
  Bytes recent_tx = SignedTx(alice_, 2, 3000);
  history_.GrowTo(99);
  history_.AddEvent({100,
                     {},
                     {Committed(old_tx)},
                     {},
                     false,
                     std::nullopt});  // outside the window
  history_.GrowTo(1599);
  history_.AddEvent(
      {1600, {}, {Committed(recent_tx)}, {}, false, std::nullopt});
  history_.GrowTo(2600);

  Start(/*replay_window=*/2500);
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 2600u);
  // The tip from one GetChainTip, then heights 101..2600, at most 1000 per
  // call.
  EXPECT_EQ(history_.chain_tip_calls(), 1);
  std::vector<std::pair<uint64_t, uint64_t>> calls = history_.committed_calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0], std::make_pair(uint64_t{101}, uint64_t{1100}));
  EXPECT_EQ(calls[2], std::make_pair(uint64_t{2101}, uint64_t{2600}));

  absl::StatusOr<std::vector<SubmitResult>> r = mempool_->Submit({recent_tx});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);
}

// After a governance vote grew the replay window, the member page names the
// rules in force: the rebuild reaches back the grown window, not the
// genesis's.
TEST_F(CommitFollowerTest, RebuildsTheWindowTheMemberPageNames) {
  Bytes old_tx = SignedTx(alice_, 1, 3000);
  history_.GrowTo(99);
  history_.AddEvent({100, {}, {Committed(old_tx)}, {}, false, std::nullopt});
  history_.GrowTo(1100);
  ChainRules rules;
  rules.replay_window = 2000;
  history_.SetRules(rules);

  Start(/*replay_window=*/500);
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->replay_window(), 2000u);
  std::vector<std::pair<uint64_t, uint64_t>> calls = history_.committed_calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls[0].first, 1u);
  absl::StatusOr<std::vector<SubmitResult>> r = mempool_->Submit({old_tx});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);
}

TEST_F(CommitFollowerTest, RetriesUntilStorageAnswers) {
  history_.GrowTo(5);
  history_.FailNext(4);
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 5u);
}

TEST_F(CommitFollowerTest, AppliesEventsAndFillsGapsFromStorage) {
  history_.GrowTo(5);
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  ASSERT_TRUE(mempool_->Submit({a, b}).ok());
  const size_t calls_before = history_.committed_calls().size();

  history_.AddEvent({6, {}, {}, {}, false, std::nullopt});
  Publish({6, {}, {}, {}, false, std::nullopt});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 6; }));

  // Heights 7 and 8 never reach the subscriber; 9 says so.
  history_.AddEvent({7, {}, {Committed(a)}, {}, false, std::nullopt});
  history_.AddEvent({8, {}, {}, {}, false, std::nullopt});
  history_.AddEvent({9, {}, {Committed(b)}, {}, false, std::nullopt});
  Publish({9, {}, {Committed(b)}, {}, false, std::nullopt}, /*missed=*/2);
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 9; }));
  EXPECT_EQ(mempool_->pending_count(), 0u);
  std::vector<std::pair<uint64_t, uint64_t>> calls = history_.committed_calls();
  ASSERT_EQ(calls.size(), calls_before + 1);
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{7}, uint64_t{8}));
  // a came in through the gap: it is in the replay window.
  absl::StatusOr<std::vector<SubmitResult>> r = mempool_->Submit({a});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);

  // Duplicates and old events are ignored.
  Publish({8, {}, {}, {}, false, std::nullopt});
  Publish({10, {}, {}, {}, false, std::nullopt});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 10; }));
}

TEST_F(CommitFollowerTest, EventsBeforeTheRebuildAreNotLost) {
  history_.GrowTo(3);
  history_.FailNext(3);
  Start();
  Publish({2, {}, {}, {}, false, std::nullopt});
  history_.AddEvent({4, {}, {}, {}, false, std::nullopt});
  Publish({4, {}, {}, {}, false, std::nullopt});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 4; }));
  EXPECT_TRUE(mempool_->ready());
}

TEST_F(CommitFollowerTest, AReapWaitingForALostEventFetchesIt) {
  history_.GrowTo(5);
  Start(1000, absl::Seconds(30));
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  Bytes a = SignedTx(alice_, 1, 100);
  Bytes b = SignedTx(alice_, 2, 100);
  ASSERT_TRUE(mempool_->Submit({a, b}).ok());
  // Block 6 is committed but its event is lost and nothing follows.
  history_.AddEvent({6, {}, {Committed(a)}, {}, false, std::nullopt});
  absl::StatusOr<std::vector<Bytes>> r = mempool_->Reap({100, 1 << 20, 6});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<Bytes>{b});
}

// Issue 11 point 0: storage stops a GetCommitted answer once its txs reach
// a limit (100,000 in storage; 100 here). A window holding more txs than one
// answer is rebuilt page by page, and every tx of it is remembered.
TEST_F(CommitFollowerTest, RebuildsAWindowLargerThanOnePage) {
  std::vector<Bytes> txs;  // 10 per height, heights 1..50
  for (uint64_t h = 1; h <= 50; ++h) {
    CommittedEvent e{h, {}, {}, {}, false, std::nullopt};
    for (uint64_t i = 0; i < 10; ++i) {
      txs.push_back(SignedTx(alice_, h * 100 + i, 900));
      e.txs.push_back(Committed(txs.back()));
    }
    history_.AddEvent(std::move(e));
  }
  history_.SetMaxTxsPerCall(100);

  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  EXPECT_EQ(mempool_->applied_height(), 50u);
  // Five pages of 10 heights, each call starting where the last stopped.
  std::vector<std::pair<uint64_t, uint64_t>> calls = history_.committed_calls();
  ASSERT_EQ(calls.size(), 5u);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i], std::make_pair(uint64_t{1 + 10 * i}, uint64_t{50}));
  }
  // A tx of the last page is in the replay window as well as one of the
  // first.
  absl::StatusOr<std::vector<SubmitResult>> r =
      mempool_->Submit({txs.front(), txs.back()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);
  EXPECT_EQ((*r)[1].code, Admission::kAlreadyCommitted);
}

// The same when filling a gap: the heights after the first page are not
// skipped when the event after the gap is applied.
TEST_F(CommitFollowerTest, FillsAGapLargerThanOnePage) {
  history_.GrowTo(5);
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  history_.SetMaxTxsPerCall(20);
  std::vector<Bytes> txs;  // 10 per height, heights 6..15
  for (uint64_t h = 6; h <= 15; ++h) {
    CommittedEvent e{h, {}, {}, {}, false, std::nullopt};
    for (uint64_t i = 0; i < 10; ++i) {
      txs.push_back(SignedTx(alice_, h * 100 + i, 900));
      e.txs.push_back(Committed(txs.back()));
    }
    history_.AddEvent(std::move(e));
  }
  history_.AddEvent({16, {}, {}, {}, false, std::nullopt});
  const size_t calls_before = history_.committed_calls().size();
  // Heights 6..15 never reach the subscriber; 16 says so.
  Publish({16, {}, {}, {}, false, std::nullopt}, /*missed=*/10);
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 16; }));
  std::vector<std::pair<uint64_t, uint64_t>> calls = history_.committed_calls();
  ASSERT_EQ(calls.size(), calls_before + 5);  // pages of 2 heights
  EXPECT_EQ(calls[calls_before + 1], std::make_pair(uint64_t{8}, uint64_t{15}));
  absl::StatusOr<std::vector<SubmitResult>> r = mempool_->Submit(txs);
  ASSERT_TRUE(r.ok());
  for (const SubmitResult& one : *r) {
    EXPECT_EQ(one.code, Admission::kAlreadyCommitted);
  }
}

// A page with a hole (a storage that breaks the contract) is never applied:
// the mempool stays unready rather than forget the missing height's txs.
TEST_F(CommitFollowerTest, APageWithAHoleIsRefused) {
  class HoleyHistory : public FakeCommitHistory {
   public:
    absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                               uint64_t to) override {
      absl::StatusOr<CommittedPage> page =
          FakeCommitHistory::GetCommitted(from, to);
      if (page.ok() && page->events.size() > 2) {
        page->events.erase(page->events.begin() + 1);
      }
      return page;
    }
  };
  HoleyHistory holey;
  holey.GrowTo(5);
  MempoolOptions o;
  Mempool mempool(o, kChainId, Ed25519Sha256(), nullptr);
  CommitFollower::Options f;
  f.retry_interval = absl::Milliseconds(5);
  MetricsRegistry registry;
  CommitFollower follower(f, &mempool, &holey,
                          MempoolMetrics::Create(registry));
  follower.Start();
  ASSERT_TRUE(WaitFor([&] { return holey.committed_calls().size() >= 3; }));
  EXPECT_FALSE(mempool.ready());
  EXPECT_EQ(mempool.applied_height(), 0u);
  // Each refused page is counted.
  const std::string text = registry.Serialize();
  EXPECT_EQ(text.find("consortia_mempool_bad_commit_pages_total 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_mempool_bad_commit_pages_total "),
            std::string::npos)
      << text;
}

TEST_F(CommitFollowerTest, UndecodableEventsAreDropped) {
  Start();
  ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  follower_->OnEvent(Bytes{0xde, 0xad}, 0);
  history_.AddEvent({1, {}, {}, {}, false, std::nullopt});
  Publish({1, {}, {}, {}, false, std::nullopt});
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 1; }));
}

}  // namespace
}  // namespace consortia::mempool
