// The ledger and the storage service on each backend, and under store
// faults: blocks commit on Redis exactly as on RocksDB; while the store
// fails, commits fail cleanly (nothing of the block is visible, the chain
// stays where it was) and the same block commits once the fault clears.
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "apps/app.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/metrics.h"
#include "consortia/service_api.h"
#include "consortia/storage/storage_service.h"
#include "failing_kv_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kv_store.h"
#include "ledger.h"
#include "redis_harness.h"
#include "redis_store.h"
#include "store_factory.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::Chain;
using testing::FailingKvStoreForTest;
using ::testing::HasSubstr;
using testing::RedisServer;
using testing::Suite;
using testing::TempDir;

// Polls until `fn` is true or 30 s have passed.
template <typename Fn>
bool Eventually(Fn fn) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (fn()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// A ledger over any KvStore the test hands it.
class LedgerFixture : public ::testing::Test {
 protected:
  LedgerFixture() : apps_(AppRegistry::WithBuiltins()) {
    alice_ = Suite().GenerateKey();
  }

  absl::Status OpenLedger(KvStore* store) {
    ledger_.reset();
    Ledger::Options o;
    o.store = store;
    o.genesis = &chain_.genesis;
    o.suite = &Suite();
    o.apps = &apps_;
    o.location = store->Describe();
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(o);
    if (!ledger.ok()) return ledger.status();
    ledger_ = *std::move(ledger);
    return absl::OkStatus();
  }

  ChainState State() {
    absl::StatusOr<ChainState> s = ledger_->GetChainState();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : ChainState{};
  }

  // The next block: `n` kv sets by alice, keys "<tag>-<i>".
  Block NextBlock(const std::string& tag, int n) {
    std::vector<Bytes> txs;
    for (int i = 0; i < n; ++i) {
      txs.push_back(chain_.Tx(alice_, "set",
                              {absl::StrCat(tag, "-", i), absl::StrCat(i)},
                              ++nonce_));
    }
    return chain_.NextBlock(State(), std::move(txs));
  }

  absl::StatusOr<CommitResult> Commit(const Block& b) {
    return ledger_->CommitBlock(EncodeBlock(b), chain_.Certify(b.header));
  }

  StateRecord Kv(const std::string& key) {
    absl::StatusOr<StateRecord> s = ledger_->GetState("kv", key);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : StateRecord{};
  }

  TempDir dir_;
  Chain chain_;
  AppRegistry apps_;
  KeyPair alice_;
  uint64_t nonce_ = 0;
  std::unique_ptr<Ledger> ledger_;
};

// RocksDB behind FailingKvStoreForTest.
class StorageLedgerFaultTest : public LedgerFixture {};

class StorageLedgerOnRedisTest : public LedgerFixture {
 protected:
  void SetUp() override {
    CONSORTIA_REQUIRE_REDIS_SERVER();
    absl::StatusOr<std::unique_ptr<RedisServer>> s =
        RedisServer::Start(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    ReopenStore();
  }

  void ReopenStore() {
    ledger_.reset();
    store_.reset();
    // Ordered index as the service configures it, so that a ledger
    // iteration over another prefix fails here.
    RedisStoreOptions o = server_->StoreOptions("node0:");
    o.ordered_prefixes = LedgerOrderedPrefixes();
    absl::StatusOr<std::unique_ptr<KvStore>> st = OpenRedisStore(o);
    ASSERT_TRUE(st.ok()) << st.status();
    store_ = *std::move(st);
    absl::Status s = OpenLedger(store_.get());
    ASSERT_TRUE(s.ok()) << s;
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<KvStore> store_;
};

TEST_F(StorageLedgerOnRedisTest, CommitsBlocksAndServesVerifiableRecords) {
  std::vector<Bytes> all_txs;
  for (int h = 1; h <= 3; ++h) {
    Block b = NextBlock(absl::StrCat("doc", h), 50);
    all_txs.insert(all_txs.end(), b.txs.begin(), b.txs.end());
    absl::StatusOr<CommitResult> r = Commit(b);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_EQ(State().height, 3u);
  EXPECT_EQ(Kv("doc2-7").value, ToBytes("7"));
  EXPECT_EQ(Kv("doc2-7").owner, alice_.public_key);

  // A tx of block 1 comes with proofs that check against the genesis alone.
  absl::StatusOr<TxRecord> rec = ledger_->GetTx(Chain::HashOf(all_txs[3]));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->receipt.code, ExecCode::kOk);
  EXPECT_TRUE(
      VerifyTxRecord(Suite(), chain_.genesis, *rec, Chain::HashOf(all_txs[3]))
          .ok());
  absl::StatusOr<CommittedPage> events = ledger_->GetCommitted(1, 3);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->events.size(), 3u);
  EXPECT_EQ(events->next_height, 4u);

  // A new store handle (a restarted storage service) continues the chain.
  const ChainState before = State();
  ReopenStore();
  EXPECT_EQ(State().height, before.height);
  EXPECT_EQ(State().state_root, before.state_root);
  ASSERT_TRUE(Commit(NextBlock("doc4", 10)).ok());
  EXPECT_EQ(State().height, 4u);
}

// Redis stops between two commits: the commit fails with Unavailable and
// leaves the chain where it was; once Redis is back the same block commits.
TEST_F(StorageLedgerOnRedisTest, CommitWaitsForRedisToReturn) {
  ASSERT_TRUE(Commit(NextBlock("a", 20)).ok());
  Block b2 = NextBlock("b", 20);
  ASSERT_TRUE(server_->Kill().ok());
  absl::StatusOr<CommitResult> refused = Commit(b2);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable)
      << refused.status();
  EXPECT_EQ(State().height, 1u);
  EXPECT_FALSE(store_->Ping().ok());

  ASSERT_TRUE(server_->Restart().ok());
  absl::StatusOr<CommitResult> r;
  EXPECT_TRUE(Eventually([&] {
    r = Commit(b2);
    return r.ok();
  })) << r.status();
  EXPECT_EQ(State().height, 2u);
  EXPECT_EQ(Kv("b-3").value, ToBytes("3"));

  // And the store Redis reloaded from its AOF is consistent at height 2.
  ReopenStore();
  EXPECT_EQ(State().height, 2u);
}

// The same with a crash of Redis: kill -9 right after a commit; the
// restarted Redis (AOF, fsync always) has the block.
TEST_F(StorageLedgerOnRedisTest, AcknowledgedBlockSurvivesRedisCrash) {
  ASSERT_TRUE(Commit(NextBlock("a", 100)).ok());
  const ChainState acked = State();
  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(server_->Restart().ok());
  ReopenStore();
  EXPECT_EQ(State().height, 1u);
  EXPECT_EQ(State().state_root, acked.state_root);
  EXPECT_EQ(Kv("a-99").value, ToBytes("99"));
}

// RocksDB under a KvStore that fails its writes (a full disk): the commit
// fails with the store's error, nothing of the block is visible, and the
// same block commits once the fault clears.
TEST_F(StorageLedgerFaultTest, FailedWriteStopsCommitCleanly) {
  absl::StatusOr<std::unique_ptr<KvStore>> rocks =
      OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("db"), true});
  ASSERT_TRUE(rocks.ok()) << rocks.status();
  FailingKvStoreForTest store(rocks->get());
  ASSERT_TRUE(OpenLedger(&store).ok());
  ASSERT_TRUE(Commit(NextBlock("a", 10)).ok());
  const ChainState one = State();

  Block b2 = NextBlock("b", 10);
  store.FailWrites(absl::ResourceExhaustedError("rocksdb write: No space"));
  absl::StatusOr<CommitResult> refused = Commit(b2);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted)
      << refused.status();
  EXPECT_EQ(store.failed_writes(), 1);
  // Nothing of block 2 is visible, here or to a ledger that reopens.
  EXPECT_EQ(State().height, 1u);
  EXPECT_EQ(State().state_root, one.state_root);
  EXPECT_EQ(ledger_->GetCertifiedBlock(2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(Kv("b-1").found);
  EXPECT_EQ(ledger_->GetTx(Chain::HashOf(b2.txs[0])).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(OpenLedger(rocks->get()).ok());
  EXPECT_EQ(State().height, 1u);

  ASSERT_TRUE(OpenLedger(&store).ok());
  store.FailWrites(absl::OkStatus());
  absl::StatusOr<CommitResult> r = Commit(b2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(State().height, 2u);
  EXPECT_EQ(Kv("b-1").value, ToBytes("1"));
}

// A store that fails reads mid-commit (execution reads state): the same.
TEST_F(StorageLedgerFaultTest, FailedReadStopsCommitCleanly) {
  absl::StatusOr<std::unique_ptr<KvStore>> rocks =
      OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("db"), true});
  ASSERT_TRUE(rocks.ok()) << rocks.status();
  FailingKvStoreForTest store(rocks->get());
  ASSERT_TRUE(OpenLedger(&store).ok());
  Block b1 = NextBlock("a", 10);
  store.FailReads(absl::UnavailableError("redis: connection refused"));
  EXPECT_EQ(Commit(b1).status().code(), absl::StatusCode::kUnavailable);
  store.FailReads(absl::OkStatus());
  EXPECT_EQ(State().height, 0u);
  ASSERT_TRUE(Commit(b1).ok());
  EXPECT_EQ(Kv("a-9").value, ToBytes("9"));
}

// The ledger served over the bus (as the storage service serves it) on a
// store whose Ping fails: GetChainTip answers the store's error, to both of
// its consumers, though the tip itself is in memory; once the store answers
// again, so does GetChainTip.
TEST_F(StorageLedgerFaultTest, ChainTipFailsWhileTheStoreDoesNotAnswer) {
  absl::StatusOr<std::unique_ptr<KvStore>> rocks =
      OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("db"), true});
  ASSERT_TRUE(rocks.ok()) << rocks.status();
  FailingKvStoreForTest store(rocks->get());
  ASSERT_TRUE(OpenLedger(&store).ok());
  const Block b1 = NextBlock("a", 3);
  ASSERT_TRUE(Commit(b1).ok());

  zmq::context_t ctx;
  const std::string endpoint = "inproc://" + testing::UniqueName("storage");
  absl::StatusOr<std::unique_ptr<BusServer>> server =
      StartBusServer(ctx, endpoint, "storage",
                     ServeStorage({.ledger = ledger_.get(),
                                   .commit_history = ledger_.get(),
                                   .block_source = ledger_.get(),
                                   .chain_queries = ledger_.get(),
                                   .state_queries = ledger_.get()},
                                  nullptr));
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<testing::StorageClients> c =
      testing::ConnectStorage(ctx, endpoint);
  ASSERT_TRUE(c.ok()) << c.status();

  const ChainTip at_one{1, BlockHash(Suite(), b1.header)};
  absl::StatusOr<ChainTip> tip = c->chain->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, at_one);

  store.FailReads(absl::UnavailableError("redis: connection refused"));
  EXPECT_EQ(c->chain->GetChainTip().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(c->history->GetChainTip().status().code(),
            absl::StatusCode::kUnavailable);

  store.FailReads(absl::OkStatus());
  tip = c->history->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, at_one);
}

