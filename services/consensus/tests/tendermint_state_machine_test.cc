// The rules of Algorithm 1, one by one, driven by hand on a 4-validator set
// (f = 1, quorum 3) with real ed25519 signatures. At height 1 the proposer of
// round r is validator (1 + r) mod 4, so the machine under test (validator 0)
// proposes in round 3.
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/merkle.h"
#include "gtest/gtest.h"
#include "inline_answers.h"
#include "tendermint/state_machine.h"

namespace consortia::consensus::tendermint {
namespace {

constexpr int kN = 4;

class TendermintStateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    genesis_.chain_id = "tmnet";
    genesis_.crypto_suite = "ed25519-sha256";
    for (int i = 0; i < kN; ++i) {
      keys_.push_back(*suite_.KeyFromSeed(
          suite_.Hash(AsBytes(absl::StrCat("tm-test-key-", i)))));
      genesis_.validators.push_back(
          Validator{absl::StrCat("v", i), keys_.back().public_key, 1});
    }
  }

  std::unique_ptr<InlineAnswers> Make(std::optional<uint32_t> index,
                                      StateMachineOptions options = {}) {
    MessageSigner* signer = nullptr;
    if (index.has_value()) {
      signers_.push_back(*KeySigner::Create(suite_, keys_[*index].secret_key,
                                            keys_[*index].public_key));
      signer = signers_.back().get();
    }
    absl::StatusOr<std::unique_ptr<StateMachine>> sm =
        StateMachine::Create(genesis_, suite_, index, signer, options);
    EXPECT_TRUE(sm.ok()) << sm.status();
    return std::make_unique<InlineAnswers>(
        *std::move(sm),
        [this](uint64_t h, uint32_t r) -> absl::StatusOr<Block> {
          if (source_fails_) return absl::UnavailableError("no txs");
          return MakeBlock(h, absl::StrCat("own-", r));
        },
        [this](const Block& b) {
          return invalid_.count(BlockHash(suite_, b.header)) == 0;
        });
  }

  // A started machine for validator `index` at height 1.
  std::unique_ptr<InlineAnswers> Started(std::optional<uint32_t> index = 0,
                                         StateMachineOptions options = {}) {
    auto sm = Make(index, options);
    EXPECT_TRUE(sm->StartHeight(1).ok());
    return sm;
  }

  Block MakeBlock(uint64_t height, const std::string& tag) const {
    Block b;
    b.header.chain_id = "tmnet";
    b.header.height = height;
    b.header.proposer = keys_[0].public_key;
    b.txs = {ToBytes(tag)};
    b.header.tx_root = MerkleRoot(suite_, b.txs);
    return b;
  }
  Hash32 HashOf(const Block& b) const { return BlockHash(suite_, b.header); }

  Proposal Propose(uint64_t h, uint32_t r, const Block& b,
                   int64_t vr = kNoRound,
                   std::optional<uint32_t> proposer = std::nullopt) const {
    Proposal p;
    p.height = h;
    p.round = r;
    p.valid_round = vr;
    p.proposer_index = proposer.value_or(ProposerIndex(h, r, kN));
    p.block = b;
    p.signature = *suite_.Sign(keys_[p.proposer_index].secret_key,
                               ProposalSignBytes("tmnet", p, HashOf(b)));
    return p;
  }

  Vote MakeVote(VoteType t, uint64_t h, uint32_t r, const Hash32& hash,
                uint32_t index) const {
    Vote v;
    v.type = t;
    v.height = h;
    v.round = r;
    v.block_hash = hash;
    v.validator_index = index;
    v.signature =
        *suite_.Sign(keys_[index].secret_key, VoteSignBytes("tmnet", v));
    return v;
  }
  Vote Prevote(uint32_t r, const Hash32& hash, uint32_t index,
               uint64_t h = 1) const {
    return MakeVote(VoteType::kPrevote, h, r, hash, index);
  }
  Vote Precommit(uint32_t r, const Hash32& hash, uint32_t index,
                 uint64_t h = 1) const {
    return MakeVote(VoteType::kPrecommit, h, r, hash, index);
  }

  // Feeds votes one by one; returns all actions.
  static Actions Feed(InlineAnswers& sm, const std::vector<Vote>& votes) {
    Actions all;
    for (const Vote& v : votes) {
      Actions a = sm.OnVote(v);
      all.insert(all.end(), a.begin(), a.end());
    }
    return all;
  }

  static std::vector<Vote> Votes(const Actions& actions) {
    std::vector<Vote> out;
    for (const Action& a : actions) {
      if (const auto* b = std::get_if<BroadcastAction>(&a)) {
        if (const auto* v = std::get_if<Vote>(&b->message)) out.push_back(*v);
      }
    }
    return out;
  }
  static std::vector<Proposal> Proposals(const Actions& actions) {
    std::vector<Proposal> out;
    for (const Action& a : actions) {
      if (const auto* b = std::get_if<BroadcastAction>(&a)) {
        if (const auto* p = std::get_if<Proposal>(&b->message)) {
          out.push_back(*p);
        }
      }
    }
    return out;
  }
  static std::vector<ScheduleTimeoutAction> Timeouts(const Actions& actions) {
    std::vector<ScheduleTimeoutAction> out;
    for (const Action& a : actions) {
      if (const auto* t = std::get_if<ScheduleTimeoutAction>(&a)) {
        out.push_back(*t);
      }
    }
    return out;
  }
  static std::optional<DecideAction> Decision(const Actions& actions) {
    for (const Action& a : actions) {
      if (const auto* d = std::get_if<DecideAction>(&a)) return *d;
    }
    return std::nullopt;
  }
  static std::vector<Evidence> EvidenceOf(const Actions& actions) {
    std::vector<Evidence> out;
    for (const Action& a : actions) {
      if (const auto* e = std::get_if<EvidenceAction>(&a)) {
        out.push_back(e->evidence);
      }
    }
    return out;
  }
  static bool HasTimeout(const Actions& actions, Step step, uint32_t round) {
    for (const ScheduleTimeoutAction& t : Timeouts(actions)) {
      if (t.step == step && t.round == round) return true;
    }
    return false;
  }

  static std::vector<ValidateBlockAction> Validations(const Actions& actions) {
    std::vector<ValidateBlockAction> out;
    for (const Action& a : actions) {
      if (const auto* v = std::get_if<ValidateBlockAction>(&a)) {
        out.push_back(*v);
      }
    }
    return out;
  }
  static std::vector<RequestBlockAction> BlockRequests(const Actions& actions) {
    std::vector<RequestBlockAction> out;
    for (const Action& a : actions) {
      if (const auto* r = std::get_if<RequestBlockAction>(&a))
        out.push_back(*r);
    }
    return out;
  }
  // A machine whose block and validity requests the test answers itself.
  std::unique_ptr<StateMachine> Raw(std::optional<uint32_t> index,
                                    const Genesis* genesis = nullptr) {
    MessageSigner* signer = nullptr;
    if (index.has_value()) {
      signers_.push_back(*KeySigner::Create(suite_, keys_[*index].secret_key,
                                            keys_[*index].public_key));
      signer = signers_.back().get();
    }
    absl::StatusOr<std::unique_ptr<StateMachine>> sm = StateMachine::Create(
        genesis != nullptr ? *genesis : genesis_, suite_, index, signer);
    EXPECT_TRUE(sm.ok()) << sm.status();
    return *std::move(sm);
  }
  // Feeds votes to a raw machine; returns all actions.
  static Actions FeedRaw(StateMachine& sm, const std::vector<Vote>& votes) {
    Actions all;
    for (const Vote& v : votes) {
      Actions a = sm.OnVote(v);
      all.insert(all.end(), a.begin(), a.end());
    }
    return all;
  }

