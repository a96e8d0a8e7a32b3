// Ledger types: what is hashed and signed, genesis JSON, and commit
// certificate verification.
#include "consortia/types.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "consortia/codec.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

using ::testing::HasSubstr;

const CryptoSuite& Suite() { return Ed25519Sha256(); }

Transaction SampleTx() {
  Transaction tx;
  tx.chain_id = "localnet";
  tx.nonce = 42;
  tx.valid_until = 1000;
  tx.sender = Bytes(32, 0x11);
  tx.app = "kv";
  tx.method = "set";
  tx.args = {"key", "value"};
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

// ---------------------------------------------------------------------------
// What is hashed and signed

TEST(TypesTest, TxHashExcludesTheSignature) {
  Transaction a = SampleTx();
  Transaction b = a;
  b.signature = Bytes(64, 0x99);
  EXPECT_EQ(TxHash(Suite(), a), TxHash(Suite(), b));
  EXPECT_NE(EncodeTx(a), EncodeTx(b));
  EXPECT_EQ(TxHash(Suite(), a), Suite().Hash(TxSignBytes(a)));
}

TEST(TypesTest, TxHashCoversEveryOtherField) {
  const Hash32 base = TxHash(Suite(), SampleTx());
  std::vector<Transaction> changed(8, SampleTx());
  changed[0].chain_id = "othernet";
  changed[1].nonce = 43;
  changed[2].valid_until = 1001;
  changed[3].sender[0] ^= 1;
  changed[4].app = "notary";
  changed[5].method = "del";
  changed[6].args = {"key", "value", ""};
  changed[7].args = {"keyv", "alue"};  // same bytes, other split
  for (size_t i = 0; i < changed.size(); ++i) {
    EXPECT_NE(TxHash(Suite(), changed[i]), base) << i;
  }
}

// Ed25519Sha256 that keeps the parts of every Hash call. Not thread-safe.
class RecordingSuite final : public CryptoSuite {
 public:
  using CryptoSuite::Hash;
  std::string_view name() const override { return Suite().name(); }
  size_t public_key_size() const override { return Suite().public_key_size(); }
  size_t max_signature_size() const override {
    return Suite().max_signature_size();
  }
  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    calls_.emplace_back(parts);
    return Suite().Hash(parts);
  }
  KeyPair GenerateKey() const override { return Suite().GenerateKey(); }
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    return Suite().KeyFromSeed(seed);
  }
  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override {
    return Suite().Sign(secret_key, message);
  }
  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override {
    return Suite().Verify(public_key, message, signature);
  }

  const std::vector<std::vector<ByteView>>& calls() const { return calls_; }

 private:
  mutable std::vector<std::vector<ByteView>> calls_;
};

TEST(TypesTest, EncodeTxAndHashGivesEncodeTxAndTxHash) {
  std::vector<Transaction> txs(4, SampleTx());
  txs[1].args = {};
  txs[2].args = {std::string(70000, 'x'), ""};
  txs[3].nonce = ~uint64_t{0};
  txs[3].signature = {};
  for (const Transaction& tx : txs) {
    const EncodedTx e = EncodeTxAndHash(Suite(), tx);
    EXPECT_EQ(e.raw, EncodeTx(tx));
    EXPECT_EQ(e.hash, TxHash(Suite(), tx));
  }
}

TEST(TypesTest, EncodeTxAndHashHashesTheBytesItEncoded) {
  // One hash, over the encoding it returns: the tx is not encoded a second
  // time (as TxSignBytes) to be hashed.
  RecordingSuite suite;
  const EncodedTx e = EncodeTxAndHash(suite, SampleTx());
  ASSERT_EQ(suite.calls().size(), 1u);
  const ByteView body = suite.calls()[0].back();
  EXPECT_EQ(body.data(), e.raw.data());
  EXPECT_LT(body.size(), e.raw.size());  // the signature is left out
}