// The storage service on Redis, over the bus: it serves, reports not ready
// while Redis is down (commits fail, nothing diverges), resumes when Redis
// returns, labels its metrics with the backend, and keeps the chain across
// a restart of the service.
class StorageServiceOnRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CONSORTIA_REQUIRE_REDIS_SERVER();
    absl::StatusOr<std::unique_ptr<RedisServer>> s =
        RedisServer::Start(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    alice_ = Suite().GenerateKey();
    ASSERT_TRUE(
        WriteFileAtomic(dir_.Sub("genesis.json"), GenesisToJson(chain_.genesis))
            .ok());
    node_.node_name = "n0";
    node_.genesis_path = dir_.Sub("genesis.json");
    node_.data_dir = dir_.path();
    node_.bus_timeout = absl::Seconds(30);
    opts_.backend = "redis";
    opts_.redis_port = server_->port();
    opts_.redis_key_prefix = "{n0}:";
    opts_.redis_timeout_ms = 5000;
  }

  absl::StatusOr<std::unique_ptr<StorageService>> Start() {
    node_.storage_endpoint = "inproc://" + testing::UniqueName("storage");
    node_.storage_events = "inproc://" + testing::UniqueName("storage-events");
    return StorageService::Start(node_, opts_, ctx_, metrics_);
  }

  TempDir dir_;
  std::unique_ptr<RedisServer> server_;
  Chain chain_;
  KeyPair alice_;
  NodeConfig node_;
  StorageOptions opts_;
  zmq::context_t ctx_;
  MetricsRegistry metrics_;
};