  // Validator 0 locked on `b` in round 0 (it prevoted and precommitted b).
  std::unique_ptr<InlineAnswers> LockedOn(const Block& b) {
    auto sm = Started();
    sm->OnProposal(Propose(1, 0, b));
    Feed(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2)});
    EXPECT_EQ(sm->locked_round(), 0);
    return sm;
  }

  // Moves sm from round r to r + 1 with nil precommits and the timeout.
  void NextRound(InlineAnswers& sm, uint32_t r) {
    Feed(sm, {Precommit(r, Hash32{}, 1), Precommit(r, Hash32{}, 2),
              Precommit(r, Hash32{}, 3)});
    sm.OnTimeout(1, r, Step::kPrecommit);
    ASSERT_EQ(sm.round(), r + 1);
  }

  const CryptoSuite& suite_ = Ed25519Sha256();
  Genesis genesis_;
  std::vector<KeyPair> keys_;
  std::vector<std::unique_ptr<KeySigner>> signers_;
  std::set<Hash32> invalid_;
  bool source_fails_ = false;
  const Hash32 kNilHash{};
};

// ------------------------------------------------------------ set-up rules

TEST_F(TendermintStateMachineTest, CreateRejectsBadSetups) {
  auto make = [&](const Genesis& g, std::optional<uint32_t> index,
                  MessageSigner* signer) {
    return StateMachine::Create(g, suite_, index, signer);
  };
  auto signer =
      *KeySigner::Create(suite_, keys_[0].secret_key, keys_[0].public_key);
  EXPECT_TRUE(make(genesis_, 0, signer.get()).ok());
  EXPECT_TRUE(make(genesis_, std::nullopt, nullptr).ok());  // observer
  EXPECT_FALSE(make(genesis_, 4, signer.get()).ok());       // out of range
  EXPECT_FALSE(make(genesis_, 0, nullptr).ok());            // no signer
  Genesis empty = genesis_;
  empty.validators.clear();
  EXPECT_FALSE(make(empty, std::nullopt, nullptr).ok());
  Genesis sm2 = genesis_;
  sm2.crypto_suite = "sm2-sm3";
  EXPECT_FALSE(make(sm2, std::nullopt, nullptr).ok());
  Genesis powerless = genesis_;
  for (Validator& v : powerless.validators) v.power = 0;
  EXPECT_FALSE(make(powerless, std::nullopt, nullptr).ok());
  // A signer whose key is not the validator's.
  EXPECT_FALSE(
      KeySigner::Create(suite_, keys_[0].secret_key, keys_[1].public_key).ok());
  EXPECT_FALSE(
      KeySigner::Create(suite_, Bytes{1, 2, 3}, keys_[0].public_key).ok());
}

TEST_F(TendermintStateMachineTest, StartHeightOnlyMovesForward) {
  auto sm = Make(0);
  EXPECT_FALSE(sm->StartHeight(0).ok());
  EXPECT_TRUE(sm->StartHeight(1).ok());
  EXPECT_FALSE(sm->StartHeight(1).ok());
  EXPECT_TRUE(sm->StartHeight(5).ok());  // after block sync
  EXPECT_EQ(sm->height(), 5u);
}

TEST_F(TendermintStateMachineTest, TimeoutsGrowWithTheRoundUpToTheCap) {
  TimeoutConfig t;
  EXPECT_EQ(t.For(Step::kPropose, 0), absl::Seconds(3));
  EXPECT_EQ(t.For(Step::kPropose, 2), absl::Seconds(4));
  EXPECT_EQ(t.For(Step::kPrevote, 1), absl::Milliseconds(1500));
  EXPECT_EQ(t.For(Step::kPrecommit, 4), absl::Seconds(3));
  EXPECT_EQ(t.For(Step::kPrecommit, std::numeric_limits<uint32_t>::max()),
            t.max);
}

// ------------------------------------------------------ lines 11-21, 57-60

TEST_F(TendermintStateMachineTest, NonProposerWaitsForProposalWithTimeout) {
  auto sm = Make(0);
  Actions a = *sm->StartHeight(1);
  EXPECT_TRUE(Proposals(a).empty());
  ASSERT_EQ(Timeouts(a).size(), 1u);
  EXPECT_EQ(Timeouts(a)[0].height, 1u);
  EXPECT_EQ(Timeouts(a)[0].round, 0u);
  EXPECT_EQ(Timeouts(a)[0].step, Step::kPropose);
  EXPECT_EQ(Timeouts(a)[0].duration, absl::Seconds(3));
  EXPECT_EQ(sm->step(), Step::kPropose);
}

TEST_F(TendermintStateMachineTest, ProposerBroadcastsSignedProposal) {
  auto sm = Make(1);  // proposer of height 1 round 0
  Actions a = *sm->StartHeight(1);
  const std::vector<Proposal> proposals = Proposals(a);
  ASSERT_EQ(proposals.size(), 1u);
  const Proposal& p = proposals[0];
  EXPECT_EQ(p.height, 1u);
  EXPECT_EQ(p.round, 0u);
  EXPECT_EQ(p.valid_round, kNoRound);
  EXPECT_EQ(p.proposer_index, 1u);
  EXPECT_EQ(p.block.txs, std::vector<Bytes>{ToBytes("own-0")});
  EXPECT_TRUE(suite_.Verify(keys_[1].public_key,
                            ProposalSignBytes("tmnet", p, HashOf(p.block)),
                            p.signature));
  // It receives its own proposal and prevotes for it (line 24).
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].type, VoteType::kPrevote);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(p.block));
  EXPECT_EQ(sm->step(), Step::kPrevote);
}

TEST_F(TendermintStateMachineTest, ProposerWithoutABlockPrevotesNilLater) {
  source_fails_ = true;
  auto sm = Make(1);
  Actions a = *sm->StartHeight(1);
  EXPECT_TRUE(Proposals(a).empty());
  EXPECT_TRUE(HasTimeout(a, Step::kPropose, 0));
  EXPECT_EQ(sm->counters().proposal_source_failures, 1u);
  a = sm->OnTimeout(1, 0, Step::kPropose);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
}

TEST_F(TendermintStateMachineTest, ProposeTimeoutPrevotesNilOnce) {
  auto sm = Started();
  EXPECT_TRUE(sm->OnTimeout(1, 1, Step::kPropose).empty());  // other round
  EXPECT_TRUE(sm->OnTimeout(2, 0, Step::kPropose).empty());  // other height
  Actions a = sm->OnTimeout(1, 0, Step::kPropose);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].type, VoteType::kPrevote);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  EXPECT_EQ(sm->step(), Step::kPrevote);
  // Fired again (a duplicate timer): no second vote.
  EXPECT_TRUE(Votes(sm->OnTimeout(1, 0, Step::kPropose)).empty());
}

// ------------------------------------------------------------ lines 22-33

TEST_F(TendermintStateMachineTest, PrevotesForAValidProposal) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  Actions a = sm->OnProposal(Propose(1, 0, b));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(Votes(a)[0].validator_index, 0u);
  EXPECT_TRUE(suite_.Verify(keys_[0].public_key,
                            VoteSignBytes("tmnet", Votes(a)[0]),
                            Votes(a)[0].signature));
  EXPECT_EQ(sm->step(), Step::kPrevote);
  // The same proposal again changes nothing.
  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, b)).empty());
  EXPECT_EQ(sm->counters().duplicates, 1u);
}

TEST_F(TendermintStateMachineTest, PrevotesNilForAnInvalidBlock) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  invalid_.insert(HashOf(b));
  Actions a = sm->OnProposal(Propose(1, 0, b));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  EXPECT_EQ(sm->counters().invalid_blocks, 1u);
}

