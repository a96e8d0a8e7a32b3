// The canonical encoding: exact wire bytes, round trips of every ledger type
// (fixed examples and seeded random ones), and every class of malformed
// input the decoders must reject.
#include "consortia/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "consortia/bytes.h"
#include "consortia/merkle.h"
#include "consortia/types.h"

namespace consortia {
namespace {

using ::testing::HasSubstr;

Bytes Hex(std::string_view h) {
  absl::StatusOr<Bytes> b = FromHex(h);
  EXPECT_TRUE(b.ok()) << h;
  return b.ok() ? *b : Bytes{};
}

// ---------------------------------------------------------------------------
// Random instances, from a fixed seed so failures reproduce.

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint64_t U64() {
    // Spread over magnitudes so every varint length is exercised.
    const int bits = static_cast<int>(rng_() % 65);
    if (bits == 0) return 0;
    const uint64_t v = rng_();
    return bits == 64 ? v : v & ((uint64_t{1} << bits) - 1);
  }
  uint32_t U32() { return static_cast<uint32_t>(U64()); }
  size_t Size(size_t max) { return static_cast<size_t>(rng_() % (max + 1)); }
  Bytes RandBytes(size_t max) {
    Bytes b(Size(max));
    for (uint8_t& x : b) x = static_cast<uint8_t>(rng_());
    return b;
  }
  std::string RandString(size_t max) {
    Bytes b = RandBytes(max);
    return std::string(b.begin(), b.end());
  }
  Hash32 RandHash() {
    Hash32 h{};
    for (uint8_t& x : h) x = static_cast<uint8_t>(rng_());
    return h;
  }

  Transaction Tx() {
    Transaction tx;
    tx.chain_id = RandString(kMaxChainIdBytes);
    tx.nonce = U64();
    tx.valid_until = U64();
    tx.sender = RandBytes(kMaxPublicKeyBytes);
    tx.app = RandString(kMaxAppBytes);
    tx.method = RandString(kMaxMethodBytes);
    tx.args.resize(Size(kMaxArgs));
    for (std::string& a : tx.args) a = RandString(300);
    tx.signature = RandBytes(kMaxSignatureBytes);
    return tx;
  }
  BlockHeader Header() {
    BlockHeader h;
    h.chain_id = RandString(kMaxChainIdBytes);
    h.height = U64();
    h.time_ms = U64();
    h.proposer = RandBytes(kMaxPublicKeyBytes);
    h.prev_hash = RandHash();
    h.tx_root = RandHash();
    h.state_root = RandHash();
    h.receipts_root = RandHash();
    return h;
  }
  Block RandBlock() {
    Block b;
    b.header = Header();
    b.txs.resize(Size(20));
    for (Bytes& tx : b.txs) tx = EncodeTx(Tx());
    return b;
  }
  Vote RandVote() {
    Vote v;
    v.type = rng_() % 2 ? VoteType::kPrevote : VoteType::kPrecommit;
    v.height = U64();
    v.round = U32();
    v.block_hash = rng_() % 4 ? RandHash() : Hash32{};
    v.validator_index = U32();
    v.signature = RandBytes(kMaxSignatureBytes);
    return v;
  }
  CommitCertificate Cert() {
    CommitCertificate c;
    c.height = U64();
    c.round = U32();
    c.block_hash = RandHash();
    uint32_t index = static_cast<uint32_t>(Size(3));
    c.sigs.resize(Size(30));
    for (CommitSig& s : c.sigs) {
      s.validator_index = index;
      index += 1 + static_cast<uint32_t>(Size(5));
      s.signature = RandBytes(kMaxSignatureBytes);
    }
    return c;
  }
  Receipt RandReceipt() {
    Receipt r;
    r.tx_hash = RandHash();
    r.code = static_cast<ExecCode>(Size(7));
    r.log = RandString(kMaxLogBytes);
    return r;
  }

