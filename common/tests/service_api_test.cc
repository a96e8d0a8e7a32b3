#include "consortia/service_api.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "bus_test_util.h"
#include "consortia/codec.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/state_proof.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "gtest/gtest.h"
#include "service_messages.h"
#include "test_chain.h"
#include "zmq.hpp"

namespace consortia {
namespace {

namespace sai = service_api_internal;
using ::consortia::testing::Chain;
using ::consortia::testing::CountingMetrics;
using ::consortia::testing::ExpectRejectsTruncationAndTrailing;
using ::consortia::testing::HashOf;
using ::consortia::testing::kChain;
using ::consortia::testing::UniqueInproc;

// ------------------------------------------------------------ codecs

TEST(ServiceApiCodecTest, AdmissionNames) {
  EXPECT_EQ(AdmissionName(Admission::kAccepted), "accepted");
  EXPECT_EQ(AdmissionName(Admission::kBadSignature), "bad_signature");
  EXPECT_EQ(AdmissionName(Admission::kSenderLimit), "sender_limit");
  EXPECT_EQ(AdmissionName(static_cast<Admission>(77)), "unknown");
}

TEST(ServiceApiCodecTest, SubmitRoundTrip) {
  std::vector<Bytes> txs = {ToBytes("tx-a"), Bytes(), ToBytes("tx-c")};
  Bytes wire = sai::EncodeSubmitRequest(txs);
  auto d = sai::DecodeSubmitRequest(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, txs);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeSubmitRequest);

  std::vector<SubmitResult> results = {
      {HashOf("a"), Admission::kAccepted, ""},
      {HashOf("b"), Admission::kPoolFull, "pool is full, retry later"},
      {Hash32{}, Admission::kMalformed, "does not decode"}};
  wire = sai::EncodeSubmitResponse(results);
  auto r = sai::DecodeSubmitResponse(wire);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*r)[i].tx_hash, results[i].tx_hash);
    EXPECT_EQ((*r)[i].code, results[i].code);
    EXPECT_EQ((*r)[i].detail, results[i].detail);
  }
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeSubmitResponse);

  // An admission code this build does not know is malformed.
  Bytes bad =
      sai::EncodeSubmitResponse({{HashOf("a"), Admission::kAccepted, ""}});
  bad[1 + 32] = 200;  // count, hash, then the code
  EXPECT_EQ(sai::DecodeSubmitResponse(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ServiceApiCodecTest, ReapRoundTrip) {
  ReapRequest req{500, 1 << 20, 41};
  Bytes wire = sai::EncodeReapRequest(req);
  auto d = sai::DecodeReapRequest(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->max_txs, 500u);
  EXPECT_EQ(d->max_bytes, 1u << 20);
  EXPECT_EQ(d->committed_height, 41u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeReapRequest);

  std::vector<Bytes> txs = {ToBytes("one"), ToBytes("two")};
  wire = sai::EncodeReapResponse(txs);
  auto r = sai::DecodeReapResponse(wire);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, txs);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeReapResponse);

  // A reaped tx over the encoding limit is refused.
  Bytes huge = sai::EncodeReapResponse({Bytes(kMaxTxBytes + 1, 7)});
  EXPECT_EQ(sai::DecodeReapResponse(huge).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ServiceApiCodecTest, CheckProposalRoundTrip) {
  std::vector<Bytes> txs = {ToBytes("tx-a"), Bytes(), ToBytes("tx-c")};
  Bytes wire = sai::EncodeCheckProposalRequest(txs, 77);
  auto d = sai::DecodeCheckProposalRequest(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->height, 77u);
  EXPECT_EQ(d->raw_txs, txs);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCheckProposalRequest);
  // A proposed tx over the encoding limit is refused.
  EXPECT_EQ(sai::DecodeCheckProposalRequest(
                sai::EncodeCheckProposalRequest({Bytes(kMaxTxBytes + 1, 7)}, 1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);

  std::vector<ProposalTxCheck> checks = {
      {HashOf("a"), Admission::kAccepted},
      {HashOf("b"), Admission::kBadSignature},
      {Hash32{}, Admission::kMalformed}};
  wire = sai::EncodeCheckProposalResponse(checks);
  auto r = sai::DecodeCheckProposalResponse(wire);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, checks);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCheckProposalResponse);

  // An admission code this build does not know is malformed.
  Bytes bad =
      sai::EncodeCheckProposalResponse({{HashOf("a"), Admission::kAccepted}});
  bad[1 + 32] = 200;  // count, hash, then the code
  EXPECT_EQ(sai::DecodeCheckProposalResponse(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ServiceApiCodecTest, ForgedCountsAreRejectedWithoutAllocating) {
  Encoder e;
  e.PutVarint(uint64_t{1} << 40);
  EXPECT_FALSE(sai::DecodeSubmitRequest(e.data()).ok());
  EXPECT_FALSE(sai::DecodeReapResponse(e.data()).ok());
  EXPECT_FALSE(sai::DecodeSubmitResponse(e.data()).ok());
  EXPECT_FALSE(sai::DecodeCommittedPage(e.data()).ok());
  EXPECT_FALSE(sai::DecodeCheckProposalResponse(e.data()).ok());

  // More commit events than one call may carry.
  CommittedPage many;
  many.events.resize(sai::kMaxCommittedPerCall + 1);
  for (size_t i = 0; i < many.events.size(); ++i) many.events[i].height = i + 1;
  many.next_height = many.events.size() + 1;
  EXPECT_EQ(
      sai::DecodeCommittedPage(sai::EncodeCommittedPage(many)).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(ServiceApiCodecTest, StorageMessagesRoundTrip) {
  Chain chain;
  ChainState cs{7, HashOf("b7"), 123456, HashOf("state"), HashOf("receipts")};
  Bytes wire = sai::EncodeChainState(cs);
  auto d = sai::DecodeChainState(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->height, 7u);
  EXPECT_EQ(d->last_block_hash, cs.last_block_hash);
  EXPECT_EQ(d->last_time_ms, 123456u);
  EXPECT_EQ(d->state_root, cs.state_root);
  EXPECT_EQ(d->receipts_root, cs.receipts_root);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeChainState);

  CommitCertificate cert = chain.Certify(chain.block1().header, {0, 1, 2});
  const Bytes block1 = EncodeBlock(chain.block1());
  wire = sai::EncodeCommitBlockRequest(block1, cert);
  auto cb = sai::DecodeCommitBlockRequest(wire);
  ASSERT_TRUE(cb.ok()) << cb.status();
  // The block's bytes pass through as they are, a view of the payload.
  EXPECT_EQ(Bytes(cb->block.begin(), cb->block.end()), block1);
  EXPECT_TRUE(cb->block.data() >= wire.data() &&
              cb->block.data() + cb->block.size() <= wire.data() + wire.size());
  EXPECT_EQ(cb->cert, cert);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCommitBlockRequest);

  CommitResult res{HashOf("s"), HashOf("r")};
  wire = sai::EncodeCommitResult(res);
  auto dr = sai::DecodeCommitResult(wire);
  ASSERT_TRUE(dr.ok()) << dr.status();
  EXPECT_EQ(dr->state_root, res.state_root);
  EXPECT_EQ(dr->receipts_root, res.receipts_root);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCommitResult);
}

