// Admission on a permissioned chain: the membership cache, the Mempool's
// check against it, and the CommitFollower that loads it at start and keeps
// it current from the commit events.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "commit_follower.h"
#include "consortia/metrics.h"
#include "consortia/testing/fake_storage_queries.h"
#include "gtest/gtest.h"
#include "membership_cache.h"
#include "mempool.h"
#include "mempool_metrics.h"
#include "test_util.h"

namespace consortia::mempool {
namespace {

using ::consortia::testing::FakeCommitHistory;
using testing::Committed;
using testing::kChainId;
using testing::SignedTx;
using testing::WaitFor;

std::string Key(const KeyPair& k) {
  return std::string(AsString(k.public_key));
}

// The one verdict of submitting `raw` alone.
Admission SubmitOne(Mempool& m, const Bytes& raw,
                    std::string* detail = nullptr) {
  absl::StatusOr<std::vector<SubmitResult>> r = m.Submit({raw});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok() || r->size() != 1) return Admission::kAccepted;
  if (detail != nullptr) *detail = (*r)[0].detail;
  return (*r)[0].code;
}

CommittedEvent Event(uint64_t height, std::vector<MemberChange> changes,
                     bool permissioned, std::vector<CommittedTx> txs = {}) {
  return CommittedEvent{height,         Hash32{},
                        std::move(txs), std::move(changes),
                        permissioned,   std::nullopt};
}

TEST(MembershipCacheTest, OpenUntilLoadedThenFollowsEvents) {
  MembershipCache cache;
  const Bytes a(32, 0xaa), b(32, 0xbb);
  // Nothing loaded: an open chain, every key admitted.
  EXPECT_TRUE(cache.Admits(a));
  EXPECT_FALSE(cache.permissioned());

  cache.Load(5, true, {std::string(AsString(a))});
  EXPECT_EQ(cache.height(), 5u);
  EXPECT_TRUE(cache.Admits(a));
  EXPECT_FALSE(cache.Admits(b));

  // An event at or below the loaded height is already reflected.
  cache.Apply(Event(5, {{b, true}}, true));
  EXPECT_FALSE(cache.Admits(b));
  cache.Apply(Event(6, {{a, false}, {b, true}}, true));
  EXPECT_EQ(cache.height(), 6u);
  EXPECT_FALSE(cache.Admits(a));
  EXPECT_TRUE(cache.Admits(b));
  EXPECT_EQ(cache.size(), 1u);
  // The chain opens: everyone again.
  cache.Apply(Event(7, {}, false));
  EXPECT_TRUE(cache.Admits(a));
}

class MembershipAdmissionTest : public ::testing::Test {
 protected:
  MembershipAdmissionTest()
      : mempool_(MempoolOptions(), kChainId, Ed25519Sha256(), nullptr,
                 MempoolMetrics::Create(registry_)) {
    mempool_.SetReady();
  }

  // The value of a series in the registry's text output.
  std::string Line(const std::string& series) {
    const std::string text = registry_.Serialize();
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, series + " ")) return std::string(line);
    }
    return "";
  }

  MetricsRegistry registry_;
  Mempool mempool_;
  KeyPair member_ = Ed25519Sha256().GenerateKey();
  KeyPair stranger_ = Ed25519Sha256().GenerateKey();
};

TEST_F(MembershipAdmissionTest, PermissionedChainRefusesUnregisteredSenders) {
  mempool_.members().Load(0, true, {Key(member_)});
  EXPECT_EQ(SubmitOne(mempool_, SignedTx(member_, 1, 100)),
            Admission::kAccepted);
  std::string detail;
  EXPECT_EQ(SubmitOne(mempool_, SignedTx(stranger_, 1, 100), &detail),
            Admission::kUnregisteredSender);
  EXPECT_EQ(detail, "sender key " + ToHex(stranger_.public_key) +
                        " is not a registered member of this consortium");
  EXPECT_EQ(mempool_.pending_count(), 1u);
  EXPECT_EQ(
      Line("consortia_mempool_rejected_total{reason=\"unregistered_sender\"}"),
      "consortia_mempool_rejected_total{reason=\"unregistered_sender\"} 1");
  EXPECT_EQ(Line("consortia_mempool_members"), "consortia_mempool_members 1");
  EXPECT_EQ(Line("consortia_mempool_permissioned"),
            "consortia_mempool_permissioned 1");
}