 private:
  std::mt19937_64 rng_;
};

// A decoder under test: OK iff the bytes decode.
using DecodeFn = std::function<absl::Status(ByteView)>;

DecodeFn TxDecoder() {
  return [](ByteView b) { return DecodeTx(b).status(); };
}
DecodeFn BlockDecoder() {
  return [](ByteView b) { return DecodeBlock(b).status(); };
}
DecodeFn VoteDecoder() {
  return [](ByteView b) { return DecodeVote(b).status(); };
}
DecodeFn CertDecoder() {
  return [](ByteView b) { return DecodeCertificate(b).status(); };
}
DecodeFn ReceiptDecoder() {
  return [](ByteView b) { return DecodeReceipt(b).status(); };
}
DecodeFn ProofDecoder() {
  return [](ByteView b) -> absl::Status {
    Decoder d(b);
    MerkleProof p;
    if (absl::Status s = DecodeMerkleProof(&d, &p); !s.ok()) return s;
    return d.ExpectEnd();
  };
}

// Every strict prefix of a valid encoding is rejected as InvalidArgument, and
// so is the encoding with one extra byte.
void ExpectPrefixesAndTrailingRejected(const Bytes& valid,
                                       const DecodeFn& decode) {
  ASSERT_TRUE(decode(valid).ok()) << decode(valid);
  for (size_t len = 0; len < valid.size(); ++len) {
    const absl::Status s = decode(ByteView(valid.data(), len));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
        << "prefix of " << len << " of " << valid.size() << " bytes: " << s;
  }
  Bytes longer = valid;
  longer.push_back(0);
  const absl::Status s = decode(longer);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("trailing bytes"));
}

// ---------------------------------------------------------------------------
// Encoder / Decoder primitives

TEST(CodecTest, FixedIntsAreLittleEndian) {
  Encoder e;
  e.PutU8(0x01);
  e.PutU16(0x0302);
  e.PutU32(0x07060504);
  e.PutU64(0x0f0e0d0c0b0a0908);
  EXPECT_EQ(ToHex(e.data()), "0102030405060708090a0b0c0d0e0f");

  Decoder d(e.data());
  uint8_t a = 0;
  uint16_t b = 0;
  uint32_t c = 0;
  uint64_t x = 0;
  ASSERT_TRUE(d.GetU8(&a).ok());
  ASSERT_TRUE(d.GetU16(&b).ok());
  ASSERT_TRUE(d.GetU32(&c).ok());
  ASSERT_TRUE(d.GetU64(&x).ok());
  EXPECT_EQ(a, 0x01);
  EXPECT_EQ(b, 0x0302);
  EXPECT_EQ(c, 0x07060504u);
  EXPECT_EQ(x, 0x0f0e0d0c0b0a0908u);
  EXPECT_TRUE(d.ExpectEnd().ok());
}

TEST(CodecTest, VarintKnownEncodings) {
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {0, "00"},
      {1, "01"},
      {127, "7f"},
      {128, "8001"},
      {300, "ac02"},
      {16383, "ff7f"},
      {16384, "808001"},
      {uint64_t{1} << 63, "80808080808080808001"},
      {std::numeric_limits<uint64_t>::max(), "ffffffffffffffffff01"},
  };
  for (const auto& [value, hex] : cases) {
    Encoder e;
    e.PutVarint(value);
    EXPECT_EQ(ToHex(e.data()), hex) << value;
    Decoder d(e.data());
    uint64_t back = 0;
    ASSERT_TRUE(d.GetVarint(&back).ok()) << hex;
    EXPECT_EQ(back, value);
    EXPECT_TRUE(d.ExpectEnd().ok());
  }
}

TEST(CodecTest, VarintRandomRoundTrip) {
  Gen gen(20240501);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t v = gen.U64();
    Encoder e;
    e.PutVarint(v);
    ASSERT_LE(e.size(), 10u);
    Decoder d(e.data());
    uint64_t back = 0;
    ASSERT_TRUE(d.GetVarint(&back).ok()) << v;
    ASSERT_EQ(back, v);
    ASSERT_TRUE(d.ExpectEnd().ok());
  }
}

absl::Status DecodeVarintHex(std::string_view hex) {
  const Bytes b = Hex(hex);
  Decoder d(b);
  uint64_t v = 0;
  return d.GetVarint(&v);
}