TEST(ServiceApiCodecTest, QueryMessagesRoundTrip) {
  for (std::optional<uint64_t> h :
       {std::optional<uint64_t>(), std::optional<uint64_t>(0),
        std::optional<uint64_t>(99)}) {
    Bytes wire = sai::EncodeGetBlockRequest(h);
    auto d = sai::DecodeGetBlockRequest(wire);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(*d, h);
    ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetBlockRequest);
  }

  Bytes wire = sai::EncodeGetTxRequest(HashOf("tx"));
  auto th = sai::DecodeGetTxRequest(wire);
  ASSERT_TRUE(th.ok());
  EXPECT_EQ(*th, HashOf("tx"));
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetTxRequest);

  wire = sai::EncodeGetStateRequest({"kv", "invoice/42"});
  auto gs = sai::DecodeGetStateRequest(wire);
  ASSERT_TRUE(gs.ok()) << gs.status();
  EXPECT_EQ(gs->app, "kv");
  EXPECT_EQ(gs->key, "invoice/42");
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetStateRequest);
  EXPECT_FALSE(
      sai::DecodeGetStateRequest(
          sai::EncodeGetStateRequest({std::string(kMaxAppBytes + 1, 'a'), "k"}))
          .ok());

  StateRecord sr{true, ToBytes("value"), ToBytes("owner-key"), 12};
  wire = sai::EncodeStateRecord(sr);
  auto dsr = sai::DecodeStateRecord(wire);
  ASSERT_TRUE(dsr.ok()) << dsr.status();
  EXPECT_TRUE(dsr->found);
  EXPECT_EQ(dsr->value, sr.value);
  EXPECT_EQ(dsr->owner, sr.owner);
  EXPECT_EQ(dsr->height, 12u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeStateRecord);

  wire = sai::EncodeGetCommittedRequest({5, 9});
  auto gc = sai::DecodeGetCommittedRequest(wire);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->from, 5u);
  EXPECT_EQ(gc->to, 9u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetCommittedRequest);

  // A page that stopped early (asked 5..9, answered 5..6): next_height
  // travels with it.
  CommittedPage page;
  page.events = {{5, HashOf("b5"), {{HashOf("t1"), 10}, {HashOf("t2"), 20}}},
                 {6, HashOf("b6"), {}}};
  page.next_height = 7;
  wire = sai::EncodeCommittedPage(page);
  auto de = sai::DecodeCommittedPage(wire);
  ASSERT_TRUE(de.ok()) << de.status();
  EXPECT_EQ(*de, page);
  EXPECT_EQ(de->next_height, 7u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCommittedPage);

  // An empty page (nothing from `from` yet) keeps its next_height.
  CommittedPage empty;
  empty.next_height = 12;
  auto dempty = sai::DecodeCommittedPage(sai::EncodeCommittedPage(empty));
  ASSERT_TRUE(dempty.ok()) << dempty.status();
  EXPECT_EQ(*dempty, empty);

  // A page whose next_height is not after its last event, or whose events
  // go back in height, is malformed.
  CommittedPage bad = page;
  bad.next_height = 6;
  EXPECT_EQ(
      sai::DecodeCommittedPage(sai::EncodeCommittedPage(bad)).status().code(),
      absl::StatusCode::kInvalidArgument);
  bad = page;
  std::swap(bad.events[0], bad.events[1]);
  EXPECT_EQ(
      sai::DecodeCommittedPage(sai::EncodeCommittedPage(bad)).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(ServiceApiCodecTest, CommittedEventRoundTrip) {
  CommittedEvent ev{3, HashOf("b3"), {{HashOf("a"), 1}, {HashOf("b"), 2}}};
  Bytes wire = EncodeCommittedEvent(ev);
  auto d = DecodeCommittedEvent(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, ev);
  ExpectRejectsTruncationAndTrailing(wire, DecodeCommittedEvent);
}

TEST(ServiceApiCodecTest, PaginatedQueryMessagesRoundTrip) {
  Bytes wire = sai::EncodeGetStateAtRequest({"kv", "invoice/7", 41});
  auto sa = sai::DecodeGetStateAtRequest(wire);
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->app, "kv");
  EXPECT_EQ(sa->key, "invoice/7");
  EXPECT_EQ(sa->height, 41u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetStateAtRequest);

  wire = sai::EncodeListBlocksRequest({17, 100});
  auto lb = sai::DecodeListBlocksRequest(wire);
  ASSERT_TRUE(lb.ok());
  EXPECT_EQ(lb->from, 17u);
  EXPECT_EQ(lb->limit, 100u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeListBlocksRequest);

  Chain chain;
  std::vector<BlockSummary> blocks = {
      {chain.block1().header, BlockHash(chain.suite(), chain.block1().header),
       3},
      {chain.h2(), BlockHash(chain.suite(), chain.h2()), 0}};
  wire = sai::EncodeBlockSummaries(blocks);
  auto bs = sai::DecodeBlockSummaries(wire);
  ASSERT_TRUE(bs.ok()) << bs.status();
  EXPECT_EQ(*bs, blocks);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeBlockSummaries);
  std::vector<BlockSummary> too_many(kMaxListBlocks + 1, blocks[1]);
  EXPECT_FALSE(
      sai::DecodeBlockSummaries(sai::EncodeBlockSummaries(too_many)).ok());

  wire = sai::EncodeGetBlocksRequest({9, 64, 16 << 20});
  auto gb = sai::DecodeGetBlocksRequest(wire);
  ASSERT_TRUE(gb.ok()) << gb.status();
  EXPECT_EQ(gb->from, 9u);
  EXPECT_EQ(gb->limit, 64u);
  EXPECT_EQ(gb->max_bytes, uint64_t{16} << 20);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetBlocksRequest);

  BlockRecord with_cert;
  with_cert.block = chain.block1();
  with_cert.block_hash = BlockHash(chain.suite(), chain.block1().header);
  with_cert.cert = chain.Certify(chain.block1().header, {0, 1, 2});
  BlockRecord without_cert = with_cert;
  without_cert.cert.reset();
  wire = sai::EncodeBlockRecords({with_cert, without_cert});
  auto br = sai::DecodeBlockRecords(wire);
  ASSERT_TRUE(br.ok()) << br.status();
  ASSERT_EQ(br->size(), 2u);
  EXPECT_EQ((*br)[0].block, with_cert.block);
  EXPECT_EQ((*br)[0].cert, with_cert.cert);
  EXPECT_FALSE((*br)[1].cert.has_value());
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeBlockRecords);
  std::vector<BlockRecord> too_many_records(kMaxGetBlocks + 1, without_cert);
  EXPECT_FALSE(
      sai::DecodeBlockRecords(sai::EncodeBlockRecords(too_many_records)).ok());

  wire = sai::EncodeScanStateRequest({"kv", "inv/", "inv/0042", 50});
  auto ss = sai::DecodeScanStateRequest(wire);
  ASSERT_TRUE(ss.ok()) << ss.status();
  EXPECT_EQ(ss->app, "kv");
  EXPECT_EQ(ss->prefix, "inv/");
  EXPECT_EQ(ss->cursor, "inv/0042");
  EXPECT_EQ(ss->limit, 50u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeScanStateRequest);

  StatePage page;
  page.height = 9;
  page.items = {{"inv/1", ToBytes("a"), ToBytes("o1")},
                {std::string("inv/\0\xff", 6), Bytes{0, 1}, ToBytes("o2")}};
  page.next_cursor = std::string("inv/\0\xff", 6);
  wire = sai::EncodeStatePage(page);
  auto sp = sai::DecodeStatePage(wire);
  ASSERT_TRUE(sp.ok()) << sp.status();
  EXPECT_EQ(*sp, page);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeStatePage);
  page.next_cursor.reset();
  sp = sai::DecodeStatePage(sai::EncodeStatePage(page));
  ASSERT_TRUE(sp.ok());
  EXPECT_FALSE(sp->next_cursor.has_value());
  StatePage big;
  big.items.assign(kMaxScanState + 1, StateItem{"k", {}, {}});
  EXPECT_FALSE(sai::DecodeStatePage(sai::EncodeStatePage(big)).ok());
}

