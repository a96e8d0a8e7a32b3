// The proof bundles (proof_bundle.h): their codecs and their offline
// verification. This binary links consortia_proof_bundle alone (no bus, no
// ZeroMQ), as `consortia verify` and a client library would.
#include "consortia/proof_bundle.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"
#include "gtest/gtest.h"
#include "test_chain.h"

namespace consortia {
namespace {

using ::consortia::testing::Chain;
using ::consortia::testing::ExpectRejectsTruncationAndTrailing;
using ::consortia::testing::HashOf;

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

TEST(ProofBundleCodecTest, TxRecordRoundTrip) {
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

TEST(ProofBundleCodecTest, BlockRecordRoundTrip) {
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
}  // namespace
}  // namespace consortia
