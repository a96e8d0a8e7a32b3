// Several TendermintDrivers in one process, each with its own PeerNet on
// 127.0.0.1, fake mempool and fake ledger: they must commit the same chain,
// and a validator restarted on its WAL must rejoin it.
#include "tendermint_driver.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "consortia/codec.h"
#include "consortia/metrics.h"
#include "consortia/peer_net.h"
#include "consortia/process.h"
#include "fakes.h"
#include "gtest/gtest.h"
#include "tendermint/messages.h"
#include "zmq.hpp"

namespace consortia::consensus {
namespace {

using testing::AllTxs;
using testing::FakeBlockSource;
using testing::FakeClock;
using testing::FakeLedger;
using testing::FakeMempool;
using testing::kChainId;
using testing::MakeSignedTxs;
using testing::MakeTxs;
using testing::OffsetClock;
using testing::WaitFor;

struct TestValidator {
  std::string id;
  NodeKey key;
  CurveKeyPair curve;
  uint16_t port = 0;
  std::string wal_dir;
  FakeMempool mempool;
  std::unique_ptr<FakeLedger> ledger;
  std::unique_ptr<FakeBlockSource> blocks;
  std::unique_ptr<zmq::context_t> ctx;
  std::shared_ptr<ZapAuthenticator> zap;
  std::unique_ptr<PeerNet> net;
  std::unique_ptr<TendermintDriver> driver;
  std::unique_ptr<Clock> clock;  // nullptr: the system clock
  // Set: this validator lies about the time of the blocks it builds.
  std::function<uint64_t(const ChainState&, uint64_t)> block_time;
  MetricsRegistry registry;

  PeerInfo info() const {
    return {id, absl::StrCat("tcp://127.0.0.1:", port), curve.public_key};
  }
};

// The value of the first sample of `registry` whose line starts with
// `sample` (name and labels), or -1 (defined below).
double Sample(const MetricsRegistry& registry, const std::string& sample);

class TendermintDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("bft_driver_test_", getpid(), "_",
                        absl::ToUnixNanos(absl::Now()));
    std::filesystem::create_directories(dir_);
    genesis_.chain_id = kChainId;
    for (int i = 0; i < 4; ++i) {
      std::unique_ptr<TestValidator> v = NewNode(absl::StrCat("node", i));
      ASSERT_NE(v, nullptr);
      genesis_.validators.push_back({v->id, v->key.public_key, 1});
      validators_.push_back(std::move(v));
    }
    for (auto& v : validators_) {
      v->ledger = std::make_unique<FakeLedger>(genesis_, &v->mempool);
      v->blocks = std::make_unique<FakeBlockSource>(v->ledger.get());
      peers_.push_back(v->info());
    }
    options_.timeouts.propose = absl::Seconds(1);
    options_.timeouts.propose_delta = absl::Milliseconds(200);
    options_.timeouts.prevote = absl::Milliseconds(200);
    options_.timeouts.prevote_delta = absl::Milliseconds(100);
    options_.timeouts.precommit = absl::Milliseconds(200);
    options_.timeouts.precommit_delta = absl::Milliseconds(100);
    options_.commit_wait = absl::Milliseconds(20);
    options_.gossip_interval = absl::Milliseconds(100);
  }

  // A node with fresh keys and a free port (nullptr, with a failure, when
  // the machine has none).
  std::unique_ptr<TestValidator> NewNode(const std::string& id) {
    auto v = std::make_unique<TestValidator>();
    v->id = id;
    KeyPair kp = suite_.GenerateKey();
    v->key = NodeKey{"ed25519-sha256", kp.public_key, kp.secret_key};
    absl::StatusOr<CurveKeyPair> curve = GenerateCurveKeyPair();
    absl::StatusOr<uint16_t> port = PickFreePort();
    EXPECT_TRUE(curve.ok()) << curve.status();
    EXPECT_TRUE(port.ok()) << port.status();
    if (!curve.ok() || !port.ok()) return nullptr;
    v->curve = *curve;
    v->port = *port;
    v->wal_dir = (dir_ / v->id / "wal").string();
    return v;
  }