TEST(CommittedHeightsCodecTest, RoundTripsAndRefusesOverLimits) {
  std::vector<Hash32> hashes(3);
  hashes[1][0] = 7;
  auto back = sai::DecodeHashList(sai::EncodeHashList(hashes));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, hashes);
  const std::vector<uint64_t> heights = {0, 5, uint64_t{1} << 40};
  auto hb = sai::DecodeHeights(sai::EncodeHeights(heights));
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(*hb, heights);
  // Truncated, trailing bytes, over the limit.
  Bytes enc = sai::EncodeHashList(hashes);
  enc.pop_back();
  EXPECT_FALSE(sai::DecodeHashList(enc).ok());
  enc = sai::EncodeHeights(heights);
  enc.push_back(0);
  EXPECT_FALSE(sai::DecodeHeights(enc).ok());
  std::vector<uint64_t> many(kMaxCommittedHeightsQuery + 1, 0);
  EXPECT_FALSE(sai::DecodeHeights(sai::EncodeHeights(many)).ok());
}

// ------------------------------------------------------------ remotes

class FakeMempool : public MempoolApi {
 public:
  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override {
    absl::MutexLock l(&mu_);
    std::vector<SubmitResult> out;
    for (const Bytes& tx : raw_txs) {
      if (tx.empty()) {
        out.push_back({Hash32{}, Admission::kMalformed, "empty tx"});
        continue;
      }
      pending_.push_back(tx);
      out.push_back({Ed25519Sha256().Hash(tx), Admission::kAccepted, ""});
    }
    return out;
  }
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override {
    if (req.committed_height > 1000) {
      return absl::UnavailableError("commit events not caught up");
    }
    absl::MutexLock l(&mu_);
    std::vector<Bytes> out;
    for (const Bytes& tx : pending_) {
      if (out.size() >= req.max_txs) break;
      out.push_back(tx);
    }
    return out;
  }
  // Valid unless empty; the height must be 7.
  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height) override {
    if (height != 7) return absl::FailedPreconditionError("wrong height");
    std::vector<ProposalTxCheck> out;
    for (const Bytes& tx : raw_txs) {
      if (tx.empty()) {
        out.push_back({Hash32{}, Admission::kMalformed});
      } else {
        out.push_back({Ed25519Sha256().Hash(tx), Admission::kAccepted});
      }
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<Bytes> pending_ ABSL_GUARDED_BY(mu_);
};

// A mempool that implements only the two original calls.
class MinimalMempool : public MempoolApi {
 public:
  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>&) override {
    return std::vector<SubmitResult>{};
  }
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest&) override {
    return std::vector<Bytes>{};
  }
};