TEST(TypesTest, TxSignBytesAreDomainTagged) {
  const Bytes sign = TxSignBytes(SampleTx());
  const std::string tag = "consortia/tx/v1";
  ASSERT_GT(sign.size(), tag.size() + 1);
  EXPECT_EQ(sign[0], tag.size());
  EXPECT_EQ(std::string(sign.begin() + 1, sign.begin() + 1 + tag.size()), tag);
  // The rest is the tx encoding without its signature.
  Transaction unsigned_tx = SampleTx();
  unsigned_tx.signature.clear();
  Bytes body = EncodeTx(unsigned_tx);
  body.pop_back();  // the empty signature's length byte
  EXPECT_EQ(Bytes(sign.begin() + 1 + tag.size(), sign.end()), body);
}

TEST(TypesTest, VoteSignBytesBindChainAndExcludeSignature) {
  Vote v;
  v.type = VoteType::kPrecommit;
  v.height = 3;
  v.round = 1;
  v.block_hash.fill(7);
  v.validator_index = 2;
  v.signature = Bytes(64, 1);
  Vote w = v;
  w.signature = Bytes(64, 2);
  EXPECT_EQ(VoteSignBytes("a", v), VoteSignBytes("a", w));
  EXPECT_NE(VoteSignBytes("a", v), VoteSignBytes("b", v));
  w = v;
  w.type = VoteType::kPrevote;
  EXPECT_NE(VoteSignBytes("a", v), VoteSignBytes("a", w));
  w = v;
  w.validator_index = 3;
  EXPECT_NE(VoteSignBytes("a", v), VoteSignBytes("a", w));
  const std::string tag = "consortia/vote/v1";
  const Bytes sign = VoteSignBytes("a", v);
  EXPECT_EQ(std::string(sign.begin() + 1, sign.begin() + 1 + tag.size()), tag);
}

TEST(TypesTest, BlockHashIsHashOfEncodedHeader) {
  const BlockHeader h = SampleHeader();
  Encoder e;
  EncodeHeader(h, &e);
  EXPECT_EQ(BlockHash(Suite(), h), Suite().Hash(e.data()));
  BlockHeader other = h;
  other.state_root[5] ^= 1;
  EXPECT_NE(BlockHash(Suite(), other), BlockHash(Suite(), h));
  other = h;
  other.time_ms += 1;
  EXPECT_NE(BlockHash(Suite(), other), BlockHash(Suite(), h));
}

TEST(TypesTest, ExecCodeNames) {
  EXPECT_EQ(ExecCodeName(ExecCode::kOk), "ok");
  EXPECT_EQ(ExecCodeName(ExecCode::kDuplicate), "duplicate");
  EXPECT_EQ(ExecCodeName(ExecCode::kNotFound), "not_found");
  EXPECT_EQ(ExecCodeName(ExecCode::kUnauthorized), "unauthorized");
  EXPECT_EQ(ExecCodeName(ExecCode::kInvalidState), "invalid_state");
  EXPECT_EQ(ExecCodeName(ExecCode::kExists), "exists");
  EXPECT_EQ(ExecCodeName(static_cast<ExecCode>(99)), "unknown");
}

TEST(TypesTest, ReceiptCodesRoundTripUpToTheLastAndNoFurther) {
  Receipt r;
  r.code = ExecCode::kExists;
  absl::StatusOr<Receipt> back = DecodeReceipt(EncodeReceipt(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->code, ExecCode::kExists);
  r.code = static_cast<ExecCode>(static_cast<uint32_t>(ExecCode::kExists) + 1);
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(r)).ok());
}

// ---------------------------------------------------------------------------
// Genesis JSON

struct Net {
  Genesis genesis;
  std::vector<KeyPair> keys;
};

Net MakeNet(const std::vector<uint64_t>& powers) {
  Net net;
  net.genesis.chain_id = "testnet";
  net.genesis.genesis_time_ms = 1700000000000;
  for (size_t i = 0; i < powers.size(); ++i) {
    Bytes seed(32, static_cast<uint8_t>(i + 1));
    KeyPair kp = *Suite().KeyFromSeed(seed);
    net.genesis.validators.push_back(
        {absl::StrCat("org", i), kp.public_key, powers[i]});
    net.keys.push_back(std::move(kp));
  }
  return net;
}