  void TearDown() override {
    for (auto& v : validators_) StopValidator(*v);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void StartValidator(TestValidator& v) {
    TendermintDriverOptions o = options_;
    o.wal_dir = v.wal_dir;
    o.last_commit_path = (dir_ / v.id / "last_commit").string();
    o.unsafe_test_only_block_time = v.block_time;
    absl::StatusOr<std::unique_ptr<TendermintDriver>> d =
        TendermintDriver::Create(o, genesis_, suite_, v.key, &v.mempool,
                                 v.ledger.get(), v.blocks.get(),
                                 v.clock != nullptr ? v.clock.get() : &clock_,
                                 ConsensusMetrics::Create(v.registry));
    ASSERT_TRUE(d.ok()) << d.status();
    v.driver = *std::move(d);
    v.ctx = std::make_unique<zmq::context_t>();
    absl::StatusOr<std::shared_ptr<ZapAuthenticator>> zap =
        StartZapAuthenticator(*v.ctx, AllowListOf(peers_));
    ASSERT_TRUE(zap.ok()) << zap.status();
    v.zap = *zap;
    // A port released a moment ago by a restarted validator may still be
    // closing: retry the bind for a while.
    absl::Status last;
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      PeerNetOptions po;
      po.node_id = v.id;
      po.bind_endpoint = v.info().endpoint;
      po.key_pair = v.curve;
      po.peers = peers_;
      po.authenticator = v.zap;
      po.handlers = v.driver->Handlers();
      absl::StatusOr<std::unique_ptr<PeerNet>> net =
          StartPeerNet(*v.ctx, std::move(po));
      if (net.ok()) {
        v.net = *std::move(net);
        break;
      }
      last = net.status();
      ASSERT_EQ(last.code(), absl::StatusCode::kUnavailable) << last;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_NE(v.net, nullptr) << last;
    v.driver->Start(v.net.get());
  }

  // Stops in the order the pointers require: the driver (which sends on the
  // net), the net, the authenticator, the context.
  static void StopValidator(TestValidator& v) {
    if (v.driver) v.driver->Stop();
    v.net.reset();
    v.driver.reset();
    v.zap.reset();
    v.ctx.reset();
  }

  // Every pair of ledgers agrees on the blocks both hold.
  void ExpectAgreement() {
    std::vector<std::vector<Block>> chains;
    for (auto& v : validators_) {
      EXPECT_TRUE(v->ledger->violations().empty())
          << v->id << ": " << v->ledger->violations().front();
      chains.push_back(v->ledger->blocks());
    }
    for (size_t i = 1; i < chains.size(); ++i) {
      const size_t n = std::min(chains[0].size(), chains[i].size());
      for (size_t h = 0; h < n; ++h) {
        ASSERT_EQ(BlockHash(suite_, chains[0][h].header),
                  BlockHash(suite_, chains[i][h].header))
            << "node0 and node" << i << " differ at height " << h + 1;
      }
    }
  }

  bool AllAtLeast(uint64_t height, const std::vector<size_t>& which) {
    for (size_t i : which) {
      if (validators_[i]->ledger->height() < height) return false;
    }
    return true;
  }

  // Proposer-based block time against a Byzantine proposer. Validator 0
  // lies about the time of every block it builds (`lie`); the genesis
  // bounds are tight (precision 200 ms, message delay 300 ms) and the commit
  // wait long (800 ms, so a parent is at least that old when the next block
  // is built). The honest validators must prevote nil on its fresh
  // proposals, so none of its blocks is ever committed; they count them as
  // untimely in `direction`, and the chain keeps committing.
  void ExpectLyingProposerGetsNoQuorum(
      std::function<uint64_t(const ChainState&, uint64_t)> lie,
      const std::string& direction) {
    genesis_.rules.block_time_precision_ms = 200;
    genesis_.rules.block_time_message_delay_ms = 300;
    options_.commit_wait = absl::Milliseconds(800);
    validators_[0]->block_time = std::move(lie);
    for (auto& v : validators_) StartValidator(*v);
    // Validator 0 proposes round 0 of heights 4 and 8 (proposer (h + r) mod
    // 4), and round 1 wherever round 0 of height 3 or 7 fails: by height 9
    // it had at least two turns, and the chain went on 5 heights past its
    // first.
    ASSERT_TRUE(WaitFor([&] { return AllAtLeast(9, {0, 1, 2, 3}); }));
    ExpectAgreement();
    const Bytes& liar = validators_[0]->key.public_key;
    for (auto& v : validators_) {
      const std::vector<Block> chain = v->ledger->blocks();
      uint64_t parent_time = genesis_.genesis_time_ms;
      for (const Block& b : chain) {
        // Every block is an honest one: none of the liar's, and none with
        // the liar's time (the parent's plus 1 ms, or 30 s ahead).
        EXPECT_FALSE(b.header.proposer == liar)
            << v->id << ": the liar's block was committed at height "
            << b.header.height;
        EXPECT_GT(b.header.time_ms, parent_time + 1)
            << v->id << ": height " << b.header.height;
        parent_time = b.header.time_ms;
      }
    }
    // Each honest validator counted the liar's proposals, in the right
    // direction.
    const std::string untimely = absl::StrCat(
        "consortia_consensus_untimely_proposals_total{direction=\"", direction,
        "\"}");
    for (size_t i = 1; i < validators_.size(); ++i) {
      EXPECT_GE(Sample(validators_[i]->registry, untimely), 1)
          << validators_[i]->id;
    }
  }

  const CryptoSuite& suite_ = Ed25519Sha256();
  SystemClock clock_;
  std::filesystem::path dir_;
  Genesis genesis_;
  std::vector<std::unique_ptr<TestValidator>> validators_;
  std::vector<PeerInfo> peers_;
  TendermintDriverOptions options_;
};

TEST_F(TendermintDriverTest, FourValidatorsCommitTheSameTxs) {
  for (auto& v : validators_) StartValidator(*v);
  const std::vector<Bytes> a = MakeTxs(20, "to-node0");
  const std::vector<Bytes> b = MakeTxs(20, "to-node2");
  validators_[0]->mempool.Add(a);
  validators_[2]->mempool.Add(b);

  // Every ledger ends up with every tx (the proposer rotates, so each
  // mempool gets its turn), in the same blocks.
  ASSERT_TRUE(WaitFor([&] {
    for (auto& v : validators_) {
      if (AllTxs(v->ledger->blocks()).size() < a.size() + b.size()) {
        return false;
      }
    }
    return true;
  }));
  ExpectAgreement();
  for (auto& v : validators_) {
    const std::vector<Bytes> txs = AllTxs(v->ledger->blocks());
    for (const Bytes& t : a)
      EXPECT_EQ(std::count(txs.begin(), txs.end(), t), 1);
    for (const Bytes& t : b)
      EXPECT_EQ(std::count(txs.begin(), txs.end(), t), 1);
    // Each decision carries a certificate of more than 2/3 of the power.
    for (const CommitCertificate& c : v->ledger->certs()) {
      EXPECT_GE(c.sigs.size(), 3u);
    }
    // Each block went to storage as the bytes it was proposed in.
    EXPECT_EQ(v->driver->TestOnlyBlocksEncodedToCommit(), 0u) << v->id;
  }
}

// The validator set follows what storage names for each height (a
// governance vote, in the real ledger). A fifth node, not in the genesis,
// becomes validator 4 at height 4; with node 2 stopped the chain goes on
// only because node 4's votes count (4 of 5). Later node 1 leaves the set:
// it stops signing, and with nodes 1 and 2 stopped the other three (3 of 4)
// still commit.
TEST_F(TendermintDriverTest, ValidatorSetFollowsTheSetsStorageNames) {
  std::unique_ptr<TestValidator> fifth = NewNode("node4");
  ASSERT_NE(fifth, nullptr);
  const Bytes fifth_key = fifth->key.public_key;
  fifth->ledger = std::make_unique<FakeLedger>(genesis_, &fifth->mempool);
  fifth->blocks = std::make_unique<FakeBlockSource>(fifth->ledger.get());
  peers_.push_back(fifth->info());
  validators_.push_back(std::move(fifth));

  std::vector<Validator> five = genesis_.validators;
  five.push_back({"node4", fifth_key, 1});
  std::vector<ValidatorEpoch> epochs = {{1, genesis_.validators}, {4, five}};
  for (auto& v : validators_) v->ledger->SetValidatorEpochs(epochs);
  for (auto& v : validators_) StartValidator(*v);
  EXPECT_FALSE(validators_[4]->driver->own_index().has_value());
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(5, {0, 1, 2, 3, 4}); }));
  EXPECT_EQ(validators_[4]->driver->own_index(), std::optional<uint32_t>(4));
  EXPECT_EQ(Sample(validators_[0]->registry, "consortia_consensus_validators"),
            5);

  StopValidator(*validators_[2]);
  uint64_t stopped_at = 0;
  for (auto& v : validators_) {
    stopped_at = std::max(stopped_at, v->ledger->height());
  }
  ASSERT_TRUE(WaitFor([&] {
    return AllAtLeast(stopped_at + 4, {0, 1, 3, 4});
  }));
  const std::vector<CommitCertificate> certs = validators_[0]->ledger->certs();
  for (uint64_t h = stopped_at + 2; h <= stopped_at + 4; ++h) {
    bool by_node4 = false;
    for (const CommitSig& sig : certs[h - 1].sigs) {
      EXPECT_NE(sig.validator_index, 2u) << "height " << h;
      by_node4 |= sig.validator_index == 4;
    }
    EXPECT_TRUE(by_node4) << "height " << h << " was decided without node 4";
  }

  // Node 1 leaves the set a few heights on (named before any ledger gets
  // there, as a vote's delay ensures).
  uint64_t now = 0;
  for (auto& v : validators_) now = std::max(now, v->ledger->height());
  std::vector<Validator> without1 = five;
  without1.erase(without1.begin() + 1);
  epochs.push_back({now + 10, without1});
  for (int i : {0, 1, 3, 4}) validators_[i]->ledger->SetValidatorEpochs(epochs);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(now + 11, {0, 1, 3, 4}); }));
  EXPECT_FALSE(validators_[1]->driver->own_index().has_value());
  EXPECT_EQ(validators_[4]->driver->own_index(), std::optional<uint32_t>(3));
  StopValidator(*validators_[1]);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(now + 15, {0, 3, 4}); }));
  ExpectAgreement();
  EXPECT_GE(Sample(validators_[0]->registry,
                   "consortia_consensus_validator_set_changes_total"),
            2);
}

