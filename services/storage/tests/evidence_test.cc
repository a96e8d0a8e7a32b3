// Evidence records in the ledger (evidence.cc): kept once, numbered densely,
// listed in pages, bounded, and durable across a reopen.
#include <memory>
#include <string>
#include <vector>

#include "apps/app.h"
#include "consortia/service_api.h"
#include "gtest/gtest.h"
#include "kv_store.h"
#include "ledger.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::Chain;
using testing::Suite;
using testing::TempDir;

EvidenceRecord Record(int i) {
  EvidenceRecord r;
  r.kind = i % 2 == 0 ? "duplicate_vote" : "duplicate_proposal";
  r.height = 10 + i;
  r.round = i % 3;
  r.validator_index = i % 4;
  r.message = ToBytes("evidence-" + std::to_string(i));
  return r;
}

class StorageEvidenceTest : public ::testing::Test {
 protected:
  StorageEvidenceTest() : apps_(AppRegistry::WithBuiltins()) { Reopen(); }

  void Reopen() {
    ledger_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("ledger"), true});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    Ledger::Options o;
    o.store = store_.get();
    o.genesis = &chain_.genesis;
    o.suite = &Suite();
    o.apps = &apps_;
    o.location = dir_.Sub("ledger");
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(o);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  std::vector<EvidenceRecord> List(uint64_t from, uint32_t limit) {
    absl::StatusOr<std::vector<EvidenceRecord>> r =
        ledger_->ListEvidence(from, limit);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<EvidenceRecord>{};
  }

  TempDir dir_;
  Chain chain_;
  AppRegistry apps_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(StorageEvidenceTest, KeepsEachRecordOnceInOrderAcrossAReopen) {
  EXPECT_TRUE(List(1, 10).empty());
  ASSERT_TRUE(ledger_->RecordEvidence({Record(0), Record(1)}).ok());
  // The same evidence again (a restarted consensus, or another round of
  // relays) and one duplicate inside the batch: kept once.
  ASSERT_TRUE(ledger_->RecordEvidence({Record(1), Record(2), Record(2)}).ok());
  Reopen();
  ASSERT_TRUE(ledger_->RecordEvidence({Record(0), Record(3)}).ok());
  const std::vector<EvidenceRecord> all = List(1, 100);
  ASSERT_EQ(all.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EvidenceRecord want = Record(i);
    want.seq = static_cast<uint64_t>(i) + 1;
    EXPECT_EQ(all[i], want) << i;
  }
  // Pages.
  const std::vector<EvidenceRecord> page = List(2, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 2u);
  EXPECT_EQ(page[1].seq, 3u);
  EXPECT_TRUE(List(5, 10).empty());
}

TEST_F(StorageEvidenceTest, RefusesBadRecordsAndKeepsNothingOfTheBatch) {
  EvidenceRecord no_kind = Record(0);
  no_kind.kind.clear();
  EvidenceRecord huge = Record(1);
  huge.message.assign(kMaxEvidenceMessageBytes + 1, 'x');
  EvidenceRecord empty = Record(2);
  empty.message.clear();
  for (const EvidenceRecord& bad : {no_kind, huge, empty}) {
    EXPECT_EQ(ledger_->RecordEvidence({Record(5), bad}).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ledger_
                ->RecordEvidence(std::vector<EvidenceRecord>(
                    kMaxListEvidence + 1, Record(6)))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(List(1, 10).empty());
  EXPECT_EQ(ledger_->ListEvidence(0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListEvidence(1, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListEvidence(1, kMaxListEvidence + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace consortia::storage