TEST_F(StorageServiceOnRedisTest, ServesWaitsForRedisAndResumes) {
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_TRUE((*svc)->Ready());
  absl::StatusOr<testing::StorageClients> c =
      testing::ConnectStorage(ctx_, node_.storage_endpoint);
  ASSERT_TRUE(c.ok()) << c.status();
  LedgerApi* ledger = c->ledger.get();
  StateQueries* query = c->state.get();

  Block b1 = chain_.NextBlock(ChainState{},
                              {chain_.Tx(alice_, "set", {"doc", "v1"}, 1)});
  absl::StatusOr<CommitResult> r1 =
      ledger->CommitBlock(EncodeBlock(b1), chain_.Certify(b1.header));
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<ChainState> state = ledger->GetChainState();
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->height, 1u);

  Block b2 =
      chain_.NextBlock(*state, {chain_.Tx(alice_, "set", {"doc", "v2"}, 2)});
  ASSERT_TRUE(server_->Kill().ok());
  EXPECT_FALSE((*svc)->Ready());
  absl::StatusOr<CommitResult> refused =
      ledger->CommitBlock(EncodeBlock(b2), chain_.Certify(b2.header));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable)
      << refused.status();
  // The chain tip is in storage's memory, but storage cannot serve reads
  // without Redis: GetChainTip says so (what the api's readiness probe asks).
  EXPECT_EQ(c->chain->GetChainTip().status().code(),
            absl::StatusCode::kUnavailable);

  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(Eventually([&] { return (*svc)->Ready(); }));
  absl::StatusOr<ChainTip> tip = c->history->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, (ChainTip{1, BlockHash(Suite(), b1.header)}));
  absl::StatusOr<CommitResult> r2 =
      ledger->CommitBlock(EncodeBlock(b2), chain_.Certify(b2.header));
  ASSERT_TRUE(r2.ok()) << r2.status();
  absl::StatusOr<StateRecord> doc = query->GetState("kv", "doc");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->value, ToBytes("v2"));
  EXPECT_EQ(doc->height, 2u);

  const std::string text = metrics_.Serialize();
  EXPECT_THAT(text, HasSubstr("consortia_storage_commit_duration_seconds_count"
                              "{backend=\"redis\"} 2"));
  EXPECT_THAT(text, HasSubstr("consortia_storage_store_errors_total{"
                              "backend=\"redis\",kind=\"unavailable\"}"));
  EXPECT_THAT(text, HasSubstr("consortia_storage_store_write_duration_seconds"
                              "_count{backend=\"redis\"} 2"));
  EXPECT_THAT(
      text, HasSubstr("consortia_storage_store_size_bytes{backend=\"redis\"}"));

  // A restarted service reloads the chain from Redis.
  c->state.reset();
  c->chain.reset();
  c->blocks.reset();
  c->history.reset();
  c->ledger.reset();
  c->bus.reset();
  svc->reset();
  svc = Start();
  ASSERT_TRUE(svc.ok()) << svc.status();
  c = testing::ConnectStorage(ctx_, node_.storage_endpoint);
  ASSERT_TRUE(c.ok()) << c.status();
  ledger = c->ledger.get();
  state = ledger->GetChainState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->height, 2u);
}

TEST_F(StorageServiceOnRedisTest, RefusesToStartOnAWeakRedis) {
  TempDir weak_dir;
  absl::StatusOr<std::unique_ptr<RedisServer>> weak =
      RedisServer::Start(weak_dir.path(), {"--appendfsync", "no"});
  ASSERT_TRUE(weak.ok()) << weak.status();
  opts_.redis_port = (*weak)->port();
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  ASSERT_FALSE(svc.ok());
  EXPECT_THAT(std::string(svc.status().message()),
              HasSubstr("appendfsync is 'no'"));
  opts_.redis_allow_weak_durability = true;
  svc = Start();
  EXPECT_TRUE(svc.ok()) << svc.status();
}

}  // namespace
}  // namespace consortia::storage