TEST(CodecTest, VarintRejectsNonCanonicalForms) {
  // A zero final byte means a shorter encoding existed.
  for (std::string_view hex :
       {"8000", "ff00", "808000", "8180808000", "ffffffffffffffffff00"}) {
    const absl::Status s = DecodeVarintHex(hex);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << hex;
    EXPECT_THAT(s.message(), HasSubstr("non-canonical")) << hex;
  }
}

TEST(CodecTest, VarintRejectsOverflowAndOverLongForms) {
  // The 10th byte may only be 0x01: anything else overflows 64 bits or
  // continues past 10 bytes.
  for (std::string_view hex :
       {"ffffffffffffffffff02", "ffffffffffffffffff7f", "ffffffffffffffffff81",
        "8080808080808080808001", "ffffffffffffffffffffff01"}) {
    const absl::Status s = DecodeVarintHex(hex);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << hex;
  }
}

TEST(CodecTest, VarintRejectsTruncation) {
  for (std::string_view hex : {"", "80", "ff", "ffff", "ffffffffffffffffff"}) {
    const absl::Status s = DecodeVarintHex(hex);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << hex;
    EXPECT_THAT(s.message(), HasSubstr("truncated")) << hex;
  }
}

TEST(CodecTest, ErrorsNameTheOffset) {
  // Three good bytes, then a non-canonical varint at offset 3.
  const Bytes b = Hex("0102038000");
  Decoder d(b);
  uint8_t x = 0;
  ASSERT_TRUE(d.GetU8(&x).ok());
  ASSERT_TRUE(d.GetU8(&x).ok());
  ASSERT_TRUE(d.GetU8(&x).ok());
  uint64_t v = 0;
  const absl::Status s = d.GetVarint(&v);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("offset 3"));
}

TEST(CodecTest, BytesAndStringsRoundTrip) {
  Encoder e;
  e.PutBytes(Hex("deadbeef"));
  e.PutString("héllo");
  e.PutBytes({});
  e.PutBool(true);
  e.PutBool(false);
  Hash32 h{};
  h.fill(0x5a);
  e.PutHash(h);

  Decoder d(e.data());
  Bytes b;
  std::string s;
  Bytes empty = {1};
  bool t = false;
  bool f = true;
  Hash32 h2{};
  ASSERT_TRUE(d.GetBytes(&b, 4).ok());
  ASSERT_TRUE(d.GetString(&s, 100).ok());
  ASSERT_TRUE(d.GetBytes(&empty, 0).ok());
  ASSERT_TRUE(d.GetBool(&t).ok());
  ASSERT_TRUE(d.GetBool(&f).ok());
  ASSERT_TRUE(d.GetHash(&h2).ok());
  EXPECT_TRUE(d.ExpectEnd().ok());
  EXPECT_EQ(ToHex(b), "deadbeef");
  EXPECT_EQ(s, "héllo");
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(t);
  EXPECT_FALSE(f);
  EXPECT_EQ(h2, h);
}