std::string ValidGenesisJson() {
  return GenesisToJson(MakeNet({1, 1, 2}).genesis);
}

TEST(TypesTest, GenesisJsonRoundTrip) {
  const Genesis g = MakeNet({1, 5, 1, 1}).genesis;
  const std::string text = GenesisToJson(g);
  absl::StatusOr<Genesis> back = ParseGenesisJson(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(*back, g);
}

TEST(TypesTest, GenesisJsonHandWritten) {
  const std::string key(64, 'a');
  const std::string text = absl::StrCat(
      R"({"chain_id": "gov", "crypto_suite": "ed25519-sha256",
          "genesis_time_ms": 5,
          "validators": [{"name": "tax-bureau", "public_key": ")",
      key, R"(", "power": 3}]})");
  absl::StatusOr<Genesis> g = ParseGenesisJson(text);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->chain_id, "gov");
  EXPECT_EQ(g->genesis_time_ms, 5u);
  ASSERT_EQ(g->validators.size(), 1u);
  EXPECT_EQ(g->validators[0].name, "tax-bureau");
  EXPECT_EQ(g->validators[0].power, 3u);
  EXPECT_EQ(ToHex(g->validators[0].public_key), key);
}

TEST(TypesTest, Sm2GenesisParses) {
  const std::string key = ToHex(Sm2Sm3().KeyFromSeed(Bytes(32, 3))->public_key);
  const std::string text = absl::StrCat(
      R"({"chain_id": "gov", "crypto_suite": "sm2-sm3",
          "genesis_time_ms": 5,
          "validators": [{"name": "tax-bureau", "public_key": ")",
      key, R"(", "power": 3}]})");
  absl::StatusOr<Genesis> g = ParseGenesisJson(text);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->crypto_suite, "sm2-sm3");
  ASSERT_EQ(g->validators.size(), 1u);
  EXPECT_EQ(ToHex(g->validators[0].public_key), key);
}

// Replaces the first occurrence of `from` in the valid genesis with `to`,
// parses, and expects InvalidArgument mentioning `field`.
void ExpectGenesisError(std::string_view from, std::string_view to,
                        std::string_view field) {
  std::string text = ValidGenesisJson();
  const size_t pos = text.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  text.replace(pos, from.size(), to);
  absl::StatusOr<Genesis> g = ParseGenesisJson(text);
  ASSERT_FALSE(g.ok()) << text;
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(field)) << text;
}

TEST(TypesTest, GenesisJsonErrorsNameTheField) {
  ExpectGenesisError(R"("chain_id": "testnet")", R"("chain_id": 5)",
                     "chain_id");
  ExpectGenesisError(R"("chain_id": "testnet")", R"("chain_id": "")",
                     "chain_id");
  ExpectGenesisError(R"("chain_id": "testnet",)", "", "chain_id");
  ExpectGenesisError(R"("chain_id": "testnet")",
                     R"("chain_id": "testnet", "extra": 1)", "extra");
  ExpectGenesisError(R"("chain_id": "testnet")",
                     R"("chain_id": "testnet", "chain_id": "x")", "chain_id");
  ExpectGenesisError(R"("ed25519-sha256")", R"("rsa")", "crypto_suite");
  // An sm2-sm3 genesis is valid, but its validator keys are 65-byte points:
  // the 32-byte ed25519 key of the valid genesis is named.
  ExpectGenesisError(R"("ed25519-sha256")", R"("sm2-sm3")",
                     "validators[0].public_key");
  ExpectGenesisError(R"("genesis_time_ms": 1700000000000)",
                     R"("genesis_time_ms": -1)", "genesis_time_ms");
  ExpectGenesisError(R"("genesis_time_ms": 1700000000000)",
                     R"("genesis_time_ms": "1")", "genesis_time_ms");
  ExpectGenesisError(R"("power": 1)", R"("power": 0)", "validators[0].power");
  ExpectGenesisError(R"("power": 1)", R"("power": 1.5)", "validators[0].power");
  ExpectGenesisError(R"("power": 1)", R"("power": -1)", "validators[0].power");
  ExpectGenesisError(R"("power": 1)", R"("power": 1, "weight": 1)",
                     "validators[0].weight");
  ExpectGenesisError(R"("name": "org1")", R"("name": null)",
                     "validators[1].name");
  ExpectGenesisError(R"("public_key": ")", R"("public_key": "zz)",
                     "validators[0].public_key");
  ExpectGenesisError(R"("public_key": ")", R"("public_key": "00)",
                     "validators[0].public_key");
  ExpectGenesisError(R"("public_key": ")", R"("public_key": "0)",
                     "validators[0].public_key");
  ExpectGenesisError(R"("power": 2)", R"("power": 18446744073709551615)",
                     "validators[2].power");
  ExpectGenesisError("{", "[", "malformed JSON");
}

