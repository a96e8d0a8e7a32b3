#include "mempool.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/metrics.h"
#include "consortia/thread_pool.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace consortia::mempool {
namespace {

using testing::Committed;
using testing::HashOf;
using testing::kChainId;
using testing::MakeTx;
using testing::SignedTx;

class MempoolTest : public ::testing::Test {
 protected:
  MempoolTest() : pool_(2) {}

  // A ready mempool with `options` (defaults when not given).
  std::unique_ptr<Mempool> Make(MempoolOptions options = {}) {
    EXPECT_TRUE(options.Validate().ok()) << options.Validate();
    auto m =
        std::make_unique<Mempool>(options, kChainId, Ed25519Sha256(), &pool_);
    m->SetReady();
    return m;
  }

  // Submits one tx and returns its result.
  SubmitResult SubmitOne(Mempool& m, const Bytes& raw) {
    absl::StatusOr<std::vector<SubmitResult>> r = m.Submit({raw});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->size() != 1)
      return SubmitResult{{}, Admission::kMalformed, "call failed"};
    return (*r)[0];
  }

  std::vector<Bytes> ReapAll(Mempool& m, uint64_t committed_height = 0) {
    absl::StatusOr<std::vector<Bytes>> r =
        m.Reap({100000, uint64_t{1} << 40, committed_height});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<Bytes>{};
  }

  ThreadPool pool_;
  KeyPair alice_ = Ed25519Sha256().GenerateKey();
  KeyPair bob_ = Ed25519Sha256().GenerateKey();
};

TEST_F(MempoolTest, AcceptsASignedTxAndReportsItsHash) {
  auto m = Make();
  Bytes raw = SignedTx(alice_, 1, 10);
  SubmitResult r = SubmitOne(*m, raw);
  EXPECT_EQ(r.code, Admission::kAccepted) << r.detail;
  EXPECT_EQ(r.tx_hash, HashOf(raw));
  EXPECT_EQ(m->pending_count(), 1u);
  EXPECT_EQ(m->pending_bytes(), raw.size());
  EXPECT_EQ(ReapAll(*m), std::vector<Bytes>{raw});
}

TEST_F(MempoolTest, RejectsTooLarge) {
  MempoolOptions o;
  o.max_tx_bytes = 300;
  auto m = Make(o);
  SubmitResult r =
      SubmitOne(*m, SignedTx(alice_, 1, 10, kChainId, std::string(400, 'x')));
  EXPECT_EQ(r.code, Admission::kTooLarge);
  EXPECT_NE(r.detail.find("300"), std::string::npos) << r.detail;
  EXPECT_EQ(m->pending_count(), 0u);
}

TEST_F(MempoolTest, RejectsMalformedWithTheDecodersMessage) {
  auto m = Make();
  Bytes raw = SignedTx(alice_, 1, 10);
  raw.push_back(0);  // trailing byte
  SubmitResult r = SubmitOne(*m, raw);
  EXPECT_EQ(r.code, Admission::kMalformed);
  EXPECT_EQ(r.detail, std::string(DecodeTx(raw).status().message()));
  EXPECT_FALSE(r.detail.empty());
  EXPECT_EQ(r.tx_hash, Hash32{});

  EXPECT_EQ(SubmitOne(*m, Bytes{0xff, 0xff, 0xff}).code, Admission::kMalformed);
  EXPECT_EQ(SubmitOne(*m, Bytes{}).code, Admission::kMalformed);
}

TEST_F(MempoolTest, RejectsAnotherChainsTx) {
  auto m = Make();
  SubmitResult r = SubmitOne(*m, SignedTx(alice_, 1, 10, "othernet"));
  EXPECT_EQ(r.code, Admission::kWrongChain);
  EXPECT_NE(r.detail.find("othernet"), std::string::npos) << r.detail;
}

TEST_F(MempoolTest, RejectsExpiredAgainstTheNextHeight) {
  auto m = Make();
  m->OnCommitted({10, {}, {}, {}, false, std::nullopt});
  // The next height is 11: valid_until 10 can no longer be committed.
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 1, 10)).code, Admission::kExpired);
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 2, 11)).code, Admission::kAccepted);
}