TEST(CodecTest, LengthOverBoundIsRejected) {
  Encoder e;
  e.PutBytes(Hex("0102030405"));
  Decoder d(e.data());
  Bytes b;
  const absl::Status s = d.GetBytes(&b, 4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("over its bound"));

  Decoder d2(e.data());
  std::string str;
  EXPECT_EQ(d2.GetString(&str, 4).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, LengthOverRemainingIsRejected) {
  // Claims 5 bytes, holds 4.
  const Bytes b = Hex("0501020304");
  Decoder d(b);
  Bytes out;
  const absl::Status s = d.GetBytes(&out, 1000);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
}

TEST(CodecTest, HugeLengthIsRejectedWithoutAllocating) {
  Encoder e;
  e.PutVarint(std::numeric_limits<uint64_t>::max());
  Decoder d(e.data());
  Bytes out;
  EXPECT_EQ(d.GetBytes(&out, std::numeric_limits<size_t>::max()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
}

TEST(CodecTest, CountOverBoundIsRejected) {
  Encoder e;
  e.PutVarint(17);
  e.PutRaw(Bytes(100, 0));
  Decoder d(e.data());
  uint64_t n = 0;
  const absl::Status s = d.GetCount(&n, 16);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("over its bound"));
}

TEST(CodecTest, CountOverRemainingIsRejected) {
  // 10 elements of at least 32 bytes cannot fit in 100 bytes.
  Encoder e;
  e.PutVarint(10);
  e.PutRaw(Bytes(100, 0));
  Decoder d(e.data());
  uint64_t n = 0;
  const absl::Status s = d.GetCount(&n, 1000, 32);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("remaining"));

  // Three of them can.
  Encoder ok;
  ok.PutVarint(3);
  ok.PutRaw(Bytes(96, 0));
  Decoder d2(ok.data());
  ASSERT_TRUE(d2.GetCount(&n, 1000, 32).ok());
  EXPECT_EQ(n, 3u);
}

TEST(CodecTest, BadBoolIsRejected) {
  for (uint8_t b : {2, 0x80, 0xff}) {
    const Bytes in = {b};
    Decoder d(in);
    bool v = false;
    EXPECT_EQ(d.GetBool(&v).code(), absl::StatusCode::kInvalidArgument) << +b;
  }
}

TEST(CodecTest, FixedIntsRejectTruncation) {
  const Bytes in = Hex("01020304050607");
  for (size_t len = 0; len < in.size(); ++len) {
    Decoder d(ByteView(in.data(), len));
    uint64_t v = 0;
    EXPECT_EQ(d.GetU64(&v).code(), absl::StatusCode::kInvalidArgument);
  }
  Decoder d(ByteView(in.data(), 3));
  uint32_t v32 = 0;
  EXPECT_EQ(d.GetU32(&v32).code(), absl::StatusCode::kInvalidArgument);
  Decoder d1(ByteView(in.data(), 1));
  uint16_t v16 = 0;
  EXPECT_EQ(d1.GetU16(&v16).code(), absl::StatusCode::kInvalidArgument);
  Hash32 h{};
  Decoder d2(in);
  EXPECT_EQ(d2.GetHash(&h).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, ExpectEndReportsTrailingBytes) {
  const Bytes in = Hex("0102");
  Decoder d(in);
  uint8_t v = 0;
  ASSERT_TRUE(d.GetU8(&v).ok());
  const absl::Status s = d.ExpectEnd();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("trailing bytes"));
  EXPECT_EQ(d.remaining(), 1u);
}

// ---------------------------------------------------------------------------
// Ledger types: fixed examples

Transaction SampleTx() {
  Transaction tx;
  tx.chain_id = "localnet";
  tx.nonce = 42;
  tx.valid_until = 1000;
  tx.sender = Bytes(32, 0x11);
  tx.app = "kv";
  tx.method = "set";
  tx.args = {"key", std::string("v\0al\xff", 5)};
  tx.signature = Bytes(64, 0x22);
  return tx;
}

BlockHeader SampleHeader() {
  BlockHeader h;
  h.chain_id = "localnet";
  h.height = 7;
  h.time_ms = 1700000000000;
  h.proposer = Bytes(32, 0x33);
  h.prev_hash.fill(1);
  h.tx_root.fill(2);
  h.state_root.fill(3);
  h.receipts_root.fill(4);
  return h;
}

TEST(CodecTest, VoteWireFormatIsPinned) {
  Vote v;
  v.type = VoteType::kPrecommit;
  v.height = 5;
  v.round = 1;
  v.block_hash.fill(0xab);
  v.validator_index = 3;
  v.signature = {1, 2};
  std::string ab;
  for (int i = 0; i < 32; ++i) ab += "ab";
  EXPECT_EQ(ToHex(EncodeVote(v)), "020501" + ab + "03020102");
}

TEST(CodecTest, TxRoundTrip) {
  const Transaction tx = SampleTx();
  absl::StatusOr<Transaction> back = DecodeTx(EncodeTx(tx));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, tx);

  Transaction empty;
  back = DecodeTx(EncodeTx(empty));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, empty);
}