class FakeStorage : public LedgerApi, public QueryApi {
 public:
  explicit FakeStorage(const Chain& chain) : chain_(chain) {}

  absl::StatusOr<ChainState> GetChainState() override {
    absl::MutexLock l(&mu_);
    return ChainState{height_, HashOf("last"), 42, HashOf("state"),
                      HashOf("receipts")};
  }
  absl::StatusOr<CommitResult> CommitBlock(
      ByteView encoded, const CommitCertificate& cert) override {
    absl::StatusOr<Block> block = DecodeBlock(encoded);
    if (!block.ok()) return block.status();
    absl::MutexLock l(&mu_);
    if (block->header.height != height_ + 1) {
      return absl::FailedPreconditionError("block does not extend the chain");
    }
    if (cert.height != block->header.height) {
      return absl::InvalidArgumentError("certificate height");
    }
    height_ = block->header.height;
    return CommitResult{HashOf("state"), HashOf("receipts")};
  }
  absl::StatusOr<BlockRecord> GetBlock(
      std::optional<uint64_t> height) override {
    if (height.has_value() && *height != 1) {
      return absl::NotFoundError(absl::StrCat("no block at height ", *height));
    }
    BlockRecord r;
    r.block = chain_.block1();
    r.block_hash = BlockHash(chain_.suite(), r.block.header);
    r.cert = chain_.Certify(r.block.header, {0, 1, 2});
    return r;
  }
  absl::StatusOr<TxRecord> GetTx(const Hash32& hash) override {
    for (uint32_t i = 0; i < 3; ++i) {
      if (chain_.tx_hash(i) == hash) return chain_.Record(i);
    }
    return absl::NotFoundError("no such tx");
  }
  absl::StatusOr<StateRecord> GetState(const std::string& app,
                                       const std::string& key) override {
    if (app == "kv" && key == "k") {
      return StateRecord{true, ToBytes("v"), ToBytes("owner"), 1};
    }
    return StateRecord{};
  }
  // The tip of this fake chain: a page stops there.
  static constexpr uint64_t kTip = 5000;
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override {
    CommittedPage page;
    page.next_height = from;
    for (uint64_t h = from; h <= to && h <= kTip; ++h) {
      page.events.push_back(
          {h, HashOf(absl::StrCat("b", h)), {{HashOf("t"), h + 10}}});
      page.next_height = h + 1;
    }
    return page;
  }
  absl::StatusOr<StateRecord> GetStateAt(const std::string& app,
                                         const std::string& key,
                                         uint64_t height) override {
    if (height != 1) return absl::NotFoundError("only height 1 is kept");
    StateRecord r;
    r.found = app == "kv" && key == "k";
    if (r.found) {
      r.value = ToBytes("v");
      r.owner = ToBytes("owner");
    }
    r.height = 1;
    r.state_root = HashOf("root");
    r.proof.siblings = {HashOf("s0"), Hash32{}, HashOf("s2")};
    r.proof.leaf = StateLeaf{HashOf("p"), HashOf("vh")};
    r.next_header = chain_.h2();
    r.next_cert = chain_.Certify(chain_.h2(), {1, 2, 3});
    return r;
  }
  absl::StatusOr<BlockRecord> GetBlockByHash(const Hash32& hash) override {
    if (hash != BlockHash(chain_.suite(), chain_.block1().header)) {
      return absl::NotFoundError("no such block");
    }
    return GetBlock(1);
  }
  // Misbehaves on purpose for limits over the bound (answers that many).
  absl::StatusOr<std::vector<BlockSummary>> ListBlocks(
      uint64_t from, uint32_t limit) override {
    std::vector<BlockSummary> out;
    for (uint32_t i = 0; i < limit; ++i) {
      BlockSummary b;
      b.header = chain_.h2();
      b.header.height = from + i;
      b.block_hash = BlockHash(chain_.suite(), b.header);
      b.tx_count = i;
      out.push_back(b);
    }
    return out;
  }
  // Block 1 `limit` times (misbehaving, as ListBlocks, over the bound).
  absl::StatusOr<std::vector<BlockRecord>> GetBlocks(uint64_t, uint32_t limit,
                                                     uint64_t) override {
    std::vector<BlockRecord> out;
    for (uint32_t i = 0; i < limit; ++i) {
      absl::StatusOr<BlockRecord> b = GetBlock(1);
      if (!b.ok()) return b.status();
      out.push_back(*std::move(b));
    }
    return out;
  }
  // Keys a0..a9 and b0; pages as storage does.
  absl::StatusOr<StatePage> ScanState(const std::string& app,
                                      const std::string& prefix,
                                      const std::string& cursor,
                                      uint32_t limit) override {
    if (app != "kv") return absl::InvalidArgumentError("no such app");
    std::vector<std::string> all;
    for (int i = 0; i < 10; ++i) all.push_back(absl::StrCat("a", i));
    all.push_back("b0");
    StatePage page;
    page.height = 7;
    for (const std::string& k : all) {
      if (k.rfind(prefix, 0) != 0 || (!cursor.empty() && k <= cursor)) {
        continue;
      }
      if (page.items.size() == limit) {
        page.next_cursor = page.items.back().key;
        break;
      }
      page.items.push_back({k, ToBytes("v" + k), ToBytes("owner")});
    }
    return page;
  }
  absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records) override {
    absl::MutexLock l(&mu_);
    for (EvidenceRecord r : records) {
      if (r.kind.empty()) return absl::InvalidArgumentError("no kind");
      r.seq = evidence_.size() + 1;
      evidence_.push_back(r);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<EvidenceRecord>> ListEvidence(
      uint64_t from_seq, uint32_t limit) override {
    absl::MutexLock l(&mu_);
    std::vector<EvidenceRecord> out;
    for (const EvidenceRecord& r : evidence_) {
      if (r.seq >= from_seq && out.size() < limit) out.push_back(r);
    }
    return out;
  }

 private:
  const Chain& chain_;
  absl::Mutex mu_;
  uint64_t height_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<EvidenceRecord> evidence_ ABSL_GUARDED_BY(mu_);
};

class RemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string mempool_ep = UniqueInproc("mempool");
    std::string storage_ep = UniqueInproc("storage");
    auto ms = StartBusServer(ctx_, mempool_ep, "mempool",
                             ServeMempool(&mempool_, pool_.AsExecutor()),
                             &server_metrics_);
    ASSERT_TRUE(ms.ok()) << ms.status();
    mempool_server_ = *std::move(ms);
    auto ss =
        StartBusServer(ctx_, storage_ep, "storage",
                       ServeStorage(&storage_, &storage_, pool_.AsExecutor()),
                       &server_metrics_);
    ASSERT_TRUE(ss.ok()) << ss.status();
    storage_server_ = *std::move(ss);
    auto mc = ConnectBusClient(ctx_, mempool_ep, "test");
    ASSERT_TRUE(mc.ok());
    mempool_client_ = *std::move(mc);
    auto sc = ConnectBusClient(ctx_, storage_ep, "test");
    ASSERT_TRUE(sc.ok());
    storage_client_ = *std::move(sc);
  }

  static constexpr absl::Duration kTimeout = absl::Seconds(30);

  // Destroyed in reverse order: clients, servers, pool, fakes, context.
  zmq::context_t ctx_;
  Chain chain_;
  FakeMempool mempool_;
  FakeStorage storage_{chain_};
  CountingMetrics server_metrics_;
  ThreadPool pool_{2};
  std::unique_ptr<BusServer> mempool_server_;
  std::unique_ptr<BusServer> storage_server_;
  std::unique_ptr<BusClient> mempool_client_;
  std::unique_ptr<BusClient> storage_client_;
};