// Under load the commit wait would only idle the machine: after a full block
// the next height starts at once. With a wait of an hour, 20 txs in blocks
// of at most 5 commit within the test only if every full block skips it (a
// block that is not full holds the chain for the hour).
TEST_F(TendermintDriverTest, AFullBlockSkipsTheCommitWait) {
  options_.commit_wait = absl::Hours(1);
  options_.max_block_txs = 5;
  const std::vector<Bytes> txs = MakeTxs(20, "full");
  for (auto& v : validators_) v->mempool.Add(txs);
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(4, {0, 1, 2, 3}); }));
  ExpectAgreement();
  double skipped = 0;
  for (auto& v : validators_) {
    const std::vector<Block> blocks = v->ledger->blocks();
    ASSERT_GE(blocks.size(), 4u) << v->id;
    for (size_t h = 1; h <= 4; ++h) {
      EXPECT_EQ(blocks[h - 1].txs.size(), 5u) << v->id << " height " << h;
    }
    skipped +=
        Sample(v->registry, "consortia_consensus_commit_waits_skipped_total");
  }
  // Heights 2, 3 and 4 each started on at least 3 of the 4 nodes (a quorum).
  EXPECT_GE(skipped, 9);
}

// The block limits follow the chain rules storage names for each height (a
// set_rule vote, in the real ledger): from height 3, at most 2 txs a block.
// The honest proposers build blocks within them; node 0, whose storage still
// names the genesis's rules (as a lying proposer would act), proposes blocks
// of up to 20 txs, and the others refuse them, so no block from height 3 on
// holds more than 2, and every tx still commits.
TEST_F(TendermintDriverTest, BlockLimitsFollowTheRulesStorageNames) {
  ChainRules two = genesis_.rules;
  two.max_block_txs = 2;
  for (size_t i = 1; i < validators_.size(); ++i) {
    validators_[i]->ledger->SetRulesFrom(3, two);
  }
  const std::vector<Bytes> txs = MakeTxs(20, "limited");
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(3, {0, 1, 2, 3}); }));
  for (auto& v : validators_) v->mempool.Add(txs);
  ASSERT_TRUE(WaitFor([&] {
    for (auto& v : validators_) {
      if (AllTxs(v->ledger->blocks()).size() < txs.size()) return false;
    }
    return true;
  }));
  ExpectAgreement();
  const std::vector<Block> blocks = validators_[1]->ledger->blocks();
  for (size_t h = 3; h <= blocks.size(); ++h) {
    EXPECT_LE(blocks[h - 1].txs.size(), 2u) << "height " << h;
  }
  EXPECT_EQ(AllTxs(blocks).size(), txs.size());
}

