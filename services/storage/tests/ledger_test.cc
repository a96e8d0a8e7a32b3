#include "ledger.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apps/app.h"
#include "consortia/admin_records.h"
#include "consortia/bus.h"
#include "consortia/evidence.h"
#include "consortia/service_api.h"
#include "consortia/state_proof.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keys.h"
#include "kv_store.h"
#include "rocksdb/db.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::Chain;
using ::testing::HasSubstr;
using testing::Suite;
using testing::TempDir;

// A CryptoSuite that counts the hashes it computes, by what they hash.
class CountingSuite final : public CryptoSuite {
 public:
  explicit CountingSuite(const CryptoSuite& inner) : inner_(inner) {}

  std::string_view name() const override { return inner_.name(); }
  size_t public_key_size() const override { return inner_.public_key_size(); }
  size_t max_signature_size() const override {
    return inner_.max_signature_size();
  }
  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    static const Bytes kTxTag = [] {
      Bytes tag = ToBytes("?consortia/tx/v1");
      tag[0] = static_cast<uint8_t>(tag.size() - 1);  // its varint length
      return tag;
    }();
    const ByteView first = parts.size() > 0 ? *parts.begin() : ByteView();
    if (first.size() >= kTxTag.size() &&
        std::equal(kTxTag.begin(), kTxTag.end(), first.begin())) {
      ++tx_sign_bytes;
    } else if (parts.size() == 2 && first.size() == 1 && first[0] == 0x00) {
      ++merkle_leaves;
    } else {
      ++other;
    }
    return inner_.Hash(parts);
  }
  KeyPair GenerateKey() const override { return inner_.GenerateKey(); }
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    return inner_.KeyFromSeed(seed);
  }
  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override {
    return inner_.Sign(secret_key, message);
  }
  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override {
    return inner_.Verify(public_key, message, signature);
  }

  // TxHash (of a tx's sign bytes), Merkle leaves (MerkleLeafHash), and
  // everything else (block hashes, Merkle nodes, the state tree).
  mutable std::atomic<uint64_t> tx_sign_bytes{0};
  mutable std::atomic<uint64_t> merkle_leaves{0};
  mutable std::atomic<uint64_t> other{0};

 private:
  const CryptoSuite& inner_;
};

// A ledger over a real RocksDB in a temp dir.
class StorageLedgerTest : public ::testing::Test {
 protected:
  StorageLedgerTest() : apps_(AppRegistry::WithBuiltins()) {
    alice_ = Suite().GenerateKey();
    bob_ = Suite().GenerateKey();
    Reopen();
  }

  void Close() {
    ledger_.reset();
    store_.reset();
  }

  void Reopen() {
    Close();
    ASSERT_TRUE(TryOpen().ok());
  }

  absl::Status TryOpen() {
    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenRocksDbStore(RocksDbStoreOptions{path(), true});
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    absl::StatusOr<std::unique_ptr<Ledger>> ledger =
        Ledger::Open(OptionsOn(store_.get()));
    if (!ledger.ok()) return ledger.status();
    ledger_ = *std::move(ledger);
    return absl::OkStatus();
  }

  // The fixture's ledger options, over `store`.
  Ledger::Options OptionsOn(KvStore* store) {
    Ledger::Options o;
    o.store = store;
    o.genesis = &chain_.genesis;
    o.suite = &Suite();
    o.apps = &apps_;
    o.publisher = publisher_;
    o.location = path();
    o.state_versions = state_versions_;
    return o;
  }

  std::string path() const { return dir_.Sub("ledger"); }

  ChainState State() {
    absl::StatusOr<ChainState> s = ledger_->GetChainState();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : ChainState{};
  }

  Block Next(std::vector<Bytes> txs) {
    return chain_.NextBlock(State(), std::move(txs));
  }

  absl::StatusOr<CommitResult> Commit(const Block& b) {
    return ledger_->CommitBlock(EncodeBlock(b), chain_.Certify(b.header));
  }

  // Commits the next block with `txs`; fails the test if it is refused.
  CommitResult CommitTxs(std::vector<Bytes> txs) {
    absl::StatusOr<CommitResult> r = Commit(Next(std::move(txs)));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommitResult{};
  }

  // Commits blocks of h % `every` kv sets each, for the next `n` heights h;
  // returns them.
  std::vector<Block> CommitSmallBlocks(uint64_t n, uint64_t every) {
    std::vector<Block> blocks;
    for (uint64_t h = State().height + 1; blocks.size() < n; ++h) {
      std::vector<Bytes> txs;
      for (uint64_t i = 0; i < h % every; ++i) {
        txs.push_back(
            chain_.Tx(alice_, "set", {"k", absl::StrCat(h, i)}, h * 10 + i));
      }
      Block b = Next(txs);
      EXPECT_TRUE(Commit(b).ok());
      blocks.push_back(std::move(b));
    }
    return blocks;
  }

