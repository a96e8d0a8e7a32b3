#include "consortia/storage/storage_service.h"

#include <memory>
#include <string>
#include <zmq.hpp>

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

  absl::StatusOr<std::unique_ptr<StorageService>> Start() {
    return StorageService::Start(node_, StorageOptions{}, ctx_, metrics_);
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

  absl::StatusOr<std::unique_ptr<BusClient>> client =
      ConnectBusClient(ctx_, node_.storage_endpoint, "test");
  ASSERT_TRUE(client.ok()) << client.status();
  std::unique_ptr<LedgerApi> ledger =
      MakeRemoteLedger(client->get(), absl::Seconds(30));
  std::unique_ptr<QueryApi> query =
      MakeRemoteQuery(client->get(), absl::Seconds(30));

  absl::StatusOr<ChainState> state = ledger->GetChainState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->height, 0u);

  Bytes tx = chain_.Tx(alice_, "set", {"doc", "hash-of-contract"}, 1);
  Block b1 = chain_.NextBlock(*state, {tx});
  absl::StatusOr<CommitResult> r =
      ledger->CommitBlock(b1, chain_.Certify(b1.header));
  ASSERT_TRUE(r.ok()) << r.status();

  absl::StatusOr<StateRecord> doc = query->GetState("kv", "doc");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_TRUE(doc->found);
  EXPECT_EQ(doc->value, ToBytes("hash-of-contract"));
  EXPECT_EQ(doc->owner, alice_.public_key);

  absl::StatusOr<TxRecord> rec = query->GetTx(Chain::HashOf(tx));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->receipt.code, ExecCode::kOk);
  EXPECT_TRUE(
      VerifyTxRecord(Suite(), chain_.genesis, *rec, Chain::HashOf(tx)).ok());

  // A rejected block comes back as the same error code over the bus.
  Block bad = chain_.NextBlock(*state, {});
  absl::StatusOr<CommitResult> refused =
      ledger->CommitBlock(bad, chain_.Certify(bad.header));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);

  EXPECT_THAT(metrics_.Serialize(),
              HasSubstr("consortia_storage_block_height 1"));
}

TEST_F(StorageServiceTest, RestartKeepsTheChain) {
  {
    absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<std::unique_ptr<BusClient>> client =
        ConnectBusClient(ctx_, node_.storage_endpoint, "test");
    ASSERT_TRUE(client.ok());
    std::unique_ptr<LedgerApi> ledger =
        MakeRemoteLedger(client->get(), absl::Seconds(30));
    Block b1 = chain_.NextBlock(ChainState{}, {});
    ASSERT_TRUE(ledger->CommitBlock(b1, chain_.Certify(b1.header)).ok());
  }
  node_.storage_endpoint = "inproc://" + testing::UniqueName("storage");
  node_.storage_events = "inproc://" + testing::UniqueName("storage-events");
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
  ASSERT_TRUE(svc.ok()) << svc.status();
  absl::StatusOr<std::unique_ptr<BusClient>> client =
      ConnectBusClient(ctx_, node_.storage_endpoint, "test");
  ASSERT_TRUE(client.ok());
  std::unique_ptr<LedgerApi> ledger =
      MakeRemoteLedger(client->get(), absl::Seconds(30));
  absl::StatusOr<ChainState> state = ledger->GetChainState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->height, 1u);
}

TEST_F(StorageServiceTest, RefusesAnInconsistentStore) {
  {
    absl::StatusOr<std::unique_ptr<StorageService>> svc = Start();
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<std::unique_ptr<BusClient>> client =
        ConnectBusClient(ctx_, node_.storage_endpoint, "test");
    ASSERT_TRUE(client.ok());
    std::unique_ptr<LedgerApi> ledger =
        MakeRemoteLedger(client->get(), absl::Seconds(30));
    Block b1 = chain_.NextBlock(ChainState{}, {});
    ASSERT_TRUE(ledger->CommitBlock(b1, chain_.Certify(b1.header)).ok());
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
  EXPECT_FALSE(svc.ok());
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

}  // namespace
}  // namespace consortia::storage