TEST_F(MempoolTest, RejectsTooFarAheadBeyondTheReplayWindow) {
  MempoolOptions o;
  o.replay_window = 100;
  auto m = Make(o);
  // Next height 1: the last admissible valid_until is 101.
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 1, 102)).code,
            Admission::kTooFarAhead);
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 2, 101)).code, Admission::kAccepted);
}

// A governance vote grows the window (docs/apps.md, "Chain rules"): the
// commit event of its block names the new rules, in force from the next
// height, for admission and for the proposals of that height.
TEST_F(MempoolTest, TheReplayWindowFollowsTheCommitEventsRules) {
  MempoolOptions o;
  o.replay_window = 100;
  auto m = Make(o);
  m->OnCommitted({1, {}, {}, {}, false, std::nullopt});
  const Bytes far = SignedTx(alice_, 1, 2 + 150);
  EXPECT_EQ(SubmitOne(*m, far).code, Admission::kTooFarAhead);
  absl::StatusOr<std::vector<ProposalTxCheck>> checks =
      m->CheckProposal({far}, 2);
  ASSERT_TRUE(checks.ok()) << checks.status();
  EXPECT_EQ((*checks)[0].code, Admission::kTooFarAhead);

  ChainRules rules;
  rules.replay_window = 200;
  m->OnCommitted({2, {}, {}, {}, false, rules});
  EXPECT_EQ(m->replay_window(), 200u);
  checks = m->CheckProposal({far}, 3);
  ASSERT_TRUE(checks.ok()) << checks.status();
  EXPECT_EQ((*checks)[0].code, Admission::kAccepted);
  EXPECT_EQ(SubmitOne(*m, far).code, Admission::kAccepted);
  // An event without rules leaves them as they are.
  m->OnCommitted({3, {}, {}, {}, false, std::nullopt});
  EXPECT_EQ(m->replay_window(), 200u);
}

TEST_F(MempoolTest, SameTxTwiceIsAlreadyPendingInOneBatchOrTwo) {
  auto m = Make();
  Bytes raw = SignedTx(alice_, 1, 10);
  absl::StatusOr<std::vector<SubmitResult>> r = m->Submit({raw, raw});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].code, Admission::kAccepted);
  EXPECT_EQ((*r)[1].code, Admission::kAlreadyPending);
  EXPECT_EQ((*r)[1].tx_hash, HashOf(raw));
  EXPECT_EQ(SubmitOne(*m, raw).code, Admission::kAlreadyPending);
  EXPECT_EQ(m->pending_count(), 1u);
}

TEST_F(MempoolTest, RejectsABadSignature) {
  auto m = Make();
  Transaction tx = MakeTx(alice_, 1, 10);
  tx.signature[0] ^= 1;
  SubmitResult r = SubmitOne(*m, EncodeTx(tx));
  EXPECT_EQ(r.code, Admission::kBadSignature);

  // Signed by bob, claiming to be alice.
  Transaction forged = MakeTx(bob_, 2, 10);
  forged.sender = alice_.public_key;
  EXPECT_EQ(SubmitOne(*m, EncodeTx(forged)).code, Admission::kBadSignature);
  EXPECT_EQ(m->pending_count(), 0u);

  // A badly signed copy does not block the genuine tx, nor does it count
  // as pending.
  Transaction good = MakeTx(alice_, 1, 10);
  EXPECT_EQ(SubmitOne(*m, EncodeTx(good)).code, Admission::kAccepted);
}

