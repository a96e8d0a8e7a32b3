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
#include "service_api_internal.h"
#include "zmq.hpp"

namespace consortia {
namespace {

namespace sai = service_api_internal;
using ::consortia::testing::CountingMetrics;
using ::consortia::testing::UniqueInproc;

constexpr char kChain[] = "testnet";

Hash32 HashOf(std::string_view s) { return Ed25519Sha256().Hash(AsBytes(s)); }

// ------------------------------------------------------------ a small chain

// Four validators with deterministic keys, a client, and block 1 (three
// txs) followed by block 2 that carries block 1's receipts root.
class Chain {
 public:
  Chain() : suite_(Ed25519Sha256()) {
    for (int i = 0; i < 4; ++i) {
      validators_.push_back(Key(static_cast<uint8_t>(i + 1)));
      genesis_.validators.push_back(
          {absl::StrCat("v", i), validators_.back().public_key, 1});
    }
    genesis_.chain_id = kChain;
    genesis_.crypto_suite = std::string(suite_.name());
    client_ = Key(100);
    outsider_ = Key(200);

    for (uint64_t nonce = 1; nonce <= 3; ++nonce) {
      Transaction tx;
      tx.chain_id = kChain;
      tx.nonce = nonce;
      tx.valid_until = 100;
      tx.sender = client_.public_key;
      tx.app = "kv";
      tx.method = "set";
      tx.args = {"key", absl::StrCat("value", nonce)};
      tx.signature = *suite_.Sign(client_.secret_key, TxSignBytes(tx));
      txs_.push_back(tx);
      block1_.txs.push_back(EncodeTx(tx));
      Receipt r;
      r.tx_hash = TxHash(suite_, tx);
      r.log = "ok";
      receipts_.push_back(r);
      encoded_receipts_.push_back(EncodeReceipt(r));
    }
    BlockHeader& h1 = block1_.header;
    h1.chain_id = kChain;
    h1.height = 1;
    h1.time_ms = 1700000000000;
    h1.proposer = validators_[0].public_key;
    h1.tx_root = MerkleRoot(suite_, block1_.txs);

    h2_.chain_id = kChain;
    h2_.height = 2;
    h2_.time_ms = h1.time_ms + 1000;
    h2_.proposer = validators_[1].public_key;
    h2_.prev_hash = BlockHash(suite_, h1);
    h2_.tx_root = MerkleRoot(suite_, std::vector<Bytes>{});
    h2_.receipts_root = MerkleRoot(suite_, encoded_receipts_);
  }

  KeyPair Key(uint8_t seed) const {
    return *suite_.KeyFromSeed(Bytes(32, seed));
  }

  // A certificate for header signed by the given validators, each with its
  // own key unless `signing_keys` overrides it.
  CommitCertificate Certify(const BlockHeader& h, std::vector<uint32_t> signers,
                            const KeyPair* forged_key = nullptr) const {
    CommitCertificate c;
    c.height = h.height;
    c.round = 0;
    c.block_hash = BlockHash(suite_, h);
    for (uint32_t i : signers) {
      Vote v;
      v.type = VoteType::kPrecommit;
      v.height = h.height;
      v.round = 0;
      v.block_hash = c.block_hash;
      v.validator_index = i;
      const KeyPair& key = (forged_key != nullptr && i == signers.front())
                               ? *forged_key
                               : validators_[i];
      c.sigs.push_back(
          {i, *suite_.Sign(key.secret_key, VoteSignBytes(kChain, v))});
    }
    return c;
  }

  // The proof bundle of tx `index` of block 1.
  TxRecord Record(uint32_t index) const {
    TxRecord r;
    r.raw_tx = block1_.txs[index];
    r.height = 1;
    r.index = index;
    r.receipt = receipts_[index];
    r.inclusion = *MerkleProve(suite_, block1_.txs, index);
    r.header = block1_.header;
    r.cert = Certify(block1_.header, {0, 1, 2});
    r.receipt_proof = *MerkleProve(suite_, encoded_receipts_, index);
    r.next_header = h2_;
    r.next_cert = Certify(h2_, {1, 2, 3});
    return r;
  }