// A proposed block that carries a non-member's tx is refused: execution
// would refuse the tx on every node, so a proposer that includes it floods
// the chain with txs that change nothing.
TEST_F(MembershipAdmissionTest, ProposalWithANonMembersTxIsRefused) {
  mempool_.members().Load(0, true, {Key(member_)});
  absl::StatusOr<std::vector<ProposalTxCheck>> checks = mempool_.CheckProposal(
      {SignedTx(member_, 1, 100), SignedTx(stranger_, 1, 100)}, 1);
  ASSERT_TRUE(checks.ok()) << checks.status();
  ASSERT_EQ(checks->size(), 2u);
  EXPECT_EQ((*checks)[0].code, Admission::kAccepted);
  EXPECT_EQ((*checks)[1].code, Admission::kUnregisteredSender);
}

TEST_F(MembershipAdmissionTest, OpenChainAdmitsEveryone) {
  mempool_.members().Load(0, false, {});
  EXPECT_EQ(SubmitOne(mempool_, SignedTx(stranger_, 1, 100)),
            Admission::kAccepted);
}

TEST_F(MembershipAdmissionTest, EventsRegisterAndUnregisterKeys) {
  mempool_.members().Load(0, true, {});
  const Bytes first = SignedTx(stranger_, 1, 100);
  EXPECT_EQ(SubmitOne(mempool_, first), Admission::kUnregisteredSender);

  // Registered by block 1: admitted after it.
  CommittedEvent e1 = Event(1, {{stranger_.public_key, true}}, true);
  mempool_.members().Apply(e1);
  mempool_.OnCommitted(e1);
  EXPECT_EQ(SubmitOne(mempool_, first), Admission::kAccepted);
  EXPECT_EQ(SubmitOne(mempool_, SignedTx(stranger_, 2, 100)),
            Admission::kAccepted);
  EXPECT_EQ(SubmitOne(mempool_, SignedTx(member_, 1, 100)),
            Admission::kUnregisteredSender);

  // Unregistered by block 2: refused after it, and its pending txs are gone
  // (execution would refuse them).
  CommittedEvent e2 = Event(2, {{stranger_.public_key, false}}, true);
  mempool_.members().Apply(e2);
  mempool_.OnCommitted(e2);
  EXPECT_EQ(mempool_.pending_count(), 0u);
  EXPECT_EQ(SubmitOne(mempool_, SignedTx(stranger_, 3, 100)),
            Admission::kUnregisteredSender);
  EXPECT_EQ(Line("consortia_mempool_evicted_total{reason=\"unregistered\"}"),
            "consortia_mempool_evicted_total{reason=\"unregistered\"} 2");
}

// ------------------------------------------------- with the CommitFollower

class MembershipFollowerTest : public ::testing::Test {
 protected:
  void Start(CommitHistory* history, uint64_t replay_window = 1000,
             uint32_t members_page = kMaxListMembers,
             std::optional<std::vector<Bytes>> genesis_members = {}) {
    MempoolOptions o;
    o.replay_window = replay_window;
    mempool_ = std::make_unique<Mempool>(o, kChainId, Ed25519Sha256(), nullptr);
    CommitFollower::Options f;
    f.retry_interval = absl::Milliseconds(5);
    f.idle_check = absl::Milliseconds(10);
    f.members_page = members_page;
    f.genesis_members = std::move(genesis_members);
    follower_ = std::make_unique<CommitFollower>(f, mempool_.get(), history);
    follower_->Start();
    ASSERT_TRUE(WaitFor([&] { return mempool_->ready(); }));
  }

  void TearDown() override {
    follower_.reset();
    mempool_.reset();
  }

  FakeCommitHistory history_;
  std::unique_ptr<Mempool> mempool_;
  std::unique_ptr<CommitFollower> follower_;
};

TEST_F(MembershipFollowerTest, LoadsAMemberSetOfManyPagesBeforeReady) {
  std::vector<KeyPair> members;
  std::vector<Bytes> keys;
  for (int i = 0; i < 7; ++i) {
    members.push_back(Ed25519Sha256().GenerateKey());
    keys.push_back(members.back().public_key);
  }
  history_.GrowTo(3);
  history_.SetMembers(keys, true);
  Start(&history_, 1000, /*members_page=*/3);
  // Three pages of at most 3 keys: from the start, then after each page's
  // last key.
  EXPECT_EQ(history_.list_members_calls().size(), 3u);
  EXPECT_EQ(mempool_->members().size(), 7u);
  EXPECT_TRUE(mempool_->members().permissioned());
  EXPECT_EQ(mempool_->members().height(), 3u);
  for (size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ(SubmitOne(*mempool_, SignedTx(members[i], 1, 100)),
              Admission::kAccepted)
        << i;
  }
  EXPECT_EQ(
      SubmitOne(*mempool_, SignedTx(Ed25519Sha256().GenerateKey(), 1, 100)),
      Admission::kUnregisteredSender);
}