TEST(TypesTest, GenesisChainRulesDefaultAndParse) {
  // A genesis written before chain rules existed gets the defaults.
  std::string text = ValidGenesisJson();
  const size_t rules = text.find(",\n  \"chain_rules\"");
  ASSERT_NE(rules, std::string::npos) << text;
  const size_t end = text.rfind('}');
  std::string old = text.substr(0, rules) + "\n" + text.substr(end);
  absl::StatusOr<Genesis> g = ParseGenesisJson(old);
  ASSERT_TRUE(g.ok()) << g.status() << "\n" << old;
  EXPECT_EQ(g->rules, ChainRules{});
  // Each rule may be given alone; the others keep their defaults.
  std::string one = text;
  one.replace(one.find("\"replay_window\": 1000"), 21, "\"replay_window\": 77");
  g = ParseGenesisJson(one);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->rules.replay_window, 77u);
  EXPECT_EQ(g->rules.max_block_txs, ChainRules{}.max_block_txs);
  // Round trip of non-default rules.
  Genesis custom = MakeNet({1}).genesis;
  custom.rules = ChainRules{10, 300 * 1024, 50, 250, 1500};
  g = ParseGenesisJson(GenesisToJson(custom));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->rules, custom.rules);
  // The block-time bounds (proposer-based time) are rules like the others.
  std::string times = text;
  times.replace(times.find("\"block_time_precision_ms\": 500"), 30,
                "\"block_time_precision_ms\": 42");
  g = ParseGenesisJson(times);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->rules.block_time_precision_ms, 42u);
  EXPECT_EQ(g->rules.block_time_message_delay_ms,
            ChainRules{}.block_time_message_delay_ms);
}

TEST(TypesTest, GenesisChainRulesOutOfRangeNameTheRule) {
  ExpectGenesisError(R"("max_block_txs": 5000)", R"("max_block_txs": 0)",
                     "chain_rules.max_block_txs");
  ExpectGenesisError(R"("max_block_txs": 5000)", R"("max_block_txs": 100001)",
                     "chain_rules.max_block_txs");
  ExpectGenesisError(R"("max_block_bytes": 8388608)",
                     R"("max_block_bytes": 1000)",
                     "chain_rules.max_block_bytes");
  ExpectGenesisError(R"("replay_window": 1000)", R"("replay_window": 0)",
                     "chain_rules.replay_window");
  ExpectGenesisError(R"("replay_window": 1000)", R"("replay_window": "x")",
                     "chain_rules.replay_window");
  ExpectGenesisError(R"("replay_window": 1000)",
                     R"("replay_window": 1000, "block_time": 1)",
                     "chain_rules.block_time");
  ExpectGenesisError(R"("block_time_precision_ms": 500)",
                     R"("block_time_precision_ms": 0)",
                     "chain_rules.block_time_precision_ms");
  ExpectGenesisError(R"("block_time_message_delay_ms": 3000)",
                     R"("block_time_message_delay_ms": 600001)",
                     "chain_rules.block_time_message_delay_ms");
  // Not an object.
  std::string text = ValidGenesisJson();
  const size_t from = text.find("\"chain_rules\": {");
  ASSERT_NE(from, std::string::npos);
  const size_t to = text.find('}', from);
  text.replace(from, to + 1 - from, "\"chain_rules\": 5");
  absl::StatusOr<Genesis> g = ParseGenesisJson(text);
  ASSERT_FALSE(g.ok()) << text;
  EXPECT_THAT(g.status().message(), HasSubstr("chain_rules")) << text;
}

