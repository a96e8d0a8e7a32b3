#include "consortia/storage/storage_service.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/metrics.h"
#include "consortia/service_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keys.h"
#include "rocksdb/db.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::Chain;
using ::testing::HasSubstr;
using testing::Suite;
using testing::TempDir;

class StorageServiceTest : public ::testing::Test {
 protected:
  StorageServiceTest() {
    alice_ = Suite().GenerateKey();
    EXPECT_TRUE(
        WriteFileAtomic(dir_.Sub("genesis.json"), GenesisToJson(chain_.genesis))
            .ok());
    node_.node_name = "n0";
    node_.genesis_path = dir_.Sub("genesis.json");
    node_.data_dir = dir_.path();
    node_.storage_endpoint = "inproc://" + testing::UniqueName("storage");
    node_.storage_events = "inproc://" + testing::UniqueName("storage-events");
    node_.bus_timeout = absl::Seconds(30);
  }

  absl::StatusOr<std::unique_ptr<StorageService>> Start(
      const StorageOptions& o = {}) {
    return StorageService::Start(node_, o, ctx_, metrics_);
  }
  static StorageOptions Versions(int64_t n) {
    StorageOptions o;
    o.state_versions = n;
    return o;
  }

  TempDir dir_;
  Chain chain_;
  KeyPair alice_;
  NodeConfig node_;
  zmq::context_t ctx_;
  MetricsRegistry metrics_;
};

TEST_F(StorageServiceTest, ServesLedgerAndQueriesOverTheBus) {
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_TRUE((*svc)->Ready());

  absl::StatusOr<testing::StorageClients> c =
      testing::ConnectStorage(ctx_, node_.storage_endpoint);
  ASSERT_TRUE(c.ok()) << c.status();
  LedgerApi* ledger = c->ledger.get();

  absl::StatusOr<ChainState> state = ledger->GetChainState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->height, 0u);
  // The chain tip of an empty chain is height 0, to both of its consumers.
  absl::StatusOr<ChainTip> tip = c->history->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, ChainTip{});

  Bytes tx = chain_.Tx(alice_, "set", {"doc", "hash-of-contract"}, 1);
  Block b1 = chain_.NextBlock(*state, {tx});
  absl::StatusOr<CommitResult> r =
      ledger->CommitBlock(EncodeBlock(b1), chain_.Certify(b1.header));
  ASSERT_TRUE(r.ok()) << r.status();

  tip = c->chain->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, (ChainTip{1, BlockHash(Suite(), b1.header)}));
  tip = c->history->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(tip->height, 1u);

  absl::StatusOr<StateRecord> doc = c->state->GetState("kv", "doc");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_TRUE(doc->found);
  EXPECT_EQ(doc->value, ToBytes("hash-of-contract"));
  EXPECT_EQ(doc->owner, alice_.public_key);

  absl::StatusOr<TxRecord> rec = c->chain->GetTx(Chain::HashOf(tx));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->receipt.code, ExecCode::kOk);
  EXPECT_TRUE(
      VerifyTxRecord(Suite(), chain_.genesis, *rec, Chain::HashOf(tx)).ok());

  // A rejected block comes back as the same error code over the bus.
  Block bad = chain_.NextBlock(*state, {});
  absl::StatusOr<CommitResult> refused =
      ledger->CommitBlock(EncodeBlock(bad), chain_.Certify(bad.header));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);

  EXPECT_THAT(metrics_.Serialize(),
              HasSubstr("consortia_storage_block_height 1"));
  // The disk of the data directory (monitoring/alerts.yml, disk filling).
  EXPECT_THAT(metrics_.Serialize(),
              HasSubstr("consortia_storage_disk_free_bytes "));
  EXPECT_THAT(metrics_.Serialize(),
              HasSubstr("consortia_storage_disk_size_bytes "));
}