  // Opens the ledger again over `store` (a wrapper of store_), which must
  // outlive it: reset ledger_ before `store` goes.
  void ReopenLedgerOn(KvStore* store) {
    ledger_.reset();
    absl::StatusOr<std::unique_ptr<Ledger>> ledger =
        Ledger::Open(OptionsOn(store));
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  Receipt ReceiptOf(const Bytes& raw) {
    absl::StatusOr<TxRecord> rec = ledger_->GetTx(Chain::HashOf(raw));
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? rec->receipt : Receipt{};
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
  KeyPair bob_;
  Publisher* publisher_ = nullptr;
  uint64_t state_versions_ = kDefaultStateVersions;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(StorageLedgerTest, EmptyStoreStartsAtHeightZero) {
  ChainState s = State();
  EXPECT_EQ(s.height, 0u);
  EXPECT_TRUE(IsZero(s.state_root));
  EXPECT_TRUE(IsZero(s.receipts_root));
  EXPECT_EQ(ledger_->GetCertifiedBlock(std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->GetCertifiedBlock(1).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<ChainTip> tip = ledger_->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, ChainTip{});
}

TEST_F(StorageLedgerTest, CommitsThreeBlocksAndServesVerifiableRecords) {
  Bytes t1 = chain_.Tx(alice_, "set", {"invoice-1", "issued"}, 1);
  Bytes t2 = chain_.Tx(bob_, "set", {"invoice-2", "draft"}, 1);
  Bytes t3 = chain_.Tx(alice_, "set", {"invoice-1", "paid"}, 2);
  Bytes t4 = chain_.Tx(bob_, "delete", {"invoice-2"}, 2);
  Bytes t5 = chain_.Tx(alice_, "set", {"invoice-3", "issued"}, 3);

  Block b1 = Next({t1, t2});
  absl::StatusOr<CommitResult> r1 = Commit(b1);
  ASSERT_TRUE(r1.ok()) << r1.status();
  ChainState after1 = State();
  EXPECT_EQ(after1.height, 1u);
  EXPECT_EQ(after1.last_block_hash, BlockHash(Suite(), b1.header));
  EXPECT_EQ(after1.last_time_ms, b1.header.time_ms);
  EXPECT_EQ(after1.state_root, r1->state_root);
  EXPECT_EQ(after1.receipts_root, r1->receipts_root);
  EXPECT_FALSE(IsZero(r1->state_root));

  Block b2 = Next({t3, t4});
  EXPECT_EQ(b2.header.state_root, r1->state_root);
  ASSERT_TRUE(Commit(b2).ok());
  Block b3 = Next({t5});
  ASSERT_TRUE(Commit(b3).ok());
  EXPECT_EQ(State().height, 3u);

  // Blocks, by height and latest, each with its certificate.
  for (const Block* b : {&b1, &b2, &b3}) {
    absl::StatusOr<BlockRecord> rec =
        ledger_->GetCertifiedBlock(b->header.height);
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->block, *b);
    EXPECT_EQ(rec->block_hash, BlockHash(Suite(), b->header));
    ASSERT_TRUE(rec->cert.has_value());
    EXPECT_EQ(*rec->cert, chain_.Certify(b->header));
  }
  absl::StatusOr<BlockRecord> latest = ledger_->GetCertifiedBlock(std::nullopt);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->block, b3);
  EXPECT_EQ(ledger_->GetCertifiedBlock(4).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<ChainTip> tip = ledger_->GetChainTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, (ChainTip{3, BlockHash(Suite(), b3.header)}));

  // Receipts.
  EXPECT_EQ(ReceiptOf(t1).code, ExecCode::kOk);
  EXPECT_EQ(ReceiptOf(t3).code, ExecCode::kOk);
  EXPECT_EQ(ReceiptOf(t4).code, ExecCode::kOk);

  // Every tx's record verifies offline against the genesis alone; those of
  // blocks 1 and 2 carry the next header and a receipt proof.
  for (const Bytes* raw : {&t1, &t2, &t3, &t4, &t5}) {
    Hash32 h = Chain::HashOf(*raw);
    absl::StatusOr<TxRecord> rec = ledger_->GetTx(h);
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->raw_tx, *raw);
    EXPECT_EQ(rec->receipt.tx_hash, h);
    EXPECT_EQ(rec->next_header.has_value(), rec->height < 3);
    EXPECT_TRUE(VerifyTxRecord(Suite(), chain_.genesis, *rec, h).ok())
        << VerifyTxRecord(Suite(), chain_.genesis, *rec, h);
    // The bundle survives its wire encoding.
    absl::StatusOr<TxRecord> round = DecodeTxRecord(EncodeTxRecord(*rec));
    ASSERT_TRUE(round.ok()) << round.status();
    EXPECT_TRUE(VerifyTxRecord(Suite(), chain_.genesis, *round, h).ok());
  }
  absl::StatusOr<TxRecord> rec3 = ledger_->GetTx(Chain::HashOf(t3));
  ASSERT_TRUE(rec3.ok());
  EXPECT_EQ(rec3->height, 2u);
  EXPECT_EQ(rec3->index, 0u);
  EXPECT_EQ(rec3->header, b2.header);
  EXPECT_EQ(*rec3->next_header, b3.header);

  // The tip's tx has no next header yet, but its receipt proof already
  // leads to the receipts root that block 4 will carry.
  absl::StatusOr<TxRecord> rec5 = ledger_->GetTx(Chain::HashOf(t5));
  ASSERT_TRUE(rec5.ok());
  EXPECT_TRUE(MerkleVerify(Suite(), State().receipts_root,
                           EncodeReceipt(rec5->receipt), rec5->receipt_proof));

  // A record with a forged receipt does not verify.
  TxRecord forged = *rec3;
  forged.receipt.code = ExecCode::kNotOwner;
  EXPECT_FALSE(
      VerifyTxRecord(Suite(), chain_.genesis, forged, Chain::HashOf(t3)).ok());

  // State.
  StateRecord inv1 = Kv("invoice-1");
  EXPECT_TRUE(inv1.found);
  EXPECT_EQ(inv1.value, ToBytes("paid"));
  EXPECT_EQ(inv1.owner, alice_.public_key);
  EXPECT_EQ(inv1.height, 3u);
  EXPECT_FALSE(Kv("invoice-2").found);
  StateRecord inv3 = Kv("invoice-3");
  EXPECT_TRUE(inv3.found);
  EXPECT_EQ(inv3.owner, alice_.public_key);
  EXPECT_FALSE(Kv("never-set").found);

  EXPECT_EQ(ledger_->GetTx(Hash32{}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->GetState("nosuchapp", "k").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->GetState("kv", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// What one commit costs in block codec calls and hashes: the block is
// decoded once and never encoded (its bytes are stored as given), and each tx
// is hashed once, by Execute, whose hashes the tx index and the commit event
// reuse.
TEST_F(StorageLedgerTest, CommitDecodesOnceAndHashesEachTxOnce) {
  CountingSuite counting(Suite());
  ledger_.reset();
  Ledger::Options o = OptionsOn(store_.get());
  o.suite = &counting;
  absl::StatusOr<std::unique_ptr<Ledger>> opened = Ledger::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ledger_ = *std::move(opened);

  constexpr uint64_t kTxs = 100;  // enough to decode on two threads
  std::vector<Bytes> txs;
  for (uint64_t i = 0; i < kTxs; ++i) {
    txs.push_back(chain_.Tx(alice_, "set", {absl::StrCat("k", i), "v"}, i));
  }
  const Block b = Next(txs);
  const Bytes encoded = EncodeBlock(b);
  const CommitCertificate cert = chain_.Certify(b.header);
  counting.tx_sign_bytes = 0;
  counting.merkle_leaves = 0;
  counting.other = 0;
  const BlockCodecCalls before = TestOnlyBlockCodecCalls();
  absl::StatusOr<CommitResult> r = ledger_->CommitBlock(encoded, cert);
  const BlockCodecCalls after = TestOnlyBlockCodecCalls();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(after.encodes - before.encodes, 0u);
  EXPECT_EQ(after.decodes - before.decodes, 1u);
  EXPECT_EQ(counting.tx_sign_bytes.load(), kTxs);
  // The tx root checked, and the receipts root computed.
  EXPECT_EQ(counting.merkle_leaves.load(), 2 * kTxs);
}

TEST_F(StorageLedgerTest, BytesThatAreNotABlockAreRefused) {
  const Block b = Next({chain_.Tx(alice_, "set", {"k", "v"}, 1)});
  Bytes encoded = EncodeBlock(b);
  encoded.push_back(0);  // trailing bytes: not a block's encoding
  absl::StatusOr<CommitResult> r =
      ledger_->CommitBlock(encoded, chain_.Certify(b.header));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("block does not decode"));
  EXPECT_EQ(State().height, 0u);
  EXPECT_TRUE(Commit(b).ok());
}

TEST_F(StorageLedgerTest, OnlyTheOwnerUpdatesOrDeletesARecord) {
  Bytes create = chain_.Tx(alice_, "set", {"k", "alice's"}, 1);
  CommitTxs({create});
  Bytes steal = chain_.Tx(bob_, "set", {"k", "bob's"}, 1);
  Bytes remove = chain_.Tx(bob_, "delete", {"k"}, 2);
  CommitTxs({steal, remove});

  EXPECT_EQ(ReceiptOf(steal).code, ExecCode::kNotOwner);
  EXPECT_EQ(ReceiptOf(remove).code, ExecCode::kNotOwner);
  StateRecord k = Kv("k");
  EXPECT_TRUE(k.found);
  EXPECT_EQ(k.value, ToBytes("alice's"));
  EXPECT_EQ(k.owner, alice_.public_key);

  Bytes own_delete = chain_.Tx(alice_, "delete", {"k"}, 2);
  CommitTxs({own_delete});
  EXPECT_EQ(ReceiptOf(own_delete).code, ExecCode::kOk);
  EXPECT_FALSE(Kv("k").found);

  // Once deleted, the key is free for anyone.
  Bytes bob_takes = chain_.Tx(bob_, "set", {"k", "bob's now"}, 3);
  CommitTxs({bob_takes});
  EXPECT_EQ(Kv("k").owner, bob_.public_key);
}

TEST_F(StorageLedgerTest, FailedTxInABlockLeavesNoWritesButLaterTxsApply) {
  CommitTxs({chain_.Tx(alice_, "set", {"a", "1"}, 1)});
  const Hash32 before = State().state_root;
  // A block of rejected txs only: the state, and so its root, stay.
  CommitTxs({chain_.Tx(bob_, "set", {"a", "x"}, 7)});
  EXPECT_EQ(State().state_root, before);
  Bytes bad = chain_.Tx(bob_, "set", {"a", "2"}, 1);
  Bytes ok = chain_.Tx(bob_, "set", {"b", "3"}, 2);
  CommitTxs({bad, ok});
  EXPECT_EQ(Kv("a").value, ToBytes("1"));
  EXPECT_EQ(Kv("b").value, ToBytes("3"));
  EXPECT_NE(State().state_root, before);
}

TEST_F(StorageLedgerTest, BadArgumentsUnknownMethodsAndAppsAreReceipts) {
  Bytes no_value = chain_.Tx(alice_, "set", {"k"}, 1);
  Bytes empty_key = chain_.Tx(alice_, "set", {"", "v"}, 2);
  Bytes long_key = chain_.Tx(alice_, "set", {std::string(257, 'x'), "v"}, 3);
  Bytes get = chain_.Tx(alice_, "get", {"k"}, 4);
  Bytes unknown_method = chain_.Tx(alice_, "frobnicate", {"k"}, 5);
  Bytes missing = chain_.Tx(alice_, "delete", {"nothing"}, 6);
  Transaction other_app;
  {
    absl::StatusOr<Transaction> t = DecodeTx(chain_.Tx(alice_, "set", {}, 7));
    ASSERT_TRUE(t.ok());
    other_app = *t;
    other_app.app = "lottery";
    other_app.args = {"k", "v"};
    other_app.signature =
        *Suite().Sign(alice_.secret_key, TxSignBytes(other_app));
  }
  Bytes unknown_app = EncodeTx(other_app);
  CommitTxs({no_value, empty_key, long_key, get, unknown_method, missing,
             unknown_app});
  EXPECT_EQ(ReceiptOf(no_value).code, ExecCode::kBadArgs);
  EXPECT_EQ(ReceiptOf(empty_key).code, ExecCode::kBadArgs);
  EXPECT_EQ(ReceiptOf(long_key).code, ExecCode::kBadArgs);
  EXPECT_EQ(ReceiptOf(get).code, ExecCode::kUnknownMethod);
  EXPECT_EQ(ReceiptOf(unknown_method).code, ExecCode::kUnknownMethod);
  EXPECT_EQ(ReceiptOf(missing).code, ExecCode::kNotFound);
  EXPECT_EQ(ReceiptOf(unknown_app).code, ExecCode::kUnknownApp);
  EXPECT_FALSE(Kv("k").found);
}

TEST_F(StorageLedgerTest, DuplicateTxInALaterBlockChangesNothing) {
  Bytes first = chain_.Tx(alice_, "set", {"k", "v1"}, 1);
  CommitTxs({first});
  Bytes second = chain_.Tx(alice_, "set", {"k", "v2"}, 2);
  CommitTxs({second});

  // Replaying the first tx would set v1 again if it were executed.
  Block b3 = Next({first});
  ASSERT_TRUE(Commit(b3).ok());
  EXPECT_EQ(Kv("k").value, ToBytes("v2"));

  // The tx index still points at the original inclusion.
  absl::StatusOr<TxRecord> rec = ledger_->GetTx(Chain::HashOf(first));
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->height, 1u);
  EXPECT_EQ(rec->receipt.code, ExecCode::kOk);

  // The duplicate's receipt (committed in block 3's receipts root, carried by
  // block 4's header) says kDuplicate.
  Block b4 = Next({});
  ASSERT_TRUE(Commit(b4).ok());
  Receipt dup;
  dup.tx_hash = Chain::HashOf(first);
  dup.code = ExecCode::kDuplicate;
  dup.log = "the same transaction was already committed";
  EXPECT_EQ(b4.header.receipts_root,
            MerkleRoot(Suite(), std::vector<Bytes>{EncodeReceipt(dup)}));
}

// What a validator asks when it checks a proposal's replay window itself:
// the commit height of each tx hash, from one store read.
TEST_F(StorageLedgerTest, CommittedHeightsOfManyTxsInOneRead) {
  Bytes t1 = chain_.Tx(alice_, "set", {"a", "1"}, 1);
  CommitTxs({t1});
  CommitTxs({});
  Bytes t3 = chain_.Tx(bob_, "set", {"b", "1"}, 1);
  CommitTxs({t3});
  Bytes never = chain_.Tx(alice_, "set", {"c", "1"}, 9);
  absl::StatusOr<std::vector<uint64_t>> h = ledger_->CommittedHeights(
      {Chain::HashOf(never), Chain::HashOf(t3), Chain::HashOf(t1)});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, (std::vector<uint64_t>{0, 3, 1}));
  EXPECT_TRUE(ledger_->CommittedHeights({})->empty());
  std::vector<Hash32> too_many(kMaxCommittedHeightsQuery + 1);
  EXPECT_EQ(ledger_->CommittedHeights(too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StorageLedgerTest, DuplicateWithinOneBlockExecutesOnce) {
  Bytes create = chain_.Tx(alice_, "set", {"n", "1"}, 1);
  Bytes update = chain_.Tx(alice_, "set", {"n", "2"}, 2);
  Block b = Next({create, update, create});
  ASSERT_TRUE(Commit(b).ok());
  EXPECT_EQ(Kv("n").value, ToBytes("2"));
  absl::StatusOr<TxRecord> rec = ledger_->GetTx(Chain::HashOf(create));
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->index, 0u);
}

TEST_F(StorageLedgerTest, ExpiredTxIsNotExecuted) {
  CommitTxs({chain_.Tx(alice_, "set", {"x", "0"}, 1)});
  Bytes late = chain_.Tx(alice_, "set", {"late", "v"}, 2, /*valid_until=*/1);
  Bytes just_in_time = chain_.Tx(alice_, "set", {"ontime", "v"}, 3, 2);
  CommitTxs({late, just_in_time});
  EXPECT_EQ(ReceiptOf(late).code, ExecCode::kExpired);
  EXPECT_EQ(ReceiptOf(just_in_time).code, ExecCode::kOk);
  EXPECT_FALSE(Kv("late").found);
  EXPECT_TRUE(Kv("ontime").found);
}

TEST_F(StorageLedgerTest,
       BlocksThatDoNotExtendTheChainAreRejectedAndChangeNothing) {
  CommitTxs({chain_.Tx(alice_, "set", {"k", "v"}, 1)});
  const ChainState before = State();
  const Bytes tx = chain_.Tx(alice_, "set", {"k", "changed"}, 2);

  auto expect_rejected = [&](Block b, absl::StatusCode code,
                             const CommitCertificate* cert = nullptr) {
    CommitCertificate c = cert != nullptr ? *cert : chain_.Certify(b.header);
    absl::StatusOr<CommitResult> r = ledger_->CommitBlock(EncodeBlock(b), c);
    EXPECT_EQ(r.status().code(), code) << r.status();
    ChainState after = State();
    EXPECT_EQ(after.height, before.height);
    EXPECT_EQ(after.last_block_hash, before.last_block_hash);
    EXPECT_EQ(after.state_root, before.state_root);
    EXPECT_EQ(Kv("k").value, ToBytes("v"));
    EXPECT_EQ(ledger_->GetCertifiedBlock(2).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(ledger_->GetTx(Chain::HashOf(tx)).status().code(),
              absl::StatusCode::kNotFound);
  };

  Block skip = Next({tx});
  skip.header.height = 3;
  expect_rejected(skip, absl::StatusCode::kFailedPrecondition);

  Block wrong_prev = Next({tx});
  wrong_prev.header.prev_hash[0] ^= 1;
  expect_rejected(wrong_prev, absl::StatusCode::kFailedPrecondition);

  Block wrong_state = Next({tx});
  wrong_state.header.state_root[5] ^= 1;
  expect_rejected(wrong_state, absl::StatusCode::kFailedPrecondition);

  Block wrong_receipts = Next({tx});
  wrong_receipts.header.receipts_root = Hash32{};
  expect_rejected(wrong_receipts, absl::StatusCode::kFailedPrecondition);

  Block wrong_tx_root = Next({tx});
  wrong_tx_root.txs.push_back(chain_.Tx(bob_, "set", {"extra", "x"}, 9));
  expect_rejected(wrong_tx_root, absl::StatusCode::kInvalidArgument);

  Block wrong_chain = Next({tx});
  wrong_chain.header.chain_id = "another-chain";
  expect_rejected(wrong_chain, absl::StatusCode::kInvalidArgument);

  Block good = Next({tx});
  KeyPair outsider = Suite().GenerateKey();
  CommitCertificate forged = chain_.Certify(good.header, &outsider);
  expect_rejected(good, absl::StatusCode::kInvalidArgument, &forged);

  Block other = Next({});
  CommitCertificate for_other = chain_.Certify(other.header);
  expect_rejected(good, absl::StatusCode::kInvalidArgument, &for_other);

  CommitCertificate no_sigs = chain_.Certify(good.header);
  no_sigs.sigs.clear();
  expect_rejected(good, absl::StatusCode::kInvalidArgument, &no_sigs);

  // The right block still commits afterwards.
  ASSERT_TRUE(Commit(good).ok());
  EXPECT_EQ(Kv("k").value, ToBytes("changed"));
}

TEST_F(StorageLedgerTest, RecommittingTheSameBlockIsIdempotent) {
  Block b1 = Next({chain_.Tx(alice_, "set", {"k", "v"}, 1)});
  absl::StatusOr<CommitResult> first = Commit(b1);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<CommitResult> again = Commit(b1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state_root, first->state_root);
  EXPECT_EQ(again->receipts_root, first->receipts_root);
  EXPECT_EQ(State().height, 1u);

  CommitTxs({chain_.Tx(alice_, "set", {"k", "w"}, 2)});
  absl::StatusOr<CommitResult> late = Commit(b1);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->state_root, first->state_root);
  EXPECT_EQ(State().height, 2u);
  EXPECT_EQ(Kv("k").value, ToBytes("w"));

  // A different block at a committed height is refused.
  Block fork = chain_.NextBlock(ChainState{}, {});
  EXPECT_EQ(Commit(fork).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StorageLedgerTest, ReopenedStoreContinuesTheChain) {
  CommitTxs({chain_.Tx(alice_, "set", {"a", "1"}, 1)});
  CommitTxs({chain_.Tx(bob_, "set", {"b", "2"}, 1)});
  const ChainState before = State();

  Reopen();
  ChainState after = State();
  EXPECT_EQ(after.height, 2u);
  EXPECT_EQ(after.last_block_hash, before.last_block_hash);
  EXPECT_EQ(after.last_time_ms, before.last_time_ms);
  EXPECT_EQ(after.state_root, before.state_root);
  EXPECT_EQ(after.receipts_root, before.receipts_root);

  Bytes dup = chain_.Tx(alice_, "set", {"a", "1"}, 1);  // same as block 1's
  Bytes t3 = chain_.Tx(alice_, "set", {"a", "3"}, 2);
  CommitTxs({dup, t3});
  EXPECT_EQ(State().height, 3u);
  EXPECT_EQ(Kv("a").value, ToBytes("3"));
  EXPECT_EQ(Kv("b").owner, bob_.public_key);
  absl::StatusOr<TxRecord> rec = ledger_->GetTx(Chain::HashOf(t3));
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(
      VerifyTxRecord(Suite(), chain_.genesis, *rec, Chain::HashOf(t3)).ok());
}

TEST_F(StorageLedgerTest, StoreMissingItsLatestBlockIsRefused) {
  CommitTxs({chain_.Tx(alice_, "set", {"a", "1"}, 1)});
  CommitTxs({chain_.Tx(alice_, "set", {"a", "2"}, 2)});
  Close();
  {
    // Damage the store by hand: drop block 2 but keep everything else.
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    ASSERT_TRUE(rocksdb::DB::Open(o, path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), keys::Block(2)).ok());
  }
  absl::Status s = TryOpen();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("store at " + path() + " is inconsistent"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("block"));
}

TEST_F(StorageLedgerTest, StoreOfAnotherChainIsRefused) {
  CommitTxs({});
  Close();
  chain_.genesis.chain_id = "someone-else";
  absl::Status s = TryOpen();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is inconsistent"));
}

TEST_F(StorageLedgerTest, GetCommittedReplaysCommitEvents) {
  Bytes t1 = chain_.Tx(alice_, "set", {"a", "1"}, 1, 50);
  Bytes t2 = chain_.Tx(bob_, "set", {"b", "1"}, 1, 60);
  CommitTxs({t1, t2});
  CommitTxs({});
  Bytes t3 = chain_.Tx(alice_, "set", {"a", "2"}, 2, 70);
  CommitTxs({t3});

  absl::StatusOr<CommittedPage> page = ledger_->GetCommitted(1, 3);
  ASSERT_TRUE(page.ok()) << page.status();
  const std::vector<CommittedEvent>& all = page->events;
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(page->next_height, 4u);
  EXPECT_EQ(all[0].height, 1u);
  EXPECT_EQ(all[0].txs, (std::vector<CommittedTx>{{Chain::HashOf(t1), 50},
                                                  {Chain::HashOf(t2), 60}}));
  EXPECT_TRUE(all[1].txs.empty());
  EXPECT_EQ(all[2].txs, (std::vector<CommittedTx>{{Chain::HashOf(t3), 70}}));
  absl::StatusOr<BlockRecord> b3 = ledger_->GetCertifiedBlock(3);
  ASSERT_TRUE(b3.ok());
  EXPECT_EQ(all[2].block_hash, b3->block_hash);

  // Stops at the tip, and says so.
  absl::StatusOr<CommittedPage> tail = ledger_->GetCommitted(2, 1000);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->events.size(), 2u);
  EXPECT_EQ(tail->events.front().height, 2u);
  EXPECT_EQ(tail->next_height, 4u);

  absl::StatusOr<CommittedPage> beyond = ledger_->GetCommitted(4, 9);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->events.empty());
  EXPECT_EQ(beyond->next_height, 4u);
  EXPECT_EQ(ledger_->GetCommitted(0, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->GetCommitted(3, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The regression of issue 11 point 0: a range whose txs exceed the per-call
// limit comes back in several pages, each saying where it stopped, and
// following next_height yields every height once, in order.
TEST_F(StorageLedgerTest, GetCommittedStopsAtTheTxLimitAndSaysWhere) {
  // Blocks of 2, 0, 3, 1, 2 txs at heights 1..5.
  const std::vector<size_t> sizes = {2, 0, 3, 1, 2};
  uint64_t nonce = 1;
  for (size_t n : sizes) {
    std::vector<Bytes> txs;
    for (size_t i = 0; i < n; ++i) {
      txs.push_back(
          chain_.Tx(alice_, "set", {"k", std::to_string(nonce)}, nonce, 100));
      ++nonce;
    }
    CommitTxs(txs);
  }
  ledger_->TestOnlySetMaxCommittedTxsPerCall(3);

  // 2 + 0 + 3 txs reach the limit at height 3: the page stops there.
  absl::StatusOr<CommittedPage> first = ledger_->GetCommitted(1, 5);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->events.size(), 3u);
  EXPECT_EQ(first->events.back().height, 3u);
  EXPECT_EQ(first->next_height, 4u);

  // A single block over the limit still comes back alone.
  ledger_->TestOnlySetMaxCommittedTxsPerCall(1);
  absl::StatusOr<CommittedPage> one = ledger_->GetCommitted(3, 5);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->events.size(), 1u);
  EXPECT_EQ(one->events[0].txs.size(), 3u);
  EXPECT_EQ(one->next_height, 4u);

  // Following next_height covers the range exactly once.
  ledger_->TestOnlySetMaxCommittedTxsPerCall(2);
  std::vector<uint64_t> heights;
  size_t txs = 0;
  int calls = 0;
  for (uint64_t from = 1; from <= 5; ++calls) {
    absl::StatusOr<CommittedPage> page = ledger_->GetCommitted(from, 5);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_GT(page->next_height, from);
    for (const CommittedEvent& e : page->events) {
      heights.push_back(e.height);
      txs += e.txs.size();
    }
    from = page->next_height;
  }
  EXPECT_EQ(heights, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(txs, 8u);
  EXPECT_EQ(calls, 3);  // {1}, {2, 3}, {4, 5}

  // 0 restores the default limit: the whole range in one page.
  ledger_->TestOnlySetMaxCommittedTxsPerCall(0);
  absl::StatusOr<CommittedPage> whole = ledger_->GetCommitted(1, 5);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->events.size(), 5u);
  EXPECT_EQ(whole->next_height, 6u);
}

TEST_F(StorageLedgerTest, QueriesDuringCommitsSeeWholeBlocks) {
  // Block h sets "counter" to h, so a state read reported at height h must
  // show h: never a value from a block the reported height does not include.
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      absl::StatusOr<StateRecord> s = ledger_->GetState("kv", "counter");
      ASSERT_TRUE(s.ok()) << s.status();
      if (s->found) {
        EXPECT_EQ(AsString(s->value), std::to_string(s->height));
      } else {
        EXPECT_EQ(s->height, 0u);
      }
      // The proof is of that same state.
      EXPECT_TRUE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "counter",
                                    *s, /*require_certified=*/false)
                      .ok());
      absl::StatusOr<ChainState> c = ledger_->GetChainState();
      ASSERT_TRUE(c.ok());
      if (c->height > 0) {
        EXPECT_TRUE(ledger_->GetCertifiedBlock(c->height).ok());
      }
      reads.fetch_add(1);
    }
  });
  for (uint64_t h = 1; h <= 30; ++h) {
    CommitTxs({chain_.Tx(alice_, "set", {"counter", std::to_string(h)}, h)});
  }
  // Let the reader see the final state at least once.
  const int seen = reads.load();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (reads.load() < seen + 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  done = true;
  reader.join();
  EXPECT_EQ(Kv("counter").value, ToBytes("30"));
}