TEST(CodecTest, BlockRoundTripKeepsTxsOpaque) {
  Block b;
  b.header = SampleHeader();
  b.txs = {EncodeTx(SampleTx()), Hex("ffff"), {}};  // not all valid txs
  absl::StatusOr<Block> back = DecodeBlock(EncodeBlock(b));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, b);
}

TEST(CodecTest, HeaderRoundTripThroughDecoder) {
  Encoder e;
  EncodeHeader(SampleHeader(), &e);
  e.PutU8(9);  // the caller's next field
  Decoder d(e.data());
  BlockHeader h;
  ASSERT_TRUE(DecodeHeader(&d, &h).ok());
  EXPECT_EQ(h, SampleHeader());
  EXPECT_EQ(d.remaining(), 1u);
}

TEST(CodecTest, VoteCertificateReceiptRoundTrip) {
  Vote v;
  v.type = VoteType::kPrevote;
  v.height = 9;
  v.round = std::numeric_limits<uint32_t>::max();
  v.validator_index = std::numeric_limits<uint32_t>::max();
  v.signature = Bytes(64, 7);
  absl::StatusOr<Vote> vb = DecodeVote(EncodeVote(v));
  ASSERT_TRUE(vb.ok()) << vb.status();
  EXPECT_EQ(*vb, v);

  CommitCertificate c;
  c.height = 9;
  c.round = 2;
  c.block_hash.fill(9);
  c.sigs = {{0, Bytes(64, 1)}, {2, Bytes(64, 2)}, {3, Bytes(64, 3)}};
  absl::StatusOr<CommitCertificate> cb =
      DecodeCertificate(EncodeCertificate(c));
  ASSERT_TRUE(cb.ok()) << cb.status();
  EXPECT_EQ(*cb, c);

  Receipt r;
  r.tx_hash.fill(5);
  r.code = ExecCode::kNotOwner;
  r.log = "not the owner of key 'a'";
  absl::StatusOr<Receipt> rb = DecodeReceipt(EncodeReceipt(r));
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(*rb, r);
}

TEST(CodecTest, MerkleProofRoundTrip) {
  MerkleProof p;
  p.index = 5;
  p.leaf_count = 6;
  p.path = {Hash32{}, Hash32{}, Hash32{}};
  p.path[1].fill(0x77);
  Encoder e;
  EncodeMerkleProof(p, &e);
  Decoder d(e.data());
  MerkleProof back;
  ASSERT_TRUE(DecodeMerkleProof(&d, &back).ok());
  EXPECT_TRUE(d.ExpectEnd().ok());
  EXPECT_EQ(back.index, p.index);
  EXPECT_EQ(back.leaf_count, p.leaf_count);
  EXPECT_EQ(back.path, p.path);
}

// ---------------------------------------------------------------------------
// Ledger types: seeded random round trips, truncation and trailing bytes

TEST(CodecTest, RandomTxsRoundTripAndRejectEveryTruncation) {
  Gen gen(1);
  for (int i = 0; i < 60; ++i) {
    const Transaction tx = gen.Tx();
    const Bytes enc = EncodeTx(tx);
    absl::StatusOr<Transaction> back = DecodeTx(enc);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, tx);
    ASSERT_EQ(EncodeTx(*back), enc);
    if (i < 10) ExpectPrefixesAndTrailingRejected(enc, TxDecoder());
  }
}

TEST(CodecTest, RandomBlocksRoundTripAndRejectEveryTruncation) {
  Gen gen(2);
  for (int i = 0; i < 20; ++i) {
    const Block b = gen.RandBlock();
    const Bytes enc = EncodeBlock(b);
    absl::StatusOr<Block> back = DecodeBlock(enc);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, b);
    ASSERT_EQ(EncodeBlock(*back), enc);
    if (i < 3) ExpectPrefixesAndTrailingRejected(enc, BlockDecoder());
  }
}

TEST(CodecTest, RandomVotesRoundTripAndRejectEveryTruncation) {
  Gen gen(3);
  for (int i = 0; i < 200; ++i) {
    const Vote v = gen.RandVote();
    const Bytes enc = EncodeVote(v);
    absl::StatusOr<Vote> back = DecodeVote(enc);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, v);
    if (i < 20) ExpectPrefixesAndTrailingRejected(enc, VoteDecoder());
  }
}