// A block goes from consensus to storage as the bytes consensus has: the
// remote client does not encode it, storage decodes it once (to execute it)
// and persists the very bytes it received.
TEST_F(StorageServiceTest, CommitDecodesTheBlockOnceAndPersistsItsBytes) {
  Bytes sent;
  {
    absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<testing::StorageClients> c =
        testing::ConnectStorage(ctx_, node_.storage_endpoint);
    ASSERT_TRUE(c.ok()) << c.status();
    std::vector<Bytes> txs;
    for (int i = 0; i < 3; ++i) {
      txs.push_back(chain_.Tx(alice_, "set", {absl::StrCat("k", i), "v"}, i));
    }
    const Block b1 = chain_.NextBlock(ChainState{}, txs);
    sent = EncodeBlock(b1);
    const CommitCertificate cert = chain_.Certify(b1.header);

    const BlockCodecCalls before = TestOnlyBlockCodecCalls();
    absl::StatusOr<CommitResult> r = c->ledger->CommitBlock(sent, cert);
    const BlockCodecCalls after = TestOnlyBlockCodecCalls();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(after.encodes - before.encodes, 0u);
    EXPECT_EQ(after.decodes - before.decodes, 1u);
  }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(rocksdb::Options(), dir_.Sub("ledger"), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string stored;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), keys::Block(1), &stored).ok());
  EXPECT_EQ(stored, AsString(sent));
}

TEST_F(StorageServiceTest, RestartKeepsTheChain) {
  {
    absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<testing::StorageClients> c =
        testing::ConnectStorage(ctx_, node_.storage_endpoint);
    ASSERT_TRUE(c.ok()) << c.status();
    LedgerApi* ledger = c->ledger.get();
    Block b1 = chain_.NextBlock(ChainState{}, {});
    ASSERT_TRUE(
        ledger->CommitBlock(EncodeBlock(b1), chain_.Certify(b1.header)).ok());
  }
  node_.storage_endpoint = "inproc://" + testing::UniqueName("storage");
  node_.storage_events = "inproc://" + testing::UniqueName("storage-events");
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  ASSERT_TRUE(svc.ok()) << svc.status();
  absl::StatusOr<testing::StorageClients> c =
      testing::ConnectStorage(ctx_, node_.storage_endpoint);
  ASSERT_TRUE(c.ok()) << c.status();
  LedgerApi* ledger = c->ledger.get();
  absl::StatusOr<ChainState> state = ledger->GetChainState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->height, 1u);
}

TEST_F(StorageServiceTest, RefusesAnInconsistentStore) {
  {
    absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<testing::StorageClients> c =
        testing::ConnectStorage(ctx_, node_.storage_endpoint);
    ASSERT_TRUE(c.ok()) << c.status();
    LedgerApi* ledger = c->ledger.get();
    Block b1 = chain_.NextBlock(ChainState{}, {});
    ASSERT_TRUE(
        ledger->CommitBlock(EncodeBlock(b1), chain_.Certify(b1.header)).ok());
  }
  const std::string path = dir_.Sub("ledger");
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), keys::Cert(1)).ok());
  }
  node_.storage_endpoint = "inproc://" + testing::UniqueName("storage");
  node_.storage_events = "inproc://" + testing::UniqueName("storage-events");
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  ASSERT_FALSE(svc.ok());
  EXPECT_THAT(std::string(svc.status().message()),
              HasSubstr("store at " + path + " is inconsistent"));
}

TEST_F(StorageServiceTest, MissingGenesisIsAnError) {
  node_.genesis_path = dir_.Sub("nope.json");
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  EXPECT_TRUE(absl::IsNotFound(svc.status())) << svc.status();
  // LoadGenesis's wording, as in every service.
  EXPECT_THAT(
      std::string(svc.status().message()),
      ::testing::StartsWith("genesis: cannot open " + node_.genesis_path));
}

TEST(StorageOptionsTest, OnlyKnownBackendsAndBoundsAreAccepted) {
  StorageOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.backend = "leveldb";
  absl::Status s = o.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("storage_backend"));
  o.backend = "redis";
  EXPECT_TRUE(o.Validate().ok());
  o.redis_port = 0;
  EXPECT_THAT(std::string(o.Validate().message()),
              HasSubstr("storage_redis_port"));
  o.redis_port = 6379;
  o.redis_key_prefix = "";
  EXPECT_THAT(std::string(o.Validate().message()),
              HasSubstr("storage_redis_key_prefix"));
  o.redis_key_prefix = "n0:";
  o.redis_timeout_ms = 1;
  EXPECT_THAT(std::string(o.Validate().message()),
              HasSubstr("storage_redis_timeout_ms"));
  o.backend = "rocksdb";
  o.threads = 0;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
}

// --storage_state_versions through the service.