// A decided block goes to storage as the bytes it came in: a proposal's
// block (a peer's, or the one this node built) and, for a validator that
// catches up, the block of each Commit message a peer sent. None is encoded
// again to be committed.
TEST_F(TendermintDriverTest, DecidedBlocksGoToStorageAsTheBytesTheyCameIn) {
  for (size_t i = 0; i < 3; ++i) StartValidator(*validators_[i]);
  validators_[0]->mempool.Add(MakeTxs(10, "early"));
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(4, {0, 1, 2}); }));
  StartValidator(*validators_[3]);  // no WAL yet: it syncs, then votes
  validators_[3]->mempool.Add(MakeTxs(10, "late"));
  const uint64_t target = validators_[0]->ledger->height() + 3;
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(target, {0, 1, 2, 3}); }));
  ExpectAgreement();
  for (auto& v : validators_) {
    EXPECT_GT(v->driver->blocks_committed(), 0u) << v->id;
    EXPECT_EQ(v->driver->TestOnlyBlocksEncodedToCommit(), 0u) << v->id;
  }
}

TEST_F(TendermintDriverTest,
       ThreeOfFourKeepCommittingAndARestartedOneCatchesUp) {
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(3, {0, 1, 2, 3}); }));

  StopValidator(*validators_[3]);
  const uint64_t stopped_at = validators_[3]->ledger->height();
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(stopped_at + 4, {0, 1, 2}); }));
  validators_[0]->mempool.Add(MakeTxs(5, "while-down"));

  // Restarted on the same WAL and storage: it must reach the others.
  StartValidator(*validators_[3]);
  const uint64_t target = validators_[0]->ledger->height() + 2;
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(target, {0, 1, 2, 3}); }));
  ExpectAgreement();

  // And keep deciding with the others afterwards.
  validators_[3]->mempool.Add(MakeTxs(3, "after-restart"));
  ASSERT_TRUE(WaitFor(
      [&] { return AllTxs(validators_[1]->ledger->blocks()).size() >= 8; }));
  ExpectAgreement();
}