TEST_F(MempoolTest, RejectsInvalidFieldsAsMalformed) {
  auto m = Make();
  // Each tx is signed after the change, so only the field is at fault.
  auto resigned = [&](Transaction tx) {
    absl::StatusOr<Bytes> sig =
        Ed25519Sha256().Sign(alice_.secret_key, TxSignBytes(tx));
    EXPECT_TRUE(sig.ok());
    tx.signature = *sig;
    return tx;
  };
  Transaction short_key = MakeTx(alice_, 1, 10);
  short_key.sender.pop_back();
  short_key = resigned(short_key);
  Transaction no_app = resigned([&] {
    Transaction t = MakeTx(alice_, 2, 10);
    t.app.clear();
    return t;
  }());
  Transaction no_method = resigned([&] {
    Transaction t = MakeTx(alice_, 3, 10);
    t.method.clear();
    return t;
  }());
  Transaction no_sig = MakeTx(alice_, 4, 10);
  no_sig.signature.clear();
  Transaction long_sig = MakeTx(alice_, 5, 10);
  long_sig.signature.push_back(0);

  struct Case {
    Transaction tx;
    const char* detail;
  };
  for (const Case& c :
       {Case{short_key, "sender key is 31 bytes"}, Case{no_app, "app is empty"},
        Case{no_method, "method is empty"},
        Case{no_sig, "signature is 0 bytes"},
        Case{long_sig, "signature is 65 bytes"}}) {
    SubmitResult r = SubmitOne(*m, EncodeTx(c.tx));
    EXPECT_EQ(r.code, Admission::kMalformed) << c.detail;
    EXPECT_NE(r.detail.find(c.detail), std::string::npos) << r.detail;
    // It decoded, so the client learns its hash.
    EXPECT_EQ(r.tx_hash, TxHash(Ed25519Sha256(), c.tx));
  }
  EXPECT_EQ(m->pending_count(), 0u);
}