TEST_F(MembershipFollowerTest, BeforeBlockOneTheGenesisMembersAreTheMembers) {
  // Storage has executed no block: its member set is empty and "open".
  const KeyPair member = Ed25519Sha256().GenerateKey();
  Start(&history_, 1000, kMaxListMembers,
        std::vector<Bytes>{member.public_key});
  EXPECT_TRUE(mempool_->members().permissioned());
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(member, 1, 100)),
            Admission::kAccepted);
  EXPECT_EQ(
      SubmitOne(*mempool_, SignedTx(Ed25519Sha256().GenerateKey(), 1, 100)),
      Admission::kUnregisteredSender);
}

TEST_F(MembershipFollowerTest, AnOpenChainLoadsNothingAndAdmitsEveryone) {
  history_.GrowTo(2);
  Start(&history_);
  EXPECT_EQ(history_.list_members_calls().size(), 1u);
  EXPECT_FALSE(mempool_->members().permissioned());
  EXPECT_EQ(
      SubmitOne(*mempool_, SignedTx(Ed25519Sha256().GenerateKey(), 1, 100)),
      Admission::kAccepted);
}

TEST_F(MembershipFollowerTest, EventsAndGapsKeepTheCacheCurrent) {
  const KeyPair a = Ed25519Sha256().GenerateKey();
  const KeyPair b = Ed25519Sha256().GenerateKey();
  history_.GrowTo(2);
  history_.SetMembers({a.public_key}, true);
  Start(&history_);
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(b, 1, 100)),
            Admission::kUnregisteredSender);

  // Block 3 registers b: admitted once its event is applied.
  CommittedEvent e3 = Event(3, {{b.public_key, true}}, true);
  history_.AddEvent(e3);
  follower_->OnEvent(EncodeCommittedEvent(e3), 0);
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 3; }));
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(b, 2, 100)), Admission::kAccepted);

  // Block 4 (never received: a gap) unregisters a; block 5 arrives. The
  // follower fetches 4 from storage and applies its change first.
  history_.AddEvent(Event(4, {{a.public_key, false}}, true));
  CommittedEvent e5 = Event(5, {}, true);
  history_.AddEvent(e5);
  follower_->OnEvent(EncodeCommittedEvent(e5), 1);
  ASSERT_TRUE(WaitFor([&] { return mempool_->applied_height() == 5; }));
  EXPECT_EQ(mempool_->members().height(), 5u);
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(a, 3, 100)),
            Admission::kUnregisteredSender);
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(b, 4, 100)), Admission::kAccepted);
}

// A member set read at a height below the tip (a commit landed between the
// pages, or before the tip was asked): the events above it are fetched and
// applied even when they are older than the replay window.
TEST_F(MembershipFollowerTest, AppliesTheEventsAboveAnOlderMemberSet) {
  class LaggingMembers : public FakeCommitHistory {
   public:
    absl::StatusOr<MemberPage> ListMembers(const Bytes& cursor,
                                           uint32_t limit) override {
      absl::StatusOr<MemberPage> page =
          FakeCommitHistory::ListMembers(cursor, limit);
      if (page.ok()) page->height = 4;
      return page;
    }
  };
  const KeyPair a = Ed25519Sha256().GenerateKey();
  const KeyPair b = Ed25519Sha256().GenerateKey();
  LaggingMembers history;
  history.GrowTo(4);
  history.AddEvent(
      Event(5, {{a.public_key, false}, {b.public_key, true}}, true));
  history.GrowTo(10);
  // Every later event says permissioned; the set is as of height 4.
  for (uint64_t h = 6; h <= 10; ++h) history.AddEvent(Event(h, {}, true));
  history.SetMembers({a.public_key}, true);
  Start(&history, /*replay_window=*/2);
  EXPECT_EQ(history.committed_calls().front().first, 5u);
  EXPECT_EQ(mempool_->members().height(), 10u);
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(a, 1, 11)),
            Admission::kUnregisteredSender);
  EXPECT_EQ(SubmitOne(*mempool_, SignedTx(b, 1, 11)), Admission::kAccepted);
}

}  // namespace
}  // namespace consortia::mempool