// ------------------------------------------------------- state tree

TEST_F(StorageLedgerTest, StateProofChainsToTheNextCertifiedHeader) {
  CommitTxs({chain_.Tx(alice_, "set", {"invoice-1", "issued"}, 1),
             chain_.Tx(bob_, "set", {"invoice-2", "draft"}, 1)});
  CommitTxs({chain_.Tx(alice_, "set", {"invoice-1", "paid"}, 2)});
  const ChainState at2 = State();

  // The latest state: its proof leads to the root storage reports, but no
  // block certifies that root yet.
  StateRecord latest = Kv("invoice-1");
  ASSERT_TRUE(latest.found);
  EXPECT_EQ(latest.height, 2u);
  EXPECT_EQ(latest.state_root, at2.state_root);
  EXPECT_FALSE(latest.next_header.has_value());
  EXPECT_TRUE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1",
                                latest, false)
                  .ok());
  EXPECT_EQ(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1",
                              latest, true)
                .code(),
            absl::StatusCode::kFailedPrecondition);

  // Block 3 carries that root; asked again for height 2, the record comes
  // with block 3's header and certificate and verifies from the genesis.
  Block b3 = Next({chain_.Tx(bob_, "set", {"invoice-2", "sent"}, 2)});
  ASSERT_TRUE(Commit(b3).ok());
  absl::StatusOr<StateRecord> at = ledger_->GetStateAt("kv", "invoice-1", 2);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->value, ToBytes("paid"));
  EXPECT_EQ(at->owner, alice_.public_key);
  ASSERT_TRUE(at->next_header.has_value());
  EXPECT_EQ(*at->next_header, b3.header);
  EXPECT_EQ(at->next_header->state_root, at->state_root);
  EXPECT_TRUE(
      VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1", *at, true)
          .ok())
      << VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1", *at,
                           true);
  // The bundle survives its wire form.
  absl::StatusOr<StateRecord> wire = DecodeStateRecord(EncodeStateRecord(*at));
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_TRUE(
      VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1", *wire, true)
          .ok());

  // Forgeries fail: another value, another owner, another key, a claim of
  // absence, a header from elsewhere.
  StateRecord forged = *at;
  forged.value = ToBytes("unpaid");
  EXPECT_FALSE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1",
                                 forged, true)
                   .ok());
  forged = *at;
  forged.owner = bob_.public_key;
  EXPECT_FALSE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1",
                                 forged, true)
                   .ok());
  EXPECT_FALSE(
      VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-2", *at, true)
          .ok());
  forged = *at;
  forged.found = false;
  forged.value.clear();
  forged.owner.clear();
  EXPECT_FALSE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1",
                                 forged, true)
                   .ok());
  forged = *at;
  forged.next_header->state_root[0] ^= 1;
  EXPECT_FALSE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-1",
                                 forged, true)
                   .ok());

  // Absence is proven the same way, and cannot be turned into presence.
  absl::StatusOr<StateRecord> none = ledger_->GetStateAt("kv", "invoice-9", 2);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->found);
  EXPECT_TRUE(
      VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-9", *none, true)
          .ok());
  StateRecord claimed = *none;
  claimed.found = true;
  claimed.value = ToBytes("issued");
  claimed.owner = alice_.public_key;
  EXPECT_FALSE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "invoice-9",
                                 claimed, true)
                   .ok());
}

