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
#include "consortia/testing/fake_ledger.h"
#include "consortia/testing/fake_mempool.h"
#include "consortia/testing/fake_storage_queries.h"
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
using ::consortia::testing::FakeBlockSource;
using ::consortia::testing::FakeChainQueries;
using ::consortia::testing::FakeCommitHistory;
using ::consortia::testing::FakeLedger;
using ::consortia::testing::FakeMempool;
using ::consortia::testing::FakeStateQueries;
using ::consortia::testing::HashOf;
using ::consortia::testing::kChain;
using ::consortia::testing::UniqueInproc;

// ------------------------------------------------------------ codecs

TEST(ServiceApiCodecTest, AdmissionNames) {
  EXPECT_EQ(AdmissionName(Admission::kAccepted), "accepted");
  EXPECT_EQ(AdmissionName(Admission::kBadSignature), "bad_signature");
  EXPECT_EQ(AdmissionName(Admission::kSenderLimit), "sender_limit");
  EXPECT_EQ(AdmissionName(Admission::kUnregisteredSender),
            "unregistered_sender");
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
  const std::vector<Validator> vals = {Validator{"a", Bytes(32, 1), 1},
                                       Validator{"b", Bytes(32, 2), 7}};
  ChainRules rules;
  rules.max_block_txs = 7;
  rules.replay_window = 3000;
  ChainState cs{7,    HashOf("b7"), 123456, HashOf("state"), HashOf("receipts"),
                vals, rules};
  Bytes wire = sai::EncodeChainState(cs);
  auto d = sai::DecodeChainState(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->height, 7u);
  EXPECT_EQ(d->last_block_hash, cs.last_block_hash);
  EXPECT_EQ(d->last_time_ms, 123456u);
  EXPECT_EQ(d->state_root, cs.state_root);
  EXPECT_EQ(d->receipts_root, cs.receipts_root);
  EXPECT_EQ(d->next_validators, vals);
  EXPECT_EQ(d->next_rules, rules);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeChainState);
  // Rules outside their bounds do not decode.
  ChainState bad = cs;
  bad.next_rules->max_block_txs = 0;
  EXPECT_NE(
      std::string(
          sai::DecodeChainState(sai::EncodeChainState(bad)).status().message())
          .find("max_block_txs must be 1 to"),
      std::string::npos);
  bad.next_rules = rules;
  bad.next_rules->replay_window = kMaxReplayWindow + 1;
  EXPECT_FALSE(sai::DecodeChainState(sai::EncodeChainState(bad)).ok());
  cs.next_rules.reset();
  d = sai::DecodeChainState(sai::EncodeChainState(cs));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->next_rules, std::nullopt);

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

  CommitResult res{HashOf("s"), HashOf("r"), vals, rules};
  wire = sai::EncodeCommitResult(res);
  auto dr = sai::DecodeCommitResult(wire);
  ASSERT_TRUE(dr.ok()) << dr.status();
  EXPECT_EQ(dr->state_root, res.state_root);
  EXPECT_EQ(dr->receipts_root, res.receipts_root);
  EXPECT_EQ(dr->next_validators, vals);
  EXPECT_EQ(dr->next_rules, rules);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCommitResult);
}

TEST(ServiceApiCodecTest, QueryMessagesRoundTrip) {
  for (std::optional<uint64_t> h :
       {std::optional<uint64_t>(), std::optional<uint64_t>(0),
        std::optional<uint64_t>(99)}) {
    Bytes wire = sai::EncodeCertifiedBlockRequest(h);
    auto d = sai::DecodeCertifiedBlockRequest(wire);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(*d, h);
    ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCertifiedBlockRequest);
  }

  for (const ChainTip& tip : {ChainTip{}, ChainTip{77, HashOf("b77")}}) {
    Bytes wire = sai::EncodeChainTip(tip);
    auto d = sai::DecodeChainTip(wire);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(*d, tip);
    ExpectRejectsTruncationAndTrailing(wire, sai::DecodeChainTip);
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
  page.events = {{5,
                  HashOf("b5"),
                  {{HashOf("t1"), 10}, {HashOf("t2"), 20}},
                  {},
                  false,
                  std::nullopt},
                 {6, HashOf("b6"), {}, {}, false, ChainRules{}}};
  page.events[1].rules->max_block_bytes = kMaxTxBytes;
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
  CommittedEvent ev{3,  HashOf("b3"), {{HashOf("a"), 1}, {HashOf("b"), 2}},
                    {}, false,        std::nullopt};
  Bytes wire = EncodeCommittedEvent(ev);
  auto d = DecodeCommittedEvent(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, ev);
  ExpectRejectsTruncationAndTrailing(wire, DecodeCommittedEvent);
}

