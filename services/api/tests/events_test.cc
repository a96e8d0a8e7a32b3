// The event stream's pieces: ids, SSE framing, filters, and the EventHub over
// a fake storage with fake streams (history then live without gap or
// duplicate, resumption, slow-client cutoff, shutdown, batched reads).
#include "events.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/crypto_suite.h"
#include "consortia/metrics.h"
#include "consortia/testing/fake_storage_queries.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia::api {
namespace {

using ::consortia::testing::FakeChainQueries;

TEST(EventIdTest, ParsesOnlyHeightDashIndex) {
  EXPECT_EQ(ParseEventId("12-0"), (EventId{12, 0}));
  EXPECT_EQ(ParseEventId("7-3"), (EventId{7, 3}));
  EXPECT_EQ(ParseEventId("18446744073709551615-18446744073709551615"),
            (EventId{UINT64_MAX, UINT64_MAX}));
  for (const char* bad : {"", "12", "12-", "-3", "a-1", "1-b", "1--2", "+1-2",
                          "1-2-3", " 1-2", "1-2 ", "18446744073709551616-0"}) {
    EXPECT_FALSE(ParseEventId(bad).has_value()) << bad;
  }
  EXPECT_EQ(FormatEventId({5, 2}), "5-2");
  EXPECT_EQ(ParseEventId(FormatEventId({9, 4})), (EventId{9, 4}));
  EXPECT_LT((EventId{1, 9}), (EventId{2, 0}));
  EXPECT_LT((EventId{2, 0}), (EventId{2, 1}));
}

TEST(SseTest, FramesAndCutoff) {
  EXPECT_EQ(SseFrame("3-1", "tx", "{\"a\":1}"),
            "id: 3-1\nevent: tx\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(SseFrame("", "cutoff", "{}"), "event: cutoff\ndata: {}\n\n");
  EXPECT_EQ(CutoffFrame("too_slow", "4-2"),
            "event: cutoff\ndata: "
            "{\"reason\":\"too_slow\",\"resume_after\":\"4-2\"}\n\n");
  EXPECT_EQ(std::string(kSseHeartbeat), ": heartbeat\n\n");
}

TEST(EventFilterTest, AllGivenFieldsMustMatch) {
  EXPECT_TRUE(EventFilter{}.Matches("kv", "put", "ab"));
  EXPECT_TRUE((EventFilter{"kv", "", ""}).Matches("kv", "put", "ab"));
  EXPECT_FALSE((EventFilter{"notary", "", ""}).Matches("kv", "put", "ab"));
  EXPECT_TRUE((EventFilter{"kv", "put", "ab"}).Matches("kv", "put", "ab"));
  EXPECT_FALSE((EventFilter{"kv", "put", "cd"}).Matches("kv", "put", "ab"));
  EXPECT_FALSE((EventFilter{"", "del", ""}).Matches("kv", "put", "ab"));
}

// Blocks whose txs alternate between two senders and methods.
class Chain {
 public:
  Chain() : suite_(*GetCryptoSuite("ed25519-sha256")) {}

  const CryptoSuite& suite() const { return *suite_; }

  // Adds block `height` with `txs` txs of `app` to the fake storage.
  void AddBlock(FakeChainQueries* chain, uint64_t height, int txs,
                const std::string& app = "kv") {
    BlockRecord b;
    b.block.header.chain_id = "test";
    b.block.header.height = height;
    b.block.header.time_ms = 1700000000000 + height;
    b.block_hash[0] = static_cast<uint8_t>(height);
    b.block_hash[1] = 0xbb;
    for (int i = 0; i < txs; ++i) {
      Transaction tx;
      tx.chain_id = "test";
      tx.nonce = height * 1000 + i;
      tx.sender = Bytes(32, i % 2 == 0 ? 0xaa : 0xcc);
      tx.app = app;
      tx.method = i % 2 == 0 ? "put" : "del";
      tx.args = {"k"};
      tx.signature = Bytes(64, 1);
      b.block.txs.push_back(EncodeTx(tx));
      TxRecord rec;
      rec.height = height;
      rec.index = static_cast<uint32_t>(i);
      rec.receipt.tx_hash = TxHash(*suite_, tx);
      rec.receipt.code = i % 3 == 2 ? ExecCode::kBadArgs : ExecCode::kOk;
      rec.receipt.log = "done";
      chain->AddTx(rec.receipt.tx_hash, rec);
    }
    chain->AddBlock(b);
  }

 private:
  const CryptoSuite* suite_;
};

// Records what the hub sends; `queued` is what the test says is waiting.
class FakeStream : public HttpStream {
 public:
  bool Send(std::string data) override {
    absl::MutexLock l(&mu_);
    if (closed_) return false;
    frames_.push_back(std::move(data));
    return true;
  }
  void Close(std::string last) override {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    frames_.push_back(std::move(last));
    closed_ = true;
  }
  bool closed() const override {
    absl::MutexLock l(&mu_);
    return closed_;
  }
  size_t queued() const override {
    absl::MutexLock l(&mu_);
    return queued_;
  }
  size_t queued_bytes() const override { return 0; }
  void set_queued(size_t n) {
    absl::MutexLock l(&mu_);
    queued_ = n;
  }
  std::vector<std::string> frames() const {
    absl::MutexLock l(&mu_);
    return frames_;
  }
  // The ids of the events received, in order.
  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    for (const std::string& f : frames()) {
      if (f.rfind("id: ", 0) == 0) out.push_back(f.substr(4, f.find('\n') - 4));
    }
    return out;
  }
  bool Has(const std::string& needle) const {
    for (const std::string& f : frames()) {
      if (f.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> frames_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
};

template <typename F>
bool Eventually(F cond) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

// Every id of heights [from, to] of blocks with `txs` txs each, after `after`.
std::vector<std::string> AllIds(uint64_t from, uint64_t to, int txs,
                                EventId after = {0, 0}) {
  std::vector<std::string> out;
  for (uint64_t h = from; h <= to; ++h) {
    for (int i = 0; i <= txs; ++i) {
      EventId id{h, static_cast<uint64_t>(i)};
      if (id > after) out.push_back(FormatEventId(id));
    }
  }
  return out;
}

class EventHubTest : public ::testing::Test {
 protected:
  EventHubOptions Options() {
    EventHubOptions o;
    o.poll = absl::Milliseconds(5);
    o.heartbeat = absl::Hours(1);
    o.max_lag = 1000;
    o.page_blocks = 2;  // several pages of history
    return o;
  }

  Chain chain_;
  FakeChainQueries storage_;
  MetricsRegistry registry_;
  ApiMetrics metrics_{&registry_};
};

TEST_F(EventHubTest, HistoryThenLiveWithoutGapOrDuplicate) {
  for (uint64_t h = 1; h <= 5; ++h) chain_.AddBlock(&storage_, h, 3);
  EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
  auto s = std::make_shared<FakeStream>();
  hub.Add(s, EventId{0, kBlockDone}, {});  // from_height=1
  ASSERT_TRUE(Eventually([&] { return s->ids().size() >= 20; }));
  // New blocks arrive while (or after) the stream catches up.
  for (uint64_t h = 6; h <= 9; ++h) chain_.AddBlock(&storage_, h, 3);
  ASSERT_TRUE(Eventually([&] { return s->ids().size() >= 36; }));
  absl::SleepFor(absl::Milliseconds(50));  // nothing more may come
  EXPECT_EQ(s->ids(), AllIds(1, 9, 3));
  // Reads are per page of blocks, never per tx.
  EXPECT_EQ(storage_.get_tx_calls(), 0);
  EXPECT_LE(storage_.blocks_with_receipts_reads(), 20);
  // The tx events carry what the filters and clients need.
  EXPECT_TRUE(s->Has("\"app\":\"kv\",\"method\":\"put\""));
  EXPECT_TRUE(s->Has("\"code_name\":\"" +
                     std::string(ExecCodeName(ExecCode::kBadArgs)) + "\""));
  EXPECT_TRUE(s->Has("event: block\ndata: {\"height\":9,"));
}

TEST_F(EventHubTest, ResumesStrictlyAfterTheLastEventId) {
  for (uint64_t h = 1; h <= 4; ++h) chain_.AddBlock(&storage_, h, 3);
  EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
  auto s = std::make_shared<FakeStream>();
  hub.Add(s, EventId{2, 1}, {});  // Last-Event-ID: 2-1
  ASSERT_TRUE(Eventually([&] { return s->ids().size() >= 10; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(s->ids(), AllIds(2, 4, 3, EventId{2, 1}));
}

TEST_F(EventHubTest, FiltersTxEventsButSendsEveryBlock) {
  for (uint64_t h = 1; h <= 3; ++h) chain_.AddBlock(&storage_, h, 4);
  EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
  auto s = std::make_shared<FakeStream>();
  EventFilter f;
  f.method = "del";
  f.sender = std::string(64, 'c');  // 32 bytes of 0xcc
  hub.Add(s, EventId{0, kBlockDone}, f);
  // Per block: the block event and txs 1 and 3 (ids 2 and 4).
  ASSERT_TRUE(Eventually([&] { return s->ids().size() >= 9; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(s->ids(),
            (std::vector<std::string>{"1-0", "1-2", "1-4", "2-0", "2-2", "2-4",
                                      "3-0", "3-2", "3-4"}));
}

TEST_F(EventHubTest, InvoiceLogsAreWithheldFromRedactedStreamsOnly) {
  chain_.AddBlock(&storage_, 1, 2, "invoice");
  chain_.AddBlock(&storage_, 2, 1, "kv");
  EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
  auto redacted = std::make_shared<FakeStream>();
  auto full = std::make_shared<FakeStream>();
  hub.Add(redacted, EventId{0, kBlockDone}, {}, /*redact_invoices=*/true);
  hub.Add(full, EventId{0, kBlockDone}, {});
  ASSERT_TRUE(Eventually(
      [&] { return redacted->ids().size() >= 5 && full->ids().size() >= 5; }));
  EXPECT_EQ(redacted->ids(), full->ids());
  // The invoice txs' logs are withheld, the kv tx's is not.
  EXPECT_TRUE(redacted->Has("\"log\":\"\",\"log_redacted\":true"));
  EXPECT_TRUE(redacted->Has("\"app\":\"kv\""));
  size_t done_logs = 0;
  for (const std::string& f : redacted->frames()) {
    if (f.find("\"log\":\"done\"") != std::string::npos) ++done_logs;
  }
  EXPECT_EQ(done_logs, 1u);  // block 2's kv tx
  EXPECT_FALSE(full->Has("log_redacted"));
  EXPECT_NE(
      registry_.Serialize().find(
          "consortia_api_invoice_reads_refused_total{answer=\"redacted\"} 2"),
      std::string::npos)
      << registry_.Serialize();
}

TEST_F(EventHubTest, LiveStreamStartsAtTheNextBlock) {
  for (uint64_t h = 1; h <= 3; ++h) chain_.AddBlock(&storage_, h, 1);
  EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
  // Let the hub learn the tip first.
  ASSERT_TRUE(Eventually([&] { return storage_.chain_tip_calls() >= 2; }));
  auto s = std::make_shared<FakeStream>();
  hub.Add(s, std::nullopt, {});
  chain_.AddBlock(&storage_, 4, 1);
  ASSERT_TRUE(Eventually([&] { return s->ids().size() >= 2; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(s->ids(), (std::vector<std::string>{"4-0", "4-1"}));
}

TEST_F(EventHubTest, SlowLiveStreamIsCutOffOthersGoOn) {
  EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
  ASSERT_TRUE(Eventually([&] { return storage_.chain_tip_calls() >= 2; }));
  auto slow = std::make_shared<FakeStream>();
  auto fast = std::make_shared<FakeStream>();
  hub.Add(slow, std::nullopt, {});
  hub.Add(fast, std::nullopt, {});
  chain_.AddBlock(&storage_, 1, 2);
  ASSERT_TRUE(Eventually([&] { return slow->ids().size() >= 3; }));
  slow->set_queued(999);  // its client reads nothing: events pile up
  chain_.AddBlock(&storage_, 2, 2);
  ASSERT_TRUE(Eventually([&] { return slow->closed(); }));
  EXPECT_TRUE(
      slow->Has("event: cutoff\ndata: "
                "{\"reason\":\"too_slow\",\"resume_after\":\"1-2\"}"));
  ASSERT_TRUE(Eventually([&] { return fast->ids().size() >= 6; }));
  EXPECT_EQ(fast->ids(), AllIds(1, 2, 2));
  EXPECT_FALSE(fast->closed());
}

TEST_F(EventHubTest, StopCutsEveryStreamOffWithShutdown) {
  chain_.AddBlock(&storage_, 1, 1);
  auto s = std::make_shared<FakeStream>();
  {
    EventHub hub(&storage_, &chain_.suite(), Options(), &metrics_);
    hub.Add(s, EventId{0, kBlockDone}, {});
    ASSERT_TRUE(Eventually([&] { return s->ids().size() >= 2; }));
    hub.Stop();
    EXPECT_TRUE(hub.stopping());
    auto late = std::make_shared<FakeStream>();
    hub.Add(late, std::nullopt, {});
    EXPECT_TRUE(late->closed());
  }
  EXPECT_TRUE(s->closed());
  EXPECT_TRUE(s->Has("\"reason\":\"shutdown\",\"resume_after\":\"1-1\""));
}

}  // namespace
}  // namespace consortia::api