TEST(TypesTest, GenesisRejectsEmptyAndRepeatedValidators) {
  Genesis g = MakeNet({1}).genesis;
  g.validators.clear();
  absl::StatusOr<Genesis> back = ParseGenesisJson(GenesisToJson(g));
  ASSERT_FALSE(back.ok());
  EXPECT_THAT(back.status().message(), HasSubstr("validators"));

  g = MakeNet({1, 1}).genesis;
  g.validators[1].public_key = g.validators[0].public_key;
  back = ParseGenesisJson(GenesisToJson(g));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(back.status().message(), HasSubstr("validators[1].public_key"));

  for (std::string_view bad : {"", "null", "[]", "{", "{\"chain_id\":\"x\"}"}) {
    EXPECT_EQ(ParseGenesisJson(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

// ---------------------------------------------------------------------------
// Genesis consortium section

TEST(TypesTest, GenesisWithoutConsortiumSerialisesAsBefore) {
  // Byte for byte what GenesisToJson wrote before the consortium section
  // existed (the CLI's `consortia genesis` of the previous release).
  Genesis g;
  g.chain_id = "gov";
  g.genesis_time_ms = 5;
  g.validators.push_back({"v0", Bytes(32, 0xab), 3});
  const std::string expected = absl::StrCat(
      "{\n  \"chain_id\": \"gov\",\n  \"crypto_suite\": \"ed25519-sha256\",\n"
      "  \"genesis_time_ms\": 5,\n  \"validators\": [\n    {\n"
      "      \"name\": \"v0\",\n      \"public_key\": \"",
      ToHex(Bytes(32, 0xab)),
      "\",\n      \"power\": 3\n    }\n  ],\n  \"chain_rules\": {\n"
      "    \"max_block_txs\": 5000,\n    \"max_block_bytes\": 8388608,\n"
      "    \"replay_window\": 1000,\n    \"block_time_precision_ms\": 500,\n"
      "    \"block_time_message_delay_ms\": 3000\n  }\n}\n");
  EXPECT_EQ(GenesisToJson(g), expected);
  absl::StatusOr<Genesis> back = ParseGenesisJson(expected);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->consortium.has_value());
  EXPECT_EQ(GenesisToJson(*back), expected);
}

// A genesis with 2 organisations (deterministic keys).
Genesis ConsortiumGenesis() {
  Genesis g = MakeNet({1, 1}).genesis;
  Consortium c;
  c.approval_percent = 60;
  c.orgs.push_back({"tax-bureau",
                    "Shenzhen Tax Bureau",
                    {{Suite().KeyFromSeed(Bytes(32, 20))->public_key,
                      {admin::Role::kAdmin, admin::Role::kAuditor}},
                     {Suite().KeyFromSeed(Bytes(32, 21))->public_key,
                      {admin::Role::kMember}}}});
  c.orgs.push_back({"bank-a",
                    "Bank A",
                    {{Suite().KeyFromSeed(Bytes(32, 22))->public_key,
                      {admin::Role::kAdmin, admin::Role::kIssuer}}}});
  g.consortium = std::move(c);
  return g;
}

TEST(TypesTest, ConsortiumSectionParsesAloneAsInAGenesis) {
  const Genesis g = ConsortiumGenesis();
  const nlohmann::json j = nlohmann::json::parse(GenesisToJson(g));
  const std::string section = j["consortium"].dump();
  absl::StatusOr<Consortium> c = ParseConsortiumJson(section, g.crypto_suite);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, *g.consortium);
  // Its errors name the field; the suite decides the key size.
  absl::StatusOr<Consortium> bad = ParseConsortiumJson(
      R"({"approval_percent": 40, "orgs": []})", g.crypto_suite);
  EXPECT_THAT(bad.status().message(), HasSubstr("consortium.approval_percent"));
  EXPECT_FALSE(ParseConsortiumJson(section, "sm2-sm3").ok());
  EXPECT_FALSE(ParseConsortiumJson("{", g.crypto_suite).ok());
  EXPECT_FALSE(ParseConsortiumJson(section, "no-such-suite").ok());
}

TEST(TypesTest, GenesisConsortiumRoundTrip) {
  const Genesis g = ConsortiumGenesis();
  const std::string text = GenesisToJson(g);
  EXPECT_THAT(text,
              HasSubstr("\"consortium\": {\n    \"approval_percent\": 60"));
  EXPECT_THAT(text, HasSubstr("\"roles\": [\n              \"admin\",\n"
                              "              \"auditor\"\n            ]"));
  absl::StatusOr<Genesis> back = ParseGenesisJson(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(*back, g);
  EXPECT_EQ(GenesisToJson(*back), text);

  // Roles may be listed in any order; they are kept sorted.
  std::string unsorted = text;
  const std::string sorted_roles = "\"admin\",\n              \"auditor\"";
  unsorted.replace(unsorted.find(sorted_roles), sorted_roles.size(),
                   "\"auditor\", \"admin\"");
  back = ParseGenesisJson(unsorted);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, g);
}

void ExpectConsortiumError(std::string_view from, std::string_view to,
                           std::string_view field,
                           std::string_view problem = "") {
  std::string text = GenesisToJson(ConsortiumGenesis());
  const size_t pos = text.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  text.replace(pos, from.size(), to);
  absl::StatusOr<Genesis> g = ParseGenesisJson(text);
  ASSERT_FALSE(g.ok()) << text;
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(field)) << text;
  EXPECT_THAT(g.status().message(), HasSubstr(problem)) << text;
}

TEST(TypesTest, GenesisConsortiumErrorsNameTheField) {
  const std::string key0 =
      ToHex(Suite().KeyFromSeed(Bytes(32, 20))->public_key);
  const std::string key2 =
      ToHex(Suite().KeyFromSeed(Bytes(32, 22))->public_key);
  ExpectConsortiumError("\"approval_percent\": 60", "\"approval_percent\": 49",
                        "consortium.approval_percent", "50 to 99");
  ExpectConsortiumError("\"approval_percent\": 60", "\"approval_percent\": 100",
                        "consortium.approval_percent", "50 to 99");
  ExpectConsortiumError("\"approval_percent\": 60,", "",
                        "consortium.approval_percent", "missing");
  ExpectConsortiumError("\"approval_percent\": 60",
                        "\"approval_percent\": 60, \"quorum\": 1",
                        "consortium.quorum", "unknown");
  ExpectConsortiumError("\"id\": \"bank-a\"", "\"id\": \"Bank A\"",
                        "consortium.orgs[1].id", "a-z");
  ExpectConsortiumError("\"id\": \"bank-a\"", "\"id\": \"tax-bureau\"",
                        "consortium.orgs[1].id", "repeats");
  ExpectConsortiumError("\"name\": \"Bank A\"", "\"name\": \"\"",
                        "consortium.orgs[1].name");
  ExpectConsortiumError("\"name\": \"Bank A\",", "", "consortium.orgs[1].name",
                        "missing");
  ExpectConsortiumError(key2, key2.substr(2),
                        "consortium.orgs[1].members[0]"
                        ".public_key",
                        "32 bytes");
  ExpectConsortiumError(key2, key0, "consortium.orgs[1].members[0].public_key",
                        "repeats");
  ExpectConsortiumError("\"issuer\"", "\"king\"",
                        "consortium.orgs[1].members[0].roles", "unknown role");
  ExpectConsortiumError("\"issuer\"", "\"admin\"",
                        "consortium.orgs[1].members[0].roles", "repeats");
  ExpectConsortiumError("\"admin\",\n              \"issuer\"", "\"issuer\"",
                        "consortium.orgs[1].members", "role admin");
  ExpectConsortiumError("\"member\"", "", "consortium.orgs[0].members[1].roles",
                        "non-empty");
  // An sm2-sm3 chain needs 65-byte member keys: the first is named.
  std::string text = GenesisToJson(ConsortiumGenesis());
  Genesis sm2 = MakeNet({1}).genesis;
  sm2.crypto_suite = "sm2-sm3";
  sm2.validators[0].public_key = Sm2Sm3().KeyFromSeed(Bytes(32, 3))->public_key;
  sm2.consortium = ConsortiumGenesis().consortium;
  absl::StatusOr<Genesis> g = ParseGenesisJson(GenesisToJson(sm2));
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(),
              HasSubstr("consortium.orgs[0].members[0].public_key"));
  // No organisations, or not an object.
  Genesis none = ConsortiumGenesis();
  none.consortium->orgs.clear();
  g = ParseGenesisJson(GenesisToJson(none));
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("consortium.orgs"));
  text = GenesisToJson(MakeNet({1}).genesis);
  text.insert(text.rfind('}'), ",\"consortium\": []");
  g = ParseGenesisJson(text);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(),
              HasSubstr("'consortium' must be an object"));
}