TEST_F(StorageLedgerTest, StateRootIsOfTheRecordsNotOfTheirHistory) {
  // Empty state: zero root, before and after a block without writes.
  EXPECT_TRUE(IsZero(CommitTxs({}).state_root));
  const CommitResult one = CommitTxs({chain_.Tx(alice_, "set", {"a", "1"}, 1)});
  EXPECT_FALSE(IsZero(one.state_root));
  // A lone record is the root's leaf.
  EXPECT_EQ(
      one.state_root,
      StateLeafHash(Suite(), StateKeyPath(Suite(), "kv", "a"),
                    StateValueHash(Suite(), AsBytes("1"), alice_.public_key)));
  CommitTxs({chain_.Tx(alice_, "set", {"b", "2"}, 2),
             chain_.Tx(alice_, "set", {"a", "3"}, 3)});
  // Back to the same records by another route: the same root.
  CommitTxs({chain_.Tx(alice_, "delete", {"b"}, 4),
             chain_.Tx(alice_, "set", {"a", "1"}, 5)});
  EXPECT_EQ(State().state_root, one.state_root);
  CommitTxs({chain_.Tx(alice_, "delete", {"a"}, 6)});
  EXPECT_TRUE(IsZero(State().state_root));
}

TEST_F(StorageLedgerTest, ReplayingTheChainReproducesEveryRoot) {
  std::vector<std::pair<Block, CommitCertificate>> blocks;
  std::vector<CommitResult> results;
  for (uint64_t h = 1; h <= 12; ++h) {
    std::vector<Bytes> txs;
    for (uint64_t i = 0; i < h % 4 + 1; ++i) {
      const KeyPair& who = (h + i) % 2 == 0 ? alice_ : bob_;
      txs.push_back(chain_.Tx(
          who, (h + i) % 5 == 0 ? "delete" : "set",
          (h + i) % 5 == 0
              ? std::vector<std::string>{absl::StrCat("k", (h + i) % 6)}
              : std::vector<std::string>{absl::StrCat("k", (h + i) % 6),
                                         absl::StrCat("v", h)},
          h * 10 + i));
    }
    Block b = Next(txs);
    CommitCertificate c = chain_.Certify(b.header);
    absl::StatusOr<CommitResult> r = ledger_->CommitBlock(EncodeBlock(b), c);
    ASSERT_TRUE(r.ok()) << r.status();
    blocks.emplace_back(b, c);
    results.push_back(*r);
  }
  // A second node replays the same certified blocks from genesis.
  TempDir other;
  absl::StatusOr<std::unique_ptr<KvStore>> store =
      OpenRocksDbStore(RocksDbStoreOptions{other.Sub("ledger"), false});
  ASSERT_TRUE(store.ok());
  Ledger::Options o;
  o.store = store->get();
  o.genesis = &chain_.genesis;
  o.suite = &Suite();
  o.apps = &apps_;
  o.state_versions = 2;  // keeping fewer versions changes no root
  absl::StatusOr<std::unique_ptr<Ledger>> replica = Ledger::Open(o);
  ASSERT_TRUE(replica.ok()) << replica.status();
  for (size_t i = 0; i < blocks.size(); ++i) {
    absl::StatusOr<CommitResult> r =
        (*replica)->CommitBlock(EncodeBlock(blocks[i].first), blocks[i].second);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->state_root, results[i].state_root) << "height " << i + 1;
    EXPECT_EQ(r->receipts_root, results[i].receipts_root);
  }
}