TEST_F(RemoteTest, MempoolSubmitAndReap) {
  auto mempool = MakeRemoteMempool(mempool_client_.get(), kTimeout);
  std::vector<Bytes> txs = {ToBytes("t1"), Bytes(), ToBytes("t2")};
  auto results = mempool->Submit(txs);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 3u);
  EXPECT_EQ((*results)[0].code, Admission::kAccepted);
  EXPECT_EQ((*results)[0].tx_hash, Ed25519Sha256().Hash(txs[0]));
  EXPECT_EQ((*results)[1].code, Admission::kMalformed);
  EXPECT_EQ((*results)[1].detail, "empty tx");
  EXPECT_EQ((*results)[2].code, Admission::kAccepted);

  auto reaped = mempool->Reap({1, 1 << 20, 0});
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, std::vector<Bytes>{ToBytes("t1")});

  // The implementation's error comes back unchanged.
  auto behind = mempool->Reap({10, 1 << 20, 5000});
  EXPECT_EQ(behind.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(behind.status().message(), "commit events not caught up");
}

TEST_F(RemoteTest, MempoolCheckProposal) {
  auto mempool = MakeRemoteMempool(mempool_client_.get(), kTimeout);
  std::vector<Bytes> txs = {ToBytes("t1"), Bytes(), ToBytes("t2")};
  auto checks = mempool->CheckProposal(txs, 7);
  ASSERT_TRUE(checks.ok()) << checks.status();
  EXPECT_EQ(*checks,
            (std::vector<ProposalTxCheck>{
                {Ed25519Sha256().Hash(txs[0]), Admission::kAccepted},
                {Hash32{}, Admission::kMalformed},
                {Ed25519Sha256().Hash(txs[2]), Admission::kAccepted}}));
  // The implementation's error comes back unchanged.
  auto wrong = mempool->CheckProposal(txs, 8);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrong.status().message(), "wrong height");
}

