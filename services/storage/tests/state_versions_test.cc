// --storage_state_versions: validation, the flag, and that the service keeps
// exactly that many state versions for GetStateAt.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/metrics.h"
#include "consortia/service_api.h"
#include "consortia/storage/storage_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger.h"
#include "test_util.h"

ABSL_DECLARE_FLAG(int64_t, storage_state_versions);

namespace consortia::storage {
namespace {

using testing::Chain;
using ::testing::HasSubstr;
using testing::Suite;
using testing::TempDir;

TEST(StateVersionsOptionTest, DefaultIsTheLedgerDefault) {
  EXPECT_EQ(static_cast<uint64_t>(StorageOptions{}.state_versions),
            kDefaultStateVersions);
  EXPECT_EQ(absl::GetFlag(FLAGS_storage_state_versions),
            StorageOptions{}.state_versions);
}

TEST(StateVersionsOptionTest, ValidatesTheRange) {
  for (int64_t bad :
       {int64_t{0}, int64_t{1}, int64_t{-3},
        StorageOptions::kMaxStateVersions + 1, int64_t{1} << 40}) {
    StorageOptions o;
    o.state_versions = bad;
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("storage_state_versions must be in 2.."))
        << bad;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("got ", bad))) << bad;
  }
  for (int64_t good : {int64_t{2}, int64_t{16}, int64_t{5000},
                       StorageOptions::kMaxStateVersions}) {
    StorageOptions o;
    o.state_versions = good;
    EXPECT_TRUE(o.Validate().ok()) << good;
  }
}

TEST(StateVersionsOptionTest, FromFlagsReadsTheFlag) {
  const int64_t saved = absl::GetFlag(FLAGS_storage_state_versions);
  absl::SetFlag(&FLAGS_storage_state_versions, 100);
  EXPECT_EQ(StorageOptions::FromFlags().state_versions, 100);
  absl::SetFlag(&FLAGS_storage_state_versions, saved);
}

class StateVersionsServiceTest : public ::testing::Test {
 protected:
  StateVersionsServiceTest() {
    alice_ = Suite().GenerateKey();
    EXPECT_TRUE(
        WriteFileAtomic(dir_.Sub("genesis.json"), GenesisToJson(chain_.genesis))
            .ok());
    node_.node_name = "n0";
    node_.genesis_path = dir_.Sub("genesis.json");
    node_.data_dir = dir_.path();
    node_.bus_timeout = absl::Seconds(30);
  }

  absl::StatusOr<std::unique_ptr<StorageService>> Start(int64_t versions) {
    node_.storage_endpoint = "inproc://" + testing::UniqueName("storage");
    node_.storage_events = "inproc://" + testing::UniqueName("storage-events");
    StorageOptions o;
    o.state_versions = versions;
    return StorageService::Start(node_, o, ctx_, metrics_);
  }

  TempDir dir_;
  Chain chain_;
  KeyPair alice_;
  NodeConfig node_;
  zmq::context_t ctx_;
  MetricsRegistry metrics_;
};

TEST_F(StateVersionsServiceTest, StartRefusesAnOutOfRangeValue) {
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start(0);
  EXPECT_EQ(svc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(svc.status().message(), HasSubstr("storage_state_versions"));
}

// With 3 versions the service answers GetStateAt for the latest 3 heights
// only, and says which heights it keeps for an older one.
TEST_F(StateVersionsServiceTest, KeepsThatManyVersions) {
  absl::StatusOr<std::unique_ptr<StorageService>> svc = Start(3);
  ASSERT_TRUE(svc.ok()) << svc.status();
  absl::StatusOr<std::unique_ptr<BusClient>> client =
      ConnectBusClient(ctx_, node_.storage_endpoint, "test");
  ASSERT_TRUE(client.ok()) << client.status();
  std::unique_ptr<LedgerApi> ledger =
      MakeRemoteLedger(client->get(), absl::Seconds(30));
  std::unique_ptr<QueryApi> query =
      MakeRemoteQuery(client->get(), absl::Seconds(30));

  for (uint64_t h = 1; h <= 6; ++h) {
    absl::StatusOr<ChainState> state = ledger->GetChainState();
    ASSERT_TRUE(state.ok()) << state.status();
    Block b = chain_.NextBlock(
        *state, {chain_.Tx(alice_, "set", {"k", absl::StrCat("v", h)}, h)});
    ASSERT_TRUE(ledger->CommitBlock(b, chain_.Certify(b.header)).ok());
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
TEST_F(StateVersionsServiceTest, ChangingTheValueAcrossRestarts) {
  auto commit = [&](LedgerApi& ledger, uint64_t h) {
    absl::StatusOr<ChainState> state = ledger.GetChainState();
    ASSERT_TRUE(state.ok()) << state.status();
    Block b = chain_.NextBlock(
        *state, {chain_.Tx(alice_, "set", {"k", absl::StrCat("v", h)}, h)});
    ASSERT_TRUE(ledger.CommitBlock(b, chain_.Certify(b.header)).ok()) << h;
  };
  auto run = [&](int64_t versions, uint64_t first, uint64_t last,
                 const std::function<void(QueryApi&)>& check) {
    absl::StatusOr<std::unique_ptr<StorageService>> svc = Start(versions);
    ASSERT_TRUE(svc.ok()) << svc.status();
    absl::StatusOr<std::unique_ptr<BusClient>> client =
        ConnectBusClient(ctx_, node_.storage_endpoint, "test");
    ASSERT_TRUE(client.ok()) << client.status();
    std::unique_ptr<LedgerApi> ledger =
        MakeRemoteLedger(client->get(), absl::Seconds(30));
    std::unique_ptr<QueryApi> query =
        MakeRemoteQuery(client->get(), absl::Seconds(30));
    for (uint64_t h = first; h <= last; ++h) commit(*ledger, h);
    check(*query);
  };
  auto value_at = [](QueryApi& q, uint64_t h) -> absl::StatusOr<std::string> {
    absl::StatusOr<StateRecord> r = q.GetStateAt("kv", "k", h);
    if (!r.ok()) return r.status();
    return std::string(r->value.begin(), r->value.end());
  };

  // 8 versions: heights 1..8 are all kept.
  run(8, 1, 8, [&](QueryApi& q) {
    for (uint64_t h = 1; h <= 8; ++h) {
      EXPECT_EQ(value_at(q, h).value_or("?"), absl::StrCat("v", h)) << h;
    }
  });
  // Lowered to 2: after one more block only 8 and 9 are.
  run(2, 9, 9, [&](QueryApi& q) {
    EXPECT_EQ(value_at(q, 9).value_or("?"), "v9");
    EXPECT_EQ(value_at(q, 8).value_or("?"), "v8");
    EXPECT_EQ(value_at(q, 7).status().code(), absl::StatusCode::kNotFound);
  });
  // Raised to 6: heights 8.. are kept as blocks come; 7 and below stay
  // gone, and say so (NotFound, not a damaged store).
  run(6, 10, 12, [&](QueryApi& q) {
    for (uint64_t h = 8; h <= 12; ++h) {
      EXPECT_EQ(value_at(q, h).value_or("?"), absl::StrCat("v", h)) << h;
    }
    EXPECT_EQ(value_at(q, 7).status().code(), absl::StatusCode::kNotFound);
  });
}

}  // namespace
}  // namespace consortia::storage