TEST_F(TendermintStateMachineTest, LockedValidatorPrevotesNilForOtherBlock) {
  const Block a_block = MakeBlock(1, "a");
  auto sm = LockedOn(a_block);
  NextRound(*sm, 0);
  Actions a = sm->OnProposal(Propose(1, 1, MakeBlock(1, "b")));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));  // line 26
  EXPECT_EQ(sm->locked_block_hash(), HashOf(a_block));
}

TEST_F(TendermintStateMachineTest, LockedValidatorPrevotesItsLockedBlock) {
  const Block a_block = MakeBlock(1, "a");
  auto sm = LockedOn(a_block);
  NextRound(*sm, 0);
  // Round 1's proposer re-proposes A as a fresh value: lockedValue = v.
  Actions a = sm->OnProposal(Propose(1, 1, a_block));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(a_block));
}

TEST_F(TendermintStateMachineTest, NewerPolkaUnlocks) {
  const Block a_block = MakeBlock(1, "a");
  const Block b_block = MakeBlock(1, "b");
  auto sm = LockedOn(a_block);
  NextRound(*sm, 0);
  // Round 1: B with 2f+1 prevotes that validator 0 sees only later.
  sm->OnProposal(Propose(1, 1, b_block));
  NextRound(*sm, 1);
  // Round 2: B again, valid_round 1; without the round-1 polka, no vote.
  Actions a = sm->OnProposal(Propose(1, 2, b_block, /*vr=*/1));
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_EQ(sm->step(), Step::kPropose);
  // The polka arrives: lockedRound 0 <= vr 1, so it prevotes B (line 30).
  a = Feed(*sm, {Prevote(1, HashOf(b_block), 1), Prevote(1, HashOf(b_block), 2),
                 Prevote(1, HashOf(b_block), 3)});
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].round, 2u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b_block));
}

TEST_F(TendermintStateMachineTest, OlderPolkaDoesNotUnlock) {
  const Block a_block = MakeBlock(1, "a");
  const Block b_block = MakeBlock(1, "b");
  // Locked on A in round 1.
  auto sm = Started();
  NextRound(*sm, 0);
  sm->OnProposal(Propose(1, 1, a_block));
  Feed(*sm, {Prevote(1, HashOf(a_block), 1), Prevote(1, HashOf(a_block), 2)});
  ASSERT_EQ(sm->locked_round(), 1);
  NextRound(*sm, 1);
  // B with a polka from round 0 < lockedRound 1: prevote nil (line 32).
  Feed(*sm, {Prevote(0, HashOf(b_block), 1), Prevote(0, HashOf(b_block), 2),
             Prevote(0, HashOf(b_block), 3)});
  Actions a = sm->OnProposal(Propose(1, 2, b_block, /*vr=*/0));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
}

// ------------------------------------------------------------ lines 34-48

TEST_F(TendermintStateMachineTest, PolkaLocksAndPrecommits) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));
  Actions a = sm->OnVote(Prevote(0, HashOf(b), 1));
  EXPECT_TRUE(Votes(a).empty());  // own + 1 = 2 of 4: no quorum
  a = sm->OnVote(Prevote(0, HashOf(b), 2));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].type, VoteType::kPrecommit);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(sm->step(), Step::kPrecommit);
  EXPECT_EQ(sm->locked_round(), 0);
  EXPECT_EQ(sm->locked_block_hash(), HashOf(b));
  EXPECT_EQ(sm->valid_round(), 0);
}

TEST_F(TendermintStateMachineTest, PolkaAfterPrecommitNilSetsOnlyValidValue) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  sm->OnTimeout(1, 0, Step::kPropose);  // prevote nil
  Feed(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2)});
  sm->OnTimeout(1, 0, Step::kPrevote);  // precommit nil
  ASSERT_EQ(sm->step(), Step::kPrecommit);
  Actions a = Feed(*sm, {Prevote(0, HashOf(b), 3)});
  a = sm->OnProposal(Propose(1, 0, b));
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_EQ(sm->locked_round(), kNoRound);  // line 37: not in prevote
  EXPECT_EQ(sm->valid_round(), 0);          // lines 42-43
}

TEST_F(TendermintStateMachineTest, MixedPrevotesWaitForTimeoutPrevote) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));  // own prevote for b
  Actions a = Feed(
      *sm, {Prevote(0, kNilHash, 1), Prevote(0, suite_.Hash(AsBytes("c")), 2)});
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_TRUE(HasTimeout(a, Step::kPrevote, 0));  // line 35
  EXPECT_EQ(Timeouts(a).back().duration, absl::Seconds(1));
  a = sm->OnTimeout(1, 0, Step::kPrevote);  // line 63
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].type, VoteType::kPrecommit);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
}

TEST_F(TendermintStateMachineTest, NilPolkaPrecommitsNil) {
  auto sm = Started();
  sm->OnTimeout(1, 0, Step::kPropose);
  Actions a = Feed(*sm, {Prevote(0, kNilHash, 1), Prevote(0, kNilHash, 2)});
  const std::vector<Vote> votes = Votes(a);
  ASSERT_EQ(votes.size(), 1u);
  EXPECT_EQ(votes[0].type, VoteType::kPrecommit);
  EXPECT_TRUE(IsZero(votes[0].block_hash));
  EXPECT_EQ(sm->locked_round(), kNoRound);
}

TEST_F(TendermintStateMachineTest, PrecommitQuorumThenTimeoutStartsNextRound) {
  auto sm = Started();
  sm->OnTimeout(1, 0, Step::kPropose);
  sm->OnTimeout(1, 0, Step::kPrevote);  // ignored: never scheduled
  EXPECT_EQ(sm->step(), Step::kPrevote);
  Actions a = Feed(*sm, {Precommit(0, kNilHash, 1), Precommit(0, kNilHash, 2)});
  EXPECT_FALSE(HasTimeout(a, Step::kPrecommit, 0));  // 2 of 4
  a = sm->OnVote(Precommit(0, suite_.Hash(AsBytes("c")), 3));
  EXPECT_TRUE(HasTimeout(a, Step::kPrecommit, 0));  // line 48
  a = sm->OnTimeout(1, 0, Step::kPrecommit);        // line 67
  EXPECT_EQ(sm->round(), 1u);
  EXPECT_EQ(sm->step(), Step::kPropose);
  ASSERT_TRUE(HasTimeout(a, Step::kPropose, 1));
  EXPECT_EQ(Timeouts(a).back().duration, absl::Milliseconds(3500));
}

// ------------------------------------------------------------ lines 49-54

TEST_F(TendermintStateMachineTest, DecidesWithAVerifiableCertificate) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));
  Actions a =
      Feed(*sm, {Precommit(0, HashOf(b), 3), Precommit(0, HashOf(b), 1)});
  EXPECT_FALSE(Decision(a).has_value());
  a = sm->OnVote(Precommit(0, HashOf(b), 2));
  const std::optional<DecideAction> d = Decision(a);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->height, 1u);
  EXPECT_EQ(d->block, b);
  EXPECT_EQ(d->certificate.block_hash, HashOf(b));
  ASSERT_EQ(d->certificate.sigs.size(), 3u);
  EXPECT_EQ(d->certificate.sigs[0].validator_index, 1u);  // sorted
  EXPECT_EQ(d->certificate.sigs[2].validator_index, 3u);
  EXPECT_TRUE(
      VerifyCertificate(suite_, genesis_, b.header, d->certificate).ok());
  ASSERT_TRUE(sm->decision().has_value());
  // Nothing more happens at a decided height.
  EXPECT_TRUE(sm->OnVote(Precommit(0, HashOf(b), 0)).empty());
  EXPECT_TRUE(sm->OnTimeout(1, 0, Step::kPropose).empty());
  EXPECT_EQ(sm->GossipMessages().size(), 1u);  // the Commit
}