TEST_F(RemoteTest, CheckProposalDefaultsToUnimplemented) {
  MinimalMempool minimal;
  EXPECT_EQ(minimal.CheckProposal({ToBytes("t")}, 1).status().code(),
            absl::StatusCode::kUnimplemented);
  // And a server in front of such a mempool says so over the bus.
  std::string ep = UniqueInproc("minimal");
  auto server = StartBusServer(ctx_, ep, "mempool",
                               ServeMempool(&minimal, pool_.AsExecutor()));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectBusClient(ctx_, ep, "test");
  ASSERT_TRUE(client.ok()) << client.status();
  auto remote = MakeRemoteMempool(client->get(), kTimeout);
  EXPECT_EQ(remote->CheckProposal({ToBytes("t")}, 1).status().code(),
            absl::StatusCode::kUnimplemented);
  client->reset();
  server->reset();
}

TEST_F(RemoteTest, LedgerChainStateAndCommit) {
  auto ledger = MakeRemoteLedger(storage_client_.get(), kTimeout);
  auto cs = ledger->GetChainState();
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->height, 0u);
  EXPECT_EQ(cs->last_time_ms, 42u);

  CommitCertificate cert = chain_.Certify(chain_.block1().header, {0, 1, 2});
  auto res = ledger->CommitBlock(EncodeBlock(chain_.block1()), cert);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->state_root, HashOf("state"));
  cs = ledger->GetChainState();
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->height, 1u);

  auto again = ledger->CommitBlock(EncodeBlock(chain_.block1()), cert);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RemoteTest, Queries) {
  auto query = MakeRemoteQuery(storage_client_.get(), kTimeout);
  auto latest = query->GetBlock(std::nullopt);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->block, chain_.block1());
  ASSERT_TRUE(latest->cert.has_value());
  EXPECT_EQ(query->GetBlock(5).status().code(), absl::StatusCode::kNotFound);

  auto tx = query->GetTx(chain_.tx_hash(2));
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_EQ(tx->index, 2u);
  // What travelled over the bus still verifies offline.
  EXPECT_TRUE(
      VerifyTxRecord(chain_.suite(), chain_.genesis(), *tx, chain_.tx_hash(2))
          .ok());
  EXPECT_EQ(query->GetTx(HashOf("nope")).status().code(),
            absl::StatusCode::kNotFound);

  auto state = query->GetState("kv", "k");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->found);
  EXPECT_EQ(state->value, ToBytes("v"));
  auto missing = query->GetState("kv", "other");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->found);

  auto page = query->GetCommitted(3, 5);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 3u);
  EXPECT_EQ(page->events[0].height, 3u);
  EXPECT_EQ(page->events[2].txs[0].valid_until, 15u);
  EXPECT_EQ(page->next_height, 6u);
  // A page that stops early says where over the bus too.
  page = query->GetCommitted(4999, 5010);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->next_height, 5001u);
  page = query->GetCommitted(6000, 6010);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->events.empty());
  EXPECT_EQ(page->next_height, 6000u);

  // The storage server refuses to send more events than a reply may carry.
  EXPECT_EQ(query->GetCommitted(1, 2000).status().code(),
            absl::StatusCode::kInternal);
}