// ---------------------------------------------------------------------------
// Commit certificates

CommitSig SignPrecommit(const Net& net, size_t index, uint64_t height,
                        uint32_t round, const Hash32& hash,
                        VoteType type = VoteType::kPrecommit,
                        std::string_view chain_id = "") {
  Vote v;
  v.type = type;
  v.height = height;
  v.round = round;
  v.block_hash = hash;
  v.validator_index = static_cast<uint32_t>(index);
  const Bytes msg = VoteSignBytes(
      chain_id.empty() ? std::string_view(net.genesis.chain_id) : chain_id, v);
  return {static_cast<uint32_t>(index),
          *Suite().Sign(net.keys[index].secret_key, msg)};
}

CommitCertificate Certify(const Net& net, const BlockHeader& h,
                          const std::vector<size_t>& signers) {
  CommitCertificate c;
  c.height = h.height;
  c.round = 2;
  c.block_hash = BlockHash(Suite(), h);
  for (size_t i : signers) {
    c.sigs.push_back(SignPrecommit(net, i, c.height, c.round, c.block_hash));
  }
  return c;
}

BlockHeader TestHeader() {
  BlockHeader h = SampleHeader();
  h.chain_id = "testnet";
  return h;
}

TEST(TypesTest, CertificateWithTwoThirdsPlusOneIsAccepted) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  EXPECT_TRUE(
      VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, {0, 1, 2}))
          .ok());
  EXPECT_TRUE(
      VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, {1, 2, 3}))
          .ok());
  EXPECT_TRUE(
      VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, {0, 1, 2, 3}))
          .ok());
}