TEST_F(TendermintStateMachineTest, DecidesWhenTheProposalComesLast) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  Feed(*sm, {Precommit(0, HashOf(b), 1), Precommit(0, HashOf(b), 2),
             Precommit(0, HashOf(b), 3)});
  EXPECT_FALSE(sm->decision().has_value());
  const std::optional<DecideAction> d =
      Decision(sm->OnProposal(Propose(1, 0, b)));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->block, b);
}

TEST_F(TendermintStateMachineTest, DecidesForAnEarlierRound) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));
  NextRound(*sm, 0);
  NextRound(*sm, 1);
  // Precommits for round 0's proposal are late; they still decide (line 49
  // holds for any round r).
  Feed(*sm, {Precommit(0, HashOf(b), 3)});
  Feed(*sm, {Precommit(0, HashOf(b), 0)});
  const std::optional<DecideAction> d =
      Decision(sm->OnVote(Precommit(0, HashOf(b), 1)));
  // Validator 1 precommitted nil in round 0 above; its second precommit is a
  // conflict that counts for b (a proposed block), as the paper's log would.
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->certificate.round, 0u);
  EXPECT_TRUE(
      VerifyCertificate(suite_, genesis_, b.header, d->certificate).ok());
}

TEST_F(TendermintStateMachineTest, InvalidBlockIsNeverDecided) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  invalid_.insert(HashOf(b));
  sm->OnProposal(Propose(1, 0, b));
  Actions a = Feed(*sm, {Precommit(0, HashOf(b), 1), Precommit(0, HashOf(b), 2),
                         Precommit(0, HashOf(b), 3)});
  EXPECT_FALSE(Decision(a).has_value());
  EXPECT_FALSE(sm->decision().has_value());
}

// ------------------------------------------------------------ lines 55-56

TEST_F(TendermintStateMachineTest, FPlusOneMessagesOfALaterRoundSkipToIt) {
  auto sm = Started();
  EXPECT_TRUE(sm->OnVote(Prevote(4, kNilHash, 1)).size() == 0);
  EXPECT_EQ(sm->round(), 0u);  // one validator is not f+1
  Actions a = sm->OnVote(Precommit(4, kNilHash, 2));
  EXPECT_EQ(sm->round(), 4u);
  EXPECT_EQ(sm->step(), Step::kPropose);
  EXPECT_EQ(sm->counters().rounds_skipped, 1u);
  EXPECT_TRUE(HasTimeout(a, Step::kPropose, 4));
}

TEST_F(TendermintStateMachineTest, ReproposesValidValueWithItsRound) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  // Skip to round 2 (proposer 3), see a polka for b there.
  Feed(*sm, {Precommit(2, kNilHash, 1), Precommit(2, kNilHash, 2)});
  ASSERT_EQ(sm->round(), 2u);
  sm->OnProposal(Propose(1, 2, b));
  Feed(*sm, {Prevote(2, HashOf(b), 3), Prevote(2, HashOf(b), 1)});
  ASSERT_EQ(sm->valid_round(), 2);
  // Round 3 is validator 0's: it proposes b again with valid_round 2.
  Actions a = sm->OnTimeout(1, 2, Step::kPrecommit);
  ASSERT_EQ(Proposals(a).size(), 1u);
  EXPECT_EQ(Proposals(a)[0].round, 3u);
  EXPECT_EQ(Proposals(a)[0].valid_round, 2);
  EXPECT_EQ(Proposals(a)[0].block, b);
}

// ----------------------------------------------------- checks and evidence

TEST_F(TendermintStateMachineTest, DropsAndCountsBadMessages) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  Vote forged = Prevote(0, HashOf(b), 1);
  forged.signature[3] ^= 1;
  EXPECT_TRUE(sm->OnVote(forged).empty());
  EXPECT_EQ(sm->counters().bad_signature, 1u);

  Vote stranger = Prevote(0, HashOf(b), 1);
  stranger.validator_index = 9;
  EXPECT_TRUE(sm->OnVote(stranger).empty());
  EXPECT_EQ(sm->counters().unknown_validator, 1u);

  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, b, kNoRound, 2)).empty());
  EXPECT_EQ(sm->counters().wrong_proposer, 1u);

  Block bad_root = b;
  bad_root.txs.push_back(ToBytes("smuggled"));
  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, bad_root)).empty());
  Block other_height = MakeBlock(2, "b");
  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, other_height)).empty());
  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, b, /*vr=*/0)).empty());
  EXPECT_EQ(sm->counters().malformed, 3u);

  Proposal resigned = Propose(1, 0, b);
  resigned.block.header.time_ms = 5;  // changes the hash it should sign
  EXPECT_TRUE(sm->OnProposal(resigned).empty());
  EXPECT_EQ(sm->counters().bad_signature, 2u);
  EXPECT_EQ(sm->step(), Step::kPropose);  // none of it counted
}

TEST_F(TendermintStateMachineTest, DoubleVoteIsEvidenceAndCountsOnceForAny) {
  auto sm = Started();
  sm->OnTimeout(1, 0, Step::kPropose);  // own prevote nil
  const Hash32 x = suite_.Hash(AsBytes("x"));
  const Hash32 y = suite_.Hash(AsBytes("y"));
  sm->OnVote(Prevote(0, x, 1));
  Actions a = sm->OnVote(Prevote(0, y, 1));
  const std::vector<Evidence> ev = EvidenceOf(a);
  ASSERT_EQ(ev.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<DoubleVote>(ev[0]));
  EXPECT_EQ(std::get<DoubleVote>(ev[0]).first.block_hash, x);
  EXPECT_EQ(std::get<DoubleVote>(ev[0]).second.block_hash, y);
  EXPECT_TRUE(VerifyEvidence(suite_, genesis_, ev[0]).ok());
  EXPECT_EQ(sm->evidence().size(), 1u);
  EXPECT_EQ(sm->counters().equivocations, 1u);
  // Validator 1 counts once toward "2f+1 of anything": no prevote timeout.
  EXPECT_FALSE(HasTimeout(a, Step::kPrevote, 0));
  a = sm->OnVote(Prevote(0, y, 2));
  EXPECT_TRUE(HasTimeout(a, Step::kPrevote, 0));
  // A third value from validator 1 is not new evidence.
  EXPECT_TRUE(EvidenceOf(sm->OnVote(Prevote(0, kNilHash, 1))).empty());
}

TEST_F(TendermintStateMachineTest, ConflictingVoteCountsForAProposedBlock) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));  // own prevote b
  sm->OnVote(Prevote(0, kNilHash, 1));
  // Validator 1 also prevotes b: evidence, and it counts for b, so that a
  // polka for b that includes it is seen by everyone.
  Actions a = sm->OnVote(Prevote(0, HashOf(b), 1));
  EXPECT_EQ(EvidenceOf(a).size(), 1u);
  EXPECT_TRUE(Votes(a).empty());
  a = sm->OnVote(Prevote(0, HashOf(b), 2));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].type, VoteType::kPrecommit);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
}

TEST_F(TendermintStateMachineTest, ConflictingProposalsAreEvidence) {
  auto sm = Started();
  const Block a_block = MakeBlock(1, "a");
  const Block b_block = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, a_block));
  Actions a = sm->OnProposal(Propose(1, 0, b_block));
  const std::vector<Evidence> ev = EvidenceOf(a);
  ASSERT_EQ(ev.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<DoubleProposal>(ev[0]));
  EXPECT_EQ(EvidenceValidator(ev[0]), 1u);
  EXPECT_TRUE(std::get<DoubleProposal>(ev[0]).second.block.txs.empty());
  EXPECT_TRUE(VerifyEvidence(suite_, genesis_, ev[0]).ok());
  // A third proposal is dropped.
  sm->OnProposal(Propose(1, 0, MakeBlock(1, "c")));
  EXPECT_EQ(sm->counters().conflicts_dropped, 1u);
  // The second proposal is kept: if the others decide it, so does this node.
  const std::optional<DecideAction> d = Decision(Feed(
      *sm, {Precommit(0, HashOf(b_block), 1), Precommit(0, HashOf(b_block), 2),
            Precommit(0, HashOf(b_block), 3)}));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->block, b_block);
}