// The pool's bounds are exported, so that alerts can say "near full"
// (monitoring/alerts.yml).
TEST_F(MempoolTest, ExportsItsBounds) {
  MetricsRegistry registry;
  MempoolOptions options;
  options.max_txs = 1234;
  options.max_bytes = 56789;
  Mempool m(options, kChainId, Ed25519Sha256(), &pool_,
            MempoolMetrics::Create(registry));
  const std::string text = registry.Serialize();
  EXPECT_NE(text.find("consortia_mempool_max_txs 1234\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("consortia_mempool_max_bytes 56789\n"), std::string::npos)
      << text;
}

TEST_F(MempoolTest, RejectionsAreCountedByReason) {
  MetricsRegistry registry;
  Mempool m(MempoolOptions{}, kChainId, Ed25519Sha256(), &pool_,
            MempoolMetrics::Create(registry));
  m.SetReady();
  Bytes ok = SignedTx(alice_, 1, 10);
  ASSERT_TRUE(m.Submit({ok, ok, SignedTx(alice_, 2, 10, "x"), Bytes{1}}).ok());
  const std::string text = registry.Serialize();
  EXPECT_NE(text.find("consortia_mempool_admitted_total 1"), std::string::npos)
      << text;
  for (const char* reason : {"already_pending", "wrong_chain", "malformed"}) {
    EXPECT_NE(
        text.find(absl::StrCat("consortia_mempool_rejected_total{reason=\"",
                               reason, "\"} 1")),
        std::string::npos)
        << reason << "\n"
        << text;
  }
  EXPECT_NE(text.find("consortia_mempool_pool_txs 1"), std::string::npos);
  EXPECT_NE(text.find(absl::StrCat("consortia_mempool_pool_bytes ", ok.size())),
            std::string::npos);
}

TEST_F(MempoolTest, CommittedTxLeavesThePoolAndCannotBeReplayed) {
  auto m = Make();
  Bytes a = SignedTx(alice_, 1, 50);
  Bytes b = SignedTx(alice_, 2, 50);
  ASSERT_EQ(SubmitOne(*m, a).code, Admission::kAccepted);
  ASSERT_EQ(SubmitOne(*m, b).code, Admission::kAccepted);

  m->OnCommitted({1, {}, {Committed(a)}, {}, false, std::nullopt});
  EXPECT_EQ(m->applied_height(), 1u);
  EXPECT_EQ(ReapAll(*m, 1), std::vector<Bytes>{b});
  EXPECT_EQ(m->pending_bytes(), b.size());

  SubmitResult again = SubmitOne(*m, a);
  EXPECT_EQ(again.code, Admission::kAlreadyCommitted);
  EXPECT_EQ(again.tx_hash, HashOf(a));
  // Still refused many heights later, while its valid_until holds.
  m->OnCommitted({49, {}, {}, {}, false, std::nullopt});
  EXPECT_EQ(SubmitOne(*m, a).code, Admission::kAlreadyCommitted);
  // A commit event for an old height changes nothing.
  m->OnCommitted({3, {}, {Committed(b)}, {}, false, std::nullopt});
  EXPECT_EQ(m->applied_height(), 49u);
  EXPECT_EQ(ReapAll(*m, 49), std::vector<Bytes>{b});
}

TEST_F(MempoolTest, ExpiredPendingTxsAreEvicted) {
  auto m = Make();
  Bytes soon = SignedTx(alice_, 1, 2);
  Bytes later = SignedTx(alice_, 2, 3);
  ASSERT_EQ(SubmitOne(*m, soon).code, Admission::kAccepted);
  ASSERT_EQ(SubmitOne(*m, later).code, Admission::kAccepted);
  m->OnCommitted({1, {}, {}, {}, false, std::nullopt});
  EXPECT_EQ(m->pending_count(), 2u);
  m->OnCommitted({2, {}, {}, {}, false, std::nullopt});
  // valid_until 2 cannot go into block 3.
  EXPECT_EQ(ReapAll(*m, 2), std::vector<Bytes>{later});
  m->OnCommitted({3, {}, {}, {}, false, std::nullopt});
  EXPECT_EQ(m->pending_count(), 0u);
  EXPECT_EQ(m->pending_bytes(), 0u);
}

TEST_F(MempoolTest, ReapReturnsArrivalOrderWithinLimits) {
  auto m = Make();
  std::vector<Bytes> txs;
  for (uint64_t i = 0; i < 10; ++i) {
    txs.push_back(SignedTx(i % 2 ? alice_ : bob_, 100 - i, 20));
    ASSERT_EQ(SubmitOne(*m, txs.back()).code, Admission::kAccepted);
  }
  absl::StatusOr<std::vector<Bytes>> r = m->Reap({4, 1 << 20, 0});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<Bytes>(txs.begin(), txs.begin() + 4));

  // A byte limit that fits three txs and a bit: stops before the fourth.
  uint64_t three = txs[0].size() + txs[1].size() + txs[2].size();
  r = m->Reap({100, three + txs[3].size() - 1, 0});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<Bytes>(txs.begin(), txs.begin() + 3));

  r = m->Reap({0, 1 << 20, 0});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());

  // Reaping does not remove: everything is still there, in order.
  EXPECT_EQ(ReapAll(*m), txs);
}

TEST_F(MempoolTest, PoolFullKeepsWhatItHas) {
  MempoolOptions o;
  o.max_txs = 3;
  o.max_per_sender = 3;
  auto m = Make(o);
  std::vector<Bytes> txs;
  for (uint64_t i = 0; i < 5; ++i) txs.push_back(SignedTx(alice_, i, 10));
  absl::StatusOr<std::vector<SubmitResult>> r = m->Submit(txs);
  ASSERT_TRUE(r.ok()) << r.status();
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*r)[i].code, i < 3 ? Admission::kAccepted : Admission::kPoolFull)
        << i;
  }
  EXPECT_EQ(ReapAll(*m), std::vector<Bytes>(txs.begin(), txs.begin() + 3));
  // Room again once one is committed.
  m->OnCommitted({1, {}, {Committed(txs[0])}, {}, false, std::nullopt});
  EXPECT_EQ(SubmitOne(*m, txs[3]).code, Admission::kAccepted);
}