TEST(TypesTest, CertificateWithFOrTwoThirdsExactlyIsRejected) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  for (const std::vector<size_t>& signers :
       std::vector<std::vector<size_t>>{{}, {0}, {3}, {0, 1}, {1, 3}}) {
    const absl::Status s =
        VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, signers));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << signers.size();
    EXPECT_THAT(s.message(), HasSubstr("two thirds"));
  }
  // 6 validators: 4 of 6 is exactly two thirds, not more.
  const Net six = MakeNet({1, 1, 1, 1, 1, 1});
  EXPECT_FALSE(
      VerifyCertificate(Suite(), six.genesis, h, Certify(six, h, {0, 1, 2, 3}))
          .ok());
  EXPECT_TRUE(VerifyCertificate(Suite(), six.genesis, h,
                                Certify(six, h, {0, 1, 2, 3, 4}))
                  .ok());
}

TEST(TypesTest, CertificateCountsPowerNotHeads) {
  const Net net = MakeNet({10, 1, 1, 1});
  const BlockHeader h = TestHeader();
  EXPECT_TRUE(
      VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, {0})).ok());
  EXPECT_FALSE(
      VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, {1, 2, 3}))
          .ok());
}

TEST(TypesTest, CertificateWithDuplicateSignerIsRejected) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  // Two real signatures plus one repeated: would count as three.
  const CommitCertificate c = Certify(net, h, {0, 1, 1});
  const absl::Status s = VerifyCertificate(Suite(), net.genesis, h, c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("strictly increasing"));
  // Out of order is rejected too.
  EXPECT_FALSE(
      VerifyCertificate(Suite(), net.genesis, h, Certify(net, h, {2, 0, 1}))
          .ok());
}