TEST_F(StorageLedgerTest, KeepsTheLatestStateVersionsOnly) {
  state_versions_ = 3;
  Reopen();
  for (uint64_t h = 1; h <= 8; ++h) {
    CommitTxs({chain_.Tx(alice_, "set", {"counter", std::to_string(h)}, h)});
  }
  // Heights 6, 7, 8 are kept, each with its own value, all provable; 6 and
  // 7 are certified by the blocks after them.
  for (uint64_t h = 6; h <= 8; ++h) {
    absl::StatusOr<StateRecord> r = ledger_->GetStateAt("kv", "counter", h);
    ASSERT_TRUE(r.ok()) << h << ": " << r.status();
    EXPECT_EQ(AsString(r->value), std::to_string(h));
    EXPECT_TRUE(VerifyStateRecord(Suite(), chain_.genesis, "kv", "counter", *r,
                                  /*require_certified=*/h < 8)
                    .ok());
  }
  for (uint64_t h : {0, 1, 5}) {
    EXPECT_EQ(ledger_->GetStateAt("kv", "counter", h).status().code(),
              absl::StatusCode::kNotFound)
        << h;
  }
  EXPECT_EQ(ledger_->GetStateAt("kv", "counter", 9).status().code(),
            absl::StatusCode::kNotFound);

  // The tree's nodes do not pile up with the blocks: one key rewritten
  // many times keeps a handful of nodes.
  for (uint64_t h = 9; h <= 60; ++h) {
    CommitTxs({chain_.Tx(alice_, "set", {"counter", std::to_string(h)}, h)});
  }
  size_t nodes = 0;
  {
    std::unique_ptr<KvIterator> it =
        store_->NewIterator(std::string(1, keys::kNodePrefix));
    for (; it->Valid(); it->Next()) ++nodes;
  }
  EXPECT_LE(nodes, 3u);
  // And a reopened ledger still proves what it keeps.
  Reopen();
  absl::StatusOr<StateRecord> r = ledger_->GetStateAt("kv", "counter", 59);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(
      VerifyStateRecord(Suite(), chain_.genesis, "kv", "counter", *r, true)
          .ok());
}

TEST_F(StorageLedgerTest, StoreWithoutTheStateTreeIsRefused) {
  CommitTxs({chain_.Tx(alice_, "set", {"a", "1"}, 1)});
  Close();
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    ASSERT_TRUE(rocksdb::DB::Open(o, path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), keys::StateFormat()).ok());
  }
  absl::Status s = TryOpen();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("state tree"));
}

TEST_F(StorageLedgerTest, StoreWithTheOlderStateTreeFormatIsRefused) {
  CommitTxs({chain_.Tx(alice_, "set", {"a", "1"}, 1)});
  Close();
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    ASSERT_TRUE(rocksdb::DB::Open(o, path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), keys::StateFormat(), "smt-v1").ok());
  }
  absl::Status s = TryOpen();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'smt-v1'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(keys::kStateFormat));
}

// Counts the reads that reach the store.
class ReadCountingStore : public KvStore {
 public:
  explicit ReadCountingStore(KvStore* inner) : inner_(inner) {}
  absl::StatusOr<std::optional<std::string>> Get(std::string_view k) override {
    ++gets;
    return inner_->Get(k);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    ++multigets;
    return inner_->MultiGet(keys);
  }
  std::unique_ptr<KvIterator> NewIterator(std::string_view p) override {
    return inner_->NewIterator(p);
  }
  absl::Status Write(const WriteBatch& b) override { return inner_->Write(b); }
  std::string Describe() const override { return inner_->Describe(); }

  int gets = 0;
  int multigets = 0;

 private:
  KvStore* inner_;
};

// Executing a block reads the state records its txs name in one batch
// (with the tx index), not one Get per tx, and executes exactly as before:
// records created, updated, deleted and refused within the block.
TEST_F(StorageLedgerTest, BlockStateIsReadInOneBatchBeforeExecuting) {
  CommitTxs({chain_.Tx(alice_, "set", {"old", "1"}, 1),
             chain_.Tx(alice_, "set", {"gone", "1"}, 2),
             chain_.Tx(bob_, "set", {"bobs", "1"}, 3)});
  ReadCountingStore counting(store_.get());
  ReopenLedgerOn(&counting);

  std::vector<Bytes> txs;
  for (int i = 0; i < 40; ++i) {
    txs.push_back(chain_.Tx(alice_, "set",
                            {absl::StrCat("new", i), absl::StrCat(i)}, 10 + i));
  }
  Bytes update = chain_.Tx(alice_, "set", {"old", "2"}, 60);
  Bytes again = chain_.Tx(alice_, "set", {"new3", "x"}, 61);  // same block
  Bytes del = chain_.Tx(alice_, "delete", {"gone"}, 62);
  Bytes refused = chain_.Tx(alice_, "set", {"bobs", "2"}, 63);
  Bytes missing = chain_.Tx(alice_, "delete", {"never"}, 64);
  txs.insert(txs.end(), {update, again, del, refused, missing});
  const int gets_before = counting.gets;
  CommitTxs(txs);
  EXPECT_EQ(counting.gets - gets_before, 0);

  EXPECT_EQ(Kv("new0").value, ToBytes("0"));
  EXPECT_EQ(Kv("new3").value, ToBytes("x"));
  EXPECT_EQ(Kv("old").value, ToBytes("2"));
  EXPECT_FALSE(Kv("gone").found);
  EXPECT_EQ(Kv("bobs").value, ToBytes("1"));
  EXPECT_EQ(ReceiptOf(refused).code, ExecCode::kNotOwner);
  EXPECT_EQ(ReceiptOf(missing).code, ExecCode::kNotFound);
  EXPECT_EQ(ReceiptOf(again).code, ExecCode::kOk);
  ledger_.reset();  // before `counting` goes
}