TEST_F(MempoolTest, PoolFullByBytes) {
  Bytes first = SignedTx(alice_, 1, 10);
  MempoolOptions o;
  o.max_tx_bytes = first.size() + 10;
  o.max_bytes = first.size() + 10;
  auto m = Make(o);
  EXPECT_EQ(SubmitOne(*m, first).code, Admission::kAccepted);
  EXPECT_EQ(SubmitOne(*m, SignedTx(bob_, 2, 10)).code, Admission::kPoolFull);
  EXPECT_EQ(ReapAll(*m), std::vector<Bytes>{first});
}

TEST_F(MempoolTest, SenderLimitLeavesOtherSendersAlone) {
  MempoolOptions o;
  o.max_per_sender = 2;
  auto m = Make(o);
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 1, 10)).code, Admission::kAccepted);
  Bytes a2 = SignedTx(alice_, 2, 10);
  EXPECT_EQ(SubmitOne(*m, a2).code, Admission::kAccepted);
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 3, 10)).code,
            Admission::kSenderLimit);
  EXPECT_EQ(SubmitOne(*m, SignedTx(bob_, 1, 10)).code, Admission::kAccepted);
  // A commit frees alice's slot.
  m->OnCommitted({1, {}, {Committed(a2)}, {}, false, std::nullopt});
  EXPECT_EQ(SubmitOne(*m, SignedTx(alice_, 3, 10)).code, Admission::kAccepted);
}

TEST_F(MempoolTest, MixedBatchAnswersInInputOrder) {
  MempoolOptions o;
  o.replay_window = 100;
  auto m = Make(o);
  Transaction bad_sig = MakeTx(bob_, 4, 10);
  bad_sig.signature[5] ^= 0x40;
  std::vector<Bytes> batch = {
      SignedTx(alice_, 1, 10),
      EncodeTx(bad_sig),
      Bytes{1, 2, 3},
      SignedTx(alice_, 2, 10, "x"),
      SignedTx(alice_, 3, 1000),
      SignedTx(bob_, 5, 10),
  };
  absl::StatusOr<std::vector<SubmitResult>> r = m->Submit(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), batch.size());
  EXPECT_EQ((*r)[0].code, Admission::kAccepted);
  EXPECT_EQ((*r)[1].code, Admission::kBadSignature);
  EXPECT_EQ((*r)[2].code, Admission::kMalformed);
  EXPECT_EQ((*r)[3].code, Admission::kWrongChain);
  EXPECT_EQ((*r)[4].code, Admission::kTooFarAhead);
  EXPECT_EQ((*r)[5].code, Admission::kAccepted);
  EXPECT_EQ(ReapAll(*m), (std::vector<Bytes>{batch[0], batch[5]}));
}

TEST_F(MempoolTest, LargeBatchVerifiesEverySignatureInParallel) {
  auto m = Make();
  std::vector<Bytes> batch;
  for (uint64_t i = 0; i < 300; ++i) {
    Transaction tx = MakeTx(i % 3 ? alice_ : bob_, i, 10);
    if (i % 7 == 0) tx.signature[1] ^= 1;
    batch.push_back(EncodeTx(tx));
  }
  absl::StatusOr<std::vector<SubmitResult>> r = m->Submit(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<Bytes> expected;
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ((*r)[i].code,
              i % 7 == 0 ? Admission::kBadSignature : Admission::kAccepted)
        << i;
    if (i % 7 != 0) expected.push_back(batch[i]);
  }
  EXPECT_EQ(ReapAll(*m), expected);
}

TEST_F(MempoolTest, SubmitsFromTheVerifyPoolItselfDoNotDeadlock) {
  auto m = Make();
  constexpr int kCallers = 6;
  absl::Mutex mu;
  int finished = 0;
  for (int c = 0; c < kCallers; ++c) {
    pool_.Run([&, c] {
      std::vector<Bytes> batch;
      for (uint64_t i = 0; i < 20; ++i) {
        batch.push_back(SignedTx(alice_, c * 1000 + i, 10));
      }
      absl::StatusOr<std::vector<SubmitResult>> r = m->Submit(batch);
      EXPECT_TRUE(r.ok());
      absl::MutexLock lock(&mu);
      ++finished;
    });
  }
  absl::MutexLock lock(&mu);
  auto all = [&]() { return finished == kCallers; };
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60)));
  EXPECT_EQ(m->pending_count(), kCallers * 20u);
}