// The member changes and the permissioned flag travel with the event, and
// in a GetCommitted page; the decoder is strict about them.
TEST(ServiceApiCodecTest, CommittedEventCarriesMemberChanges) {
  const Bytes k1(32, 0x11), k2(32, 0x22), k3(33, 0x22);
  CommittedEvent ev{4,
                    HashOf("b4"),
                    {{HashOf("a"), 9}},
                    {{k1, true}, {k2, false}, {k3, true}},
                    true,
                    std::nullopt};
  Bytes wire = EncodeCommittedEvent(ev);
  auto d = DecodeCommittedEvent(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, ev);
  EXPECT_TRUE(d->permissioned);
  ASSERT_EQ(d->member_changes.size(), 3u);
  EXPECT_FALSE(d->member_changes[1].registered);
  ExpectRejectsTruncationAndTrailing(wire, DecodeCommittedEvent);

  CommittedPage page;
  page.events = {ev, {5, HashOf("b5"), {}, {{k1, false}}, false, std::nullopt}};
  page.next_height = 6;
  auto dp = sai::DecodeCommittedPage(sai::EncodeCommittedPage(page));
  ASSERT_TRUE(dp.ok()) << dp.status();
  EXPECT_EQ(*dp, page);

  auto refused = [](const CommittedEvent& e) {
    return DecodeCommittedEvent(EncodeCommittedEvent(e)).status().code();
  };
  // Keys out of order, twice, or empty.
  CommittedEvent bad = ev;
  std::swap(bad.member_changes[0], bad.member_changes[1]);
  EXPECT_EQ(refused(bad), absl::StatusCode::kInvalidArgument);
  bad = ev;
  bad.member_changes[1].public_key = k1;
  EXPECT_EQ(refused(bad), absl::StatusCode::kInvalidArgument);
  bad = ev;
  bad.member_changes[0].public_key.clear();
  EXPECT_EQ(refused(bad), absl::StatusCode::kInvalidArgument);
  // A key longer than any public key.
  bad = ev;
  bad.member_changes[2].public_key = Bytes(kMaxMemberKeyBytes + 1, 0x33);
  EXPECT_EQ(refused(bad), absl::StatusCode::kInvalidArgument);
  // A flag byte other than 0 or 1: the registered flag of the last change
  // (just before the permissioned flag), then the permissioned flag.
  Bytes flags = wire;
  flags[flags.size() - 2] = 2;
  EXPECT_FALSE(DecodeCommittedEvent(flags).ok());
  flags = wire;
  flags.back() = 7;
  EXPECT_FALSE(DecodeCommittedEvent(flags).ok());
  // A forged count of changes.
  Encoder e;
  e.PutU64(1);
  e.PutHash(HashOf("b1"));
  e.PutVarint(0);
  e.PutVarint(uint64_t{1} << 40);
  EXPECT_FALSE(DecodeCommittedEvent(e.data()).ok());
}