TEST(CodecTest, RandomCertificatesRoundTripAndRejectEveryTruncation) {
  Gen gen(4);
  for (int i = 0; i < 100; ++i) {
    const CommitCertificate c = gen.Cert();
    const Bytes enc = EncodeCertificate(c);
    absl::StatusOr<CommitCertificate> back = DecodeCertificate(enc);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, c);
    if (i < 10) ExpectPrefixesAndTrailingRejected(enc, CertDecoder());
  }
}

TEST(CodecTest, RandomReceiptsRoundTripAndRejectEveryTruncation) {
  Gen gen(5);
  for (int i = 0; i < 100; ++i) {
    const Receipt r = gen.RandReceipt();
    const Bytes enc = EncodeReceipt(r);
    absl::StatusOr<Receipt> back = DecodeReceipt(enc);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, r);
    if (i < 10) ExpectPrefixesAndTrailingRejected(enc, ReceiptDecoder());
  }
}

TEST(CodecTest, MerkleProofRejectsEveryTruncation) {
  MerkleProof p;
  p.index = 300;
  p.leaf_count = 1000;
  p.path.resize(10);
  Encoder e;
  EncodeMerkleProof(p, &e);
  ExpectPrefixesAndTrailingRejected(e.data(), ProofDecoder());
}

// ---------------------------------------------------------------------------
// Ledger types: limits and semantic malformations