TEST_F(MempoolTest, ReapWaitsForTheCommittedHeight) {
  MempoolOptions o;
  o.reap_wait = absl::Seconds(60);
  auto m = Make(o);
  Bytes a = SignedTx(alice_, 1, 50);
  Bytes b = SignedTx(alice_, 2, 50);
  ASSERT_EQ(m->Submit({a, b}).status(), absl::OkStatus());

  std::thread committer([&] {
    // Wait until the reap below is blocked (or about to be).
    while (m->wanted_height() < 1) absl::SleepFor(absl::Milliseconds(1));
    absl::SleepFor(absl::Milliseconds(20));
    m->OnCommitted({1, {}, {Committed(a)}, {}, false, std::nullopt});
  });
  // Consensus built block 1 from [a]; it must not get a again.
  absl::StatusOr<std::vector<Bytes>> r = m->Reap({100, 1 << 20, 1});
  committer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<Bytes>{b});
}

TEST_F(MempoolTest, ReapIsUnavailableWhenTheHeightNeverComes) {
  MempoolOptions o;
  o.reap_wait = absl::Milliseconds(30);
  auto m = Make(o);
  ASSERT_EQ(SubmitOne(*m, SignedTx(alice_, 1, 50)).code, Admission::kAccepted);
  absl::StatusOr<std::vector<Bytes>> r = m->Reap({100, 1 << 20, 5});
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(m->wanted_height(), 5u);
}

TEST_F(MempoolTest, UnavailableUntilReady) {
  Mempool m(MempoolOptions{}, kChainId, Ed25519Sha256(), &pool_);
  EXPECT_TRUE(absl::IsUnavailable(m.Submit({SignedTx(alice_, 1, 5)}).status()));
  EXPECT_TRUE(absl::IsUnavailable(m.Reap({10, 1000, 0}).status()));
  m.SetReady();
  EXPECT_TRUE(m.ready());
  EXPECT_TRUE(m.Submit({SignedTx(alice_, 1, 5)}).ok());
}

TEST_F(MempoolTest, WorksWithoutAVerifyPool) {
  Mempool m(MempoolOptions{}, kChainId, Ed25519Sha256(), nullptr);
  m.SetReady();
  Transaction bad = MakeTx(bob_, 1, 5);
  bad.signature[0] ^= 1;
  absl::StatusOr<std::vector<SubmitResult>> r =
      m.Submit({SignedTx(alice_, 1, 5), EncodeTx(bad)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].code, Admission::kAccepted);
  EXPECT_EQ((*r)[1].code, Admission::kBadSignature);
}

// ------------------------------------------------------- proposals

class CheckProposalTest : public MempoolTest {
 protected:
  std::unique_ptr<Mempool> MakeCounting(MempoolOptions options = {}) {
    auto m = std::make_unique<Mempool>(options, kChainId, counting_, &pool_,
                                       MempoolMetrics::Create(registry_));
    m->SetReady();
    return m;
  }

  std::vector<ProposalTxCheck> Check(Mempool& m, const std::vector<Bytes>& txs,
                                     uint64_t height) {
    absl::StatusOr<std::vector<ProposalTxCheck>> r =
        m.CheckProposal(txs, height);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_EQ(r->size(), txs.size());
    return *r;
  }

  bool MetricIs(const std::string& series, int value) {
    return registry_.Serialize().find(absl::StrCat(series, " ", value)) !=
           std::string::npos;
  }

  testing::CountingSuite counting_;
  MetricsRegistry registry_;
};