  const CryptoSuite& suite() const { return suite_; }
  const Genesis& genesis() const { return genesis_; }
  const Block& block1() const { return block1_; }
  const BlockHeader& h2() const { return h2_; }
  const KeyPair& outsider() const { return outsider_; }
  Hash32 tx_hash(int i) const { return TxHash(suite_, txs_[i]); }

 private:
  const CryptoSuite& suite_;
  Genesis genesis_;
  std::vector<KeyPair> validators_;
  KeyPair client_;
  KeyPair outsider_;
  std::vector<Transaction> txs_;
  std::vector<Receipt> receipts_;
  std::vector<Bytes> encoded_receipts_;
  Block block1_;
  BlockHeader h2_;
};

// ------------------------------------------------------------ codecs

void ExpectSameRecord(const TxRecord& a, const TxRecord& b) {
  EXPECT_EQ(a.raw_tx, b.raw_tx);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.receipt, b.receipt);
  EXPECT_EQ(a.inclusion.index, b.inclusion.index);
  EXPECT_EQ(a.inclusion.leaf_count, b.inclusion.leaf_count);
  EXPECT_EQ(a.inclusion.path, b.inclusion.path);
  EXPECT_EQ(a.header, b.header);
  EXPECT_EQ(a.cert, b.cert);
  EXPECT_EQ(a.receipt_proof.path, b.receipt_proof.path);
  EXPECT_EQ(a.next_header, b.next_header);
  EXPECT_EQ(a.next_cert, b.next_cert);
}

// Every strict prefix of a valid encoding, and the encoding with a byte
// appended, is rejected with InvalidArgument.
template <typename DecodeFn>
void ExpectRejectsTruncationAndTrailing(const Bytes& wire, DecodeFn decode) {
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(decode(ByteView(wire.data(), n)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "prefix of " << n << " of " << wire.size() << " bytes";
  }
  Bytes longer = wire;
  longer.push_back(0);
  EXPECT_EQ(decode(longer).status().code(), absl::StatusCode::kInvalidArgument);
}

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
  wire = sai::EncodeCommitBlockRequest(chain.block1(), cert);
  auto cb = sai::DecodeCommitBlockRequest(wire);
  ASSERT_TRUE(cb.ok()) << cb.status();
  EXPECT_EQ(cb->block, chain.block1());
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

TEST(ServiceApiCodecTest, TxRecordRoundTrip) {
  Chain chain;
  TxRecord r = chain.Record(1);
  Bytes wire = EncodeTxRecord(r);
  auto d = DecodeTxRecord(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  ExpectSameRecord(*d, r);
  EXPECT_EQ(EncodeTxRecord(*d), wire);
  ExpectRejectsTruncationAndTrailing(wire, DecodeTxRecord);

  // Without the next block (its receipt not yet proven).
  r.next_header.reset();
  r.next_cert.reset();
  wire = EncodeTxRecord(r);
  d = DecodeTxRecord(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  ExpectSameRecord(*d, r);
}

TEST(ServiceApiCodecTest, BlockRecordRoundTrip) {
  Chain chain;
  BlockRecord r;
  r.block = chain.block1();
  r.block_hash = BlockHash(chain.suite(), r.block.header);
  r.cert = chain.Certify(r.block.header, {0, 1, 2, 3});
  Bytes wire = EncodeBlockRecord(r);
  auto d = DecodeBlockRecord(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->block, r.block);
  EXPECT_EQ(d->block_hash, r.block_hash);
  EXPECT_EQ(d->cert, r.cert);
  ExpectRejectsTruncationAndTrailing(wire, DecodeBlockRecord);

  r.cert.reset();
  d = DecodeBlockRecord(EncodeBlockRecord(r));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->cert.has_value());
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

// ------------------------------------------------------------ VerifyTxRecord

// Checks that s fails for the expected reason (a word of its message).
void ExpectRejected(const absl::Status& s, std::string_view reason) {
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(absl::string_view(reason.data(), reason.size())),
            absl::string_view::npos)
      << "expected a failure about '" << reason << "', got " << s;
}

class VerifyTxRecordTest : public ::testing::Test {
 protected:
  absl::Status Verify(const TxRecord& r, const Hash32& expected = Hash32{}) {
    return VerifyTxRecord(chain_.suite(), chain_.genesis(), r, expected);
  }
  Chain chain_;
};

TEST_F(VerifyTxRecordTest, AcceptsAValidRecord) {
  for (uint32_t i = 0; i < 3; ++i) {
    TxRecord r = chain_.Record(i);
    EXPECT_TRUE(Verify(r).ok()) << Verify(r);
    EXPECT_TRUE(Verify(r, chain_.tx_hash(i)).ok());
    // What `consortia verify` does: decode the bundle, then check it.
    auto decoded = DecodeTxRecord(EncodeTxRecord(r));
    ASSERT_TRUE(decoded.ok());
    EXPECT_TRUE(Verify(*decoded, chain_.tx_hash(i)).ok());
  }
  TxRecord no_next = chain_.Record(2);
  no_next.next_header.reset();
  no_next.next_cert.reset();
  EXPECT_TRUE(Verify(no_next).ok()) << Verify(no_next);
}

TEST_F(VerifyTxRecordTest, RejectsAnotherTxHash) {
  ExpectRejected(Verify(chain_.Record(1), chain_.tx_hash(0)), "expected");
}

TEST_F(VerifyTxRecordTest, RejectsAFlippedTxByte) {
  TxRecord r = chain_.Record(1);
  // The last byte belongs to the signature: the tx still decodes and hashes
  // the same, but its signature no longer verifies (and it is not the tx
  // the block contains).
  r.raw_tx.back() ^= 0x01;
  ASSERT_TRUE(DecodeTx(r.raw_tx).ok());
  ExpectRejected(Verify(r, chain_.tx_hash(1)), "signature");

  TxRecord garbled = chain_.Record(1);
  garbled.raw_tx[garbled.raw_tx.size() / 2] ^= 0x40;
  EXPECT_FALSE(Verify(garbled).ok());
}

// A proof must show what was signed: a tx whose signature does not verify
// fails even when its block really contains it (as a block certified by a
// network that accepted a forged tx would).
TEST_F(VerifyTxRecordTest, RejectsAForgedSignatureEvenWhenIncluded) {
  TxRecord r = chain_.Record(1);
  absl::StatusOr<Transaction> tx = DecodeTx(r.raw_tx);
  ASSERT_TRUE(tx.ok());
  const KeyPair other = chain_.suite().GenerateKey();
  tx->signature = *chain_.suite().Sign(other.secret_key, TxSignBytes(*tx));
  r.raw_tx = EncodeTx(*tx);
  const absl::Status s = Verify(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  ExpectRejected(s, "signature does not verify");
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

TEST_F(VerifyTxRecordTest, RejectsAWrongProofIndex) {
  TxRecord r = chain_.Record(1);
  r.inclusion.index = 0;
  ExpectRejected(Verify(r), "inclusion proof is for index");
  r.index = 0;  // consistent, but the path is still tx 1's
  ExpectRejected(Verify(r), "does not lead to the header's tx root");

  TxRecord receipt = chain_.Record(1);
  receipt.receipt_proof = chain_.Record(0).receipt_proof;
  ExpectRejected(Verify(receipt), "receipt proof");
}

TEST_F(VerifyTxRecordTest, RejectsACertificateSignedByANonValidator) {
  TxRecord r = chain_.Record(1);
  r.cert = chain_.Certify(r.header, {0, 1, 2}, &chain_.outsider());
  ExpectRejected(Verify(r), "signature");

  TxRecord next = chain_.Record(1);
  next.next_cert = chain_.Certify(chain_.h2(), {1, 2, 3}, &chain_.outsider());
  ExpectRejected(Verify(next), "signature");
}

TEST_F(VerifyTxRecordTest, RejectsTooFewSignatures) {
  TxRecord r = chain_.Record(1);
  r.cert = chain_.Certify(r.header, {0, 1});  // 2 of 4 is not > 2/3
  ExpectRejected(Verify(r), "two thirds");

  TxRecord next = chain_.Record(1);
  next.next_cert = chain_.Certify(chain_.h2(), {3});
  ExpectRejected(Verify(next), "two thirds");
}

TEST_F(VerifyTxRecordTest, RejectsANextHeaderThatDoesNotFollow) {
  TxRecord r = chain_.Record(1);
  BlockHeader h2 = chain_.h2();
  h2.prev_hash[0] ^= 0x01;
  r.next_header = h2;
  r.next_cert = chain_.Certify(h2, {0, 1, 2, 3});  // validly certified
  ExpectRejected(Verify(r), "prev_hash");

  TxRecord missing_cert = chain_.Record(1);
  missing_cert.next_cert.reset();
  ExpectRejected(Verify(missing_cert), "next_cert");
}

TEST_F(VerifyTxRecordTest, RejectsATamperedReceipt) {
  TxRecord r = chain_.Record(1);
  r.receipt.code = ExecCode::kNotOwner;
  ExpectRejected(Verify(r), "receipts root");
}

TEST_F(VerifyTxRecordTest, RejectsAnotherChain) {
  Genesis other = chain_.genesis();
  other.chain_id = "othernet";
  ExpectRejected(
      VerifyTxRecord(chain_.suite(), other, chain_.Record(0), Hash32{}),
      "another chain");
}

// ------------------------------------------------------------ state records

// The state after block 1 of Chain: two kv records, "k" (owned by "owner")
// and another, in a tree built by hand from the definition; block 2 (h2,
// with this state root) certifies it.
class StateRecordTest : public ::testing::Test {
 protected:
  StateRecordTest() {
    const CryptoSuite& suite = chain_.suite();
    const Hash32 path = StateKeyPath(suite, "kv", "k");
    // A neighbour whose path differs from k's first at bit `split`.
    other_path_ = path;
    other_path_[0] ^= 0x08;  // bit 4
    other_value_ = HashOf("other value");
    StateProof proof;
    proof.siblings.assign(4, Hash32{});
    proof.siblings.push_back(StateLeafHash(suite, other_path_, other_value_));
    proof.leaf =
        StateLeaf{path, StateValueHash(suite, AsBytes("v"), AsBytes("owner"))};
    root_ = StateProofRoot(suite, path, proof);
    header2_ = chain_.h2();
    header2_.state_root = root_;

    record_.found = true;
    record_.value = ToBytes("v");
    record_.owner = ToBytes("owner");
    record_.height = 1;
    record_.state_root = root_;
    record_.proof = proof;
    record_.next_header = header2_;
    record_.next_cert = chain_.Certify(header2_, {0, 1, 2});
  }

  absl::Status Verify(const StateRecord& r, std::string_view key = "k",
                      bool certified = true) {
    return VerifyStateRecord(chain_.suite(), chain_.genesis(), "kv", key, r,
                             certified);
  }

  Chain chain_;
  Hash32 other_path_{};
  Hash32 other_value_{};
  Hash32 root_{};
  BlockHeader header2_;
  StateRecord record_;
};

TEST_F(StateRecordTest, RoundTripsAndVerifies) {
  ASSERT_TRUE(Verify(record_).ok()) << Verify(record_);
  Bytes wire = EncodeStateRecord(record_);
  auto d = DecodeStateRecord(wire);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(EncodeStateRecord(*d), wire);
  EXPECT_EQ(d->proof, record_.proof);
  EXPECT_EQ(d->next_header, record_.next_header);
  EXPECT_TRUE(Verify(*d).ok());
  ExpectRejectsTruncationAndTrailing(wire, DecodeStateRecord);
}

TEST_F(StateRecordTest, UncertifiedIsFineOnlyWhenNotRequired) {
  StateRecord r = record_;
  r.next_header.reset();
  r.next_cert.reset();
  EXPECT_TRUE(Verify(r, "k", /*certified=*/false).ok());
  EXPECT_EQ(Verify(r, "k", true).code(), absl::StatusCode::kFailedPrecondition);
  r.next_cert = record_.next_cert;
  ExpectRejected(Verify(r, "k", false), "without next_header");
}

TEST_F(StateRecordTest, ProvesAbsenceOfANeighbour) {
  // A key whose path would sit where `k` is: absent, shown by k's leaf.
  StateRecord absent = record_;
  absent.found = false;
  absent.value.clear();
  absent.owner.clear();
  // Find some key whose path shares k's first 5 bits and is not k.
  const Hash32 k_path = StateKeyPath(chain_.suite(), "kv", "k");
  std::string key;
  for (int i = 0; i < 100000 && key.empty(); ++i) {
    std::string candidate = absl::StrCat("n", i);
    const Hash32 p = StateKeyPath(chain_.suite(), "kv", candidate);
    if ((p[0] >> 3) == (k_path[0] >> 3)) key = candidate;
  }
  ASSERT_FALSE(key.empty());
  EXPECT_TRUE(Verify(absent, key).ok()) << Verify(absent, key);
  // The same bundle cannot claim k itself is absent, nor give `key` a value.
  ExpectRejected(Verify(absent, "k"), "absence");
  ExpectRejected(Verify(record_, key), "another key");
}

TEST_F(StateRecordTest, RejectsForgeries) {
  StateRecord r = record_;
  r.value = ToBytes("w");
  ExpectRejected(Verify(r), "another value");
  r = record_;
  r.owner = ToBytes("thief");
  ExpectRejected(Verify(r), "another value");
  ExpectRejected(VerifyStateRecord(chain_.suite(), chain_.genesis(), "kv2", "k",
                                   record_, true),
                 "proof");
  r = record_;
  r.found = false;
  ExpectRejected(Verify(r), "carries a value");
  r = record_;
  r.proof.siblings[4][0] ^= 1;
  ExpectRejected(Verify(r), "state root");
  r = record_;
  r.next_header->height = 3;
  ExpectRejected(Verify(r), "not 2");
  r = record_;
  r.next_header->state_root = HashOf("elsewhere");
  ExpectRejected(Verify(r), "another state root");
  r = record_;
  r.next_cert = chain_.Certify(header2_, {0, 1, 2}, &chain_.outsider());
  EXPECT_FALSE(Verify(r).ok());
  r = record_;
  r.next_cert = chain_.Certify(header2_, {0, 1});
  EXPECT_FALSE(Verify(r).ok());
  r = record_;
  r.next_cert.reset();
  ExpectRejected(Verify(r), "without next_cert");
  Genesis other = chain_.genesis();
  other.chain_id = "another";
  EXPECT_FALSE(
      VerifyStateRecord(chain_.suite(), other, "kv", "k", record_, true).ok());
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
      const Block& block, const CommitCertificate& cert) override {
    absl::MutexLock l(&mu_);
    if (block.header.height != height_ + 1) {
      return absl::FailedPreconditionError("block does not extend the chain");
    }
    if (cert.height != block.header.height) {
      return absl::InvalidArgumentError("certificate height");
    }
    height_ = block.header.height;
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
  auto res = ledger->CommitBlock(chain_.block1(), cert);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->state_root, HashOf("state"));
  cs = ledger->GetChainState();
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->height, 1u);

  auto again = ledger->CommitBlock(chain_.block1(), cert);
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