TEST_F(TendermintDriverTest, FarBehindValidatorSyncsOldBlocksFromStorage) {
  // Peers keep only 2 recent decisions in memory; a validator that missed
  // many more heights must get the older ones from its peers' storage.
  options_.kept_commits = 2;
  options_.sync_batch = 4;
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(2, {0, 1, 2, 3}); }));
  StopValidator(*validators_[3]);
  const uint64_t stopped_at = validators_[3]->ledger->height();
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(stopped_at + 12, {0, 1, 2}); }));

  StartValidator(*validators_[3]);
  const uint64_t target = validators_[0]->ledger->height() + 2;
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(target, {0, 1, 2, 3}); }));
  ExpectAgreement();
  int range_reads = 0;
  int blocks_read = 0;
  for (size_t i = 0; i < 3; ++i) {
    range_reads += validators_[i]->blocks->range_reads();
    blocks_read += validators_[i]->blocks->blocks_read();
  }
  EXPECT_GT(range_reads, 0) << "old blocks must come from storage";
  // Many per read (sync_batch = 4 of them are older than the 2 in memory),
  // never one round trip per block (BlockSource has no call that reads one).
  EXPECT_GT(blocks_read, range_reads);
  // Every synced block carries a certificate its ledger verified.
  EXPECT_TRUE(validators_[3]->ledger->violations().empty());
}