TEST_F(CheckProposalTest, SubmittedTxsAreNotVerifiedAgain) {
  auto m = MakeCounting();
  std::vector<Bytes> txs;
  for (uint64_t i = 0; i < 40; ++i) txs.push_back(SignedTx(alice_, i, 10));
  absl::StatusOr<std::vector<SubmitResult>> r = m->Submit(txs);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(counting_.verifies(), 40);

  std::vector<ProposalTxCheck> checks = Check(*m, txs, 1);
  for (size_t i = 0; i < txs.size(); ++i) {
    EXPECT_EQ(checks[i].code, Admission::kAccepted) << i;
    EXPECT_EQ(checks[i].tx_hash, HashOf(txs[i]));
  }
  EXPECT_EQ(counting_.verifies(), 40) << "a cached signature was verified";
  EXPECT_TRUE(MetricIs(
      "consortia_mempool_sig_cache_hits_total{call=\"check_proposal\"}", 40))
      << registry_.Serialize();
  EXPECT_TRUE(
      MetricIs("consortia_mempool_proposal_txs_total{result=\"valid\"}", 40));

  // A tx the mempool never saw is verified once, then cached.
  Bytes fresh = SignedTx(bob_, 1, 10);
  EXPECT_EQ(Check(*m, {fresh}, 1)[0].code, Admission::kAccepted);
  EXPECT_EQ(counting_.verifies(), 41);
  EXPECT_EQ(Check(*m, {fresh}, 1)[0].code, Admission::kAccepted);
  EXPECT_EQ(counting_.verifies(), 41);
  EXPECT_TRUE(MetricIs(
      "consortia_mempool_sig_cache_misses_total{call=\"check_proposal\"}", 1));
}

TEST_F(CheckProposalTest, AnotherSignatureForACachedHashIsChecked) {
  auto m = MakeCounting();
  Transaction tx = MakeTx(alice_, 1, 10);
  ASSERT_EQ(SubmitOne(*m, EncodeTx(tx)).code, Admission::kAccepted);
  const int before = counting_.verifies();
  // Same hash (the signature is not part of it), forged signature.
  Transaction forged = tx;
  forged.signature[7] ^= 0x10;
  ASSERT_EQ(TxHash(Ed25519Sha256(), forged), TxHash(Ed25519Sha256(), tx));
  std::vector<ProposalTxCheck> c = Check(*m, {EncodeTx(forged)}, 1);
  EXPECT_EQ(c[0].code, Admission::kBadSignature);
  EXPECT_EQ(counting_.verifies(), before + 1);
  // The genuine one is still a hit.
  EXPECT_EQ(Check(*m, {EncodeTx(tx)}, 1)[0].code, Admission::kAccepted);
  EXPECT_EQ(counting_.verifies(), before + 1);
}

TEST_F(CheckProposalTest, WithoutACacheEverySignatureIsChecked) {
  MempoolOptions o;
  o.sig_cache_size = 0;
  auto m = MakeCounting(o);
  Bytes raw = SignedTx(alice_, 1, 10);
  ASSERT_EQ(SubmitOne(*m, raw).code, Admission::kAccepted);
  EXPECT_EQ(Check(*m, {raw}, 1)[0].code, Admission::kAccepted);
  EXPECT_EQ(counting_.verifies(), 2);
}