TEST_F(StorageServiceTest, StartRefusesAnOutOfRangeValue) {
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start(Versions(0));
  EXPECT_EQ(svc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(svc.status().message(), HasSubstr("storage_state_versions"));
}

// With 3 versions the service answers GetStateAt for the latest 3 heights
// only, and says which heights it keeps for an older one.
TEST_F(StorageServiceTest, KeepsThatManyVersions) {
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start(Versions(3));
  ASSERT_TRUE(svc.ok()) << svc.status();
  absl::StatusOr<testing::StorageClients> c =
      testing::ConnectStorage(ctx_, node_.storage_endpoint);
  ASSERT_TRUE(c.ok()) << c.status();
  LedgerApi* ledger = c->ledger.get();
  StateQueries* query = c->state.get();

  for (uint64_t h = 1; h <= 6; ++h) {
    absl::StatusOr<ChainState> state = ledger->GetChainState();
    ASSERT_TRUE(state.ok()) << state.status();
    Block b = chain_.NextBlock(
        *state, {chain_.Tx(alice_, "set", {"k", absl::StrCat("v", h)}, h)});
    ASSERT_TRUE(
        ledger->CommitBlock(EncodeBlock(b), chain_.Certify(b.header)).ok());
  }
  for (uint64_t h = 4; h <= 6; ++h) {
    absl::StatusOr<StateRecord> r = query->GetStateAt("kv", "k", h);
    ASSERT_TRUE(r.ok()) << h << ": " << r.status();
    EXPECT_EQ(r->value, ToBytes(absl::StrCat("v", h)));
  }
  absl::StatusOr<StateRecord> old = query->GetStateAt("kv", "k", 3);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(old.status().message(), HasSubstr("heights 4..6"));
}

// Changing the value across a restart: lowering it drops the surplus
// versions at the next commit; raising it keeps more from then on, but what
// was pruned stays gone.
TEST_F(StorageServiceTest, ChangingTheValueAcrossRestarts) {
  auto commit = [&](LedgerApi& ledger, uint64_t h) {
    absl::StatusOr<ChainState> state = ledger.GetChainState();
    ASSERT_TRUE(state.ok()) << state.status();
    Block b = chain_.NextBlock(
        *state, {chain_.Tx(alice_, "set", {"k", absl::StrCat("v", h)}, h)});
    ASSERT_TRUE(
        ledger.CommitBlock(EncodeBlock(b), chain_.Certify(b.header)).ok())
        << h;
  };
  auto run = [&](int64_t versions, uint64_t first, uint64_t last,
                 const std::function<void(StateQueries&)>& check) {
    absl::StatusOr<std::unique_ptr<StorageService>> svc =
        Start(Versions(versions));
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<testing::StorageClients> c =
        testing::ConnectStorage(ctx_, node_.storage_endpoint);
    ASSERT_TRUE(c.ok()) << c.status();
    LedgerApi* ledger = c->ledger.get();
    for (uint64_t h = first; h <= last; ++h) commit(*ledger, h);
    check(*c->state);
  };
  auto value_at = [](StateQueries& q,
                     uint64_t h) -> absl::StatusOr<std::string> {
    absl::StatusOr<StateRecord> r = q.GetStateAt("kv", "k", h);
    if (!r.ok()) return r.status();
    return std::string(r->value.begin(), r->value.end());
  };

  // 8 versions: heights 1..8 are all kept.
  run(8, 1, 8, [&](StateQueries& q) {
    for (uint64_t h = 1; h <= 8; ++h) {
      EXPECT_EQ(value_at(q, h).value_or("?"), absl::StrCat("v", h)) << h;
    }
  });
  // Lowered to 2: after one more block only 8 and 9 are.
  run(2, 9, 9, [&](StateQueries& q) {
    EXPECT_EQ(value_at(q, 9).value_or("?"), "v9");
    EXPECT_EQ(value_at(q, 8).value_or("?"), "v8");
    EXPECT_EQ(value_at(q, 7).status().code(), absl::StatusCode::kNotFound);
  });
  // Raised to 6: heights 8.. are kept as blocks come; 7 and below stay
  // gone, and say so (NotFound, not a damaged store).
  run(6, 10, 12, [&](StateQueries& q) {
    for (uint64_t h = 8; h <= 12; ++h) {
      EXPECT_EQ(value_at(q, h).value_or("?"), absl::StrCat("v", h)) << h;
    }
    EXPECT_EQ(value_at(q, 7).status().code(), absl::StatusCode::kNotFound);
  });
}

}  // namespace
}  // namespace consortia::storage