TEST(ServiceApiCodecTest, MemberPageRoundTrip) {
  Bytes wire = sai::EncodeListMembersRequest({Bytes(32, 0x05), 500});
  auto req = sai::DecodeListMembersRequest(wire);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->cursor, Bytes(32, 0x05));
  EXPECT_EQ(req->limit, 500u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeListMembersRequest);

  MemberPage page{
      12, true, {Bytes(32, 1), Bytes(32, 2)}, Bytes(32, 2), ChainRules{}};
  wire = sai::EncodeMemberPage(page);
  auto d = sai::DecodeMemberPage(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, page);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeMemberPage);
  MemberPage last{12, false, {Bytes(32, 1)}, std::nullopt, std::nullopt};
  auto dl = sai::DecodeMemberPage(sai::EncodeMemberPage(last));
  ASSERT_TRUE(dl.ok()) << dl.status();
  EXPECT_EQ(*dl, last);

  MemberPage bad = page;
  std::swap(bad.public_keys[0], bad.public_keys[1]);
  EXPECT_FALSE(sai::DecodeMemberPage(sai::EncodeMemberPage(bad)).ok());
  bad = page;
  bad.public_keys[1] = bad.public_keys[0];
  EXPECT_FALSE(sai::DecodeMemberPage(sai::EncodeMemberPage(bad)).ok());
  bad = page;
  bad.next_cursor = Bytes();
  EXPECT_FALSE(sai::DecodeMemberPage(sai::EncodeMemberPage(bad)).ok());
  bad = page;
  bad.public_keys.assign(kMaxListMembers + 1, Bytes(1, 0));
  for (size_t i = 0; i < bad.public_keys.size(); ++i) {
    bad.public_keys[i] =
        Bytes{static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i & 0xff)};
  }
  EXPECT_FALSE(sai::DecodeMemberPage(sai::EncodeMemberPage(bad)).ok());
}

TEST(ServiceApiCodecTest, ValidatorChangesMessagesRoundTrip) {
  Chain chain;
  const Bytes req = sai::EncodeValidatorChangesRequest(41);
  EXPECT_EQ(*sai::DecodeValidatorChangesRequest(req), 41u);
  ExpectRejectsTruncationAndTrailing(req, sai::DecodeValidatorChangesRequest);

  StateRecord a;
  a.found = true;
  a.value = ToBytes("{}");
  a.height = 1;
  a.next_header = chain.h2();
  a.next_cert = chain.Certify(chain.h2(), {0, 1, 2});
  StateRecord b;
  b.height = 7;
  const Bytes wire = sai::EncodeStateRecords({a, b});
  auto d = sai::DecodeStateRecords(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(EncodeStateRecord((*d)[0]), EncodeStateRecord(a));
  EXPECT_EQ(EncodeStateRecord((*d)[1]), EncodeStateRecord(b));
  EXPECT_EQ(sai::EncodeStateRecords(*d), wire);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeStateRecords);
  EXPECT_TRUE(sai::DecodeStateRecords(sai::EncodeStateRecords({}))->empty());
}

TEST(ServiceApiCodecTest, PaginatedQueryMessagesRoundTrip) {
  Bytes wire = sai::EncodeGetStateAtRequest({"kv", "invoice/7", 41});
  auto sa = sai::DecodeGetStateAtRequest(wire);
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->app, "kv");
  EXPECT_EQ(sa->key, "invoice/7");
  EXPECT_EQ(sa->height, 41u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeGetStateAtRequest);

  wire = sai::EncodePageRequest({17, 100});
  auto lb = sai::DecodePageRequest(wire);
  ASSERT_TRUE(lb.ok());
  EXPECT_EQ(lb->from, 17u);
  EXPECT_EQ(lb->limit, 100u);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodePageRequest);

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
  std::vector<BlockSummary> too_many(kMaxBlockSummaries + 1, blocks[1]);
  EXPECT_FALSE(
      sai::DecodeBlockSummaries(sai::EncodeBlockSummaries(too_many)).ok());

  wire = sai::EncodeCertifiedBlocksRequest({9, 64, 16 << 20});
  auto gb = sai::DecodeCertifiedBlocksRequest(wire);
  ASSERT_TRUE(gb.ok()) << gb.status();
  EXPECT_EQ(gb->from, 9u);
  EXPECT_EQ(gb->limit, 64u);
  EXPECT_EQ(gb->max_bytes, uint64_t{16} << 20);
  ExpectRejectsTruncationAndTrailing(wire, sai::DecodeCertifiedBlocksRequest);

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
  std::vector<BlockRecord> too_many_records(kMaxCertifiedBlocks + 1,
                                            without_cert);
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
// The shared fakes (common/testing/) behind real bus servers: a client gets
// over the bus what the implementation answered, errors included.