TEST_F(StorageLedgerTest, BlocksByHashAndPagesOfBlocks) {
  const std::vector<Block> blocks = CommitSmallBlocks(23, 3);
  for (const Block& b : blocks) {
    absl::StatusOr<BlockRecord> r =
        ledger_->GetCertifiedBlockByHash(BlockHash(Suite(), b.header));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->block, b);
    EXPECT_TRUE(r->cert.has_value());
  }
  EXPECT_EQ(ledger_->GetCertifiedBlockByHash(Hash32{}).status().code(),
            absl::StatusCode::kNotFound);

  // Pages of 5 from height 1 cover 1..23 once each, in order.
  std::vector<uint64_t> seen;
  uint64_t from = 1;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<std::vector<BlockSummary>> page =
        ledger_->ListBlockSummaries(from, 5);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    EXPECT_LE(page->size(), 5u);
    for (const BlockSummary& s : *page) {
      const Block& b = blocks[s.header.height - 1];
      EXPECT_EQ(s.header, b.header);
      EXPECT_EQ(s.block_hash, BlockHash(Suite(), b.header));
      EXPECT_EQ(s.tx_count, b.txs.size());
      seen.push_back(s.header.height);
    }
    from = page->back().header.height + 1;
  }
  std::vector<uint64_t> want(23);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(seen, want);

  EXPECT_EQ(ledger_->ListBlockSummaries(0, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListBlockSummaries(1, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ledger_->ListBlockSummaries(1, kMaxBlockSummaries + 1).status().code(),
      absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<BlockSummary>> all =
      ledger_->ListBlockSummaries(1, kMaxBlockSummaries);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 23u);
}

// ReadBlocksWithReceipts: whole blocks with each tx's receipt (the one GetTx
// gives), a page per call in one MultiGet per 8 heights, never a read per tx.
TEST_F(StorageLedgerTest, BlocksWithTheirReceiptsInFewReads) {
  const std::vector<Block> blocks = CommitSmallBlocks(10, 4);
  ReadCountingStore counting(store_.get());
  ReopenLedgerOn(&counting);
  counting.gets = 0;
  counting.multigets = 0;
  absl::StatusOr<std::vector<BlockWithReceipts>> r =
      ledger_->ReadBlocksWithReceipts(2, 8, uint64_t{1} << 30);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 8u);
  EXPECT_EQ(counting.multigets, 1);
  EXPECT_EQ(counting.gets, 0);
  for (size_t i = 0; i < r->size(); ++i) {
    const Block& want = blocks[1 + i];
    EXPECT_EQ((*r)[i].block, want);
    EXPECT_EQ((*r)[i].block_hash, BlockHash(Suite(), want.header));
    ASSERT_EQ((*r)[i].receipts.size(), want.txs.size());
  }
  absl::StatusOr<Transaction> tx = DecodeTx(blocks[2].txs[1]);  // height 3
  ASSERT_TRUE(tx.ok());
  absl::StatusOr<TxRecord> rec = ledger_->GetTx(TxHash(Suite(), *tx));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ((*r)[1].receipts[1], rec->receipt);
  // Fewer at the tip, none beyond it; bad arguments refused.
  r = ledger_->ReadBlocksWithReceipts(9, kMaxBlocksWithReceipts, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  r = ledger_->ReadBlocksWithReceipts(11, 4, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  r = ledger_->ReadBlocksWithReceipts(1, 10, 1);  // one byte: one block
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
  EXPECT_EQ(ledger_->ReadBlocksWithReceipts(0, 4, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ReadBlocksWithReceipts(1, kMaxBlocksWithReceipts + 1, 1)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// ReadCertifiedBlocks: whole certified blocks of a range in a few store reads,
// cut by the limit, the tip and the byte budget.
TEST_F(StorageLedgerTest, RangesOfWholeBlocksInFewReads) {
  const std::vector<Block> blocks = CommitSmallBlocks(20, 4);
  ReadCountingStore counting(store_.get());
  ReopenLedgerOn(&counting);
  auto check = [&](const std::vector<BlockRecord>& got, uint64_t from) {
    for (size_t i = 0; i < got.size(); ++i) {
      const Block& want = blocks[from - 1 + i];
      EXPECT_EQ(got[i].block, want);
      EXPECT_EQ(got[i].block_hash, BlockHash(Suite(), want.header));
      ASSERT_TRUE(got[i].cert.has_value());
      EXPECT_EQ(got[i].cert->height, want.header.height);
    }
  };

  // 12 heights: the first read takes 8, the next the other 4.
  counting.gets = 0;
  counting.multigets = 0;
  absl::StatusOr<std::vector<BlockRecord>> r =
      ledger_->ReadCertifiedBlocks(3, 12, uint64_t{1} << 30);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 12u);
  check(*r, 3);
  EXPECT_EQ(counting.multigets, 2);
  EXPECT_EQ(counting.gets, 0);

  // Fewer at the tip, none beyond it.
  r = ledger_->ReadCertifiedBlocks(18, kMaxCertifiedBlocks, uint64_t{1} << 30);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  check(*r, 18);
  r = ledger_->ReadCertifiedBlocks(21, 5, 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());

  // The byte budget: the block that reaches it is the last; one byte
  // still gets one block.
  const uint64_t two =
      EncodeBlock(blocks[4]).size() + EncodeBlock(blocks[5]).size();
  r = ledger_->ReadCertifiedBlocks(5, 10, two);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  check(*r, 5);
  r = ledger_->ReadCertifiedBlocks(5, 10, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  check(*r, 5);

  EXPECT_EQ(ledger_->ReadCertifiedBlocks(0, 5, 1000).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ReadCertifiedBlocks(1, 0, 1000).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ReadCertifiedBlocks(1, kMaxCertifiedBlocks + 1, 1000)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ReadCertifiedBlocks(1, 5, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ledger_.reset();  // before `counting` goes
}

TEST_F(StorageLedgerTest, StateScanPagesThroughAPrefix) {
  std::vector<Bytes> txs;
  std::vector<std::string> want;
  for (int i = 0; i < 30; ++i) {
    const std::string key = absl::StrCat("inv/", i < 10 ? "00" : "0", i);
    txs.push_back(chain_.Tx(i % 2 ? alice_ : bob_, "set", {key, "v"}, i + 1));
    want.push_back(key);
  }
  txs.push_back(chain_.Tx(alice_, "set", {"inu", "before"}, 100));
  txs.push_back(chain_.Tx(alice_, "set", {"other/1", "after"}, 101));
  CommitTxs(txs);

  std::vector<std::string> got;
  std::string cursor;
  for (int pages = 0; pages < 20; ++pages) {
    absl::StatusOr<StatePage> page =
        ledger_->ScanState("kv", "inv/", cursor, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->height, pages < 2 ? 1u : 2u);
    EXPECT_LE(page->items.size(), 7u);
    for (const StateItem& item : page->items) {
      got.push_back(item.key);
      EXPECT_EQ(item.value, ToBytes(item.key == "inv/020x" ? "new" : "v"));
    }
    if (pages == 1) {
      // Between pages: a record already returned goes, one ahead appears.
      CommitTxs({chain_.Tx(bob_, "delete", {"inv/000"}, 200),
                 chain_.Tx(bob_, "set", {"inv/020x", "new"}, 201)});
      want.insert(want.begin() + 21, "inv/020x");
    }
    if (!page->next_cursor.has_value()) break;
    cursor = *page->next_cursor;
  }
  EXPECT_EQ(got, want);  // every record once, in order, none outside

  absl::StatusOr<StatePage> whole = ledger_->ScanState("kv", "", "", 100);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->items.size(), 32u);  // 30 - 1 + 1 + 2
  EXPECT_FALSE(whole->next_cursor.has_value());
  EXPECT_EQ(whole->items.front().key, "inu");
  EXPECT_EQ(whole->items.back().key, "other/1");

  EXPECT_EQ(ledger_->ScanState("kv", "inv/", "other", 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ScanState("nosuchapp", "", "", 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ScanState("kv", "", "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ScanState("kv", "", "", kMaxScanState + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<StatePage> nothing = ledger_->ScanState("kv", "zzz", "", 5);
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->items.empty());
  EXPECT_FALSE(nothing->next_cursor.has_value());
}

// Collects events from a subscriber.
class EventSink {
 public:
  void Add(std::string topic, uint16_t type, Bytes payload) {
    absl::MutexLock l(&mu_);
    events_.push_back({std::move(topic), type, std::move(payload)});
  }
  // Waits (up to `patience`) until `skip` + 1 events satisfy pred; returns
  // the payload of the last of them.
  std::optional<Bytes> WaitFor(
      const std::function<bool(const std::string&, uint16_t)>& pred,
      absl::Duration patience = absl::Seconds(30), int skip = 0) {
    absl::Time deadline = absl::Now() + patience;
    while (absl::Now() < deadline) {
      {
        absl::MutexLock l(&mu_);
        int seen = 0;
        for (const Event& e : events_) {
          if (pred(e.topic, e.type) && seen++ == skip) return e.payload;
        }
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return std::nullopt;
  }

 private:
  struct Event {
    std::string topic;
    uint16_t type;
    Bytes payload;
  };
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

TEST_F(StorageLedgerTest, CommitPublishesBlockCommittedWithItsTxs) {
  zmq::context_t ctx;
  const std::string endpoint =
      "inproc://" + testing::UniqueName("storage-events");
  absl::StatusOr<std::unique_ptr<Publisher>> pub =
      StartPublisher(ctx, endpoint, "storage-test");
  ASSERT_TRUE(pub.ok()) << pub.status();
  EventSink sink;
  absl::StatusOr<std::unique_ptr<Subscriber>> sub = StartSubscriber(
      ctx, endpoint, {kTopicBlockCommitted},
      [&sink](std::string_view topic, const Envelope& env, Bytes payload,
              uint64_t) { sink.Add(std::string(topic), env.type, payload); });
  ASSERT_TRUE(sub.ok()) << sub.status();

  // PUB/SUB drops what is sent before the subscription is in place: probe
  // until the subscriber hears us.
  constexpr uint16_t kProbe = 9999;
  bool heard = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!heard && absl::Now() < give_up) {
    (*pub)->Publish(kTopicBlockCommitted, kProbe, Bytes{});
    heard = sink.WaitFor([](const std::string&,
                            uint16_t type) { return type == kProbe; },
                         absl::Milliseconds(20))
                .has_value();
  }
  ASSERT_TRUE(heard);

  publisher_ = pub->get();
  Reopen();
  Bytes t1 = chain_.Tx(alice_, "set", {"a", "1"}, 1, 40);
  Bytes t2 = chain_.Tx(bob_, "set", {"b", "2"}, 1, 41);
  Block b1 = Next({t1, t2});
  ASSERT_TRUE(Commit(b1).ok());

  std::optional<Bytes> payload =
      sink.WaitFor([](const std::string& topic, uint16_t type) {
        return topic == kTopicBlockCommitted &&
               type == static_cast<uint16_t>(MsgType::kEventBlockCommitted);
      });
  ASSERT_TRUE(payload.has_value());
  absl::StatusOr<CommittedEvent> ev = DecodeCommittedEvent(*payload);
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->height, 1u);
  EXPECT_EQ(ev->block_hash, BlockHash(Suite(), b1.header));
  EXPECT_EQ(ev->txs, (std::vector<CommittedTx>{{Chain::HashOf(t1), 40},
                                               {Chain::HashOf(t2), 41}}));

  // A tx that does not decode is left out and a duplicate is kept, as in
  // the event GetCommitted rebuilds from the stored block.
  Bytes t3 = chain_.Tx(alice_, "set", {"c", "3"}, 2, 42);
  Block b2 = Next({t3, ToBytes("not a tx"), t1, t3});
  ASSERT_TRUE(Commit(b2).ok());
  std::optional<Bytes> payload2 = sink.WaitFor(
      [](const std::string& topic, uint16_t type) {
        return topic == kTopicBlockCommitted &&
               type == static_cast<uint16_t>(MsgType::kEventBlockCommitted);
      },
      absl::Seconds(30), /*skip=*/1);
  ASSERT_TRUE(payload2.has_value());
  absl::StatusOr<CommittedEvent> ev2 = DecodeCommittedEvent(*payload2);
  ASSERT_TRUE(ev2.ok()) << ev2.status();
  EXPECT_EQ(ev2->height, 2u);
  EXPECT_EQ(ev2->block_hash, BlockHash(Suite(), b2.header));
  EXPECT_EQ(ev2->txs, (std::vector<CommittedTx>{{Chain::HashOf(t3), 42},
                                                {Chain::HashOf(t1), 40},
                                                {Chain::HashOf(t3), 42}}));
  absl::StatusOr<CommittedPage> page = ledger_->GetCommitted(2, 2);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].txs, ev2->txs);
  // Stop the ledger before the publisher it uses goes away.
  Close();
  publisher_ = nullptr;
}

// Evidence records (evidence.cc): kept once, numbered densely, listed in
// pages, bounded, and durable across a reopen.

// A prevote of `key` (as validator `index`) for a block hash made of `tag`.
Vote SignedPrevote(const Chain& chain, const KeyPair& key, uint32_t index,
                   uint64_t height, uint32_t round, uint8_t tag) {
  Vote v;
  v.type = VoteType::kPrevote;
  v.height = height;
  v.round = round;
  v.block_hash.fill(tag);
  v.validator_index = index;
  absl::StatusOr<Bytes> sig =
      Suite().Sign(key.secret_key, VoteSignBytes(chain.genesis.chain_id, v));
  EXPECT_TRUE(sig.ok()) << sig.status();
  if (sig.ok()) v.signature = *sig;
  return v;
}

// A proposal of `key` (as validator 0) of a header-only block at `time_ms`.
Proposal SignedProposal(const Chain& chain, const KeyPair& key, uint64_t height,
                        uint32_t round, uint64_t time_ms) {
  Proposal p;
  p.height = height;
  p.round = round;
  p.proposer_index = 0;
  p.block.header.chain_id = chain.genesis.chain_id;
  p.block.header.height = height;
  p.block.header.time_ms = time_ms;
  const Hash32 h = BlockHash(Suite(), p.block.header);
  absl::StatusOr<Bytes> sig = Suite().Sign(
      key.secret_key, ProposalSignBytes(chain.genesis.chain_id, p, h));
  EXPECT_TRUE(sig.ok()) << sig.status();
  if (sig.ok()) p.signature = *sig;
  return p;
}

// The record of `e`, with its fields as consensus fills them.
EvidenceRecord RecordOf(const Evidence& e) {
  EvidenceRecord r;
  r.kind = std::string(EvidenceKind(e));
  r.height = EvidenceHeight(e);
  r.round = EvidenceRound(e);
  r.validator_index = EvidenceValidator(e);
  r.message = EncodeEvidence(e);
  return r;
}

// Valid evidence number i against chain's genesis (its one validator
// equivocates): a double prevote for even i, a double proposal for odd i.
EvidenceRecord EvidenceAt(const Chain& chain, int i) {
  const uint64_t height = 10 + static_cast<uint64_t>(i);
  const uint32_t round = static_cast<uint32_t>(i % 3);
  if (i % 2 == 0) {
    return RecordOf(
        DoubleVote{SignedPrevote(chain, chain.validator, 0, height, round, 1),
                   SignedPrevote(chain, chain.validator, 0, height, round, 2)});
  }
  return RecordOf(DoubleProposal{
      SignedProposal(chain, chain.validator, height, round, 1000),
      SignedProposal(chain, chain.validator, height, round, 2000)});
}

std::vector<EvidenceRecord> ListEvidence(Ledger& ledger, uint64_t from,
                                         uint32_t limit) {
  absl::StatusOr<std::vector<EvidenceRecord>> r =
      ledger.ListEvidence(from, limit);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::vector<EvidenceRecord>{};
}

TEST_F(StorageLedgerTest, KeepsEachRecordOnceInOrderAcrossAReopen) {
  EXPECT_TRUE(ListEvidence(*ledger_, 1, 10).empty());
  ASSERT_TRUE(
      ledger_->RecordEvidence({EvidenceAt(chain_, 0), EvidenceAt(chain_, 1)})
          .ok());
  // The same evidence again (a restarted consensus, or another round of
  // relays) and one duplicate inside the batch: kept once.
  ASSERT_TRUE(
      ledger_
          ->RecordEvidence({EvidenceAt(chain_, 1), EvidenceAt(chain_, 2),
                            EvidenceAt(chain_, 2)})
          .ok());
  Reopen();
  ASSERT_TRUE(
      ledger_->RecordEvidence({EvidenceAt(chain_, 0), EvidenceAt(chain_, 3)})
          .ok());
  const std::vector<EvidenceRecord> all = ListEvidence(*ledger_, 1, 100);
  ASSERT_EQ(all.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EvidenceRecord want = EvidenceAt(chain_, i);
    want.seq = static_cast<uint64_t>(i) + 1;
    EXPECT_EQ(all[i], want) << i;
  }
  // Pages.
  const std::vector<EvidenceRecord> page = ListEvidence(*ledger_, 2, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 2u);
  EXPECT_EQ(page[1].seq, 3u);
  EXPECT_TRUE(ListEvidence(*ledger_, 5, 10).empty());
}

TEST_F(StorageLedgerTest, RefusesBadRecordsAndKeepsNothingOfTheBatch) {
  EvidenceRecord no_kind = EvidenceAt(chain_, 0);
  no_kind.kind.clear();
  EvidenceRecord huge = EvidenceAt(chain_, 1);
  huge.message.assign(kMaxEvidenceMessageBytes + 1, 'x');
  EvidenceRecord empty = EvidenceAt(chain_, 2);
  empty.message.clear();
  for (const EvidenceRecord& bad : {no_kind, huge, empty}) {
    EXPECT_EQ(ledger_->RecordEvidence({EvidenceAt(chain_, 5), bad}).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ledger_
                ->RecordEvidence(std::vector<EvidenceRecord>(
                    kMaxListEvidence + 1, EvidenceAt(chain_, 6)))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ListEvidence(*ledger_, 1, 10).empty());
  EXPECT_EQ(ledger_->ListEvidence(0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListEvidence(1, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListEvidence(1, kMaxListEvidence + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StorageLedgerTest, RefusesForgedEvidenceAndKeepsNothingOfTheBatch) {
  const KeyPair stranger = Suite().GenerateKey();
  const Vote a = SignedPrevote(chain_, chain_.validator, 0, 20, 0, 1);
  const Vote b = SignedPrevote(chain_, chain_.validator, 0, 20, 0, 2);

  // Signed by a key that is not validator 0's: an accusation anyone could
  // make up.
  const EvidenceRecord bad_signature =
      RecordOf(DoubleVote{a, SignedPrevote(chain_, stranger, 0, 20, 0, 2)});
  // Two honest votes of different heights: no equivocation.
  const EvidenceRecord other_heights = RecordOf(
      DoubleVote{a, SignedPrevote(chain_, chain_.validator, 0, 21, 0, 2)});
  // Validator 3 does not exist in this genesis.
  const EvidenceRecord unknown_validator =
      RecordOf(DoubleVote{SignedPrevote(chain_, stranger, 3, 20, 0, 1),
                          SignedPrevote(chain_, stranger, 3, 20, 0, 2)});
  // Valid evidence under a record that accuses someone else.
  EvidenceRecord wrong_fields = RecordOf(DoubleVote{a, b});
  wrong_fields.validator_index = 1;
  wrong_fields.height = 99;
  // Not evidence at all.
  EvidenceRecord garbage = RecordOf(DoubleVote{a, b});
  garbage.message = ToBytes("evidence-0");
  // The same vote twice.
  const EvidenceRecord same = RecordOf(DoubleVote{a, a});

  const EvidenceRecord good = RecordOf(DoubleVote{a, b});
  int index = 0;
  for (const EvidenceRecord& bad :
       {bad_signature, other_heights, unknown_validator, wrong_fields, garbage,
        same}) {
    const absl::Status s = ledger_->RecordEvidence({good, bad});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << index << s;
    // The error names the bad record (the second of the call).
    EXPECT_THAT(std::string(s.message()),
                ::testing::HasSubstr("evidence record 1"))
        << index << s;
    ++index;
  }
  EXPECT_TRUE(ListEvidence(*ledger_, 1, 10).empty());

  // The valid one alone is kept.
  ASSERT_TRUE(ledger_->RecordEvidence({good}).ok());
  const std::vector<EvidenceRecord> kept = ListEvidence(*ledger_, 1, 10);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].message, good.message);
  EXPECT_EQ(kept[0].validator_index, 0u);
}

// ------------------------------------------------------ admission records

// Keeps every payload published, in order.
class RecordingPublisher final : public Publisher {
 public:
  uint64_t Publish(std::string_view topic, uint16_t type, Bytes payload,
                   uint64_t) override {
    absl::MutexLock l(&mu_);
    if (topic == kTopicBlockCommitted &&
        type == static_cast<uint16_t>(MsgType::kEventBlockCommitted)) {
      events_.push_back(std::move(payload));
    }
    return events_.size();
  }
  std::vector<Bytes> events() const {
    absl::MutexLock l(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Bytes> events_;
};

// A test stand-in for the admin app: writes and deletes the records that
// admission follows. Methods: add <hex key>, remove <hex key>, config,
// unconfig, other <key> (an admin record that is no member's).
class TestAdminApp final : public NativeApp {
 public:
  std::string_view name() const override { return admin::kAppName; }
  absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                     StateOverlay* state) const override {
    const Transaction& tx = *ctx.tx;
    const std::string arg = tx.args.empty() ? "" : tx.args[0];
    if (tx.method == "add") {
      absl::StatusOr<Bytes> key = FromHex(arg);
      if (!key.ok()) return ExecResult{ExecCode::kBadArgs, "bad key"};
      admin::MemberRecord m{*key, "org-a", {admin::Role::kMember}, 0};
      state->Put(admin::kAppName, admin::MemberKey(*key),
                 StateEntry{ToBytes(admin::EncodeMember(m)), tx.sender});
    } else if (tx.method == "remove") {
      state->Delete(admin::kAppName, absl::StrCat("member/", arg));
    } else if (tx.method == "config") {
      state->Put(admin::kAppName, "config", StateEntry{ToBytes("{}"), {}});
    } else if (tx.method == "unconfig") {
      state->Delete(admin::kAppName, "config");
    } else if (tx.method == "other") {
      state->Put(admin::kAppName, arg, StateEntry{ToBytes("x"), {}});
    } else {
      return ExecResult{ExecCode::kUnknownMethod, tx.method};
    }
    return ExecResult{};
  }
  absl::Status CheckQueryKey(std::string_view) const override {
    return absl::OkStatus();
  }
};

class AdmissionLedgerTest : public StorageLedgerTest {
 protected:
  AdmissionLedgerTest() {
    apps_.Add(std::make_unique<TestAdminApp>());
    publisher_ = &events_;
    Reopen();
  }
  ~AdmissionLedgerTest() override { Close(); }

  Bytes AdminTx(const std::string& method, std::vector<std::string> args) {
    Transaction tx;
    tx.chain_id = chain_.genesis.chain_id;
    tx.nonce = ++nonce_;
    tx.valid_until = 1000;
    tx.sender = alice_.public_key;
    tx.app = std::string(admin::kAppName);
    tx.method = method;
    tx.args = std::move(args);
    absl::StatusOr<Bytes> sig =
        Suite().Sign(alice_.secret_key, TxSignBytes(tx));
    EXPECT_TRUE(sig.ok()) << sig.status();
    if (sig.ok()) tx.signature = *sig;
    return EncodeTx(tx);
  }

  CommittedEvent LastEvent() {
    std::vector<Bytes> all = events_.events();
    EXPECT_FALSE(all.empty());
    if (all.empty()) return {};
    absl::StatusOr<CommittedEvent> ev = DecodeCommittedEvent(all.back());
    EXPECT_TRUE(ev.ok()) << ev.status();
    return ev.ok() ? *ev : CommittedEvent{};
  }

  std::vector<Bytes> AllMembers(uint32_t limit) {
    std::vector<Bytes> out;
    Bytes cursor;
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<MemberPage> page = ledger_->ListMembers(cursor, limit);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      out.insert(out.end(), page->public_keys.begin(), page->public_keys.end());
      if (!page->next_cursor.has_value()) break;
      cursor = *page->next_cursor;
    }
    return out;
  }

  RecordingPublisher events_;
  uint64_t nonce_ = 0;
};

TEST_F(AdmissionLedgerTest, CommitEventsCarryMemberChangesAndPermissioned) {
  const Bytes k1(32, 0x11), k2(32, 0x22), k3(32, 0x33);
  // Block 1: an open chain, kv only: no changes, not permissioned.
  CommitTxs({chain_.Tx(bob_, "set", {"a", "1"}, 1)});
  CommittedEvent e1 = LastEvent();
  EXPECT_EQ(e1.height, 1u);
  EXPECT_TRUE(e1.member_changes.empty());
  EXPECT_FALSE(e1.permissioned);

  // Block 2: the consortium appears: config and three members (written in
  // another order than their keys'), and an admin record that is no
  // member's.
  CommitTxs({AdminTx("add", {ToHex(k3)}), AdminTx("add", {ToHex(k1)}),
             AdminTx("config", {}), AdminTx("add", {ToHex(k2)}),
             AdminTx("other", {"org/org-a"})});
  CommittedEvent e2 = LastEvent();
  EXPECT_EQ(e2.height, 2u);
  EXPECT_TRUE(e2.permissioned);
  EXPECT_EQ(e2.member_changes,
            (std::vector<MemberChange>{{k1, true}, {k2, true}, {k3, true}}));

  // Block 3: nothing of admin's: still permissioned, no changes.
  CommitTxs({chain_.Tx(bob_, "set", {"b", "2"}, 2)});
  CommittedEvent e3 = LastEvent();
  EXPECT_TRUE(e3.permissioned);
  EXPECT_TRUE(e3.member_changes.empty());

  // Block 4: k2 removed, k1 written again (a changed record).
  CommitTxs({AdminTx("remove", {ToHex(k2)}), AdminTx("add", {ToHex(k1)})});
  CommittedEvent e4 = LastEvent();
  EXPECT_TRUE(e4.permissioned);
  EXPECT_EQ(e4.member_changes,
            (std::vector<MemberChange>{{k1, true}, {k2, false}}));

  // Block 5: the chain opens again.
  CommitTxs({AdminTx("unconfig", {})});
  CommittedEvent e5 = LastEvent();
  EXPECT_FALSE(e5.permissioned);
  EXPECT_TRUE(e5.member_changes.empty());

  // GetCommitted answers the same events, also after a reopen.
  for (int pass = 0; pass < 2; ++pass) {
    absl::StatusOr<CommittedPage> page = ledger_->GetCommitted(1, 5);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->events.size(), 5u);
    EXPECT_EQ(page->events[0], e1);
    EXPECT_EQ(page->events[1], e2);
    EXPECT_EQ(page->events[2], e3);
    EXPECT_EQ(page->events[3], e4);
    EXPECT_EQ(page->events[4], e5);
    Reopen();
  }
}

TEST_F(AdmissionLedgerTest, ListMembersPagesThroughTheMemberSet) {
  absl::StatusOr<MemberPage> empty = ledger_->ListMembers(Bytes(), 10);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty,
            (MemberPage{0, false, {}, std::nullopt, chain_.genesis.rules}));

  std::vector<Bytes> keys;
  std::vector<Bytes> txs{AdminTx("config", {}), AdminTx("other", {"org/x"})};
  for (int i = 0; i < 7; ++i) {
    keys.push_back(Bytes(32, static_cast<uint8_t>(0x10 * (7 - i))));
    txs.push_back(AdminTx("add", {ToHex(keys.back())}));
  }
  CommitTxs(txs);
  std::sort(keys.begin(), keys.end());
  absl::StatusOr<MemberPage> first = ledger_->ListMembers(Bytes(), 3);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->height, 1u);
  EXPECT_TRUE(first->permissioned);
  EXPECT_EQ(first->public_keys,
            std::vector<Bytes>(keys.begin(), keys.begin() + 3));
  EXPECT_EQ(first->next_cursor, keys[2]);
  EXPECT_EQ(AllMembers(3), keys);
  EXPECT_EQ(AllMembers(1000), keys);

  // The permissioned flag survives a reopen.
  Reopen();
  absl::StatusOr<MemberPage> again = ledger_->ListMembers(Bytes(), 1000);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->permissioned);
  EXPECT_EQ(again->public_keys, keys);

  EXPECT_EQ(ledger_->ListMembers(Bytes(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListMembers(Bytes(), kMaxListMembers + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListMembers(Bytes(kMaxMemberKeyBytes + 1, 1), 10)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AdmissionRecordTest, RoundTripsAndDecodesStrictly) {
  const Bytes k1(32, 1), k2(32, 2);
  keys::AdmissionRecord r{true, {{k1, true}, {k2, false}}, std::nullopt};
  const std::string v = keys::EncodeAdmission(r);
  absl::StatusOr<keys::AdmissionRecord> d = keys::DecodeAdmission(v);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, r);
  for (size_t n = 0; n < v.size(); ++n) {
    EXPECT_FALSE(keys::DecodeAdmission(v.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(keys::DecodeAdmission(v + "x").ok());
  // A block that changed the chain rules: they follow the changes; a record
  // without them (as written before rules could change) still decodes.
  keys::AdmissionRecord with_rules = r;
  with_rules.rules = ChainRules{};
  with_rules.rules->replay_window = 5000;
  const std::string vr = keys::EncodeAdmission(with_rules);
  ASSERT_EQ(vr.substr(0, v.size()), v);
  d = keys::DecodeAdmission(vr);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, with_rules);
  for (size_t n = v.size() + 1; n < vr.size(); ++n) {
    EXPECT_FALSE(keys::DecodeAdmission(vr.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(keys::DecodeAdmission(v + std::string(1, '\0')).ok());
  with_rules.rules->replay_window = 0;
  EXPECT_FALSE(keys::DecodeAdmission(keys::EncodeAdmission(with_rules)).ok());
  keys::AdmissionRecord bad = r;
  std::swap(bad.member_changes[0], bad.member_changes[1]);
  EXPECT_FALSE(keys::DecodeAdmission(keys::EncodeAdmission(bad)).ok());
  bad = r;
  bad.member_changes[1].public_key = k1;
  EXPECT_FALSE(keys::DecodeAdmission(keys::EncodeAdmission(bad)).ok());
  std::string flag = v;
  flag[0] = 2;
  EXPECT_FALSE(keys::DecodeAdmission(flag).ok());
}

TEST(AdmissionOfTest, OnlyAdminMemberKeysAndConfig) {
  StateOverlay::WriteSet w;
  const Bytes k(32, 0xab);
  w[keys::State("kv", "member/" + ToHex(k))] = StateEntry{};
  w[keys::State("admin", "member/" + ToHex(k))] = StateEntry{};
  w[keys::State("admin", "member/XYZ")] = StateEntry{};
  w[keys::State("admin", "member/" + ToHex(Bytes(32, 0xcd)))] = std::nullopt;
  w[keys::State("admin", "org/a")] = StateEntry{};
  keys::AdmissionRecord r = AdmissionOf(w, false);
  EXPECT_FALSE(r.permissioned);
  EXPECT_EQ(r.member_changes,
            (std::vector<MemberChange>{{k, true}, {Bytes(32, 0xcd), false}}));
  EXPECT_TRUE(AdmissionOf({}, true).permissioned);
  w[keys::State("admin", "config")] = std::nullopt;
  EXPECT_FALSE(AdmissionOf(w, true).permissioned);
}

}  // namespace
}  // namespace consortia::storage