TEST(TypesTest, CertificateWithBadSignatureIsRejected) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  CommitCertificate c = Certify(net, h, {0, 1, 2, 3});
  c.sigs[2].signature[10] ^= 1;
  absl::Status s = VerifyCertificate(Suite(), net.genesis, h, c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("signature"));

  // Validator 2's signature placed under index 3.
  c = Certify(net, h, {0, 1, 2});
  c.sigs[2].validator_index = 3;
  EXPECT_FALSE(VerifyCertificate(Suite(), net.genesis, h, c).ok());

  // A prevote, another round, or another chain's vote is not a precommit
  // for this block.
  const Hash32 hash = BlockHash(Suite(), h);
  c = Certify(net, h, {0, 1, 2});
  c.sigs[1] =
      SignPrecommit(net, 1, h.height, c.round, hash, VoteType::kPrevote);
  EXPECT_FALSE(VerifyCertificate(Suite(), net.genesis, h, c).ok());
  c = Certify(net, h, {0, 1, 2});
  c.sigs[1] = SignPrecommit(net, 1, h.height, c.round + 1, hash);
  EXPECT_FALSE(VerifyCertificate(Suite(), net.genesis, h, c).ok());
  c = Certify(net, h, {0, 1, 2});
  c.sigs[1] = SignPrecommit(net, 1, h.height, c.round, hash,
                            VoteType::kPrecommit, "othernet");
  EXPECT_FALSE(VerifyCertificate(Suite(), net.genesis, h, c).ok());
}

TEST(TypesTest, CertificateForAnotherHeightOrBlockIsRejected) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  const CommitCertificate c = Certify(net, h, {0, 1, 2});

  BlockHeader next = h;
  next.height = h.height + 1;
  absl::Status s = VerifyCertificate(Suite(), net.genesis, next, c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("height"));

  // Signed at the wrong height, claimed for the right one.
  CommitCertificate wrong_height = c;
  wrong_height.height = h.height + 1;
  EXPECT_FALSE(VerifyCertificate(Suite(), net.genesis, h, wrong_height).ok());

  BlockHeader other = h;
  other.tx_root[0] ^= 1;
  s = VerifyCertificate(Suite(), net.genesis, other, c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("hashes to"));

  BlockHeader foreign = h;
  foreign.chain_id = "othernet";
  EXPECT_FALSE(VerifyCertificate(Suite(), net.genesis, foreign,
                                 Certify(net, foreign, {0, 1, 2}))
                   .ok());
}

TEST(TypesTest, CertificateSignerOutOfRangeIsRejected) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  CommitCertificate c = Certify(net, h, {0, 1, 2});
  c.sigs.push_back({4, c.sigs[0].signature});
  const absl::Status s = VerifyCertificate(Suite(), net.genesis, h, c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not a validator"));
}

TEST(TypesTest, CertificateSurvivesItsEncoding) {
  const Net net = MakeNet({1, 1, 1, 1});
  const BlockHeader h = TestHeader();
  absl::StatusOr<CommitCertificate> c =
      DecodeCertificate(EncodeCertificate(Certify(net, h, {0, 2, 3})));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(VerifyCertificate(Suite(), net.genesis, h, *c).ok());
}

}  // namespace
}  // namespace consortia