TEST_F(TendermintDriverTest, EquivocationIsKeptInStorage) {
  // Validator 3's key signs two prevotes for different blocks in one round
  // (sent over its own connection, as a faulty validator would): the others
  // record the evidence, hand it to storage, and keep committing.
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(1, {0, 1, 2, 3}); }));
  const NodeKey& key = validators_[3]->key;
  ASSERT_TRUE(WaitFor([&] {
    const uint64_t h = validators_[0]->ledger->height() + 1;
    for (const char* tag : {"block-a", "block-b"}) {
      Vote v;
      v.type = VoteType::kPrevote;
      v.height = h;
      v.round = 0;
      v.block_hash = suite_.Hash(ToBytes(tag));
      v.validator_index = 3;
      v.signature =
          *suite_.Sign(key.secret_key, VoteSignBytes(genesis_.chain_id, v));
      validators_[3]->net->Broadcast(
          static_cast<uint16_t>(MsgType::kConsensusVote),
          tendermint::EncodeMessage(v));
    }
    absl::SleepFor(absl::Milliseconds(200));
    return !validators_[0]->ledger->evidence().empty();
  }));
  const EvidenceRecord e = validators_[0]->ledger->evidence().front();
  EXPECT_EQ(e.kind, "duplicate_vote");
  EXPECT_EQ(e.validator_index, 3u);
  absl::StatusOr<tendermint::Evidence> decoded =
      tendermint::DecodeEvidence(e.message);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(tendermint::VerifyEvidence(suite_, genesis_, *decoded).ok());
  const uint64_t h = validators_[0]->ledger->height();
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(h + 2, {0, 1, 2}); }));
  ExpectAgreement();
}

TEST_F(TendermintDriverTest, RestartMidHeightNeverSignsTwice) {
  // Restart every validator at once, repeatedly: each resumes from its WAL
  // and storage, and the chain continues without a fork.
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(2, {0, 1, 2, 3}); }));
  for (int i = 0; i < 2; ++i) {
    for (auto& v : validators_) StopValidator(*v);
    const uint64_t h = validators_[0]->ledger->height();
    for (auto& v : validators_) StartValidator(*v);
    ASSERT_TRUE(WaitFor([&] { return AllAtLeast(h + 2, {0, 1, 2, 3}); }));
  }
  ExpectAgreement();
}

// A member that lies: validator 0's mempool vouches for a tx whose
// signature is forged (it "comes from" validator 1's client), while every
// other mempool gives no verdict on proposals (down or frozen). The honest
// validators check every tx themselves and never commit the forged one; the
// chain goes on with the honest txs.
TEST_F(TendermintDriverTest,
       ForgedTxIsNeverCommittedWhenMempoolsGiveNoVerdict) {
  const KeyPair client = suite_.GenerateKey();
  const std::vector<Bytes> forged = MakeSignedTxs(1, "forged", client, true);
  const std::vector<Bytes> honest = MakeSignedTxs(6, "honest", client);
  for (size_t i = 1; i < 4; ++i) {
    validators_[i]->mempool.FailChecks(
        absl::UnavailableError("FakeMempool: checks unavailable"));
  }
  validators_[0]->mempool.Add(forged);  // in every block it proposes
  validators_[1]->mempool.Add({honest.begin(), honest.begin() + 3});
  validators_[2]->mempool.Add({honest.begin() + 3, honest.end()});
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] {
    for (size_t i = 0; i < 4; ++i) {
      if (AllTxs(validators_[i]->ledger->blocks()).size() < honest.size()) {
        return false;
      }
    }
    return true;
  }));
  // Several more heights, so that validator 0 proposed its block more than
  // once in the meantime.
  const uint64_t h = validators_[1]->ledger->height();
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(h + 4, {1, 2, 3}); }));
  ExpectAgreement();
  for (auto& v : validators_) {
    const std::vector<Bytes> txs = AllTxs(v->ledger->blocks());
    EXPECT_EQ(std::count(txs.begin(), txs.end(), forged[0]), 0) << v->id;
  }
  // The honest validators asked storage about the replay window, one call
  // per block they checked, not one per tx.
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_GT(validators_[i]->blocks->committed_reads(), 0) << i;
    EXPECT_GT(validators_[i]->mempool.checks(), 0) << i;
  }
}