class RemoteTest : public ::testing::Test {
 protected:
  RemoteTest() {
    mempool_.SetCaughtUpTo(1000);
    // Block 1 of the test chain with its txs, a few state records, and the
    // commit events of heights 1..6 (height 5 with two txs).
    chain_queries_.AddBlock(Block1());
    for (uint32_t i = 0; i < 3; ++i) {
      chain_queries_.AddTx(chain_.tx_hash(i), chain_.Record(i));
    }
    StateRecord k{true, ToBytes("v"), ToBytes("owner"), 1};
    k.state_root = HashOf("root");
    k.proof.siblings = {HashOf("s0"), Hash32{}, HashOf("s2")};
    k.proof.leaf = StateLeaf{HashOf("p"), HashOf("vh")};
    k.next_header = chain_.h2();
    k.next_cert = chain_.Certify(chain_.h2(), {1, 2, 3});
    state_.SetState("kv", "k", k);
    for (int i = 0; i < 10; ++i) {
      state_.SetState("kv", absl::StrCat("a", i),
                      {true, ToBytes(absl::StrCat("va", i)), ToBytes("o"), 1});
    }
    state_.SetState("kv", "b0", {true, ToBytes("vb0"), ToBytes("o"), 1});
    state_.SetHeight(1);
    for (uint64_t h = 1; h <= 6; ++h) {
      CommittedEvent e{h,           HashOf(absl::StrCat("b", h)), {}, {}, false,
                       std::nullopt};
      if (h == 5) e.txs = {{HashOf("t1"), 15}, {HashOf("t2"), 20}};
      history_.AddEvent(e);
    }
  }

  void SetUp() override {
    std::string mempool_ep = UniqueInproc("mempool");
    std::string storage_ep = UniqueInproc("storage");
    auto ms = StartBusServer(ctx_, mempool_ep, "mempool",
                             ServeMempool(&mempool_, pool_.AsExecutor()),
                             &server_metrics_);
    ASSERT_TRUE(ms.ok()) << ms.status();
    mempool_server_ = *std::move(ms);
    auto ss = StartBusServer(ctx_, storage_ep, "storage",
                             ServeStorage({.ledger = &ledger_,
                                           .commit_history = &history_,
                                           .block_source = &blocks_,
                                           .chain_queries = &chain_queries_,
                                           .state_queries = &state_},
                                          pool_.AsExecutor()),
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

  BlockRecord Block1() const {
    BlockRecord r;
    r.block = chain_.block1();
    r.block_hash = BlockHash(chain_.suite(), r.block.header);
    r.cert = chain_.Certify(r.block.header, {0, 1, 2});
    return r;
  }

  static constexpr absl::Duration kTimeout = absl::Seconds(30);

  // Destroyed in reverse order: clients, servers, pool, fakes, context.
  zmq::context_t ctx_;
  Chain chain_;
  FakeMempool mempool_;
  FakeLedger ledger_{chain_.genesis()};
  FakeCommitHistory history_;
  FakeBlockSource blocks_{&ledger_};
  FakeChainQueries chain_queries_;
  FakeStateQueries state_;
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
  mempool_.FailChecks(absl::FailedPreconditionError("wrong height"));
  auto wrong = mempool->CheckProposal(txs, 8);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrong.status().message(), "wrong height");
}

TEST_F(RemoteTest, LedgerChainStateAndCommit) {
  auto ledger = MakeRemoteLedger(storage_client_.get(), kTimeout);
  auto cs = ledger->GetChainState();
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->height, 0u);

  CommitCertificate cert = chain_.Certify(chain_.block1().header, {0, 1, 2});
  auto res = ledger->CommitBlock(EncodeBlock(chain_.block1()), cert);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->state_root, ledger_.chain_state().state_root);
  cs = ledger->GetChainState();
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->height, 1u);
  EXPECT_EQ(cs->last_block_hash,
            BlockHash(chain_.suite(), chain_.block1().header));

  auto again = ledger->CommitBlock(EncodeBlock(chain_.block1()), cert);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RemoteTest, EvidenceIsRecordedOverTheBus) {
  auto ledger = MakeRemoteLedger(storage_client_.get(), kTimeout);
  EvidenceRecord a{0, "duplicate_vote", 7, 1, 2, ToBytes("proof-a")};
  EvidenceRecord b{0, "duplicate_proposal", 8, 0, 3, ToBytes("proof-b")};
  ASSERT_TRUE(ledger->RecordEvidence({a, b}).ok());
  b.seq = 2;
  ASSERT_EQ(ledger_.evidence().size(), 2u);
  EXPECT_EQ(ledger_.evidence()[1], b);
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
  EXPECT_EQ(ledger_.evidence().size(), 2u);
}