TEST_F(TendermintStateMachineTest, OwnVoteFromOutsideIsNeverContradicted) {
  // After a restart the driver replays the prevote it signed before (nil);
  // the proposal that arrives next must not make it sign another prevote.
  auto sm = Started();
  sm->OnVote(Prevote(0, kNilHash, 0));
  Actions a = sm->OnProposal(Propose(1, 0, MakeBlock(1, "b")));
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_EQ(sm->step(), Step::kPrevote);
}

TEST_F(TendermintStateMachineTest, OwnPrecommitFromOutsideRestoresTheLock) {
  // Before a restart validator 0 locked on A in round 0 and precommitted it.
  // The restarted machine learns that only from the WAL's replay of its own
  // votes; it must keep the lock and refuse another block in round 1.
  const Block a_block = MakeBlock(1, "a");
  auto sm = Make(0);
  ASSERT_TRUE(sm->StartHeight(1, {Prevote(0, HashOf(a_block), 0),
                                  Precommit(0, HashOf(a_block), 0)})
                  .ok());
  EXPECT_EQ(sm->locked_round(), 0);
  EXPECT_EQ(sm->locked_block_hash(), HashOf(a_block));
  NextRound(*sm, 0);
  Actions a = sm->OnProposal(Propose(1, 1, MakeBlock(1, "b")));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  // A nil precommit, or one of an older round, does not move the lock.
  sm->OnVote(Precommit(1, kNilHash, 0));
  EXPECT_EQ(sm->locked_round(), 0);
  // The locked block proposed again gets its prevote.
  NextRound(*sm, 1);
  Actions b = sm->OnProposal(Propose(1, 2, a_block));
  ASSERT_EQ(Votes(b).size(), 1u);
  EXPECT_EQ(Votes(b)[0].block_hash, HashOf(a_block));
}

TEST_F(TendermintStateMachineTest, RestartedProposerNeverProposesAgain) {
  // Validator 0 proposes in round 3 of height 1. Restarted with that
  // proposal (and its prevote) in its log, it resumes in round 3 and signs
  // nothing new there: no second proposal, no second prevote.
  const Block own = MakeBlock(1, "own-3");
  Proposal logged = Propose(1, 3, own);
  ASSERT_EQ(logged.proposer_index, 0u);
  auto sm = Make(0);
  absl::StatusOr<Actions> a =
      sm->StartHeight(1, {logged, Prevote(3, HashOf(own), 0)});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(sm->round(), 3u);
  EXPECT_TRUE(Proposals(*a).empty());
  EXPECT_TRUE(Votes(*a).empty());
  // Others' messages and other heights in the log are ignored.
  auto other = Make(0);
  ASSERT_TRUE(other
                  ->StartHeight(1, {Prevote(2, HashOf(own), 1),
                                    Prevote(2, HashOf(own), 0, /*h=*/2)})
                  .ok());
  EXPECT_EQ(other->round(), 0u);
}

TEST_F(TendermintStateMachineTest, WithoutItsPrecommitARestartedMachineIsFree) {
  // The control for the test above: the same machine with no replay
  // prevotes the other block, which is why the replay matters.
  auto sm = Started();
  NextRound(*sm, 0);
  Actions a = sm->OnProposal(Propose(1, 1, MakeBlock(1, "b")));
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_FALSE(IsZero(Votes(a)[0].block_hash));
}

// ------------------------------------------------ heights, sync, observers

TEST_F(TendermintStateMachineTest, NextHeightMessagesAreReplayed) {
  auto sm = Started();
  const Block b1 = MakeBlock(1, "b1");
  const Block b2 = MakeBlock(2, "b2");
  EXPECT_TRUE(sm->OnProposal(Propose(2, 0, b2)).empty());
  EXPECT_EQ(sm->counters().future_buffered, 1u);
  sm->OnProposal(Propose(1, 0, b1));
  ASSERT_TRUE(Decision(Feed(*sm, {Precommit(0, HashOf(b1), 1),
                                  Precommit(0, HashOf(b1), 2),
                                  Precommit(0, HashOf(b1), 3)}))
                  .has_value());
  Actions a = *sm->StartHeight(2);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].height, 2u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b2));
}

TEST_F(TendermintStateMachineTest, OtherHeightsAreDroppedAndBounded) {
  StateMachineOptions options;
  options.max_next_height_messages_per_validator = 2;
  auto sm = Started(0, options);
  sm->OnVote(Prevote(0, kNilHash, 1, /*h=*/3));
  EXPECT_EQ(sm->counters().future_dropped, 1u);
  for (uint32_t r = 0; r < 3; ++r) sm->OnVote(Prevote(r, kNilHash, 1, 2));
  EXPECT_EQ(sm->counters().future_buffered, 2u);
  EXPECT_EQ(sm->counters().future_dropped, 2u);
  // One proposal per validator is kept for the next height.
  sm->OnProposal(Propose(2, 0, MakeBlock(2, "x")));
  sm->OnProposal(Propose(2, 4, MakeBlock(2, "y")));
  EXPECT_EQ(sm->counters().future_buffered, 3u);
  EXPECT_EQ(sm->counters().future_dropped, 3u);
  Vote forged = Prevote(0, kNilHash, 2, 2);
  forged.signature[0] ^= 1;
  sm->OnVote(forged);  // checked before it is kept
  EXPECT_EQ(sm->counters().bad_signature, 1u);
  ASSERT_TRUE(sm->StartHeight(2).ok());
  sm->OnVote(Prevote(0, kNilHash, 1, /*h=*/1));
  EXPECT_EQ(sm->counters().stale, 1u);
}

TEST_F(TendermintStateMachineTest, CommitFromAPeerDecides) {
  const Block b = MakeBlock(1, "b");
  CommitCertificate cert;
  cert.height = 1;
  cert.round = 2;
  cert.block_hash = HashOf(b);
  for (uint32_t i : {0u, 2u, 3u}) {
    cert.sigs.push_back(CommitSig{i, Precommit(2, HashOf(b), i).signature});
  }
  auto sm = Started(1);
  // Too few signatures: dropped.
  CommitCertificate weak = cert;
  weak.sigs.pop_back();
  EXPECT_TRUE(sm->OnCommit(Commit{b, weak}).empty());
  // A block that is not the certified one: dropped.
  EXPECT_TRUE(sm->OnCommit(Commit{MakeBlock(1, "c"), cert}).empty());
  EXPECT_EQ(sm->counters().bad_signature, 2u);
  const std::optional<DecideAction> d = Decision(sm->OnCommit(Commit{b, cert}));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->block, b);
  EXPECT_EQ(d->certificate, cert);
  EXPECT_EQ(sm->counters().commits_accepted, 1u);
}

TEST_F(TendermintStateMachineTest, ObserverDecidesButNeverSigns) {
  auto sm = Make(std::nullopt);
  Actions a = *sm->StartHeight(1);
  const Block b = MakeBlock(1, "b");
  a = sm->OnProposal(Propose(1, 0, b));
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_EQ(sm->step(), Step::kPrevote);
  a = Feed(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2),
                 Prevote(0, HashOf(b), 3), Precommit(0, HashOf(b), 1),
                 Precommit(0, HashOf(b), 2), Precommit(0, HashOf(b), 3)});
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_TRUE(Proposals(a).empty());
  ASSERT_TRUE(Decision(a).has_value());
}