TEST_F(RemoteTest, PaginatedAndProvenQueries) {
  auto query = MakeRemoteQuery(storage_client_.get(), kTimeout);
  auto at = query->GetStateAt("kv", "k", 1);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_TRUE(at->found);
  EXPECT_EQ(at->state_root, HashOf("root"));
  EXPECT_EQ(at->proof.siblings.size(), 3u);
  EXPECT_EQ(at->proof.siblings[2], HashOf("s2"));
  ASSERT_TRUE(at->next_header.has_value());
  EXPECT_EQ(*at->next_header, chain_.h2());
  EXPECT_EQ(query->GetStateAt("kv", "k", 5).status().code(),
            absl::StatusCode::kNotFound);

  auto by_hash =
      query->GetBlockByHash(BlockHash(chain_.suite(), chain_.block1().header));
  ASSERT_TRUE(by_hash.ok()) << by_hash.status();
  EXPECT_EQ(by_hash->block, chain_.block1());
  EXPECT_EQ(query->GetBlockByHash(HashOf("x")).status().code(),
            absl::StatusCode::kNotFound);

  auto list = query->ListBlocks(4, 3);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[2].header.height, 6u);
  EXPECT_EQ((*list)[2].tx_count, 2u);
  // The server refuses to send more blocks than a reply may carry.
  EXPECT_EQ(query->ListBlocks(1, kMaxListBlocks + 1).status().code(),
            absl::StatusCode::kInternal);

  auto whole = query->GetBlocks(1, 3, 1 << 20);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_EQ(whole->size(), 3u);
  EXPECT_EQ((*whole)[2].block, chain_.block1());
  ASSERT_TRUE((*whole)[2].cert.has_value());
  EXPECT_EQ(query->GetBlocks(1, kMaxGetBlocks + 1, 1).status().code(),
            absl::StatusCode::kInternal);

  std::vector<std::string> keys;
  std::string cursor;
  for (int i = 0; i < 10; ++i) {
    auto page = query->ScanState("kv", "a", cursor, 4);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->height, 7u);
    for (const StateItem& item : page->items) keys.push_back(item.key);
    if (!page->next_cursor.has_value()) break;
    cursor = *page->next_cursor;
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "a5",
                                            "a6", "a7", "a8", "a9"}));
  EXPECT_EQ(query->ScanState("nope", "", "", 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RemoteTest, EvidenceIsRecordedAndListedOverTheBus) {
  auto ledger = MakeRemoteLedger(storage_client_.get(), kTimeout);
  auto query = MakeRemoteQuery(storage_client_.get(), kTimeout);
  EvidenceRecord a{0, "duplicate_vote", 7, 1, 2, ToBytes("proof-a")};
  EvidenceRecord b{0, "duplicate_proposal", 8, 0, 3, ToBytes("proof-b")};
  ASSERT_TRUE(ledger->RecordEvidence({a, b}).ok());
  auto listed = query->ListEvidence(2, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  b.seq = 2;
  EXPECT_EQ((*listed)[0], b);
  // The implementation's refusal comes back as it was.
  EvidenceRecord bad = a;
  bad.kind.clear();
  EXPECT_EQ(ledger->RecordEvidence({bad}).code(),
            absl::StatusCode::kInvalidArgument);
  // Over the bound: refused by the client before anything is sent.
  EXPECT_EQ(
      ledger
          ->RecordEvidence(std::vector<EvidenceRecord>(kMaxListEvidence + 1, a))
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(EvidenceCodecTest, RoundTripsAndRefusesDamage) {
  EvidenceRecord r{5, "duplicate_vote", 1234, 3, 1, ToBytes("two votes")};
  const Bytes wire = EncodeEvidenceRecord(r);
  auto back = DecodeEvidenceRecord(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    EXPECT_FALSE(DecodeEvidenceRecord(ByteView(wire.data(), cut)).ok()) << cut;
  }
  Bytes trailing = wire;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeEvidenceRecord(trailing).ok());
}

// A QueryApi that implements only the original four queries.
class OldQuery : public QueryApi {
 public:
  absl::StatusOr<BlockRecord> GetBlock(std::optional<uint64_t>) override {
    return absl::NotFoundError("none");
  }
  absl::StatusOr<TxRecord> GetTx(const Hash32&) override {
    return absl::NotFoundError("none");
  }
  absl::StatusOr<StateRecord> GetState(const std::string&,
                                       const std::string&) override {
    return StateRecord{};
  }
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t, uint64_t) override {
    return CommittedPage{};
  }
};

TEST_F(RemoteTest, QueriesNotImplementedAnswerUnimplemented) {
  OldQuery old;
  const std::string ep = UniqueInproc("old-storage");
  auto server =
      StartBusServer(ctx_, ep, "storage",
                     ServeStorage(&storage_, &old, nullptr), &server_metrics_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectBusClient(ctx_, ep, "test");
  ASSERT_TRUE(client.ok());
  auto query = MakeRemoteQuery(client->get(), kTimeout);
  EXPECT_EQ(query->GetStateAt("kv", "k", 1).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(query->ListBlocks(1, 1).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(query->ScanState("kv", "", "", 1).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(query->GetBlockByHash(Hash32{}).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(query->ListEvidence(1, 1).status().code(),
            absl::StatusCode::kUnimplemented);
  client->reset();
}

TEST_F(RemoteTest, UnknownTypesAndMalformedPayloads) {
  auto r = storage_client_->Call(999, Bytes(), kTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  r = mempool_client_->Call(static_cast<uint16_t>(MsgType::kQueryTx), Bytes(),
                            kTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(server_metrics_.unknown_type.load(), 2);

  r = mempool_client_->Call(static_cast<uint16_t>(MsgType::kMempoolSubmit),
                            ToBytes("\xff\xff\xff"), kTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = storage_client_->Call(static_cast<uint16_t>(MsgType::kQueryTx),
                            ToBytes("short"), kTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = storage_client_->Call(static_cast<uint16_t>(MsgType::kStorageChainState),
                            ToBytes("x"), kTimeout);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  // Servers keep serving.
  auto ledger = MakeRemoteLedger(storage_client_.get(), kTimeout);
  EXPECT_TRUE(ledger->GetChainState().ok());
}

TEST_F(RemoteTest, RemoteCallWithoutServerTimesOut) {
  zmq::context_t ctx;
  auto client = ConnectBusClient(ctx, UniqueInproc("nobody"), "test");
  ASSERT_TRUE(client.ok());
  auto mempool = MakeRemoteMempool(client->get(), absl::Milliseconds(50));
  EXPECT_EQ(mempool->Submit({ToBytes("t")}).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  client->reset();
}

}  // namespace
}  // namespace consortia