TEST_F(RemoteTest, CommitHistory) {
  auto history = MakeRemoteCommitHistory(storage_client_.get(), kTimeout);
  auto tip = history->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, (ChainTip{6, HashOf("b6")}));

  auto page = history->GetCommitted(3, 5);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 3u);
  EXPECT_EQ(page->events[0].height, 3u);
  EXPECT_EQ(page->events[2].txs[0].valid_until, 15u);
  EXPECT_EQ(page->next_height, 6u);
  // A page that stops early (at the tip) says where over the bus too.
  page = history->GetCommitted(5, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->next_height, 7u);
  page = history->GetCommitted(7, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->events.empty());
  EXPECT_EQ(page->next_height, 7u);

  // The member set, a page at a time, over the bus.
  history_.SetMembers({Bytes(32, 3), Bytes(32, 1), Bytes(32, 2)}, true);
  auto members = history->ListMembers(Bytes(), 2);
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_EQ(
      *members,
      (MemberPage{
          6, true, {Bytes(32, 1), Bytes(32, 2)}, Bytes(32, 2), std::nullopt}));
  members = history->ListMembers(*members->next_cursor, 2);
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_EQ(*members,
            (MemberPage{6, true, {Bytes(32, 3)}, std::nullopt, std::nullopt}));
  EXPECT_EQ(history->ListMembers(Bytes(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);

  history_.FailNext(1);
  EXPECT_EQ(history->GetChainTip().status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(RemoteTest, BlockSourceReadsWhatTheLedgerCommitted) {
  auto blocks = MakeRemoteBlockSource(storage_client_.get(), kTimeout);
  auto none = blocks->ReadCertifiedBlocks(1, 3, 1 << 20);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(
      ledger_.CommitBlock(EncodeBlock(chain_.block1()), *Block1().cert).ok());
  auto whole = blocks->ReadCertifiedBlocks(1, 3, 1 << 20);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_EQ((*whole)[0].block, chain_.block1());
  EXPECT_EQ((*whole)[0].cert, Block1().cert);
  EXPECT_EQ(blocks->ReadCertifiedBlocks(0, 3, 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto heights = blocks->CommittedHeights({chain_.tx_hash(1), HashOf("x")});
  ASSERT_TRUE(heights.ok()) << heights.status();
  EXPECT_EQ(*heights, (std::vector<uint64_t>{1, 0}));
  // Over the bound: refused by the client before anything is sent.
  EXPECT_EQ(blocks
                ->CommittedHeights(std::vector<Hash32>(
                    kMaxCommittedHeightsQuery + 1, HashOf("x")))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(blocks_.committed_reads(), 1);
}

TEST_F(RemoteTest, ChainQueries) {
  // (GetChainTip: one message type for both interfaces that declare it;
  // this endpoint answers it from its commit history. See
  // OnlyTheInterfacesGivenAreServed for the chain queries' own.)
  auto chain = MakeRemoteChainQueries(storage_client_.get(), kTimeout);
  auto latest = chain->GetCertifiedBlock(std::nullopt);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->block, chain_.block1());
  ASSERT_TRUE(latest->cert.has_value());
  EXPECT_EQ(chain->GetCertifiedBlock(5).status().code(),
            absl::StatusCode::kNotFound);
  auto by_hash = chain->GetCertifiedBlockByHash(Block1().block_hash);
  ASSERT_TRUE(by_hash.ok()) << by_hash.status();
  EXPECT_EQ(by_hash->block, chain_.block1());
  EXPECT_EQ(chain->GetCertifiedBlockByHash(HashOf("x")).status().code(),
            absl::StatusCode::kNotFound);

  auto list = chain->ListBlockSummaries(1, 3);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].header, chain_.block1().header);
  EXPECT_EQ((*list)[0].block_hash, Block1().block_hash);
  EXPECT_EQ((*list)[0].tx_count, 3u);

  auto tx = chain->GetTx(chain_.tx_hash(2));
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_EQ(tx->index, 2u);
  // What travelled over the bus still verifies offline.
  EXPECT_TRUE(
      VerifyTxRecord(chain_.suite(), chain_.genesis(), *tx, chain_.tx_hash(2))
          .ok());
  EXPECT_EQ(chain->GetTx(HashOf("nope")).status().code(),
            absl::StatusCode::kNotFound);

  // Blocks with their receipts, a page per call (the api's event stream).
  auto with_receipts = chain->ReadBlocksWithReceipts(1, 4, 1 << 20);
  ASSERT_TRUE(with_receipts.ok()) << with_receipts.status();
  ASSERT_EQ(with_receipts->size(), 1u);
  EXPECT_EQ((*with_receipts)[0].block, chain_.block1());
  EXPECT_EQ((*with_receipts)[0].block_hash, Block1().block_hash);
  ASSERT_EQ((*with_receipts)[0].receipts.size(), 3u);
  EXPECT_EQ((*with_receipts)[0].receipts[2], tx->receipt);
  EXPECT_EQ(chain->ReadBlocksWithReceipts(1, kMaxBlocksWithReceipts + 1, 1)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto beyond = chain->ReadBlocksWithReceipts(5, 4, 1 << 20);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->empty());

  EvidenceRecord a{0, "duplicate_vote", 7, 1, 2, ToBytes("proof-a")};
  EvidenceRecord b{0, "duplicate_proposal", 8, 0, 3, ToBytes("proof-b")};
  chain_queries_.AddEvidence(a);
  chain_queries_.AddEvidence(b);
  auto listed = chain->ListEvidence(2, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  b.seq = 2;
  EXPECT_EQ(*listed, std::vector<EvidenceRecord>{b});

  // The validator-set changes up to a height, with their proofs.
  auto none = chain->ListValidatorChanges(100);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  StateRecord change;
  change.found = true;
  change.value = ToBytes("{}");
  change.height = 5;
  change.next_header = chain_.h2();
  change.next_cert = chain_.Certify(chain_.h2(), {0, 1, 2});
  StateRecord later = change;
  later.height = 9;
  later.next_header.reset();
  later.next_cert.reset();
  chain_queries_.AddValidatorChange(change);
  chain_queries_.AddValidatorChange(later);
  auto changes = chain->ListValidatorChanges(8);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ(EncodeStateRecord((*changes)[0]), EncodeStateRecord(change));
  changes = chain->ListValidatorChanges(9);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_EQ(changes->size(), 2u);
  EXPECT_EQ(chain_queries_.validator_changes_asked(),
            (std::vector<uint64_t>{100, 8, 9}));
}

TEST_F(RemoteTest, StateQueries) {
  auto state = MakeRemoteStateQueries(storage_client_.get(), kTimeout);
  auto k = state->GetState("kv", "k");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_TRUE(k->found);
  EXPECT_EQ(k->value, ToBytes("v"));
  auto missing = state->GetState("kv", "other");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->found);

  auto at = state->GetStateAt("kv", "k", 1);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_TRUE(at->found);
  EXPECT_EQ(at->state_root, HashOf("root"));
  EXPECT_EQ(at->proof.siblings.size(), 3u);
  EXPECT_EQ(at->proof.siblings[2], HashOf("s2"));
  ASSERT_TRUE(at->next_header.has_value());
  EXPECT_EQ(*at->next_header, chain_.h2());
  EXPECT_EQ(state->GetStateAt("kv", "k", 5).status().code(),
            absl::StatusCode::kNotFound);

  std::vector<std::string> keys;
  std::string cursor;
  for (int i = 0; i < 10; ++i) {
    auto page = state->ScanState("kv", "a", cursor, 4);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->height, 1u);
    for (const StateItem& item : page->items) keys.push_back(item.key);
    if (!page->next_cursor.has_value()) break;
    cursor = *page->next_cursor;
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "a5",
                                            "a6", "a7", "a8", "a9"}));
  EXPECT_EQ(state->ScanState("nope", "", "", 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A storage that answers more than one reply may carry: the server refuses
// to send it (Internal) rather than a reply its client would refuse.
class OverfullHistory : public FakeCommitHistory {
 public:
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t from,
                                             uint64_t to) override {
    CommittedPage page;
    for (uint64_t h = from; h <= to; ++h)
      page.events.push_back({h, {}, {}, {}, false, std::nullopt});
    page.next_height = to + 1;
    return page;
  }
};
class OverfullBlocks : public FakeBlockSource {
 public:
  using FakeBlockSource::FakeBlockSource;
  absl::StatusOr<std::vector<BlockRecord>> ReadCertifiedBlocks(
      uint64_t, uint32_t limit, uint64_t) override {
    absl::StatusOr<std::vector<BlockRecord>> one =
        FakeBlockSource::ReadCertifiedBlocks(1, 1, 1);
    if (!one.ok() || one->empty()) return one;
    return std::vector<BlockRecord>(limit, one->front());
  }
};
class OverfullSummaries : public FakeChainQueries {
 public:
  absl::StatusOr<std::vector<BlockSummary>> ListBlockSummaries(
      uint64_t from, uint32_t limit) override {
    std::vector<BlockSummary> out(limit);
    for (uint32_t i = 0; i < limit; ++i) out[i].header.height = from + i;
    return out;
  }
};

TEST_F(RemoteTest, ServerRefusesAnswersOverTheBounds) {
  ASSERT_TRUE(
      ledger_.CommitBlock(EncodeBlock(chain_.block1()), *Block1().cert).ok());
  OverfullHistory history;
  OverfullBlocks blocks(&ledger_);
  OverfullSummaries chain;
  const std::string ep = UniqueInproc("overfull-storage");
  auto server = StartBusServer(ctx_, ep, "storage",
                               ServeStorage({.commit_history = &history,
                                             .block_source = &blocks,
                                             .chain_queries = &chain},
                                            nullptr));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectBusClient(ctx_, ep, "test");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(MakeRemoteCommitHistory(client->get(), kTimeout)
                ->GetCommitted(1, 2000)
                .status()
                .code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(MakeRemoteBlockSource(client->get(), kTimeout)
                ->ReadCertifiedBlocks(1, kMaxCertifiedBlocks + 1, 1)
                .status()
                .code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(MakeRemoteChainQueries(client->get(), kTimeout)
                ->ListBlockSummaries(1, kMaxBlockSummaries + 1)
                .status()
                .code(),
            absl::StatusCode::kInternal);
  // Within the bounds they pass.
  EXPECT_TRUE(MakeRemoteBlockSource(client->get(), kTimeout)
                  ->ReadCertifiedBlocks(1, 2, 1)
                  .ok());
  client->reset();
}

TEST_F(RemoteTest, OnlyTheInterfacesGivenAreServed) {
  // A storage endpoint that serves only a commit history: the other
  // interfaces' calls answer Unimplemented, as unknown types.
  const std::string ep = UniqueInproc("history-only");
  CountingMetrics metrics;
  auto server = StartBusServer(
      ctx_, ep, "storage", ServeStorage({.commit_history = &history_}, nullptr),
      &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectBusClient(ctx_, ep, "test");
  ASSERT_TRUE(client.ok());
  auto tip = MakeRemoteCommitHistory(client->get(), kTimeout)->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(tip->height, 6u);
  EXPECT_EQ(MakeRemoteLedger(client->get(), kTimeout)
                ->GetChainState()
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(MakeRemoteBlockSource(client->get(), kTimeout)
                ->CommittedHeights({HashOf("x")})
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(MakeRemoteChainQueries(client->get(), kTimeout)
                ->GetTx(HashOf("x"))
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(MakeRemoteStateQueries(client->get(), kTimeout)
                ->GetState("kv", "k")
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(metrics.unknown_type.load(), 4);
  client->reset();
  server->reset();

  // Without a commit history, the chain tip comes from the chain queries.
  const std::string ep2 = UniqueInproc("chain-only");
  server =
      StartBusServer(ctx_, ep2, "storage",
                     ServeStorage({.chain_queries = &chain_queries_}, nullptr));
  ASSERT_TRUE(server.ok()) << server.status();
  client = ConnectBusClient(ctx_, ep2, "test");
  ASSERT_TRUE(client.ok());
  tip = MakeRemoteChainQueries(client->get(), kTimeout)->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, (ChainTip{1, Block1().block_hash}));
  client->reset();
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
  r = storage_client_->Call(static_cast<uint16_t>(MsgType::kQueryChainTip),
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