TEST_F(TendermintStateMachineTest, FutureRoundsAreBoundedPerValidator) {
  auto sm = Started();  // max 2 future rounds per validator
  sm->OnVote(Prevote(5, kNilHash, 1));
  sm->OnVote(Prevote(6, kNilHash, 1));
  sm->OnVote(Prevote(7, kNilHash, 1));  // evicts round 5
  EXPECT_EQ(sm->counters().round_budget_evicted, 1u);
  sm->OnVote(Prevote(3, kNilHash, 1));  // below both kept rounds: dropped
  EXPECT_EQ(sm->counters().round_budget_dropped, 1u);
  std::set<uint32_t> rounds;
  for (const Message& m : sm->GossipMessages()) {
    rounds.insert(std::get<Vote>(m).round);
  }
  EXPECT_EQ(rounds, (std::set<uint32_t>{6, 7}));
  // Another validator at round 7 makes f+1 there: skip.
  sm->OnVote(Prevote(7, kNilHash, 2));
  EXPECT_EQ(sm->round(), 7u);
}

TEST_F(TendermintStateMachineTest, GossipRelaysWhatItCounted) {
  auto sm = Started();
  const Block b = MakeBlock(1, "b");
  const Proposal p = Propose(1, 0, b);
  sm->OnProposal(p);
  sm->OnVote(Prevote(0, HashOf(b), 2));
  const std::vector<Message> g = sm->GossipMessages();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(std::get<Proposal>(g[0]), p);
  EXPECT_EQ(std::get<Vote>(g[1]).validator_index, 0u);  // own prevote
  EXPECT_EQ(std::get<Vote>(g[2]), Prevote(0, HashOf(b), 2));
}

// ------------------------------------- asynchronous getValue() and valid(v)

TEST_F(TendermintStateMachineTest, ValidityIsAskedOnceAndThePrevoteWaitsForIt) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  const Block b = MakeBlock(1, "b");
  Actions a = sm->OnProposal(Propose(1, 0, b));
  ASSERT_EQ(Validations(a).size(), 1u);
  EXPECT_EQ(Validations(a)[0].height, 1u);
  EXPECT_EQ(Validations(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(Validations(a)[0].block, b);
  EXPECT_TRUE(Votes(a).empty());  // no prevote before the verdict
  EXPECT_EQ(sm->step(), Step::kPropose);
  // The same block again (relayed): not asked again while the answer is due.
  EXPECT_TRUE(Validations(sm->OnProposal(Propose(1, 0, b))).empty());
  a = sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kValid);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(sm->counters().validations_requested, 1u);
  // A second answer for the same block is stale.
  EXPECT_TRUE(sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kValid).empty());
  EXPECT_EQ(sm->counters().stale_answers, 1u);
}

TEST_F(TendermintStateMachineTest, NoVerdictInTimeMeansPrevoteNil) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  const Block b = MakeBlock(1, "b");
  ASSERT_EQ(Validations(sm->OnProposal(Propose(1, 0, b))).size(), 1u);
  Actions a = sm->OnTimeout(1, 0, Step::kPropose);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  // The verdict that comes late is kept for the rest of the height.
  EXPECT_TRUE(
      Votes(sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kValid)).empty());
}

TEST_F(TendermintStateMachineTest, UndecidedIsNotCachedAndAskedAgainNextRound) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  const Block b = MakeBlock(1, "b");
  ASSERT_EQ(Validations(sm->OnProposal(Propose(1, 0, b))).size(), 1u);
  Actions a = sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kUndecided);
  EXPECT_TRUE(Votes(a).empty());
  EXPECT_EQ(sm->counters().validity_undecided, 1u);
  // Others form a polka for b: line 36 needs valid(b), but an undecided
  // answer is not asked again in the same round, and never counts as valid.
  a = FeedRaw(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2),
                    Prevote(0, HashOf(b), 3)});
  EXPECT_TRUE(Validations(a).empty());
  a = sm->OnTimeout(1, 0, Step::kPropose);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));  // prevote nil, not b
  EXPECT_EQ(sm->locked_round(), kNoRound);
  // Round 1: b comes again with its polka (line 28); now it is asked again.
  FeedRaw(*sm, {Precommit(0, kNilHash, 1), Precommit(0, kNilHash, 2),
                Precommit(0, kNilHash, 3)});
  sm->OnTimeout(1, 0, Step::kPrecommit);
  ASSERT_EQ(sm->round(), 1u);
  a = sm->OnProposal(Propose(1, 1, b, /*vr=*/0));
  ASSERT_EQ(Validations(a).size(), 1u);
  EXPECT_EQ(sm->counters().validations_requested, 2u);
  a = sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kValid);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
}

TEST_F(TendermintStateMachineTest, InvalidVerdictIsKeptForTheHeight) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));
  Actions a = sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kInvalid);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  EXPECT_EQ(sm->counters().invalid_blocks, 1u);
  // Even a quorum of precommits for it does not make this node decide it.
  a = FeedRaw(*sm, {Precommit(0, HashOf(b), 1), Precommit(0, HashOf(b), 2),
                    Precommit(0, HashOf(b), 3)});
  EXPECT_FALSE(Decision(a).has_value());
  EXPECT_TRUE(Validations(a).empty());
}

TEST_F(TendermintStateMachineTest, DecisionWaitsForTheVerdict) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  const Block b = MakeBlock(1, "b");
  // Precommits first, then the proposal: line 49 needs valid(b).
  FeedRaw(*sm, {Precommit(0, HashOf(b), 1), Precommit(0, HashOf(b), 2),
                Precommit(0, HashOf(b), 3)});
  Actions a = sm->OnProposal(Propose(1, 0, b));
  EXPECT_FALSE(Decision(a).has_value());
  ASSERT_EQ(Validations(a).size(), 1u);
  a = sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kValid);
  const std::optional<DecideAction> d = Decision(a);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->block, b);
}

TEST_F(TendermintStateMachineTest, CertifiedBlockIsAppliedWithoutValidity) {
  const Block b = MakeBlock(1, "b");
  invalid_.insert(HashOf(b));  // what valid(v) would say: not asked
  CommitCertificate cert;
  cert.height = 1;
  cert.round = 0;
  cert.block_hash = HashOf(b);
  for (uint32_t i : {1u, 2u, 3u}) {
    cert.sigs.push_back(CommitSig{i, Precommit(0, HashOf(b), i).signature});
  }
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  Actions a = sm->OnCommit(Commit{b, cert});
  EXPECT_TRUE(Validations(a).empty());
  ASSERT_TRUE(Decision(a).has_value());
  EXPECT_EQ(sm->counters().validations_requested, 0u);
}

TEST_F(TendermintStateMachineTest, OwnBlockIsProposedWithoutBeingChecked) {
  auto sm = Raw(1);  // proposer of height 1 round 0
  Actions a = *sm->StartHeight(1);
  ASSERT_EQ(BlockRequests(a).size(), 1u);
  EXPECT_EQ(BlockRequests(a)[0].height, 1u);
  EXPECT_EQ(BlockRequests(a)[0].round, 0u);
  EXPECT_TRUE(HasTimeout(a, Step::kPropose, 0));  // bounds the wait
  EXPECT_TRUE(Proposals(a).empty());
  const Block b = MakeBlock(1, "own");
  a = sm->OnBlockToPropose(1, 0, b);
  ASSERT_EQ(Proposals(a).size(), 1u);
  EXPECT_TRUE(Validations(a).empty());
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
}

TEST_F(TendermintStateMachineTest, BlockThatComesTooLateIsNotProposed) {
  auto sm = Raw(1);
  ASSERT_EQ(BlockRequests(*sm->StartHeight(1)).size(), 1u);
  Actions a = sm->OnTimeout(1, 0, Step::kPropose);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  a = sm->OnBlockToPropose(1, 0, MakeBlock(1, "late"));
  EXPECT_TRUE(Proposals(a).empty());
  EXPECT_EQ(sm->counters().stale_answers, 1u);
  // An answer for a round never asked for is stale too.
  EXPECT_TRUE(sm->OnBlockToPropose(1, 7, MakeBlock(1, "x")).empty());
  EXPECT_EQ(sm->counters().stale_answers, 2u);
}