// A validator whose clock is 10 minutes behind cannot judge fresh proposals
// (their time is ahead of its clock: undecided, prevote nil), but certified
// blocks are applied on structural checks alone: it catches up by block
// sync and stays level.
TEST_F(TendermintDriverTest, ValidatorWithALaggingClockKeepsSyncing) {
  validators_[3]->clock = std::make_unique<OffsetClock>(-absl::Minutes(10));
  for (size_t i = 0; i < 3; ++i) StartValidator(*validators_[i]);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(4, {0, 1, 2}); }));
  StartValidator(*validators_[3]);
  const uint64_t target = validators_[0]->ledger->height() + 3;
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(target, {0, 1, 2, 3}); }));
  ExpectAgreement();
}

// A PeerNet that only records what is sent. Thread-safe.
class RecordingNet final : public PeerNet {
 public:
  absl::Status Send(std::string_view peer_id, uint16_t type, ByteView,
                    uint64_t) override {
    absl::MutexLock l(&mu_);
    sent_.emplace_back(std::string(peer_id), type);
    return absl::OkStatus();
  }
  size_t Broadcast(uint16_t, ByteView, uint64_t) override { return 0; }
  size_t PeersConnected() const override { return 0; }
  std::vector<PeerStatus> Peers() const override { return {}; }
  PeerNetStats Stats() const override { return {}; }
  const std::string& node_id() const override { return id_; }
  // Commits sent to `peer`.
  size_t CommitsTo(const std::string& peer) const {
    absl::MutexLock l(&mu_);
    size_t n = 0;
    for (const auto& [p, type] : sent_) {
      n +=
          p == peer && type == static_cast<uint16_t>(MsgType::kConsensusCommit);
    }
    return n;
  }

 private:
  const std::string id_ = "node0";
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, uint16_t>> sent_ ABSL_GUARDED_BY(mu_);
};

double Sample(const MetricsRegistry& registry, const std::string& sample) {
  for (absl::string_view line : absl::StrSplit(registry.Serialize(), '\n')) {
    if (absl::StartsWith(line, sample)) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) return v;
    }
  }
  return -1;
}