TEST(CodecTest, TxFieldsOverTheirLimitsAreRejected) {
  auto expect_rejected = [](const Transaction& tx, std::string_view what) {
    const absl::Status s = DecodeTx(EncodeTx(tx)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << what;
  };
  Transaction tx = SampleTx();
  tx.chain_id.assign(kMaxChainIdBytes + 1, 'c');
  expect_rejected(tx, "chain_id");
  tx = SampleTx();
  tx.app.assign(kMaxAppBytes + 1, 'a');
  expect_rejected(tx, "app");
  tx = SampleTx();
  tx.method.assign(kMaxMethodBytes + 1, 'm');
  expect_rejected(tx, "method");
  tx = SampleTx();
  tx.args.assign(kMaxArgs + 1, "x");
  expect_rejected(tx, "arg count");
  tx = SampleTx();
  tx.args = {std::string(kMaxArgBytes + 1, 'x')};
  expect_rejected(tx, "arg size");
  tx = SampleTx();
  tx.sender.assign(kMaxPublicKeyBytes + 1, 1);
  expect_rejected(tx, "sender");
  tx = SampleTx();
  tx.signature.assign(kMaxSignatureBytes + 1, 1);
  expect_rejected(tx, "signature");
  // Every field within its own limit, the whole over kMaxTxBytes.
  tx = SampleTx();
  tx.args.assign(kMaxArgs, std::string(kMaxArgBytes, 'x'));
  expect_rejected(tx, "total size");

  // At the limits exactly, it decodes.
  tx = SampleTx();
  tx.chain_id.assign(kMaxChainIdBytes, 'c');
  tx.app.assign(kMaxAppBytes, 'a');
  tx.method.assign(kMaxMethodBytes, 'm');
  tx.args.assign(3, std::string(kMaxArgBytes, 'x'));
  tx.sender.assign(kMaxPublicKeyBytes, 1);
  tx.signature.assign(kMaxSignatureBytes, 1);
  EXPECT_TRUE(DecodeTx(EncodeTx(tx)).ok());
}

TEST(CodecTest, ForgedArgCountIsRejected) {
  // A tx whose arg count claims more entries than bytes remain.
  Encoder e;
  e.PutString("c");
  e.PutU64(1);
  e.PutVarint(1);
  e.PutBytes({});
  e.PutString("kv");
  e.PutString("set");
  e.PutVarint(15);
  e.PutString("a");
  const absl::Status s = DecodeTx(e.data()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, BlockLimitsAreEnforced) {
  Block b;
  b.header = SampleHeader();
  b.txs = {Bytes(kMaxTxBytes + 1, 0)};
  EXPECT_EQ(DecodeBlock(EncodeBlock(b)).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A tx count far beyond what the remaining bytes hold.
  Encoder e;
  EncodeHeader(SampleHeader(), &e);
  e.PutVarint(kMaxBlockTxs);
  e.PutBytes(Hex("00"));
  EXPECT_EQ(DecodeBlock(e.data()).status().code(),
            absl::StatusCode::kInvalidArgument);

  Encoder over;
  EncodeHeader(SampleHeader(), &over);
  over.PutVarint(kMaxBlockTxs + 1);
  over.PutRaw(Bytes(kMaxBlockTxs + 1, 0));
  const absl::Status s = DecodeBlock(over.data()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("over its bound"));
}

TEST(CodecTest, VoteMalformationsAreRejected) {
  Vote v;
  v.type = VoteType::kPrecommit;
  v.signature = Bytes(64, 1);
  Bytes enc = EncodeVote(v);
  for (uint8_t bad_type : {0, 3, 0xff}) {
    Bytes b = enc;
    b[0] = bad_type;
    EXPECT_EQ(DecodeVote(b).status().code(), absl::StatusCode::kInvalidArgument)
        << +bad_type;
  }
  // A round that does not fit in 32 bits.
  Encoder e;
  e.PutU8(1);
  e.PutVarint(1);
  e.PutVarint(uint64_t{1} << 32);
  e.PutHash(Hash32{});
  e.PutVarint(0);
  e.PutBytes({});
  const absl::Status s = DecodeVote(e.data()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("32 bits"));

  v.signature.assign(kMaxSignatureBytes + 1, 1);
  EXPECT_EQ(DecodeVote(EncodeVote(v)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, CertificateMalformationsAreRejected) {
  CommitCertificate c;
  c.height = 1;
  c.sigs = {{2, Bytes(64, 1)}, {2, Bytes(64, 2)}};
  EXPECT_EQ(DecodeCertificate(EncodeCertificate(c)).status().code(),
            absl::StatusCode::kInvalidArgument);
  c.sigs = {{3, Bytes(64, 1)}, {1, Bytes(64, 2)}};
  EXPECT_EQ(DecodeCertificate(EncodeCertificate(c)).status().code(),
            absl::StatusCode::kInvalidArgument);

  c.sigs.clear();
  for (uint32_t i = 0; i <= kMaxValidators; ++i) c.sigs.push_back({i, {}});
  EXPECT_EQ(DecodeCertificate(EncodeCertificate(c)).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A count that the remaining bytes cannot hold.
  Encoder e;
  e.PutVarint(1);
  e.PutVarint(0);
  e.PutHash(Hash32{});
  e.PutVarint(100);
  e.PutRaw(Bytes(150, 0));
  EXPECT_EQ(DecodeCertificate(e.data()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, ReceiptMalformationsAreRejected) {
  Receipt r;
  r.log.assign(kMaxLogBytes + 1, 'x');
  EXPECT_EQ(DecodeReceipt(EncodeReceipt(r)).status().code(),
            absl::StatusCode::kInvalidArgument);
  r.log.assign(kMaxLogBytes, 'x');
  EXPECT_TRUE(DecodeReceipt(EncodeReceipt(r)).ok());

  r.log.clear();
  r.code = static_cast<ExecCode>(static_cast<uint32_t>(ExecCode::kExists) + 1);
  const absl::Status s = DecodeReceipt(EncodeReceipt(r)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("exec code"));
}

TEST(CodecTest, MerkleProofBoundsAreEnforced) {
  auto decode = [](const MerkleProof& p) {
    Encoder e;
    EncodeMerkleProof(p, &e);
    Decoder d(e.data());
    MerkleProof out;
    return DecodeMerkleProof(&d, &out);
  };
  MerkleProof p;
  p.index = 4;
  p.leaf_count = 4;  // index must be below the count
  EXPECT_EQ(decode(p).code(), absl::StatusCode::kInvalidArgument);
  p.index = 0;
  p.leaf_count = std::numeric_limits<uint64_t>::max();
  p.path.resize(65);
  EXPECT_EQ(decode(p).code(), absl::StatusCode::kInvalidArgument);
  p.path.resize(64);
  EXPECT_TRUE(decode(p).ok());
}

TEST(CodecTest, NonCanonicalVarintInsideATxIsRejected) {
  // valid_until written as 0x80 0x00 instead of 0x00.
  Encoder e;
  e.PutString("c");
  e.PutU64(1);
  e.PutRaw(Hex("8000"));
  e.PutBytes({});
  e.PutString("kv");
  e.PutString("set");
  e.PutVarint(0);
  e.PutBytes({});
  const absl::Status s = DecodeTx(e.data()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("non-canonical"));
  EXPECT_THAT(s.message(), HasSubstr("offset 10"));
}

// Storage persists the block bytes consensus sends it, after decoding them
// once, instead of encoding the decoded block again: that is only right if no
// other bytes decode to the same block. A longer form of a varint (the
// header's height, the tx count, a tx's length) is refused, as is anything
// after the last tx.
TEST(CodecTest, OnlyABlocksOwnEncodingDecodesToIt) {
  Block b;
  b.header.chain_id = "c";
  b.header.height = 5;
  b.txs = {Hex("aa"), Hex("bbcc")};
  const Bytes canonical = EncodeBlock(b);
  ASSERT_TRUE(DecodeBlock(canonical).ok());

  auto with_header = [&](bool long_height) {
    Encoder e;
    e.PutString(b.header.chain_id);
    if (long_height) {
      e.PutRaw(Hex("858000"));  // the height 5 in three bytes, not one
    } else {
      e.PutVarint(b.header.height);
    }
    e.PutVarint(b.header.time_ms);
    e.PutBytes(b.header.proposer);
    e.PutHash(b.header.prev_hash);
    e.PutHash(b.header.tx_root);
    e.PutHash(b.header.state_root);
    e.PutHash(b.header.receipts_root);
    return e;
  };
  {
    Encoder e = with_header(/*long_height=*/true);
    e.PutVarint(2);
    for (const Bytes& tx : b.txs) e.PutBytes(tx);
    EXPECT_EQ(DecodeBlock(e.data()).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    Encoder e = with_header(false);
    e.PutRaw(Hex("8200"));  // tx count 2 in two bytes
    for (const Bytes& tx : b.txs) e.PutBytes(tx);
    EXPECT_EQ(DecodeBlock(e.data()).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    Encoder e = with_header(false);
    e.PutVarint(2);
    e.PutRaw(Hex("8100aa"));  // the first tx's length 1 in two bytes
    e.PutBytes(b.txs[1]);
    EXPECT_EQ(DecodeBlock(e.data()).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  {
    Encoder e = with_header(false);
    e.PutVarint(2);
    for (const Bytes& tx : b.txs) e.PutBytes(tx);
    EXPECT_EQ(e.data(), canonical);
    e.PutU8(0);
    EXPECT_EQ(DecodeBlock(e.data()).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(CodecTest, GetBytesViewPointsIntoTheInput) {
  Encoder e;
  e.PutBytes(Hex("deadbeef"));
  e.PutBytes(Hex("0102030405"));
  const Bytes in = e.data();
  Decoder d(in);
  ByteView v;
  ASSERT_TRUE(d.GetBytesView(&v, 4).ok());
  EXPECT_EQ(v.data(), in.data() + 1);
  EXPECT_EQ(ToHex(v), "deadbeef");
  const absl::Status s = d.GetBytesView(&v, 4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("over its bound"));
  Decoder truncated(ByteView(in).first(in.size() - 1));
  ASSERT_TRUE(truncated.GetBytesView(&v, 4).ok());
  EXPECT_THAT(truncated.GetBytesView(&v, 100).message(),
              HasSubstr("truncated"));
}

TEST(CodecTest, HexHelpers) {
  EXPECT_EQ(ToHex(Hex("00ff10Ab")), "00ff10ab");
  EXPECT_EQ(FromHex("abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromHex("zz").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(FromHex("").ok());
  EXPECT_EQ(HashFromHex("00").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Hash32> h = HashFromHex(std::string(64, 'F'));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)[31], 0xff);
}

}  // namespace
}  // namespace consortia