// Counts hashing and signature checks of the suite it wraps.
class CountingSuite final : public CryptoSuite {
 public:
  explicit CountingSuite(const CryptoSuite& inner) : inner_(inner) {}
  std::string_view name() const override { return inner_.name(); }
  size_t public_key_size() const override { return inner_.public_key_size(); }
  size_t max_signature_size() const override {
    return inner_.max_signature_size();
  }
  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    ++hashes;
    return inner_.Hash(parts);
  }
  KeyPair GenerateKey() const override { return inner_.GenerateKey(); }
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    return inner_.KeyFromSeed(seed);
  }
  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override {
    return inner_.Sign(secret_key, message);
  }
  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override {
    ++verifies;
    return inner_.Verify(public_key, message, signature);
  }
  mutable uint64_t hashes = 0;
  mutable uint64_t verifies = 0;

 private:
  const CryptoSuite& inner_;
};

TEST_F(TendermintStateMachineTest, LimitsAndSignatureComeBeforeHashingTxs) {
  Genesis g = genesis_;
  g.rules.max_block_txs = 100;
  g.rules.max_block_bytes = 64 * 1024;
  CountingSuite counting(suite_);
  signers_.push_back(
      *KeySigner::Create(suite_, keys_[0].secret_key, keys_[0].public_key));
  auto sm = *StateMachine::Create(g, counting, 0, signers_.back().get());
  ASSERT_TRUE(sm->StartHeight(1).ok());
  // Over the tx count: dropped with no hashing and no signature check.
  Block big = MakeBlock(1, "x");
  big.txs.assign(101, ToBytes("tx"));
  big.header.tx_root = MerkleRoot(suite_, big.txs);
  counting.hashes = counting.verifies = 0;
  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, big)).empty());
  EXPECT_EQ(counting.verifies, 0u);
  EXPECT_EQ(counting.hashes, 0u);
  // Over the byte limit, in few txs.
  Block heavy = MakeBlock(1, "y");
  heavy.txs.assign(2, Bytes(40 * 1024, 7));
  heavy.header.tx_root = MerkleRoot(suite_, heavy.txs);
  EXPECT_TRUE(sm->OnProposal(Propose(1, 0, heavy)).empty());
  EXPECT_EQ(counting.verifies, 0u);
  EXPECT_EQ(sm->counters().over_limits, 2u);
  // Within the limits but forged: one signature check, and the 100 txs are
  // never hashed (only the header is).
  Block forged = MakeBlock(1, "z");
  forged.txs.assign(100, ToBytes("tx"));
  forged.header.tx_root = MerkleRoot(suite_, forged.txs);
  Proposal p = Propose(1, 0, forged);
  p.signature[0] ^= 1;
  counting.hashes = 0;
  EXPECT_TRUE(sm->OnProposal(p).empty());
  EXPECT_EQ(counting.verifies, 1u);
  EXPECT_LT(counting.hashes, 5u);
  EXPECT_EQ(sm->counters().bad_signature, 1u);
  // A certificate over the limits is dropped before its signatures are
  // checked.
  CommitCertificate cert;
  cert.height = 1;
  cert.block_hash = HashOf(big);
  for (uint32_t i : {1u, 2u, 3u}) {
    cert.sigs.push_back(CommitSig{i, Precommit(0, HashOf(big), i).signature});
  }
  counting.verifies = 0;
  EXPECT_TRUE(sm->OnCommit(Commit{big, cert}).empty());
  EXPECT_EQ(counting.verifies, 0u);
  EXPECT_EQ(sm->counters().over_limits, 3u);
}

TEST_F(TendermintStateMachineTest, BudgetsComeBeforeAnySignatureCheck) {
  CountingSuite counting(suite_);
  absl::StatusOr<std::unique_ptr<KeySigner>> signer =
      KeySigner::Create(counting, keys_[0].secret_key, keys_[0].public_key);
  ASSERT_TRUE(signer.ok());
  StateMachineOptions options;  // 2 future rounds, 8 next-height messages
  absl::StatusOr<std::unique_ptr<StateMachine>> made =
      StateMachine::Create(genesis_, counting, 0, signer->get(), options);
  ASSERT_TRUE(made.ok()) << made.status();
  StateMachine& sm = **made;
  ASSERT_TRUE(sm.StartHeight(1).ok());
  // Validator 1 fills its budgets with valid messages: two future rounds,
  // and the next height's buffer (one proposal and seven votes).
  sm.OnVote(Prevote(5, kNilHash, 1));
  sm.OnVote(Prevote(6, kNilHash, 1));
  sm.OnProposal(Propose(2, 3, MakeBlock(2, "next")));  // proposer of (2, 3)
  ASSERT_EQ(ProposerIndex(2, 3, kN), 1u);
  for (uint32_t r = 0; r < 7; ++r) sm.OnVote(Prevote(r, kNilHash, 1, 2));
  ASSERT_EQ(sm.counters().future_buffered, 8u);
  const uint64_t verifies = counting.verifies;
  const Counters before = sm.counters();

  // A flood in its name with garbage signatures: far rounds below its kept
  // ones, the next height, and a second next-height proposal.
  for (uint32_t i = 0; i < 100; ++i) {
    Vote far = Prevote(1 + i % 4, kNilHash, 1);
    far.signature.assign(far.signature.size(), 0xee);
    sm.OnVote(far);
    Vote next = Prevote(i, kNilHash, 1, 2);
    next.signature.assign(next.signature.size(), 0xee);
    sm.OnVote(next);
  }
  Proposal another = Propose(2, 3, MakeBlock(2, "another"));
  another.signature.assign(another.signature.size(), 0xee);
  sm.OnProposal(another);

  EXPECT_EQ(counting.verifies, verifies) << "a budget drop must cost no "
                                            "signature verification";
  EXPECT_EQ(sm.counters().round_budget_dropped,
            before.round_budget_dropped + 100);
  EXPECT_EQ(sm.counters().future_dropped, before.future_dropped + 101);
  EXPECT_EQ(sm.counters().bad_signature, before.bad_signature);
  // Within budget, a garbage signature is still checked and refused.
  Vote forged = Prevote(0, kNilHash, 2);
  forged.signature.assign(forged.signature.size(), 0xee);
  sm.OnVote(forged);
  EXPECT_EQ(counting.verifies, verifies + 1);
  EXPECT_EQ(sm.counters().bad_signature, before.bad_signature + 1);
}

// ------------------------------------------- proposer-based block time