TEST_F(TendermintDriverTest, SyncIsServedAtMostOncePerPeerPerInterval) {
  // A chain of a few heights, then node0 alone on a clock that moves only
  // when told, with a network that records what it sends.
  for (auto& v : validators_) StartValidator(*v);
  ASSERT_TRUE(WaitFor([&] { return AllAtLeast(3, {0, 1, 2, 3}); }));
  for (auto& v : validators_) StopValidator(*v);
  TestValidator& v = *validators_[0];
  const uint64_t height = v.ledger->height();
  FakeClock clock;
  MetricsRegistry registry;
  TendermintDriverOptions o = options_;
  o.wal_dir = v.wal_dir;
  o.kept_commits = 1;  // older decisions come from storage
  o.sync_interval = absl::Seconds(10);
  o.observer_peers = {"node3"};
  absl::StatusOr<std::unique_ptr<TendermintDriver>> d =
      TendermintDriver::Create(o, genesis_, suite_, v.key, &v.mempool,
                               v.ledger.get(), v.blocks.get(), &clock,
                               ConsensusMetrics::Create(registry));
  ASSERT_TRUE(d.ok()) << d.status();
  std::map<uint16_t, PeerHandler> handlers = (*d)->Handlers();
  RecordingNet net;
  (*d)->Start(&net);
  ASSERT_TRUE(WaitFor([&] { return (*d)->Ready(); }));

  Encoder enc;
  enc.PutVarint(1);
  const Bytes status = enc.Take();
  Envelope env;
  env.type = static_cast<uint16_t>(MsgType::kConsensusStatus);
  auto ask = [&](const std::string& peer, int times) {
    for (int i = 0; i < times; ++i) {
      handlers[env.type](peer, env, status);
    }
  };
  // A flood of Status{height=1} from one peer: one answer (every block it
  // lacks, as far as sync_batch goes) until the interval is over.
  ask("node1", 50);
  ASSERT_TRUE(WaitFor([&] { return (*d)->sync_stats().served >= 1; }));
  absl::SleepFor(absl::Milliseconds(100));  // the flood had its chance
  EXPECT_EQ((*d)->sync_stats().served, 1u);
  EXPECT_EQ((*d)->sync_stats().requests, 50u);
  EXPECT_GE((*d)->sync_stats().skipped, 48u);
  EXPECT_EQ(net.CommitsTo("node1"), height);
  const int reads = v.blocks->range_reads();
  EXPECT_GE(reads, 1);
  // Another peer is not held up by the first one's interval; an observer
  // gets sync too.
  ask("node2", 1);
  ask("node3", 1);
  ASSERT_TRUE(WaitFor([&] {
    return net.CommitsTo("node2") == height && net.CommitsTo("node3") == height;
  }));
  // Once the interval is over, node1 is answered again (the request that
  // waited, if the flood outran the first answer, or this one).
  clock.Advance(absl::Seconds(10));
  ask("node1", 1);
  ASSERT_TRUE(WaitFor([&] { return net.CommitsTo("node1") == 2 * height; }));
  EXPECT_EQ((*d)->sync_stats().served, 4u);
  EXPECT_EQ(
      Sample(registry,
             "consortia_consensus_sync_requests_total{outcome=\"served\"}"),
      4);

  // An observer's votes never reach the driver's queues.
  Envelope vote_env;
  vote_env.type = static_cast<uint16_t>(MsgType::kConsensusVote);
  handlers[vote_env.type]("node3", vote_env, ToBytes("not even a vote"));
  handlers[vote_env.type]("node1", vote_env, ToBytes("not even a vote"));
  ASSERT_TRUE(WaitFor([&] {
    return Sample(registry,
                  "consortia_consensus_peer_messages_dropped_total{peer_kind="
                  "\"validator\",reason=\"undecodable\"}") == 1;
  }));
  EXPECT_EQ(Sample(registry,
                   "consortia_consensus_peer_messages_dropped_total{peer_kind="
                   "\"observer\",reason=\"observer\"}"),
            1);
  (*d)->Stop();
}

// A proposer that backdates every block to just after its parent (the
// oldest time the old rule allowed) gets no quorum.
TEST_F(TendermintDriverTest, BackdatingProposerGetsNoQuorum) {
  ExpectLyingProposerGetsNoQuorum(
      [](const ChainState& parent, uint64_t) {
        return parent.last_time_ms + 1;
      },
      "late");
}

// A proposer that postdates every block by 30 s (the old rule let through
// anything up to 60 s ahead) gets no quorum.
TEST_F(TendermintDriverTest, PostdatingProposerGetsNoQuorum) {
  ExpectLyingProposerGetsNoQuorum(
      [](const ChainState&, uint64_t honest) { return honest + 30'000; },
      "early");
}

TEST_F(TendermintDriverTest, RefusesAKeyOfAnotherSuite) {
  NodeKey key = validators_[0]->key;
  key.crypto_suite = "something-else";
  TendermintDriverOptions o = options_;
  o.wal_dir = validators_[0]->wal_dir;
  EXPECT_EQ(TendermintDriver::Create(
                o, genesis_, suite_, key, &validators_[0]->mempool,
                validators_[0]->ledger.get(), nullptr, &clock_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace consortia::consensus