TEST_F(CheckProposalTest, JudgesEachTxOfTheBlock) {
  MempoolOptions o;
  o.replay_window = 100;
  o.max_tx_bytes = 300;  // a local limit: does not apply to proposals
  auto m = MakeCounting(o);
  Bytes committed = SignedTx(alice_, 1, 50);
  m->OnCommitted(
      {4, {}, {testing::Committed(committed)}, {}, false, std::nullopt});

  Transaction bad_sig = MakeTx(bob_, 2, 50);
  bad_sig.signature[0] ^= 1;
  Bytes good = SignedTx(alice_, 3, 50);
  Bytes big = SignedTx(bob_, 9, 50, kChainId, std::string(400, 'x'));
  const std::vector<Bytes> block = {
      good,                          // 0
      EncodeTx(bad_sig),             // 1
      Bytes{9, 9},                   // 2
      SignedTx(alice_, 4, 50, "x"),  // 3
      SignedTx(alice_, 5, 4),        // 4: valid_until below height 5
      SignedTx(alice_, 6, 106),      // 5: beyond 5 + 100
      committed,                     // 6
      good,                          // 7: twice in one block
      SignedTx(alice_, 7, 105),      // 8: the last admissible valid_until
      big,                           // 9
  };
  std::vector<ProposalTxCheck> c = Check(*m, block, 5);
  const std::vector<Admission> want = {
      Admission::kAccepted,         Admission::kBadSignature,
      Admission::kMalformed,        Admission::kWrongChain,
      Admission::kExpired,          Admission::kTooFarAhead,
      Admission::kAlreadyCommitted, Admission::kAlreadyCommitted,
      Admission::kAccepted,         Admission::kAccepted};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(c[i].code, want[i]) << i << ": " << AdmissionName(c[i].code);
  }
  EXPECT_EQ(c[2].tx_hash, Hash32{});
  EXPECT_EQ(c[6].tx_hash, HashOf(committed));
  EXPECT_TRUE(
      MetricIs("consortia_mempool_proposal_txs_total{result=\"invalid\"}", 7));
  // Checking a proposal admits nothing.
  EXPECT_EQ(m->pending_count(), 0u);
}

TEST_F(CheckProposalTest, ErrorsOfTheWholeCall) {
  MempoolOptions o;
  o.reap_wait = absl::Milliseconds(30);
  Mempool not_ready(o, kChainId, counting_, &pool_);
  EXPECT_TRUE(absl::IsUnavailable(not_ready.CheckProposal({}, 1).status()));

  auto m = MakeCounting(o);
  EXPECT_TRUE(absl::IsInvalidArgument(m->CheckProposal({}, 0).status()));
  // Height 6 builds on 5, which the mempool has not seen committed.
  EXPECT_TRUE(absl::IsUnavailable(m->CheckProposal({}, 6).status()));
  EXPECT_EQ(m->wanted_height(), 5u);
  m->OnCommitted({5, {}, {}, {}, false, std::nullopt});
  EXPECT_TRUE(m->CheckProposal({}, 6).ok());
  // Height 5 is already decided.
  EXPECT_TRUE(absl::IsFailedPrecondition(m->CheckProposal({}, 5).status()));
}

TEST_F(CheckProposalTest, WaitsForTheCommitsItBuildsOn) {
  MempoolOptions o;
  o.reap_wait = absl::Seconds(60);
  auto m = MakeCounting(o);
  Bytes a = SignedTx(alice_, 1, 50);
  std::thread committer([&] {
    while (m->wanted_height() < 1) absl::SleepFor(absl::Milliseconds(1));
    absl::SleepFor(absl::Milliseconds(20));
    m->OnCommitted({1, {}, {testing::Committed(a)}, {}, false, std::nullopt});
  });
  // Block 2 must not carry a, which block 1 committed.
  absl::StatusOr<std::vector<ProposalTxCheck>> r = m->CheckProposal({a}, 2);
  committer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].code, Admission::kAlreadyCommitted);
}

TEST_F(CheckProposalTest, ResubmissionAfterPoolFullSkipsTheSignatureCheck) {
  MempoolOptions o;
  o.max_txs = 1;
  o.max_per_sender = 1;
  auto m = MakeCounting(o);
  Bytes a = SignedTx(alice_, 1, 10);
  Bytes b = SignedTx(bob_, 1, 10);
  ASSERT_EQ(SubmitOne(*m, a).code, Admission::kAccepted);
  ASSERT_EQ(SubmitOne(*m, b).code, Admission::kPoolFull);
  EXPECT_EQ(counting_.verifies(), 2);
  m->OnCommitted({1, {}, {testing::Committed(a)}, {}, false, std::nullopt});
  EXPECT_EQ(SubmitOne(*m, b).code, Admission::kAccepted);
  EXPECT_EQ(counting_.verifies(), 2);
  EXPECT_TRUE(
      MetricIs("consortia_mempool_sig_cache_hits_total{call=\"submit\"}", 1));
}

}  // namespace
}  // namespace consortia::mempool