// The bounds are the genesis chain rules (defaults: precision 500 ms,
// message delay 3 s, growing by a tenth per round).
TEST(TimelinessTest, BothBoundsAreInclusiveAndTheDelayGrowsPerRound) {
  ChainRules rules;
  rules.block_time_precision_ms = 500;
  rules.block_time_message_delay_ms = 3000;
  const uint64_t rx = 1'000'000;
  EXPECT_EQ(JudgeTimeliness(rx, rx, rules, 0), Timeliness::kTimely);
  EXPECT_EQ(JudgeTimeliness(rx + 500, rx, rules, 0), Timeliness::kTimely);
  EXPECT_EQ(JudgeTimeliness(rx + 501, rx, rules, 0), Timeliness::kEarly);
  EXPECT_EQ(JudgeTimeliness(rx - 3500, rx, rules, 0), Timeliness::kTimely);
  EXPECT_EQ(JudgeTimeliness(rx - 3501, rx, rules, 0), Timeliness::kLate);
  // Backdating by 10 s or postdating by 30 s (both passed the old rule,
  // which only refused a time more than 60 s ahead).
  EXPECT_EQ(JudgeTimeliness(rx - 10'000, rx, rules, 0), Timeliness::kLate);
  EXPECT_EQ(JudgeTimeliness(rx + 30'000, rx, rules, 0), Timeliness::kEarly);
  // The message delay grows by 300 ms a round; the precision does not.
  EXPECT_EQ(MessageDelayMs(rules, 0), 3000u);
  EXPECT_EQ(MessageDelayMs(rules, 1), 3300u);
  EXPECT_EQ(MessageDelayMs(rules, 10), 6000u);
  EXPECT_EQ(JudgeTimeliness(rx - 3501, rx, rules, 1), Timeliness::kTimely);
  EXPECT_EQ(JudgeTimeliness(rx - 6500, rx, rules, 10), Timeliness::kTimely);
  EXPECT_EQ(JudgeTimeliness(rx - 6501, rx, rules, 10), Timeliness::kLate);
  EXPECT_EQ(JudgeTimeliness(rx + 501, rx, rules, 10), Timeliness::kEarly);
  // Saturates instead of wrapping (a Genesis built in code is not bounded).
  rules.block_time_message_delay_ms = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(MessageDelayMs(rules, 0xffffffffu),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(JudgeTimeliness(0, rx, rules, 7), Timeliness::kTimely);
  EXPECT_EQ(TimelinessName(Timeliness::kEarly), "early");
  EXPECT_EQ(TimelinessName(Timeliness::kLate), "late");
}

TEST_F(TendermintStateMachineTest, TimelyFreshProposalGetsItsPrevote) {
  auto sm = Started();
  Block b = MakeBlock(1, "b");
  b.header.time_ms = 5'000'000;
  Actions a = sm->OnProposal(Propose(1, 0, b), /*received_ms=*/5'000'200);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(sm->counters().untimely_early + sm->counters().untimely_late, 0u);
}

// A proposer that backdates its block (or holds it back) gets a nil
// prevote at once, without valid(v) being asked: no verdict on the block.
TEST_F(TendermintStateMachineTest, BackdatedFreshProposalGetsANilPrevote) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  Block b = MakeBlock(1, "b");
  b.header.time_ms = 5'000'000;
  const uint64_t rx = 5'000'000 + 500 + 3000 + 1;
  Actions a = sm->OnProposal(Propose(1, 0, b), rx);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  EXPECT_TRUE(Validations(a).empty());
  EXPECT_EQ(sm->step(), Step::kPrevote);
  EXPECT_EQ(sm->counters().untimely_late, 1u);
  EXPECT_EQ(sm->counters().untimely_early, 0u);
  EXPECT_EQ(sm->counters().invalid_blocks, 0u);
  ASSERT_TRUE(sm->last_untimely().has_value());
  EXPECT_EQ(sm->last_untimely()->timeliness, Timeliness::kLate);
  EXPECT_EQ(sm->last_untimely()->proposer, 1u);
  EXPECT_EQ(sm->last_untimely()->block_time_ms, 5'000'000u);
  EXPECT_EQ(sm->last_untimely()->received_ms, rx);
}

TEST_F(TendermintStateMachineTest, PostdatedFreshProposalGetsANilPrevote) {
  auto sm = Started();
  Block b = MakeBlock(1, "b");
  b.header.time_ms = 5'030'000;  // 30 s ahead: the old rule let it pass
  Actions a = sm->OnProposal(Propose(1, 0, b), 5'000'000);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  EXPECT_EQ(sm->counters().untimely_early, 1u);
  EXPECT_EQ(sm->counters().untimely_late, 0u);
}

// Untimely is not invalid: when 2f+1 others prevoted the block (their clocks
// found it timely), line 36 asks only valid(v), so this validator locks,
// precommits and decides it like any other.
TEST_F(TendermintStateMachineTest, UntimelyBlockWithAPolkaIsStillDecided) {
  auto sm = Raw(0);
  ASSERT_TRUE(sm->StartHeight(1).ok());
  Block b = MakeBlock(1, "b");
  b.header.time_ms = 5'000'000;
  Actions a = sm->OnProposal(Propose(1, 0, b), 5'010'000);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  a = FeedRaw(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2),
                    Prevote(0, HashOf(b), 3)});
  ASSERT_EQ(Validations(a).size(), 1u);  // valid(v) is asked now
  a = sm->OnBlockVerdict(1, HashOf(b), BlockVerdict::kValid);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].type, VoteType::kPrecommit);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  a = FeedRaw(*sm, {Precommit(0, HashOf(b), 1), Precommit(0, HashOf(b), 2)});
  ASSERT_TRUE(Decision(a).has_value());
  EXPECT_EQ(Decision(a)->block, b);
}

// A re-proposal that carries its proof-of-lock round (line 28) is not
// judged for time: 2f+1 validators prevoted it when it was fresh, so the
// honest ones among them found it timely then.
TEST_F(TendermintStateMachineTest, ReproposalWithItsPolkaSkipsTimeliness) {
  auto sm = Started();
  Block b = MakeBlock(1, "b");
  b.header.time_ms = 5'000'000;
  // Round 0: a polka for b (this validator never saw the proposal), then
  // nil precommits move everyone to round 1.
  Feed(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2),
             Prevote(0, HashOf(b), 3)});
  NextRound(*sm, 0);
  // Round 1 (proposer 2): b again with valid_round 0, received a minute
  // after its time: far outside the fresh bounds, yet prevoted.
  Actions a = sm->OnProposal(Propose(1, 1, b, /*vr=*/0), 5'060'000);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(sm->counters().untimely_early + sm->counters().untimely_late, 0u);
}

// Timeliness belongs to one receipt in one round and is never kept: the
// same block, postdated when it first came, is prevoted when its proposer
// sends it fresh again in a later round and this validator's clock has
// caught up with it.
TEST_F(TendermintStateMachineTest, UntimelyIsNeverCachedForTheBlock) {
  auto sm = Started();
  Block b = MakeBlock(1, "b");
  b.header.time_ms = 5'010'000;
  Actions a = sm->OnProposal(Propose(1, 0, b), 5'000'000);  // 10 s early
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(a)[0].block_hash));
  EXPECT_EQ(sm->counters().untimely_early, 1u);
  for (uint32_t r = 0; r < 4; ++r) NextRound(*sm, r);
  // Round 4 is validator 1's again (ProposerIndex(1, 4, 4) == 1).
  a = sm->OnProposal(Propose(1, 4, b), 5'010'100);
  ASSERT_EQ(Votes(a).size(), 1u);
  EXPECT_EQ(Votes(a)[0].block_hash, HashOf(b));
  EXPECT_EQ(sm->counters().untimely_early, 1u);
}

// A proposal buffered for the next height keeps the time it came in: it is
// judged against that receipt when the height starts.
TEST_F(TendermintStateMachineTest, BufferedProposalKeepsItsReceiptTime) {
  auto sm = Started();
  Block next = MakeBlock(2, "next");
  next.header.time_ms = 7'000'000;
  // Height 2's round-0 proposer is validator 2; it came 10 s late.
  sm->OnProposal(Propose(2, 0, next), 7'010'000);
  EXPECT_EQ(sm->counters().future_buffered, 1u);
  const Block b = MakeBlock(1, "b");
  sm->OnProposal(Propose(1, 0, b));
  Feed(*sm, {Prevote(0, HashOf(b), 1), Prevote(0, HashOf(b), 2),
             Precommit(0, HashOf(b), 1), Precommit(0, HashOf(b), 2)});
  ASSERT_TRUE(sm->decision().has_value());
  absl::StatusOr<Actions> a = sm->StartHeight(2);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(Votes(*a).size(), 1u);
  EXPECT_TRUE(IsZero(Votes(*a)[0].block_hash));
  EXPECT_EQ(sm->counters().untimely_late, 1u);
}

}  // namespace
}  // namespace consortia::consensus::tendermint
