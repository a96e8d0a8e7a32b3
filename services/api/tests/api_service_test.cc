// Drives the api's real HTTP server over loopback, with fake in-process
// MempoolApi, ChainQueries and StateQueries behind it.
#include "consortia/api/api_service.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "consortia/admin_records.h"
#include "consortia/api_keys.h"
#include "consortia/audit_chain.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/invoice_records.h"
#include "consortia/merkle.h"
#include "consortia/service_api.h"
#include "consortia/testing/fake_mempool.h"
#include "consortia/testing/fake_storage_queries.h"
#include "consortia/tx_json.h"
#include "consortia/types.h"
#include "gtest/gtest.h"
#include "log_limiter.h"
#include "nlohmann/json.hpp"
#include "openapi.h"
#include "submit_batcher.h"
#include "tx_batch.h"

namespace consortia::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;

constexpr char kChain[] = "api-test";

// The fakes of the mempool and of storage's ChainQueries and StateQueries
// are the shared ones of common/testing/.
using ::consortia::testing::FakeChainQueries;
using ::consortia::testing::FakeMempool;
using ::consortia::testing::FakeStateQueries;

// ----------------------------------------------------------------- client

struct Reply {
  int status = 0;
  std::string content_type;
  std::string retry_after;
  std::string allow;
  std::string csp;  // Content-Security-Policy
  std::string body;
  Json json() const { return Json::parse(body, nullptr, false); }
};

Reply Request(uint16_t port, http::verb verb, const std::string& target,
              const std::string& body = "") {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(verb, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  Reply r;
  r.status = res.result_int();
  r.content_type = std::string(res[http::field::content_type]);
  r.retry_after = std::string(res[http::field::retry_after]);
  r.allow = std::string(res[http::field::allow]);
  r.csp = std::string(res["Content-Security-Policy"]);
  r.body = res.body();
  return r;
}

// A connection from `local` that sends a request now and reads the answer
// later (or never).
class PendingRequest {
 public:
  PendingRequest(uint16_t port, const std::string& target,
                 const std::string& local = "127.0.0.1",
                 http::verb verb = http::verb::get,
                 const std::string& body = "")
      : s_(ioc_) {
    s_.open(tcp::v4());
    s_.bind(tcp::endpoint(asio::ip::make_address(local), 0));
    s_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req(verb, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(s_, req);
  }
  Reply Read() {
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s_, buf, res, ec);
    Reply r;
    if (ec) return r;  // status 0: closed without an answer
    r.status = res.result_int();
    r.content_type = std::string(res[http::field::content_type]);
    r.retry_after = std::string(res[http::field::retry_after]);
    r.body = res.body();
    return r;
  }
  void Close() {
    beast::error_code ec;
    s_.close(ec);
  }

 private:
  asio::io_context ioc_;
  tcp::socket s_;
};

Reply Get(uint16_t port, const std::string& target) {
  return Request(port, http::verb::get, target);
}
Reply Post(uint16_t port, const std::string& target, const std::string& body) {
  return Request(port, http::verb::post, target, body);
}

// ---------------------------------------------------------------- fixture

Genesis TestGenesis() {
  Genesis g;
  g.chain_id = kChain;
  g.crypto_suite = "ed25519-sha256";
  return g;
}

Transaction SignedTx(uint64_t nonce) {
  const CryptoSuite& suite = Ed25519Sha256();
  Bytes seed(32, 7);
  KeyPair key = *suite.KeyFromSeed(seed);
  Transaction tx;
  tx.chain_id = kChain;
  tx.nonce = nonce;
  tx.valid_until = 100;
  tx.sender = key.public_key;
  tx.app = "kv";
  tx.method = "set";
  tx.args = {"greeting", "hello"};
  tx.signature = *suite.Sign(key.secret_key, TxSignBytes(tx));
  return tx;
}

std::string Hex(const Hash32& h) { return ToHex(ByteView(h)); }

struct Chain;  // a tx with its block (below)

class ApiServiceTest : public ::testing::Test {
 protected:
  // The state is of height 42: GetStateAt answers NotFound above it.
  ApiServiceTest() { state_.SetHeight(42); }

  void StartApi(ApiOptions opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.probe_interval = absl::Milliseconds(10);
    opts.probe_valid_for = absl::Seconds(30);
    auto s = ApiService::StartWith(opts, TestGenesis(), &mempool_, &chain_,
                                   &state_, registry_);
    ASSERT_TRUE(s.ok()) << s.status();
    api_ = *std::move(s);
    port_ = api_->port();
    ASSERT_NE(port_, 0);
  }

  // A test that failed while it held the fakes must not hang in the
  // service's destructor (which drains the query pool and the batcher).
  void TearDown() override {
    chain_.Release();
    mempool_.Release();
    api_.reset();
  }

  // The answers of the proof tests: a tx and its block at height 5 (the
  // chain returned), kv/k and an invoice record at height 12 (defined
  // below, after ProvenRecord).
  Chain AddProvenAnswers();

  bool MetricsContain(const std::string& needle) {
    return registry_.Serialize().find(needle) != std::string::npos;
  }

  // Polls until cond holds, for at most 30 s.
  template <typename F>
  bool Eventually(F cond) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (cond()) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return cond();
  }

  FakeMempool mempool_;
  FakeChainQueries chain_;
  FakeStateQueries state_;
  MetricsRegistry registry_;
  std::unique_ptr<ApiService> api_;
  uint16_t port_ = 0;
};

void ExpectProblem(const Reply& r, int status, const std::string& type) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.content_type, "application/problem+json") << r.body;
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j.value("type", ""), type) << r.body;
  EXPECT_EQ(j.value("status", 0), status) << r.body;
  EXPECT_TRUE(j.contains("title"));
  EXPECT_TRUE(j.contains("detail"));
}

std::string P(const std::string& slug) {
  return "https://consortia.dev/problems/" + slug;
}

// ------------------------------------------------------------------ submit

TEST_F(ApiServiceTest, SubmitAcceptedIs202WithHashAndReachesMempool) {
  StartApi();
  Transaction tx = SignedTx(1);
  Reply r = Post(port_, "/v1/txs", TxToJson(tx));
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.json()["tx_hash"], Hex(TxHash(Ed25519Sha256(), tx)));
  EXPECT_EQ(r.json()["status"], "pending");

  auto batches = mempool_.batches();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].size(), 1u);
  EXPECT_EQ(batches[0][0], EncodeTx(tx));
}

TEST_F(ApiServiceTest, ResubmittingAPendingTxIs200) {
  StartApi();
  mempool_.SetSubmitCode(Admission::kAlreadyPending);
  Transaction tx = SignedTx(2);
  Reply r = Post(port_, "/v1/txs", TxToJson(tx));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["tx_hash"], Hex(TxHash(Ed25519Sha256(), tx)));
  EXPECT_EQ(r.json()["status"], "pending");
}

TEST_F(ApiServiceTest, EveryRejectionHasItsStatusAndProblemType) {
  StartApi();
  struct Case {
    Admission code;
    int status;
    std::string type;
    bool retry_after;
  };
  const std::vector<Case> cases = {
      {Admission::kMalformed, 400, P("malformed-tx"), false},
      {Admission::kTooLarge, 413, P("tx-too-large"), false},
      {Admission::kWrongChain, 422, P("wrong-chain"), false},
      {Admission::kExpired, 422, P("expired"), false},
      {Admission::kTooFarAhead, 422, P("too-far-ahead"), false},
      {Admission::kAlreadyCommitted, 409, P("already-committed"), false},
      {Admission::kBadSignature, 422, P("bad-signature"), false},
      {Admission::kPoolFull, 429, P("pool-full"), true},
      {Admission::kSenderLimit, 429, P("sender-limit"), true},
      {Admission::kUnregisteredSender, 403, P("unregistered-sender"), false},
  };
  uint64_t nonce = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(AdmissionName(c.code)));
    mempool_.SetSubmitCode(c.code);
    Reply r = Post(port_, "/v1/txs", TxToJson(SignedTx(nonce++)));
    ExpectProblem(r, c.status, c.type);
    EXPECT_EQ(r.retry_after, c.retry_after ? "1" : "");
    // The mempool's reason reaches the client.
    EXPECT_NE(r.json().value("detail", "").find("fake: "), std::string::npos);
  }
}

TEST_F(ApiServiceTest, MalformedJsonAndUnknownFieldsAre400) {
  StartApi();
  ExpectProblem(Post(port_, "/v1/txs", "{not json"), 400, P("invalid-tx"));
  ExpectProblem(Post(port_, "/v1/txs", "[]"), 400, P("invalid-tx"));
  ExpectProblem(Post(port_, "/v1/txs", ""), 400, P("invalid-tx"));

  Json j = Json::parse(TxToJson(SignedTx(3)));
  j["amount"] = 5;  // a typo or an extra field must never be ignored
  Reply r = Post(port_, "/v1/txs", j.dump());
  ExpectProblem(r, 400, P("invalid-tx"));
  EXPECT_NE(r.json().value("detail", "").find("amount"), std::string::npos);

  EXPECT_TRUE(mempool_.batches().empty());
}

TEST_F(ApiServiceTest, OversizedBodyIs413) {
  ApiOptions opts;
  opts.max_body_bytes = 1024;
  StartApi(opts);
  Json j = Json::parse(TxToJson(SignedTx(4)));
  j["args"] = {std::string(2000, 'x')};
  Reply r = Post(port_, "/v1/txs", j.dump());
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_TRUE(mempool_.batches().empty());
}

TEST_F(ApiServiceTest, MempoolTimeoutIs503AndOtherFailuresAre500) {
  StartApi();
  mempool_.FailSubmits(absl::DeadlineExceededError("bus timeout"));
  Reply r = Post(port_, "/v1/txs", TxToJson(SignedTx(5)));
  ExpectProblem(r, 503, P("upstream-unavailable"));
  EXPECT_EQ(r.retry_after, "1");

  mempool_.FailSubmits(absl::InternalError("secret internals"));
  Reply r2 = Post(port_, "/v1/txs", TxToJson(SignedTx(6)));
  ExpectProblem(r2, 500, P("internal"));
  EXPECT_EQ(r2.body.find("secret internals"), std::string::npos);
  EXPECT_TRUE(MetricsContain(
      "consortia_api_upstream_errors_total{service=\"mempool\"}"));
}

TEST_F(ApiServiceTest, ConcurrentSubmissionsAreBatched) {
  constexpr int kClients = 50;
  ApiOptions opts;
  opts.submit_threads = 1;  // one batch in flight: the rest must gather
  opts.submit_batch_delay = absl::ZeroDuration();
  opts.http_threads = 4;
  StartApi(opts);
  mempool_.HoldFirstBatch();

  std::vector<std::thread> clients;
  std::vector<int> statuses(kClients, 0);
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      statuses[i] = Post(port_, "/v1/txs", TxToJson(SignedTx(1000 + i))).status;
    });
  }
  // The first batch is held in the mempool; every other tx queues up.
  ASSERT_TRUE(Eventually([&] {
    auto held = mempool_.batches();
    if (held.size() != 1) return false;
    return MetricsContain("consortia_api_submit_queue_txs " +
                          std::to_string(kClients - held[0].size()) + "\n");
  })) << registry_.Serialize();
  mempool_.Release();
  for (std::thread& t : clients) t.join();

  for (int s : statuses) EXPECT_EQ(s, 202);
  auto batches = mempool_.batches();
  size_t total = 0;
  size_t largest = 0;
  for (const auto& b : batches) {
    total += b.size();
    largest = std::max(largest, b.size());
  }
  EXPECT_EQ(total, static_cast<size_t>(kClients));
  // The held batch, then everything that gathered meanwhile in one call
  // (or all 50 in the first, if they all arrived before it left).
  EXPECT_LE(batches.size(), 2u);
  EXPECT_GT(largest, 1u);
  EXPECT_TRUE(MetricsContain("consortia_api_submit_batch_size_count " +
                             std::to_string(batches.size()) + "\n"));
}

// ------------------------------------------------------------------- reads

struct Chain {
  Transaction tx;
  Hash32 tx_hash{};
  BlockRecord block;
  TxRecord record;
};

Chain MakeChain() {
  const CryptoSuite& suite = Ed25519Sha256();
  Chain c;
  c.tx = SignedTx(77);
  c.tx_hash = TxHash(suite, c.tx);
  Transaction other = SignedTx(78);

  Block b;
  b.header.chain_id = kChain;
  b.header.height = 5;
  b.header.time_ms = 1700000000000;
  b.header.proposer = Bytes(32, 1);
  b.header.prev_hash.fill(2);
  b.txs = {EncodeTx(other), EncodeTx(c.tx)};
  b.header.tx_root = MerkleRoot(suite, b.txs);
  c.block.block = b;
  c.block.block_hash = BlockHash(suite, b.header);
  CommitCertificate cert;
  cert.height = 5;
  cert.round = 1;
  cert.block_hash = c.block.block_hash;
  cert.sigs = {CommitSig{0, Bytes(64, 9)}, CommitSig{2, Bytes(64, 8)}};
  c.block.cert = cert;

  c.record.raw_tx = EncodeTx(c.tx);
  c.record.height = 5;
  c.record.index = 1;
  c.record.receipt.tx_hash = c.tx_hash;
  c.record.receipt.code = ExecCode::kOk;
  c.record.receipt.log = "set greeting";
  c.record.inclusion = *MerkleProve(suite, b.txs, 1);
  c.record.header = b.header;
  c.record.cert = cert;
  // The receipt is proven against the next block's header (deferred
  // execution).
  Receipt first;
  first.tx_hash = TxHash(suite, other);
  std::vector<Bytes> receipts = {EncodeReceipt(first),
                                 EncodeReceipt(c.record.receipt)};
  c.record.receipt_proof = *MerkleProve(suite, receipts, 1);
  BlockHeader next = b.header;
  next.height = 6;
  next.prev_hash = c.block.block_hash;
  next.receipts_root = MerkleRoot(suite, receipts);
  c.record.next_header = next;
  return c;
}

TEST_F(ApiServiceTest, GetTxReturnsRecordReceiptAndProof) {
  StartApi();
  Chain c = MakeChain();
  chain_.AddTx(c.tx_hash, c.record);

  Reply r = Get(port_, "/v1/txs/" + Hex(c.tx_hash));
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["tx_hash"], Hex(c.tx_hash));
  EXPECT_EQ(j["height"], 5);
  EXPECT_EQ(j["index"], 1);
  EXPECT_EQ(j["tx"]["app"], "kv");
  EXPECT_EQ(j["tx"]["args"][1], "hello");
  EXPECT_EQ(j["receipt"]["code"], 0);
  EXPECT_EQ(j["receipt"]["code_name"],
            std::string(ExecCodeName(ExecCode::kOk)));
  EXPECT_EQ(j["receipt"]["log"], "set greeting");
  EXPECT_EQ(j["block_hash"], Hex(c.block.block_hash));
  EXPECT_EQ(j["header"]["height"], 5);
  EXPECT_EQ(j["header"]["tx_root"], Hex(c.block.block.header.tx_root));
  EXPECT_EQ(j["inclusion"]["index"], 1);
  EXPECT_EQ(j["inclusion"]["leaf_count"], 2);
  EXPECT_EQ(j["inclusion"]["path"].size(), 1u);

  // The proof bundle is the record itself, checkable offline.
  EXPECT_EQ(j["proof"]["encoding"], "consortia-txrecord-v1");
  absl::StatusOr<Bytes> raw = FromHex(j["proof"]["hex"].get<std::string>());
  ASSERT_TRUE(raw.ok());
  absl::StatusOr<TxRecord> decoded = DecodeTxRecord(*raw);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->raw_tx, c.record.raw_tx);
  EXPECT_EQ(decoded->header, c.record.header);
  EXPECT_TRUE(MerkleVerify(Ed25519Sha256(), decoded->header.tx_root,
                           decoded->raw_tx, decoded->inclusion));
}

TEST_F(ApiServiceTest, BadTxHashIs400AndUnknownTxIs404) {
  StartApi();
  ExpectProblem(Get(port_, "/v1/txs/abc"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/txs/" + std::string(64, 'g')), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/txs/" + std::string(66, 'a')), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/txs/" + std::string(64, 'a')), 404,
                P("tx-not-found"));
}

TEST_F(ApiServiceTest, GetBlockByHeightAndLatest) {
  StartApi();
  ExpectProblem(Get(port_, "/v1/blocks/latest"), 404, P("block-not-found"));
  Chain c = MakeChain();
  chain_.AddBlock(c.block);

  for (std::string which : {"5", "latest"}) {
    SCOPED_TRACE(which);
    Reply r = Get(port_, "/v1/blocks/" + which);
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = r.json();
    EXPECT_EQ(j["height"], 5);
    EXPECT_EQ(j["block_hash"], Hex(c.block.block_hash));
    EXPECT_EQ(j["header"]["chain_id"], kChain);
    EXPECT_EQ(j["header"]["prev_hash"], Hex(c.block.block.header.prev_hash));
    EXPECT_EQ(j["tx_count"], 2);
    ASSERT_EQ(j["tx_hashes"].size(), 2u);
    EXPECT_EQ(j["tx_hashes"][1], Hex(c.tx_hash));
    EXPECT_EQ(j["certificate"]["round"], 1);
    ASSERT_EQ(j["certificate"]["signatures"].size(), 2u);
    EXPECT_EQ(j["certificate"]["signatures"][1]["validator_index"], 2);
    EXPECT_EQ(j["certificate"]["signatures"][1]["signature"],
              ToHex(Bytes(64, 8)));
    absl::StatusOr<Bytes> raw = FromHex(j["raw"]["hex"].get<std::string>());
    ASSERT_TRUE(raw.ok());
    absl::StatusOr<BlockRecord> decoded = DecodeBlockRecord(*raw);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->block, c.block.block);
  }
  ExpectProblem(Get(port_, "/v1/blocks/6"), 404, P("block-not-found"));
  ExpectProblem(Get(port_, "/v1/blocks/abc"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/blocks/-1"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/blocks/99999999999999999999999"), 400,
                P("bad-request"));
}

TEST_F(ApiServiceTest, GetStateDecodesKeyAndEncodesValue) {
  StartApi();
  StateRecord text;
  text.found = true;
  text.value = ToBytes("hello world");
  text.owner = Bytes(32, 3);
  text.height = 9;
  state_.SetState("kv", "a/b c", text);
  StateRecord binary = text;
  binary.value = Bytes{0xff, 0x00, 0xfe};
  state_.SetState("kv", "bin", binary);

  Reply r = Get(port_, "/v1/state/kv/a%2Fb%20c");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["app"], "kv");
  EXPECT_EQ(j["key"], "a/b c");
  EXPECT_EQ(j["value"], "hello world");
  EXPECT_EQ(j["value_encoding"], "utf-8");
  EXPECT_EQ(j["owner"], ToHex(Bytes(32, 3)));
  EXPECT_EQ(j["height"], 9);

  // An unencoded '/' belongs to the key too.
  EXPECT_EQ(Get(port_, "/v1/state/kv/a/b%20c").json()["key"], "a/b c");

  Reply b = Get(port_, "/v1/state/kv/bin");
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(b.json()["value"], "ff00fe");
  EXPECT_EQ(b.json()["value_encoding"], "hex");

  ExpectProblem(Get(port_, "/v1/state/kv/missing"), 404, P("state-not-found"));
  ExpectProblem(Get(port_, "/v1/state/kv/%zz"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/state/kv/"), 400, P("bad-request"));
}

TEST_F(ApiServiceTest, AppRoutesReadTheirAppsRecordsWithTheRecordDecoded) {
  StartApi();
  StateRecord inv;
  inv.found = true;
  inv.value = ToBytes(R"({"number":"INV-1","status":"issued"})");
  inv.owner = Bytes(32, 5);
  inv.height = 9;
  state_.SetState("invoice", "inv/org-a/INV-1", inv);
  StateRecord summary = inv;
  summary.value = ToBytes(R"({"number":"INV-1","status":"issued"})");
  state_.SetState("invoice", "buyer/org-b/org-a/INV-1", summary);
  StateRecord doc = inv;
  doc.value = ToBytes(R"({"status":"anchored"})");
  const std::string hash(64, 'a');
  state_.SetState("notary", "doc/" + hash, doc);
  StateRecord org = inv;
  org.value = ToBytes(R"({"added_height":0,"id":"org-a","name":"A"})");
  state_.SetState("admin", "org/org-a", org);

  Reply one = Get(port_, "/v1/apps/invoice/invoices/org-a/INV-1");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json()["app"], "invoice");
  EXPECT_EQ(one.json()["key"], "inv/org-a/INV-1");
  EXPECT_EQ(one.json()["record"]["status"], "issued");
  EXPECT_TRUE(one.json().contains("proof"));

  Reply by_buyer = Get(port_, "/v1/apps/invoice/invoices?buyer=org-b");
  ASSERT_EQ(by_buyer.status, 200) << by_buyer.body;
  ASSERT_EQ(by_buyer.json()["items"].size(), 1u);
  EXPECT_EQ(by_buyer.json()["items"][0]["record"]["number"], "INV-1");
  Reply by_seller = Get(port_, "/v1/apps/invoice/invoices?seller=org-a");
  ASSERT_EQ(by_seller.status, 200) << by_seller.body;
  EXPECT_EQ(by_seller.json()["items"][0]["key"], "inv/org-a/INV-1");

  // Upper-case hex names the same document.
  Reply d = Get(port_, "/v1/apps/notary/documents/" + std::string(64, 'A'));
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.json()["record"]["status"], "anchored");
  Reply orgs = Get(port_, "/v1/apps/admin/orgs");
  ASSERT_EQ(orgs.status, 200) << orgs.body;
  EXPECT_EQ(orgs.json()["items"][0]["record"]["id"], "org-a");

  ExpectProblem(Get(port_, "/v1/apps/invoice/invoices/org-a/INV-2"), 404,
                P("state-not-found"));
  ExpectProblem(Get(port_, "/v1/apps/invoice/invoices/Org%20A/INV-1"), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/apps/invoice/invoices/org-a/INV%2F1"), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/apps/invoice/invoices"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/apps/invoice/invoices?buyer=b&seller=a"), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/apps/notary/documents/abcd"), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/apps/admin/members/xyz"), 400,
                P("bad-request"));
  ExpectProblem(Get(port_, "/v1/apps/admin/proposals/12"), 400,
                P("bad-request"));
}

// A state record with a proof bundle (its content is opaque to the api).
StateRecord ProvenRecord(bool found, bool certified) {
  StateRecord r;
  r.found = found;
  if (found) {
    r.value = ToBytes("paid");
    r.owner = Bytes(32, 4);
  }
  r.height = 12;
  r.state_root.fill(0xab);
  r.proof.siblings = {Hash32{}, Ed25519Sha256().Hash(AsBytes("sibling"))};
  r.proof.leaf = StateLeaf{Ed25519Sha256().Hash(AsBytes("path")),
                           Ed25519Sha256().Hash(AsBytes("value"))};
  if (certified) {
    r.next_header = MakeChain().block.block.header;
    r.next_cert = *MakeChain().block.cert;
  }
  return r;
}

Chain ApiServiceTest::AddProvenAnswers() {
  Chain c = MakeChain();
  chain_.AddTx(c.tx_hash, c.record);
  chain_.AddBlock(c.block);
  state_.SetState("kv", "k", ProvenRecord(true, true));
  state_.SetState("invoice", "inv/org-a/INV-1", ProvenRecord(true, true));
  return c;
}

StateRecord DecodeProof(const Json& j) {
  EXPECT_EQ(j["proof"]["encoding"], "consortia-staterecord-v1");
  absl::StatusOr<Bytes> raw = FromHex(j["proof"]["hex"].get<std::string>());
  EXPECT_TRUE(raw.ok());
  absl::StatusOr<StateRecord> rec =
      DecodeStateRecord(raw.ok() ? *raw : Bytes{});
  EXPECT_TRUE(rec.ok()) << rec.status();
  return rec.ok() ? *rec : StateRecord{};
}

TEST_F(ApiServiceTest, GetStateCarriesItsProofAndWhetherItIsCertified) {
  StartApi();
  state_.SetState("kv", "invoice/1", ProvenRecord(true, false));
  state_.SetState("kv", "invoice/2", ProvenRecord(true, true));

  Reply r = Get(port_, "/v1/state/kv/invoice%2F1");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["value"], "paid");
  EXPECT_EQ(j["height"], 12);
  EXPECT_EQ(j["state_root"], ToHex(Bytes(32, 0xab)));
  EXPECT_EQ(j["certified"], false);
  StateRecord back = DecodeProof(j);
  EXPECT_EQ(back.proof, ProvenRecord(true, false).proof);
  EXPECT_EQ(back.value, ToBytes("paid"));
  EXPECT_FALSE(back.next_header.has_value());

  Reply c = Get(port_, "/v1/state/kv/invoice%2F2");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.json()["certified"], true);
  StateRecord cert = DecodeProof(c.json());
  ASSERT_TRUE(cert.next_header.has_value());
  EXPECT_EQ(*cert.next_header, MakeChain().block.block.header);
}

TEST_F(ApiServiceTest, AbsentStateIs404WithAProofOfAbsence) {
  StartApi();
  state_.SetState("kv", "gone", ProvenRecord(false, true));
  Reply r = Get(port_, "/v1/state/kv/gone");
  ExpectProblem(r, 404, P("state-not-found"));
  Json j = r.json();
  EXPECT_EQ(j["key"], "gone");
  EXPECT_EQ(j["height"], 12);
  EXPECT_EQ(j["certified"], true);
  StateRecord back = DecodeProof(j);
  EXPECT_FALSE(back.found);
  EXPECT_EQ(back.proof, ProvenRecord(false, true).proof);
}

// Every answer with a proof carries the validator-set changes committed
// below its height, once there is one; a chain without changes answers
// without the field.
TEST_F(ApiServiceTest, ProofsCarryTheValidatorChangesBelowTheirHeight) {
  StartApi();
  Chain c = AddProvenAnswers();
  state_.SetState("kv", "gone", ProvenRecord(false, true));
  const std::vector<std::string> paths = {
      "/v1/txs/" + Hex(c.tx_hash), "/v1/blocks/5", "/v1/state/kv/k",
      "/v1/state/kv/gone", "/v1/apps/invoice/invoices/org-a/INV-1"};
  for (const std::string& path : paths) {
    Reply r = Get(port_, path);
    ASSERT_TRUE(r.status == 200 || r.status == 404) << path << r.body;
    EXPECT_FALSE(r.json().contains("validator_changes")) << path;
  }

  // Changes never appear below a height already answered: a new api (with
  // an empty cache of them) over a chain that has two.
  api_.reset();
  StateRecord change3 = ProvenRecord(true, true);
  change3.height = 3;
  StateRecord change9 = change3;
  change9.height = 9;
  chain_.AddValidatorChange(change3);
  chain_.AddValidatorChange(change9);
  StartApi();
  const std::vector<size_t> expected = {1, 1, 2, 2, 2};  // below 5, 5, 12...
  for (size_t i = 0; i < paths.size(); ++i) {
    Reply r = Get(port_, paths[i]);
    Json j = r.json();
    ASSERT_TRUE(j.contains("validator_changes")) << paths[i] << r.body;
    ASSERT_EQ(j["validator_changes"].size(), expected[i]) << paths[i];
    absl::StatusOr<Bytes> raw =
        FromHex(j["validator_changes"][0].get<std::string>());
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(*raw, EncodeStateRecord(change3));
  }
  // Asked for the changes below the first answer's height, then below the
  // first one above what the answers so far cover (the rest came from the
  // cache), by each api.
  EXPECT_EQ(chain_.validator_changes_asked(),
            (std::vector<uint64_t>{4, 11, 4, 11}));
}

// A change whose next block is committed (next_header and next_cert set).
StateRecord CertifiedChange(uint64_t height) {
  StateRecord r = ProvenRecord(true, true);
  r.height = height;
  return r;
}

// The changes of an answer, decoded.
std::vector<StateRecord> ChangesOf(const Json& j) {
  std::vector<StateRecord> out;
  if (!j.contains("validator_changes")) return out;
  for (const Json& hex : j["validator_changes"]) {
    absl::StatusOr<Bytes> raw = FromHex(hex.get<std::string>());
    EXPECT_TRUE(raw.ok());
    absl::StatusOr<StateRecord> r =
        DecodeStateRecord(raw.ok() ? *raw : Bytes{});
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) out.push_back(*std::move(r));
  }
  return out;
}

// The changes below a height once asked of storage answer every later proof
// at or below it: one storage call, not one per request (issue 16).
TEST_F(ApiServiceTest, RepeatedProofReadsAskStorageForValidatorChangesOnce) {
  StartApi();
  Chain c = AddProvenAnswers();
  chain_.AddValidatorChange(CertifiedChange(3));
  const std::vector<std::string> paths = {
      "/v1/state/kv/k", "/v1/txs/" + Hex(c.tx_hash), "/v1/blocks/5",
      "/v1/apps/invoice/invoices/org-a/INV-1", "/v1/state/kv/k?height=8"};
  for (int round = 0; round < 3; ++round) {
    for (const std::string& path : paths) {
      Reply r = Get(port_, path);
      ASSERT_EQ(r.status, 200) << path << r.body;
      std::vector<StateRecord> changes = ChangesOf(r.json());
      ASSERT_EQ(changes.size(), 1u) << path;
      EXPECT_EQ(EncodeStateRecord(changes[0]),
                EncodeStateRecord(CertifiedChange(3)));
    }
  }
  EXPECT_EQ(chain_.validator_changes_asked(), (std::vector<uint64_t>{11}));
  EXPECT_TRUE(MetricsContain(
      "consortia_api_validator_changes_total{source=\"storage\"} 1"))
      << registry_.Serialize();
  EXPECT_TRUE(MetricsContain(
      "consortia_api_validator_changes_total{source=\"cache\"} 14"))
      << registry_.Serialize();
}

// A change whose next block storage has not completed it with yet is handed
// out as storage has it, but not kept: the next answer at or above its
// height asks again and gets it completed. The changes below it are kept.
TEST_F(ApiServiceTest, AnIncompleteValidatorChangeIsNotCached) {
  StartApi();
  Chain c = MakeChain();  // a tx at height 5
  chain_.AddTx(c.tx_hash, c.record);
  state_.SetState("kv", "k", ProvenRecord(true, true));  // height 12
  chain_.AddValidatorChange(CertifiedChange(3));
  StateRecord change9 = CertifiedChange(9);
  change9.next_header.reset();
  change9.next_cert.reset();
  chain_.AddValidatorChange(change9);

  Reply first = Get(port_, "/v1/state/kv/k");
  ASSERT_EQ(first.status, 200) << first.body;
  std::vector<StateRecord> changes = ChangesOf(first.json());
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_FALSE(changes[1].next_header.has_value());
  // Below 9: from the cache.
  Reply tx = Get(port_, "/v1/txs/" + Hex(c.tx_hash));
  ASSERT_EQ(tx.status, 200) << tx.body;
  EXPECT_EQ(ChangesOf(tx.json()).size(), 1u);
  Reply at9 = Get(port_, "/v1/state/kv/k?height=9");
  ASSERT_EQ(at9.status, 200) << at9.body;
  EXPECT_EQ(ChangesOf(at9.json()).size(), 1u);
  EXPECT_EQ(chain_.validator_changes_asked(), (std::vector<uint64_t>{11}));

  // Storage completes it; the next answer above 9 asks again, and then the
  // cache covers it.
  chain_.AddValidatorChange(CertifiedChange(9));
  for (int i = 0; i < 2; ++i) {
    Reply again = Get(port_, "/v1/state/kv/k");
    ASSERT_EQ(again.status, 200) << again.body;
    changes = ChangesOf(again.json());
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(EncodeStateRecord(changes[1]),
              EncodeStateRecord(CertifiedChange(9)));
  }
  EXPECT_EQ(chain_.validator_changes_asked(), (std::vector<uint64_t>{11, 11}));
}

// An answer above the height the cache covers asks storage (for the changes
// committed since), and covers more from then on.
TEST_F(ApiServiceTest, AProofAboveTheCachedHeightsAsksStorageAgain) {
  StartApi();
  state_.SetState("kv", "k", ProvenRecord(true, true));  // state height 42
  chain_.AddValidatorChange(CertifiedChange(3));
  auto changes_at = [&](int height) {
    Reply r = Get(port_, "/v1/state/kv/k?height=" + std::to_string(height));
    EXPECT_EQ(r.status, 200) << r.body;
    return ChangesOf(r.json()).size();
  };
  EXPECT_EQ(changes_at(7), 1u);   // asks 6
  EXPECT_EQ(changes_at(20), 1u);  // asks 19
  EXPECT_EQ(changes_at(10), 1u);  // cached
  chain_.AddValidatorChange(CertifiedChange(25));
  EXPECT_EQ(changes_at(30), 2u);  // asks 29
  EXPECT_EQ(changes_at(20), 1u);  // cached
  EXPECT_EQ(changes_at(26), 2u);  // cached
  EXPECT_EQ(chain_.validator_changes_asked(),
            (std::vector<uint64_t>{6, 19, 29}));
}

// Storage's errors are answered as without the cache, and leave nothing in
// it: the next answer asks storage again.
TEST_F(ApiServiceTest, AValidatorChangesErrorIsAnsweredAndNotCached) {
  StartApi();
  state_.SetState("kv", "k", ProvenRecord(true, true));  // height 12
  chain_.AddValidatorChange(CertifiedChange(3));
  chain_.SetFailure(absl::DeadlineExceededError("bus timeout"));
  Reply timeout = Get(port_, "/v1/state/kv/k");
  ExpectProblem(timeout, 503, P("upstream-unavailable"));
  EXPECT_EQ(timeout.retry_after, "1");
  chain_.SetFailure(absl::InternalError("disk on fire"));
  Reply internal = Get(port_, "/v1/state/kv/k");
  ExpectProblem(internal, 500, P("internal"));
  EXPECT_EQ(internal.body.find("disk on fire"), std::string::npos);

  chain_.SetFailure(absl::OkStatus());
  Reply ok = Get(port_, "/v1/state/kv/k");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ChangesOf(ok.json()).size(), 1u);
  EXPECT_EQ(chain_.validator_changes_asked(),
            (std::vector<uint64_t>{11, 11, 11}));
  EXPECT_TRUE(MetricsContain(
      "consortia_api_validator_changes_total{source=\"storage\"} 3"))
      << registry_.Serialize();
}

TEST_F(ApiServiceTest, GetStateAtAnEarlierHeight) {
  StartApi();
  state_.SetState("kv", "k", ProvenRecord(true, true));
  Reply r = Get(port_, "/v1/state/kv/k?height=7");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["height"], 7);
  EXPECT_EQ(state_.heights_asked(), (std::vector<uint64_t>{7}));
  ExpectProblem(Get(port_, "/v1/state/kv/k?height=2000"), 404,
                P("state-not-found"));
  for (const char* bad : {"?height=", "?height=x", "?height=-1",
                          "?height=123456789012345678901"}) {
    ExpectProblem(Get(port_, std::string("/v1/state/kv/k") + bad), 400,
                  P("bad-request"));
  }
}

TEST_F(ApiServiceTest, BlockByHash) {
  StartApi();
  Chain c = MakeChain();
  chain_.AddBlock(c.block);
  Reply r = Get(port_, "/v1/blocks/by-hash/" + Hex(c.block.block_hash));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["height"], 5);
  EXPECT_EQ(r.json()["block_hash"], Hex(c.block.block_hash));
  ExpectProblem(Get(port_, "/v1/blocks/by-hash/" + std::string(64, 'a')), 404,
                P("block-not-found"));
  ExpectProblem(Get(port_, "/v1/blocks/by-hash/xyz"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/blocks/by-hash/"), 400, P("bad-request"));
}

TEST_F(ApiServiceTest, BlockListPagesWithoutGapsOrDuplicates) {
  StartApi();
  for (uint64_t h = 1; h <= 23; ++h) {
    BlockRecord b = MakeChain().block;
    b.block.header.height = h;
    b.block.txs.resize(h % 3);
    b.block_hash = BlockHash(Ed25519Sha256(), b.block.header);
    chain_.AddBlock(b);
  }
  std::vector<uint64_t> heights;
  std::string target = "/v1/blocks?limit=5";
  for (int pages = 0; pages < 10; ++pages) {
    Reply r = Get(port_, target);
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = r.json();
    EXPECT_LE(j["blocks"].size(), 5u);
    for (const Json& b : j["blocks"]) {
      heights.push_back(b["height"].get<uint64_t>());
      EXPECT_EQ(b["tx_count"], b["height"].get<uint64_t>() % 3);
      EXPECT_EQ(b["header"]["height"], b["height"]);
    }
    if (j["next_from"].is_null()) break;
    target = "/v1/blocks?limit=5&from=" +
             std::to_string(j["next_from"].get<uint64_t>());
  }
  std::vector<uint64_t> want(23);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(heights, want);

  // The default page is 20 blocks from height 1.
  Reply d = Get(port_, "/v1/blocks");
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.json()["blocks"].size(), 20u);
  EXPECT_EQ(d.json()["blocks"][0]["height"], 1);
  EXPECT_EQ(d.json()["next_from"], 21);
  // A short page may be followed by more (storage may stop early): only an
  // empty page ends the list.
  Reply tail = Get(port_, "/v1/blocks?from=21&limit=100");
  ASSERT_EQ(tail.status, 200);
  EXPECT_EQ(tail.json()["blocks"].size(), 3u);
  EXPECT_EQ(tail.json()["next_from"], 24);
  Reply beyond = Get(port_, "/v1/blocks?from=99");
  ASSERT_EQ(beyond.status, 200);
  EXPECT_TRUE(beyond.json()["blocks"].empty());
  EXPECT_TRUE(beyond.json()["next_from"].is_null());

  for (const char* bad : {"?limit=0", "?limit=101", "?limit=x", "?limit=-5",
                          "?from=0", "?from=abc", "?limit="}) {
    ExpectProblem(Get(port_, std::string("/v1/blocks") + bad), 400,
                  P("bad-request"));
  }
}

// Storage's ListBlockSummaries and ListEvidence may answer fewer than asked
// before the end (ChainQueries): a client that follows next_from still gets
// every block and record, never a page that ends the list early.
TEST_F(ApiServiceTest, ListsFollowAStorageAnswerThatStopsEarly) {
  StartApi();
  for (uint64_t h = 1; h <= 10; ++h) {
    BlockRecord b = MakeChain().block;
    b.block.header.height = h;
    b.block_hash = BlockHash(Ed25519Sha256(), b.block.header);
    chain_.AddBlock(b);
  }
  for (int i = 0; i < 7; ++i) {
    chain_.AddEvidence(EvidenceRecord{0, "duplicate_vote",
                                      static_cast<uint64_t>(10 + i), 0, 1,
                                      ToBytes("ab")});
  }
  chain_.SetMaxListed(3);
  auto list_all = [&](const std::string& path, const std::string& field,
                      const std::string& id) {
    std::vector<uint64_t> ids;
    std::string target = path + "?limit=5";
    for (int pages = 0; pages < 20; ++pages) {
      Reply r = Get(port_, target);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) break;
      Json j = r.json();
      for (const Json& item : j[field]) ids.push_back(item[id].get<uint64_t>());
      if (j["next_from"].is_null()) break;
      target = path + "?limit=5&from=" +
               std::to_string(j["next_from"].get<uint64_t>());
    }
    return ids;
  };
  std::vector<uint64_t> want(10);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(list_all("/v1/blocks", "blocks", "height"), want);
  want.resize(7);
  EXPECT_EQ(list_all("/v1/evidence", "evidence", "seq"), want);
}

TEST_F(ApiServiceTest, EvidenceListsInPages) {
  StartApi();
  Reply none = Get(port_, "/v1/evidence");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_TRUE(none.json()["evidence"].empty());
  EXPECT_TRUE(none.json()["next_from"].is_null());
  for (int i = 0; i < 3; ++i) {
    chain_.AddEvidence(EvidenceRecord{0, "duplicate_vote",
                                      static_cast<uint64_t>(10 + i), 2, 1,
                                      ToBytes("ab")});
  }
  Reply page = Get(port_, "/v1/evidence?limit=2");
  ASSERT_EQ(page.status, 200) << page.body;
  Json j = page.json();
  ASSERT_EQ(j["evidence"].size(), 2u);
  EXPECT_EQ(j["evidence"][0]["seq"], 1);
  EXPECT_EQ(j["evidence"][0]["kind"], "duplicate_vote");
  EXPECT_EQ(j["evidence"][0]["height"], 10);
  EXPECT_EQ(j["evidence"][0]["round"], 2);
  EXPECT_EQ(j["evidence"][0]["validator_index"], 1);
  EXPECT_EQ(j["evidence"][0]["message"]["encoding"], "consortia-evidence-v1");
  EXPECT_EQ(j["evidence"][0]["message"]["hex"], "6162");
  EXPECT_EQ(j["next_from"], 3);
  Reply rest = Get(port_, "/v1/evidence?from=3");
  ASSERT_EQ(rest.status, 200);
  EXPECT_EQ(rest.json()["evidence"].size(), 1u);
  EXPECT_EQ(rest.json()["next_from"], 4);
  Reply end = Get(port_, "/v1/evidence?from=4");
  ASSERT_EQ(end.status, 200);
  EXPECT_TRUE(end.json()["evidence"].empty());
  EXPECT_TRUE(end.json()["next_from"].is_null());
  for (const char* bad : {"?limit=0", "?limit=101", "?from=0", "?from=x"}) {
    ExpectProblem(Get(port_, std::string("/v1/evidence") + bad), 400,
                  P("bad-request"));
  }
  ExpectProblem(Post(port_, "/v1/evidence", "{}"), 405,
                P("method-not-allowed"));
}

TEST_F(ApiServiceTest, StateScanPagesWithCursors) {
  StartApi();
  std::vector<std::string> keys;
  for (int i = 0; i < 17; ++i) {
    keys.push_back(absl::StrCat("inv/", i < 10 ? "0" : "", i));
  }
  keys.push_back(std::string("inv/\xff\x00", 6));  // not UTF-8: hex
  for (const std::string& k : keys) {
    StateRecord r;
    r.found = true;
    r.value = ToBytes("v-" + k.substr(0, 6));
    r.owner = Bytes(32, 1);
    state_.SetState("kv", k, r);
  }
  state_.SetState("kv", "other", StateRecord{});
  state_.SetState("notary", "inv/x", StateRecord{});

  std::vector<std::string> got;
  std::string target = "/v1/state/kv?prefix=inv%2F&limit=4";
  for (int pages = 0; pages < 10; ++pages) {
    Reply r = Get(port_, target);
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = r.json();
    EXPECT_EQ(j["app"], "kv");
    EXPECT_EQ(j["height"], 42);
    EXPECT_LE(j["items"].size(), 4u);
    for (const Json& item : j["items"]) {
      if (item["key_encoding"] == "hex") {
        absl::StatusOr<Bytes> raw = FromHex(item["key"].get<std::string>());
        ASSERT_TRUE(raw.ok());
        got.emplace_back(AsString(*raw));
      } else {
        got.push_back(item["key"].get<std::string>());
      }
    }
    if (j["next_cursor"].is_null()) break;
    target = "/v1/state/kv?prefix=inv%2F&limit=4&cursor=" +
             j["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(got, keys);

  ExpectProblem(Get(port_, "/v1/state/kv?cursor=zz"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/state/kv?limit=0"), 400, P("bad-request"));
  ExpectProblem(Get(port_, "/v1/state/kv?limit=101"), 400, P("bad-request"));
  // A cursor from another prefix is refused by storage: 400 as well.
  ExpectProblem(
      Get(port_, "/v1/state/kv?prefix=a&cursor=" + ToHex(AsBytes("b"))), 400,
      P("bad-request"));
}

TEST_F(ApiServiceTest, StorageTimeoutIs503WithRetryAfter) {
  StartApi();
  chain_.SetFailure(absl::DeadlineExceededError("bus timeout"));
  state_.SetFailure(absl::DeadlineExceededError("bus timeout"));
  for (const std::string& target :
       {std::string("/v1/blocks/latest"), "/v1/txs/" + std::string(64, 'a'),
        std::string("/v1/state/kv/k")}) {
    SCOPED_TRACE(target);
    Reply r = Get(port_, target);
    ExpectProblem(r, 503, P("upstream-unavailable"));
    EXPECT_EQ(r.retry_after, "1");
  }
  chain_.SetFailure(absl::InternalError("disk on fire"));
  Reply r = Get(port_, "/v1/blocks/latest");
  ExpectProblem(r, 500, P("internal"));
  EXPECT_EQ(r.body.find("disk on fire"), std::string::npos);
  EXPECT_TRUE(MetricsContain(
      "consortia_api_upstream_errors_total{service=\"storage\"}"));
}

// ------------------------------------------------------------- the rest

TEST_F(ApiServiceTest, UnknownRouteIs404AndWrongMethodIs405) {
  StartApi();
  ExpectProblem(Get(port_, "/v2/txs"), 404, P("not-found"));
  ExpectProblem(Get(port_, "/"), 404, P("not-found"));
  Reply r = Get(port_, "/v1/txs");
  ExpectProblem(r, 405, P("method-not-allowed"));
  EXPECT_EQ(r.allow, "POST");
  Reply r2 = Post(port_, "/v1/blocks/latest", "{}");
  ExpectProblem(r2, 405, P("method-not-allowed"));
  EXPECT_EQ(r2.allow, "GET");
}

TEST_F(ApiServiceTest, ReadyOnlyOnceBothUpstreamsAnswer) {
  mempool_.SetDown(true);
  StartApi();
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
  ExpectProblem(Get(port_, "/readyz"), 503, P("not-ready"));
  EXPECT_FALSE(api_->Ready());

  mempool_.SetDown(false);
  EXPECT_TRUE(Eventually([&] { return Get(port_, "/readyz").status == 200; }));
  EXPECT_TRUE(api_->Ready());
}

// The probe asks storage for the chain tip (height and hash), never for a
// whole block; a storage that cannot serve reads (GetChainTip fails, as when
// its Redis is down) makes the api not ready until it can again.
TEST_F(ApiServiceTest, ReadinessAsksStorageForTheChainTipOnly) {
  BlockRecord b;
  b.block.header.chain_id = kChain;
  b.block.header.height = 1;
  b.block_hash = BlockHash(Ed25519Sha256(), b.block.header);
  chain_.AddBlock(b);
  chain_.SetFailure(absl::UnavailableError("storage's store is down"));
  StartApi();
  ExpectProblem(Get(port_, "/readyz"), 503, P("not-ready"));
  EXPECT_FALSE(api_->Ready());

  chain_.SetFailure(absl::OkStatus());
  EXPECT_TRUE(Eventually([&] { return Get(port_, "/readyz").status == 200; }));
  EXPECT_GT(chain_.chain_tip_calls(), 0);
  EXPECT_EQ(chain_.block_reads(), 0);
}

TEST_F(ApiServiceTest, MetricsNameEveryRouteAndBatch) {
  StartApi();
  Post(port_, "/v1/txs", TxToJson(SignedTx(9)));
  Get(port_, "/v1/blocks/latest");
  Get(port_, "/nope");
  // Without a key file every caller is anonymous.
  EXPECT_TRUE(
      MetricsContain("consortia_api_requests_total{code=\"202\",org="
                     "\"anonymous\",route=\"/v1/txs\"} 1"))
      << registry_.Serialize();
  EXPECT_TRUE(
      MetricsContain("consortia_api_requests_total{code=\"404\",org="
                     "\"anonymous\",route=\"/v1/blocks/{height}\"} 1"));
  EXPECT_TRUE(
      MetricsContain("consortia_api_requests_total{code=\"404\",org="
                     "\"anonymous\",route=\"unknown\"} 1"));
  EXPECT_TRUE(MetricsContain(
      "consortia_api_request_duration_seconds_count{route=\"/v1/txs\"} 1"));
  EXPECT_TRUE(MetricsContain("consortia_api_submit_batch_size_count 1"));
}

// ------------------------------------------------- the edge holds (issue 11)
// Each limit lowered through ApiOptions, so a few requests reach it.

std::string SomeTxPath(char c) { return "/v1/txs/" + std::string(64, c); }

// ------------------------------------------------------------ the explorer

TEST_F(ApiServiceTest, ExplorerFilesAreServedFromTheBinaryWithAStrictCsp) {
  StartApi();
  const Reply page = Get(port_, "/explorer");
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script type=\"module\" src=\"/explorer/app.js\">"),
            std::string::npos);
  // No inline script or style, no other origin, no framing.
  EXPECT_NE(page.csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(page.csp.find("script-src 'self';"), std::string::npos);
  EXPECT_NE(page.csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(page.csp.find("unsafe"), std::string::npos);
  EXPECT_EQ(Get(port_, "/explorer/").body, page.body);
  EXPECT_EQ(Get(port_, "/explorer/index.html").body, page.body);

  for (const char* js : {"app.js", "codec.js", "verify.js"}) {
    const Reply r = Get(port_, std::string("/explorer/") + js);
    EXPECT_EQ(r.status, 200) << js;
    EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8") << js;
    EXPECT_EQ(r.csp, page.csp) << js;
  }
  const Reply css = Get(port_, "/explorer/style.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.content_type, "text/css; charset=utf-8");

  ExpectProblem(Get(port_, "/explorer/nope.js"), 404, P("not-found"));
  ExpectProblem(Get(port_, "/explorer/a/app.js"), 404, P("not-found"));
  ExpectProblem(Post(port_, "/explorer", "{}"), 405, P("method-not-allowed"));
  EXPECT_TRUE(MetricsContain("route=\"/explorer/{file}\""));
}

TEST_F(ApiServiceTest, FullQueryQueueIs503AtOnceWhileHealthzAnswers) {
  ApiOptions opts;
  opts.query_threads = 1;
  opts.query_queue_max = 1;
  chain_.HoldGetTx();  // storage hangs: the only query thread is stuck
  StartApi(opts);
  PendingRequest first(port_, SomeTxPath('a'));
  ASSERT_TRUE(chain_.WaitForHeld(1));

  // Four more: one waits in the queue, three are refused at once (before
  // storage answers anything), on the HTTP thread.
  std::vector<std::unique_ptr<PendingRequest>> more;
  for (char c : {'b', 'c', 'd', 'e'}) {
    more.push_back(std::make_unique<PendingRequest>(port_, SomeTxPath(c)));
  }
  ASSERT_TRUE(Eventually(
      [&] { return MetricsContain("consortia_api_query_pool_full_total 3"); }));
  // The HTTP threads are free: liveness answers while the queue is full.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Get(port_, "/healthz").status, 200);

  chain_.Release();
  int overloaded = 0;
  int answered = 0;
  for (auto& p : more) {
    Reply r = p->Read();
    if (r.status == 503) {
      ExpectProblem(r, 503, P("overloaded"));
      EXPECT_EQ(r.retry_after, "1");
      ++overloaded;
    } else {
      EXPECT_EQ(r.status, 404) << r.body;  // the queued one ran
      ++answered;
    }
  }
  EXPECT_EQ(overloaded, 3);
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(first.Read().status, 404);
  EXPECT_EQ(chain_.get_tx_calls(), 2);
}

TEST_F(ApiServiceTest, QueuedQueryOfAClosedConnectionIsDroppedNotRun) {
  ApiOptions opts;
  opts.query_threads = 1;
  chain_.HoldGetTx();
  StartApi(opts);
  PendingRequest first(port_, SomeTxPath('a'));
  ASSERT_TRUE(chain_.WaitForHeld(1));

  // Asks, then hangs up while its query waits behind the stuck one.
  PendingRequest gone(port_, SomeTxPath('b'), "127.0.0.2");
  gone.Close();
  ASSERT_TRUE(Eventually([&] {
    return MetricsContain(
        "consortia_api_connections_cut_total{reason=\"client_gone\"} 1");
  }));

  chain_.Release();
  EXPECT_EQ(first.Read().status, 404);
  ASSERT_TRUE(Eventually(
      [&] { return MetricsContain("consortia_api_dropped_closed_total 1"); }));
  EXPECT_EQ(chain_.get_tx_calls(), 1);  // storage never saw the second
}

TEST_F(ApiServiceTest, FullSubmitQueueIs429WithRetryAfter) {
  ApiOptions opts;
  opts.submit_threads = 1;
  opts.submit_batch_max = 1;
  opts.submit_batch_delay = absl::ZeroDuration();
  opts.submit_queue_max = 1;
  mempool_.HoldFirstBatch();  // the mempool hangs on the first batch
  StartApi(opts);
  PendingRequest first(port_, "/v1/txs", "127.0.0.1", http::verb::post,
                       TxToJson(SignedTx(1)));
  ASSERT_TRUE(mempool_.WaitForBatches(1));
  PendingRequest second(port_, "/v1/txs", "127.0.0.1", http::verb::post,
                        TxToJson(SignedTx(2)));
  ASSERT_TRUE(Eventually(
      [&] { return MetricsContain("consortia_api_submit_queue_txs 1"); }));

  Reply third = Post(port_, "/v1/txs", TxToJson(SignedTx(3)));
  ExpectProblem(third, 429, P("submit-queue-full"));
  EXPECT_EQ(third.retry_after, "1");
  EXPECT_TRUE(MetricsContain("consortia_api_submit_queue_full_total 1"));

  mempool_.Release();
  EXPECT_EQ(first.Read().status, 202);
  EXPECT_EQ(second.Read().status, 202);
  EXPECT_EQ(mempool_.batches().size(), 2u);  // the third never reached it
}

TEST_F(ApiServiceTest, PerClientConnectionCapShedsOneAddressOnly) {
  ApiOptions opts;
  opts.max_connections_per_client = 3;
  StartApi(opts);
  std::vector<std::unique_ptr<PendingRequest>> attacker;
  for (int i = 0; i < 3; ++i) {
    attacker.push_back(
        std::make_unique<PendingRequest>(port_, "/healthz", "127.0.0.2"));
    ASSERT_EQ(attacker.back()->Read().status, 200);  // kept open
  }
  PendingRequest fourth(port_, "/healthz", "127.0.0.2");
  EXPECT_EQ(fourth.Read().status, 0);  // closed without an answer
  EXPECT_TRUE(MetricsContain(
      "consortia_api_connections_refused_total{reason=\"max_connections_per_"
      "client\"} 1"));
  EXPECT_EQ(Get(port_, "/healthz").status, 200);  // 127.0.0.1 still served
  EXPECT_TRUE(Eventually(
      [&] { return MetricsContain("consortia_api_open_connections 3"); }));
}

TEST_F(ApiServiceTest, OversizedHeaderIs431) {
  ApiOptions opts;
  opts.max_header_bytes = 1024;
  StartApi(opts);
  PendingRequest big(port_, "/v1/txs/" + std::string(2000, 'a'));
  Reply r = big.Read();
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_TRUE(MetricsContain(
      "consortia_api_connections_cut_total{reason=\"header_too_large\"} 1"));
  // A request line just under the limit still reaches the route.
  EXPECT_EQ(Get(port_, SomeTxPath('f')).status, 404);
}

TEST_F(ApiServiceTest, BadRequestLogLinesAreLimitedPerClient) {
  ApiOptions opts;
  opts.log_lines_per_client = 2;
  opts.log_interval = absl::Seconds(3600);
  StartApi(opts);
  for (int i = 0; i < 5; ++i) {
    PendingRequest p(port_, "/no/such/route", "127.0.0.2");
    EXPECT_EQ(p.Read().status, 404);
  }
  EXPECT_TRUE(MetricsContain("consortia_api_log_lines_suppressed_total 3"));
  // Another client has its own allowance.
  PendingRequest other(port_, "/no/such/route", "127.0.0.3");
  EXPECT_EQ(other.Read().status, 404);
  EXPECT_TRUE(MetricsContain("consortia_api_log_lines_suppressed_total 3"));
}

TEST(LogLimiterTest, AllowsNPerIntervalPerClientAndReportsTheRestLater) {
  LogLimiter limiter(/*lines=*/2, absl::Seconds(10));
  absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.Allow("a", t0).log);
  EXPECT_TRUE(limiter.Allow("a", t0).log);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.Allow("a", t0).log);
  EXPECT_TRUE(limiter.Allow("b", t0).log);  // per address
  EXPECT_EQ(limiter.suppressed(), 3u);

  // A's window ended: the next line of A carries the count.
  LogLimiter::Verdict v = limiter.Allow("a", t0 + absl::Seconds(10));
  EXPECT_TRUE(v.log);
  EXPECT_EQ(v.suppressed_before, 3u);

  // A client that goes quiet is summed up by the sweep of someone else's
  // line.
  for (int i = 0; i < 4; ++i) limiter.Allow("c", t0 + absl::Seconds(10));
  LogLimiter::Verdict later = limiter.Allow("b", t0 + absl::Seconds(25));
  ASSERT_EQ(later.summaries.size(), 1u);
  EXPECT_EQ(later.summaries[0].first, "c");
  EXPECT_EQ(later.summaries[0].second, 2u);
}

TEST(LogLimiterTest, TracksABoundedNumberOfClients) {
  LogLimiter limiter(1, absl::Seconds(10), /*max_clients=*/2);
  absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.Allow("a", t0).log);
  EXPECT_TRUE(limiter.Allow("b", t0).log);
  // Further addresses share one allowance (the bucket "other").
  EXPECT_TRUE(limiter.Allow("c", t0).log);
  EXPECT_FALSE(limiter.Allow("d", t0).log);
  EXPECT_FALSE(limiter.Allow("e", t0).log);
  EXPECT_EQ(limiter.suppressed(), 2u);
}

TEST_F(ApiServiceTest, SurvivesArbitraryInput) {
  StartApi();
  std::mt19937 rng(1234);
  auto random_string = [&](size_t max_len) {
    std::string s(rng() % max_len, '\0');
    for (char& ch : s) ch = static_cast<char>(rng() % 256);
    return s;
  };
  const std::vector<std::string> prefixes = {
      "/v1/txs/", "/v1/blocks/", "/v1/state/", "/v1/state/kv/", "/"};
  for (int i = 0; i < 200; ++i) {
    Reply r = Post(port_, "/v1/txs", random_string(300));
    EXPECT_EQ(r.status, 400);
    // Printable garbage in the path (the HTTP parser refuses control bytes).
    std::string path = prefixes[rng() % prefixes.size()];
    for (size_t k = rng() % 40; k > 0; --k) {
      path.push_back("abcdefXYZ0123456789%/._~-"[rng() % 25]);
    }
    Reply g = Get(port_, path);
    EXPECT_GE(g.status, 200) << path;
    EXPECT_LT(g.status, 500) << path;
  }
  // Valid JSON, wrong shapes.
  for (const char* body : {"null", "1", "\"x\"", "{}", R"({"chain_id":1})",
                           R"({"chain_id":"c","nonce":-1})",
                           R"({"nonce":"18446744073709551616"})"}) {
    EXPECT_EQ(Post(port_, "/v1/txs", body).status, 400) << body;
  }
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
}

// ------------------------------------------------------ POST /v1/txs:batch

// {"txs":[...]} of the given tx bodies, as they are.
std::string BatchBody(const std::vector<std::string>& txs) {
  std::string body = R"({"txs":[)";
  for (size_t i = 0; i < txs.size(); ++i) {
    if (i > 0) body += ",";
    body += txs[i];
  }
  return body + "]}";
}

std::vector<std::string> TxBodies(uint64_t first_nonce, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(TxToJson(SignedTx(first_nonce + i)));
  return out;
}

void ExpectPending(const Json& result, const Transaction& tx) {
  EXPECT_EQ(result.value("tx_hash", ""), Hex(TxHash(Ed25519Sha256(), tx)))
      << result;
  EXPECT_EQ(result.value("status", ""), "pending") << result;
  EXPECT_FALSE(result.contains("problem")) << result;
}

void ExpectTxProblem(const Json& result, int status, const std::string& type) {
  ASSERT_TRUE(result.contains("problem")) << result;
  const Json& p = result["problem"];
  EXPECT_EQ(p.value("status", 0), status) << result;
  EXPECT_EQ(p.value("type", ""), type) << result;
  EXPECT_TRUE(p.contains("title")) << result;
  EXPECT_FALSE(p.value("detail", "").empty()) << result;
}

TEST_F(ApiServiceTest, BatchOfNTxsIsOneSubmitCallAnsweredInOrder) {
  constexpr size_t kTxs = 100;
  ApiOptions opts;
  // Through the batcher, the txs would leave in ten calls at least.
  opts.submit_batch_max = 10;
  StartApi(opts);
  std::vector<std::string> bodies = TxBodies(5000, kTxs);
  Reply r = Post(port_, "/v1/txs:batch", BatchBody(bodies));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  Json results = r.json()["results"];
  ASSERT_EQ(results.size(), kTxs) << r.body;
  for (size_t i = 0; i < kTxs; ++i)
    ExpectPending(results[i], SignedTx(5000 + i));

  // One Submit call with all N txs, in order: not N through the batcher.
  auto batches = mempool_.batches();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].size(), kTxs);
  for (size_t i = 0; i < kTxs; ++i) {
    EXPECT_EQ(batches[0][i], EncodeTx(SignedTx(5000 + i))) << i;
  }
  EXPECT_TRUE(MetricsContain("consortia_api_submit_batch_size_count 1\n"));
  EXPECT_TRUE(MetricsContain(
      "consortia_api_requests_total{code=\"200\",org=\"anonymous\","
      "route=\"/v1/txs:batch\"} 1"))
      << registry_.Serialize();
  EXPECT_TRUE(MetricsContain(
      "consortia_api_request_duration_seconds_count{route=\"/v1/txs:batch\"} "
      "1"));
}

TEST_F(ApiServiceTest, BatchAnswersValidAndInvalidTxsInTheirOrder) {
  StartApi();
  Json unknown_field = Json::parse(TxToJson(SignedTx(2)));
  unknown_field["amount"] = 5;
  // Whitespace, and strings holding the characters that delimit elements,
  // reach the tx decoder as they were sent.
  Transaction tricky = SignedTx(6);
  tricky.args = {"a ] b", "c\",{d"};
  const CryptoSuite& suite = Ed25519Sha256();
  KeyPair key = *suite.KeyFromSeed(Bytes(32, 7));
  tricky.signature = *suite.Sign(key.secret_key, TxSignBytes(tricky));
  const std::string body = "{ \"txs\" : [ " + TxToJson(SignedTx(1)) + " , " +
                           unknown_field.dump() + ",\n" +
                           TxToJson(SignedTx(3)) + ", 42, \"x\", " +
                           TxToJson(tricky) + " ] }";
  Reply r = Post(port_, "/v1/txs:batch", body);
  ASSERT_EQ(r.status, 200) << r.body;
  Json results = r.json()["results"];
  ASSERT_EQ(results.size(), 6u) << r.body;
  ExpectPending(results[0], SignedTx(1));
  ExpectTxProblem(results[1], 400, P("invalid-tx"));
  EXPECT_FALSE(results[1].contains("tx_hash"));
  EXPECT_NE(results[1]["problem"].value("detail", "").find("amount"),
            std::string::npos);
  ExpectPending(results[2], SignedTx(3));
  ExpectTxProblem(results[3], 400, P("invalid-tx"));
  ExpectTxProblem(results[4], 400, P("invalid-tx"));
  ExpectPending(results[5], tricky);

  // Only the valid ones reach the mempool, in one call.
  auto batches = mempool_.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0],
            (std::vector<Bytes>{EncodeTx(SignedTx(1)), EncodeTx(SignedTx(3)),
                                EncodeTx(tricky)}));
}

TEST_F(ApiServiceTest, BatchCarriesTheMempoolsVerdictOfEachTx) {
  StartApi();
  mempool_.SetSubmitCode(Admission::kBadSignature);
  Reply r = Post(port_, "/v1/txs:batch", BatchBody(TxBodies(10, 2)));
  ASSERT_EQ(r.status, 200) << r.body;
  Json results = r.json()["results"];
  ASSERT_EQ(results.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ExpectTxProblem(results[i], 422, P("bad-signature"));
    EXPECT_EQ(results[i].value("tx_hash", ""),
              Hex(TxHash(Ed25519Sha256(), SignedTx(10 + i))));
  }
  mempool_.SetSubmitCode(Admission::kAlreadyPending);
  r = Post(port_, "/v1/txs:batch", BatchBody(TxBodies(10, 1)));
  ASSERT_EQ(r.status, 200) << r.body;
  ExpectPending(r.json()["results"][0], SignedTx(10));
}

TEST_F(ApiServiceTest, BadBatchesAre400Or413AndSubmitNothing) {
  ApiOptions opts;
  opts.batch_max_txs = 3;
  StartApi(opts);
  const std::string tx = TxToJson(SignedTx(1));
  struct Case {
    std::string body;
    std::string detail;  // a part of the problem's detail
  };
  const std::vector<Case> bad = {
      {"{not json", "not valid JSON"},
      {"", "not valid JSON"},
      {"[" + tx + "]", "not a JSON object"},
      {"{}", "\"txs\" is missing"},
      {R"({"txs":[]})", "empty"},
      {R"({"txs":{}})", "not an array"},
      {R"({"txs":null})", "not an array"},
      {R"({"txs":[)" + tx + R"(],"tx":1})", "unknown field \"tx\""},
      {R"({"txs":[)" + tx + R"(],"txs":[)" + tx + "]}", "twice"},
  };
  for (const Case& c : bad) {
    SCOPED_TRACE(c.body);
    Reply r = Post(port_, "/v1/txs:batch", c.body);
    ExpectProblem(r, 400, P("invalid-batch"));
    EXPECT_NE(r.json().value("detail", "").find(c.detail), std::string::npos)
        << r.body;
  }
  Reply r = Post(port_, "/v1/txs:batch", BatchBody(TxBodies(1, 4)));
  ExpectProblem(r, 413, P("batch-too-large"));
  EXPECT_NE(r.json().value("detail", "").find("more than 3"), std::string::npos)
      << r.body;
  EXPECT_TRUE(mempool_.batches().empty());
  // The limit itself is fine.
  EXPECT_EQ(Post(port_, "/v1/txs:batch", BatchBody(TxBodies(1, 3))).status,
            200);
  // The batch route takes POST only.
  EXPECT_EQ(Get(port_, "/v1/txs:batch").status, 405);
}

TEST_F(ApiServiceTest, BatchSubmitRunsOffTheHttpThreads) {
  ApiOptions opts;
  opts.http_threads = 1;
  StartApi(opts);
  mempool_.HoldFirstBatch();  // the mempool hangs on the batch's call
  PendingRequest batch(port_, "/v1/txs:batch", "127.0.0.1", http::verb::post,
                       BatchBody(TxBodies(1, 3)));
  ASSERT_TRUE(mempool_.WaitForBatches(1));
  // The only HTTP thread is free while the Submit call waits.
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
  mempool_.Release();
  Reply r = batch.Read();
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ApiServiceTest, FailedSubmitCallFailsTheWholeBatch) {
  StartApi();
  mempool_.FailSubmits(absl::DeadlineExceededError("bus timeout"));
  Reply r = Post(port_, "/v1/txs:batch", BatchBody(TxBodies(1, 2)));
  ExpectProblem(r, 503, P("upstream-unavailable"));
  EXPECT_EQ(r.retry_after, "1");
  mempool_.FailSubmits(absl::OkStatus());
  mempool_.AnswerOneResultShort();
  ExpectProblem(Post(port_, "/v1/txs:batch", BatchBody(TxBodies(5, 2))), 500,
                P("internal"));
}

TEST(TxBatchTest, SplitsOutEachTxAsItWasSentAndNeverRecurses) {
  auto txs = SplitTxBatch(
      R"( {"txs": [ {"a":"]"} ,[1,[2]], "s\"]" ,null,-1.5e3 ]} )", 10);
  ASSERT_TRUE(txs.ok()) << txs.status();
  EXPECT_EQ(*txs,
            (std::vector<std::string_view>{R"({"a":"]"})", "[1,[2]]",
                                           R"("s\"]")", "null", "-1.5e3"}));
  // Deep nesting inside a tx is skipped over, not descended into.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  txs = SplitTxBatch(R"({"txs":[)" + deep + "]}", 10);
  ASSERT_TRUE(txs.ok()) << txs.status();
  ASSERT_EQ(txs->size(), 1u);
  EXPECT_EQ((*txs)[0].size(), deep.size());
  // The field's name may be escaped.
  EXPECT_TRUE(SplitTxBatch(R"({"\u0074xs":[1]})", 10).ok());
  EXPECT_EQ(SplitTxBatch(R"({"txs":[1,2,3]})", 2).status().code(),
            absl::StatusCode::kOutOfRange);
}

// ------------------------------------------------------------ batcher

// Collects the callbacks' results. Thread-safe.
class Results {
 public:
  SubmitBatcher::Done Callback() {
    return [this](absl::StatusOr<SubmitResult> r) {
      absl::MutexLock l(&mu_);
      codes_.push_back(r.ok() ? absl::StatusCode::kOk : r.status().code());
    };
  }
  bool WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return codes_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30));
  }
  std::vector<absl::StatusCode> codes() {
    absl::MutexLock l(&mu_);
    return codes_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::StatusCode> codes_ ABSL_GUARDED_BY(mu_);
};

TEST(SubmitBatcherTest, BatchesNeverExceedTheMaximum) {
  FakeMempool mempool;
  ApiMetrics metrics(nullptr);
  Results results;
  {
    SubmitBatcher batcher(&mempool, /*batch_max=*/4, absl::ZeroDuration(),
                          /*threads=*/1, &metrics);
    mempool.HoldFirstBatch();
    batcher.Add(EncodeTx(SignedTx(1)), results.Callback());
    ASSERT_TRUE(mempool.WaitForBatches(1));
    for (int i = 0; i < 9; ++i) {
      batcher.Add(EncodeTx(SignedTx(10 + i)), results.Callback());
    }
    mempool.Release();
    ASSERT_TRUE(results.WaitFor(10));
  }
  std::vector<size_t> sizes;
  for (const auto& b : mempool.batches()) sizes.push_back(b.size());
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 4, 4, 1}));
  for (absl::StatusCode c : results.codes())
    EXPECT_EQ(c, absl::StatusCode::kOk);
}

TEST(SubmitBatcherTest, ALoneTxLeavesAfterTheDelay) {
  FakeMempool mempool;
  ApiMetrics metrics(nullptr);
  Results results;
  SubmitBatcher batcher(&mempool, /*batch_max=*/100, absl::Milliseconds(1),
                        /*threads=*/2, &metrics);
  batcher.Add(EncodeTx(SignedTx(1)), results.Callback());
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_EQ(results.codes()[0], absl::StatusCode::kOk);
}

TEST(SubmitBatcherTest, WrongNumberOfResultsIsInternalForEveryTx) {
  FakeMempool mempool;
  mempool.AnswerOneResultShort();
  ApiMetrics metrics(nullptr);
  Results results;
  SubmitBatcher batcher(&mempool, 2, absl::Seconds(1), 1, &metrics);
  batcher.Add(EncodeTx(SignedTx(1)), results.Callback());
  batcher.Add(EncodeTx(SignedTx(2)), results.Callback());
  ASSERT_TRUE(results.WaitFor(2));
  for (absl::StatusCode c : results.codes()) {
    EXPECT_EQ(c, absl::StatusCode::kInternal);
  }
}

TEST(SubmitBatcherTest, ShutdownAnswersEveryTxOnce) {
  FakeMempool mempool;
  ApiMetrics metrics(nullptr);
  Results results;
  auto batcher = std::make_unique<SubmitBatcher>(
      &mempool, 100, absl::ZeroDuration(), 1, &metrics);
  mempool.HoldFirstBatch();
  batcher->Add(EncodeTx(SignedTx(1)), results.Callback());
  ASSERT_TRUE(mempool.WaitForBatches(1));
  for (int i = 0; i < 5; ++i) {
    batcher->Add(EncodeTx(SignedTx(10 + i)), results.Callback());
  }
  std::thread stopper([&] { batcher.reset(); });
  // The queued five are refused at once, while the held batch is in flight.
  ASSERT_TRUE(results.WaitFor(5));
  mempool.Release();
  stopper.join();
  std::vector<absl::StatusCode> codes = results.codes();
  ASSERT_EQ(codes.size(), 6u);
  EXPECT_EQ(
      std::count(codes.begin(), codes.end(), absl::StatusCode::kUnavailable),
      5);
  EXPECT_EQ(codes.back(), absl::StatusCode::kOk);
  EXPECT_EQ(mempool.batches().size(), 1u);
}

TEST(ApiOptionsTest, ValidateChecksBounds) {
  EXPECT_TRUE(ApiOptions{}.Validate().ok());
  auto bad = [](auto mutate) {
    ApiOptions o;
    mutate(o);
    return !o.Validate().ok();
  };
  EXPECT_TRUE(bad([](ApiOptions& o) { o.port = 70000; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.port = -1; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.http_threads = 0; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.max_body_bytes = 10; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.submit_batch_max = 0; }));
  EXPECT_TRUE(
      bad([](ApiOptions& o) { o.submit_batch_delay = absl::Seconds(2); }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.host = ""; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.query_queue_max = 0; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.submit_queue_max = 0; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.max_connections = 0; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.max_connections = 2'000'000; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.max_connections_per_client = 0; }));
  EXPECT_TRUE(bad([](ApiOptions& o) {
    o.max_connections = 10;
    o.max_connections_per_client = 11;
  }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.trusted_proxies = {"ingress"}; }));
  EXPECT_FALSE(bad([](ApiOptions& o) {
    o.trusted_proxies = {"10.0.0.1", "fd00::1"};
  }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.max_header_bytes = 100; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.max_header_bytes = 2 << 20; }));
  EXPECT_TRUE(
      bad([](ApiOptions& o) { o.header_timeout = absl::Milliseconds(10); }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.header_timeout = absl::Hours(1); }));
  EXPECT_TRUE(
      bad([](ApiOptions& o) { o.idle_timeout = absl::ZeroDuration(); }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.idle_timeout = absl::Hours(2); }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.log_lines_per_client = 0; }));
  EXPECT_TRUE(bad([](ApiOptions& o) { o.log_interval = absl::Seconds(0); }));
  ApiOptions from_flags = ApiOptions::FromFlags();
  EXPECT_EQ(from_flags.port, 26657);
  EXPECT_EQ(from_flags.submit_batch_max, 512);
  EXPECT_EQ(from_flags.submit_batch_delay, absl::Microseconds(500));
  EXPECT_EQ(from_flags.max_body_bytes, size_t{1} << 20);
  EXPECT_EQ(from_flags.max_connections, 10000u);
  EXPECT_EQ(from_flags.max_connections_per_client, 256u);
  EXPECT_TRUE(from_flags.trusted_proxies.empty());
  EXPECT_EQ(from_flags.header_timeout, absl::Seconds(10));
  EXPECT_EQ(from_flags.idle_timeout, absl::Seconds(60));
  EXPECT_EQ(from_flags.query_queue_max, 4096u);
  EXPECT_EQ(from_flags.submit_queue_max, 16384u);
  EXPECT_EQ(from_flags.max_header_bytes, 16384u);
  EXPECT_EQ(from_flags.log_lines_per_client, 10u);
  EXPECT_EQ(from_flags.log_interval, absl::Seconds(60));
  EXPECT_TRUE(from_flags.Validate().ok());
}

TEST(ApiServiceStartTest, UnknownCryptoSuiteIsInvalidArgument) {
  FakeMempool m;
  FakeChainQueries c;
  FakeStateQueries q;
  MetricsRegistry reg;
  Genesis g = TestGenesis();
  g.crypto_suite = "rot13";
  ApiOptions opts;
  opts.port = 0;
  auto s = ApiService::StartWith(opts, g, &m, &c, &q, reg);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

// ----------------------------------------- API keys, quotas, audit (issue 13)

struct KeyedReply : Reply {
  std::string www_authenticate;
};

// A request with `Authorization: Bearer <key>` (none when key is empty).
KeyedReply KeyedRequest(uint16_t port, http::verb verb,
                        const std::string& target, const std::string& key,
                        const std::string& body = "") {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(verb, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  KeyedReply r;
  r.status = res.result_int();
  r.content_type = std::string(res[http::field::content_type]);
  r.retry_after = std::string(res[http::field::retry_after]);
  r.www_authenticate = std::string(res[http::field::www_authenticate]);
  r.body = res.body();
  return r;
}

class ApiKeysTest : public ApiServiceTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/api_keys_testXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    file_.organisations.push_back(ApiOrganisation{"acme", OrgQuotas{}});
    // A tiny quota: one request, then one per 1000 s.
    file_.organisations.push_back(
        ApiOrganisation{"tiny", OrgQuotas{0.001, 1, 1e6, 1 << 20}});
    submitter_ = AddKey("acme", {ApiScope::kSubmit});
    reader_ = AddKey("acme", {ApiScope::kRead});
    revoked_ = AddKey("acme", {ApiScope::kSubmit});
    file_.keys.back().revoked = true;
    file_.keys.back().revoked_at = absl::Now();
    expired_ = AddKey("acme", {ApiScope::kSubmit});
    file_.keys.back().expires_at = absl::Now() - absl::Seconds(1);
    tiny_ = AddKey("tiny", {ApiScope::kSubmit, ApiScope::kRead});
    WriteKeys();
  }
  void TearDown() override {
    ApiServiceTest::TearDown();
    std::filesystem::remove_all(dir_);
  }

  std::string AddKey(const std::string& org, std::vector<ApiScope> scopes) {
    std::vector<std::string> ids;
    for (const ApiKeyEntry& k : file_.keys) ids.push_back(k.id);
    NewApiKey k = GenerateApiKey(ids);
    ApiKeyEntry e;
    e.id = k.id;
    e.org = org;
    e.sha256 = ApiKeySecretHash(k.secret);
    e.scopes = std::move(scopes);
    e.created = absl::Now();
    file_.keys.push_back(e);
    return k.secret;
  }
  void WriteKeys() {
    ASSERT_TRUE(WriteFileAtomic(keys_path(), ApiKeyFileToJson(file_)).ok());
  }
  std::string keys_path() const { return dir_ + "/keys.json"; }
  std::string audit_path() const { return dir_ + "/audit.log"; }

  ApiOptions KeyedOptions() {
    ApiOptions o;
    o.keys_file = keys_path();
    o.keys_poll_interval = absl::Milliseconds(10);
    o.audit_log = audit_path();
    return o;
  }

  KeyedReply Submit(const std::string& key, uint64_t nonce) {
    return KeyedRequest(port_, http::verb::post, "/v1/txs", key,
                        TxToJson(SignedTx(nonce)));
  }

  std::string dir_;
  ApiKeyFile file_;
  std::string submitter_, reader_, revoked_, expired_, tiny_;
};

TEST_F(ApiKeysTest, EachKeyRefusalHasItsStatusAndProblemType) {
  StartApi(KeyedOptions());
  KeyedReply r = Submit("", 1);
  ExpectProblem(r, 401, P("api-key-missing"));
  EXPECT_EQ(r.www_authenticate, "Bearer realm=\"consortia\"");
  r = Submit("csk_0123456789ab_" + std::string(64, '0'), 2);
  ExpectProblem(r, 401, P("api-key-unknown"));
  EXPECT_NE(r.www_authenticate.find("invalid_token"), std::string::npos);
  ExpectProblem(Submit(revoked_, 3), 403, P("api-key-revoked"));
  ExpectProblem(Submit(expired_, 4), 403, P("api-key-expired"));
  r = Submit(reader_, 5);
  ExpectProblem(r, 403, P("insufficient-scope"));
  EXPECT_NE(r.www_authenticate.find("insufficient_scope"), std::string::npos);
  // None of them reached the mempool; the right key does.
  EXPECT_TRUE(mempool_.batches().empty());
  EXPECT_EQ(Submit(submitter_, 6).status, 202);
  EXPECT_EQ(mempool_.batches().size(), 1u);

  // Reads stay public, and a known key may read; /healthz and /readyz are
  // open.
  EXPECT_EQ(Get(port_, "/v1/blocks/latest").status, 404);
  EXPECT_EQ(
      KeyedRequest(port_, http::verb::get, "/v1/blocks/latest", reader_).status,
      404);
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
  EXPECT_NE(Get(port_, "/readyz").status, 401);
  for (const char* kind :
       {"missing", "unknown", "revoked", "expired", "scope"}) {
    EXPECT_TRUE(MetricsContain(
        std::string("consortia_api_auth_failures_total{kind=\"") + kind +
        "\"} 1"))
        << kind << "\n"
        << registry_.Serialize();
  }
}

TEST_F(ApiKeysTest, ReadsNeedAKeyWhenConfigured) {
  ApiOptions o = KeyedOptions();
  o.reads_need_key = true;
  StartApi(o);
  ExpectProblem(KeyedRequest(port_, http::verb::get, "/v1/blocks/latest", ""),
                401, P("api-key-missing"));
  ExpectProblem(
      KeyedRequest(port_, http::verb::get, "/v1/blocks/latest", submitter_),
      403, P("insufficient-scope"));
  EXPECT_EQ(
      KeyedRequest(port_, http::verb::get, "/v1/blocks/latest", reader_).status,
      404);
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
  // The api's contract is open too, and is the document built in.
  Reply doc = Get(port_, "/v1/openapi.json");
  EXPECT_EQ(doc.status, 200);
  EXPECT_EQ(doc.body, std::string(OpenApiDocument()));
  // The explorer's static files are open; its reads carry the key.
  EXPECT_EQ(Get(port_, "/explorer").status, 200);
  EXPECT_EQ(Get(port_, "/explorer/app.js").status, 200);
}

TEST_F(ApiKeysTest, OverQuotaIs429WithRetryAfterForThatKeyOnly) {
  StartApi(KeyedOptions());
  EXPECT_EQ(Submit(tiny_, 1).status, 202);
  KeyedReply r = Submit(tiny_, 2);
  ExpectProblem(r, 429, P("quota-exceeded"));
  // 1 token per 1000 s, just spent: about 1000 s (rounded up).
  int64_t retry = std::stoll(r.retry_after);
  EXPECT_GE(retry, 990);
  EXPECT_LE(retry, 1000);
  // Reads with the key count against the same quota.
  ExpectProblem(
      KeyedRequest(port_, http::verb::get, "/v1/blocks/latest", tiny_), 429,
      P("quota-exceeded"));
  // Another organisation's key is not affected.
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(Submit(submitter_, 10 + i).status, 202);
  EXPECT_TRUE(MetricsContain(
      "consortia_api_quota_refusals_total{org=\"tiny\",quota=\"requests\"} 2"))
      << registry_.Serialize();
}

TEST_F(ApiKeysTest, KeyFileChangesApplyWithoutARestart) {
  StartApi(KeyedOptions());
  const std::string added = AddKey("acme", {ApiScope::kSubmit});
  ExpectProblem(Submit(added, 1), 401, P("api-key-unknown"));
  WriteKeys();
  EXPECT_TRUE(Eventually([&] { return Submit(added, 2).status == 202; }));
  // Revoked in the file: refused from the next poll on.
  file_.FindKey(*ApiKeyIdOf(added))->revoked = true;
  file_.FindKey(*ApiKeyIdOf(added))->revoked_at = absl::Now();
  WriteKeys();
  EXPECT_TRUE(Eventually([&] { return Submit(added, 3).status == 403; }));
  // A broken file keeps the keys in force.
  ASSERT_TRUE(WriteFileAtomic(keys_path(), "{\"version\":1,").ok());
  EXPECT_TRUE(Eventually([&] {
    return MetricsContain(
        "consortia_api_key_file_reloads_total{result=\"failed\"} 1");
  }));
  EXPECT_EQ(Submit(submitter_, 4).status, 202);
  ExpectProblem(Submit(added, 5), 403, P("api-key-revoked"));
  EXPECT_TRUE(
      MetricsContain("consortia_api_key_file_reloads_total{result=\"ok\"} 2"));
}

TEST_F(ApiKeysTest, EverySubmissionOfAKnownKeyIsAudited) {
  StartApi(KeyedOptions());
  Transaction tx = SignedTx(1);
  ASSERT_EQ(
      KeyedRequest(port_, http::verb::post, "/v1/txs", submitter_, TxToJson(tx))
          .status,
      202);
  mempool_.SetSubmitCode(Admission::kBadSignature);
  EXPECT_EQ(Submit(submitter_, 2).status, 422);
  EXPECT_EQ(
      KeyedRequest(port_, http::verb::post, "/v1/txs", submitter_, "{not json")
          .status,
      400);
  EXPECT_EQ(Submit(revoked_, 3).status, 403);
  EXPECT_EQ(Submit(tiny_, 4).status, 422);
  EXPECT_EQ(Submit(tiny_, 5).status, 429);
  // Not audited: nobody identified.
  EXPECT_EQ(Submit("", 6).status, 401);
  EXPECT_EQ(Submit("csk_abc_def", 7).status, 401);
  api_.reset();  // every line written

  absl::StatusOr<AuditReport> report = VerifyAuditLogFile(audit_path());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->reason;
  ASSERT_EQ(report->lines, 6u);
  std::ifstream in(audit_path());
  std::vector<Json> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(Json::parse(line));
  auto id = [](const std::string& secret) {
    return std::string(*ApiKeyIdOf(secret));
  };
  EXPECT_EQ(lines[0]["org"], "acme");
  EXPECT_EQ(lines[0]["key_id"], id(submitter_));
  EXPECT_EQ(lines[0]["outcome"], "accepted");
  EXPECT_EQ(lines[0]["status"], 202);
  EXPECT_EQ(lines[0]["tx_hashes"],
            Json::array({Hex(TxHash(Ed25519Sha256(), tx))}));
  EXPECT_EQ(lines[0]["route"], "POST /v1/txs");
  EXPECT_EQ(lines[1]["outcome"], "bad-signature");
  EXPECT_EQ(lines[2]["outcome"], "invalid-tx");
  EXPECT_TRUE(lines[2]["tx_hashes"].empty());
  EXPECT_EQ(lines[3]["outcome"], "api-key-revoked");
  EXPECT_EQ(lines[3]["key_id"], id(revoked_));
  EXPECT_EQ(lines[4]["org"], "tiny");
  EXPECT_EQ(lines[5]["outcome"], "quota-exceeded");
  EXPECT_EQ(lines[5]["status"], 429);
}

TEST_F(ApiKeysTest, BatchNeedsASubmitKeyAndItsQuotaCountsTheTxBytes) {
  // An organisation whose tx bytes burst holds one batch of three and a
  // half, not two: a second batch is refused only if all of the first's
  // bytes were charged.
  const std::string body = BatchBody(TxBodies(1, 3));
  const uint64_t burst = body.size() * 3 / 2;
  file_.organisations.push_back(
      ApiOrganisation{"bytes", OrgQuotas{1000, 1000, 0.001, burst}});
  const std::string bytes_key = AddKey("bytes", {ApiScope::kSubmit});
  WriteKeys();
  StartApi(KeyedOptions());
  auto batch = [&](const std::string& key, uint64_t first_nonce) {
    return KeyedRequest(port_, http::verb::post, "/v1/txs:batch", key,
                        BatchBody(TxBodies(first_nonce, 3)));
  };
  KeyedReply r = batch("", 1);
  ExpectProblem(r, 401, P("api-key-missing"));
  EXPECT_EQ(r.www_authenticate, "Bearer realm=\"consortia\"");
  ExpectProblem(batch(reader_, 1), 403, P("insufficient-scope"));
  ExpectProblem(batch(revoked_, 1), 403, P("api-key-revoked"));
  EXPECT_TRUE(mempool_.batches().empty());

  EXPECT_EQ(batch(submitter_, 1).status, 200);
  // One request token per batch: tiny's one token passes one batch.
  EXPECT_EQ(batch(tiny_, 10).status, 200);
  r = batch(tiny_, 20);
  ExpectProblem(r, 429, P("quota-exceeded"));
  EXPECT_GE(std::stoll(r.retry_after), 990);
  EXPECT_EQ(batch(bytes_key, 30).status, 200);
  r = batch(bytes_key, 40);
  ExpectProblem(r, 429, P("quota-exceeded"));
  EXPECT_NE(r.body.find("tx_bytes"), std::string::npos) << r.body;
  EXPECT_EQ(mempool_.batches().size(), 3u);  // the refused ones never did

  const std::string metrics = registry_.Serialize();
  for (
      const char* line : {
          R"(consortia_api_auth_failures_total{kind="missing"} 1)",
          R"(consortia_api_auth_failures_total{kind="scope"} 1)",
          R"(consortia_api_auth_failures_total{kind="revoked"} 1)",
          R"(consortia_api_quota_refusals_total{org="tiny",quota="requests"} 1)",
          R"(consortia_api_quota_refusals_total{org="bytes",quota="tx_bytes"} 1)",
          // The org label: the key's organisation, "anonymous" without one.
          R"(consortia_api_requests_total{code="401",org="anonymous",route="/v1/txs:batch"} 1)",
          R"(consortia_api_requests_total{code="403",org="acme",route="/v1/txs:batch"} 2)",
          R"(consortia_api_requests_total{code="200",org="acme",route="/v1/txs:batch"} 1)",
          R"(consortia_api_requests_total{code="200",org="tiny",route="/v1/txs:batch"} 1)",
          R"(consortia_api_requests_total{code="429",org="tiny",route="/v1/txs:batch"} 1)",
          R"(consortia_api_requests_total{code="429",org="bytes",route="/v1/txs:batch"} 1)",
      }) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
  }
}

TEST_F(ApiKeysTest, EveryTxOfABatchIsAuditedOnItsOwnLine) {
  StartApi(KeyedOptions());
  const std::string body = "{\"txs\":[" + TxToJson(SignedTx(1)) + ",{}," +
                           TxToJson(SignedTx(2)) + "]}";
  ASSERT_EQ(
      KeyedRequest(port_, http::verb::post, "/v1/txs:batch", submitter_, body)
          .status,
      200);
  // Refused before its txs were read: one line for the request.
  ASSERT_EQ(
      KeyedRequest(port_, http::verb::post, "/v1/txs:batch", revoked_, body)
          .status,
      403);
  ASSERT_EQ(KeyedRequest(port_, http::verb::post, "/v1/txs:batch", submitter_,
                         "{\"txs\":[]}")
                .status,
            400);
  api_.reset();  // every line written

  absl::StatusOr<AuditReport> report = VerifyAuditLogFile(audit_path());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->reason;
  std::ifstream in(audit_path());
  std::vector<Json> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(Json::parse(line));
  ASSERT_EQ(lines.size(), 5u);
  for (const Json& l : lines) EXPECT_EQ(l["route"], "POST /v1/txs:batch") << l;
  EXPECT_EQ(lines[0]["outcome"], "accepted");
  EXPECT_EQ(lines[0]["status"], 202);
  EXPECT_EQ(lines[0]["key_id"], std::string(*ApiKeyIdOf(submitter_)));
  EXPECT_EQ(lines[0]["tx_hashes"],
            Json::array({Hex(TxHash(Ed25519Sha256(), SignedTx(1)))}));
  EXPECT_EQ(lines[1]["outcome"], "invalid-tx");
  EXPECT_TRUE(lines[1]["tx_hashes"].empty());
  EXPECT_EQ(lines[2]["tx_hashes"],
            Json::array({Hex(TxHash(Ed25519Sha256(), SignedTx(2)))}));
  // The three lines of one batch share its trace id.
  EXPECT_EQ(lines[0]["trace"], lines[2]["trace"]);
  EXPECT_EQ(lines[3]["outcome"], "api-key-revoked");
  EXPECT_TRUE(lines[3]["tx_hashes"].empty());
  EXPECT_EQ(lines[4]["outcome"], "invalid-batch");
}

TEST_F(ApiServiceTest, WithoutKeysSubmissionsAreAuditedAnonymously) {
  char tmpl[] = "/tmp/api_audit_testXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/audit.log";
  ApiOptions o;
  o.audit_log = path;
  StartApi(o);
  EXPECT_EQ(Post(port_, "/v1/txs", TxToJson(SignedTx(1))).status, 202);
  api_.reset();
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  Json j = Json::parse(line);
  EXPECT_TRUE(j["org"].is_null());
  EXPECT_TRUE(j["key_id"].is_null());
  EXPECT_EQ(j["outcome"], "accepted");
  std::filesystem::remove_all(tmpl);
}

TEST(ApiServiceStartTest, BadKeyFileOrAuditLogIsAnError) {
  FakeMempool m;
  FakeChainQueries c;
  FakeStateQueries q;
  MetricsRegistry reg;
  ApiOptions opts;
  opts.port = 0;
  opts.keys_file = "/nonexistent/keys.json";
  auto s = ApiService::StartWith(opts, TestGenesis(), &m, &c, &q, reg);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << s.status();
  EXPECT_NE(s.status().message().find("--api_keys_file"), std::string::npos);
  opts.keys_file = "";
  opts.reads_need_key = true;
  s = ApiService::StartWith(opts, TestGenesis(), &m, &c, &q, reg);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  opts.reads_need_key = false;
  opts.audit_log = "/nonexistent/dir/audit.log";
  s = ApiService::StartWith(opts, TestGenesis(), &m, &c, &q, reg);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--api_audit_log"), std::string::npos);
}

// ------------------------------- invoice reads by the parties (issue 14)

// --api_invoice_reads=parties: seller-co issued INV-1 to buyer-co; other-co
// is neither; the auditor's key has scope audit.
class InvoiceReadsTest : public ApiKeysTest {
 protected:
  void SetUp() override {
    ApiKeysTest::SetUp();
    for (const char* org :
         {"seller-co", "buyer-co", "other-co", "tax-office"}) {
      file_.organisations.push_back(ApiOrganisation{org, OrgQuotas{}});
    }
    seller_ = AddKey("seller-co", {ApiScope::kRead});
    buyer_ = AddKey("buyer-co", {ApiScope::kRead});
    other_ = AddKey("other-co", {ApiScope::kRead});
    auditor_ = AddKey("tax-office", {ApiScope::kRead, ApiScope::kAudit});
    WriteKeys();

    const CryptoSuite& suite = Ed25519Sha256();
    KeyPair key = *suite.KeyFromSeed(Bytes(32, 7));
    tx_.chain_id = kChain;
    tx_.nonce = 1;
    tx_.valid_until = 100;
    tx_.sender = key.public_key;
    tx_.app = "invoice";
    tx_.method = "issue";
    tx_.args = {"INV-1", "buyer-co", "100000",
                "13000", "CNY",      std::string(64, 'a')};
    tx_.signature = *suite.Sign(key.secret_key, TxSignBytes(tx_));
    tx_hash_ = TxHash(suite, tx_);

    invoice::InvoiceRecord inv;
    inv.issuer_org = "seller-co";
    inv.number = "INV-1";
    inv.issuer_key = key.public_key;
    inv.buyer_org = "buyer-co";
    inv.amount_cents = 100000;
    inv.tax_cents = 13000;
    inv.currency = "CNY";
    inv.items_hash.fill(0xaa);
    invoice::Step step;
    step.height = 5;
    step.time_ms = 1700000000000;
    step.org = "seller-co";
    step.key = key.public_key;
    step.tx = tx_hash_;
    inv.history = {step};
    StateRecord rec;
    rec.found = true;
    rec.value = ToBytes(invoice::EncodeInvoice(inv));
    rec.owner = key.public_key;
    rec.height = 9;
    state_.SetState("invoice", "inv/seller-co/INV-1", rec);
    rec.value =
        ToBytes(invoice::EncodeBuyerIndexEntry(invoice::SummaryOf(inv)));
    state_.SetState("invoice", "buyer/buyer-co/seller-co/INV-1", rec);
    admin::MemberRecord member;
    member.public_key = key.public_key;
    member.org = "seller-co";
    member.roles = {admin::Role::kIssuer};
    rec.value = ToBytes(admin::EncodeMember(member));
    state_.SetState("admin", admin::MemberKey(key.public_key), rec);
  }

  ApiOptions PartiesOptions() {
    ApiOptions o = KeyedOptions();
    o.reads_need_key = true;
    o.invoice_reads = "parties";
    return o;
  }

  KeyedReply Read(const std::string& target, const std::string& key) {
    return KeyedRequest(port_, http::verb::get, target, key);
  }
  void ExpectForbidden(const KeyedReply& r, const std::string& detail) {
    ExpectProblem(r, 403, P("invoice-read-forbidden"));
    EXPECT_NE(r.json().value("detail", "").find(detail), std::string::npos)
        << r.body;
  }

  // Block 5: a kv tx, then the invoice tx.
  BlockRecord Block() {
    BlockRecord b;
    b.block.header.chain_id = kChain;
    b.block.header.height = 5;
    b.block.txs = {EncodeTx(SignedTx(2)), EncodeTx(tx_)};
    b.block_hash.fill(3);
    return b;
  }

  Transaction tx_;
  Hash32 tx_hash_{};
  std::string seller_, buyer_, other_, auditor_;
};

TEST_F(InvoiceReadsTest, OneInvoiceIsReadableByItsPartiesAndAuditorsOnly) {
  StartApi(PartiesOptions());
  const std::string path = "/v1/apps/invoice/invoices/seller-co/INV-1";
  for (const std::string* key : {&seller_, &buyer_, &auditor_}) {
    KeyedReply r = Read(path, *key);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["record"]["buyer_org"], "buyer-co");
  }
  ExpectForbidden(Read(path, other_),
                  "invoice INV-1 of seller-co is readable by seller-co, "
                  "buyer-co and auditors; this key is of organisation "
                  "other-co");
  // An absent invoice: its seller learns it is absent, nobody else.
  EXPECT_EQ(Read("/v1/apps/invoice/invoices/seller-co/INV-2", seller_).status,
            404);
  ExpectForbidden(Read("/v1/apps/invoice/invoices/seller-co/INV-2", buyer_),
                  "invoice INV-2 of seller-co is readable by seller-co, its "
                  "buyer and auditors");
  EXPECT_TRUE(MetricsContain(
      "consortia_api_invoice_reads_refused_total{answer=\"refused\"} 2"))
      << registry_.Serialize();
}

TEST_F(InvoiceReadsTest, ListingsAreTheCallersOwnOrAnyForAuditors) {
  StartApi(PartiesOptions());
  KeyedReply r = Read("/v1/apps/invoice/invoices?buyer=buyer-co", buyer_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["items"].size(), 1u);
  EXPECT_EQ(Read("/v1/apps/invoice/invoices?seller=seller-co", seller_).status,
            200);
  EXPECT_EQ(Read("/v1/apps/invoice/invoices?buyer=buyer-co", auditor_).status,
            200);
  ExpectForbidden(Read("/v1/apps/invoice/invoices?buyer=buyer-co", seller_),
                  "the invoices received by buyer-co are listed for buyer-co "
                  "and auditors only");
  ExpectForbidden(Read("/v1/apps/invoice/invoices?seller=seller-co", other_),
                  "the invoices issued by seller-co are listed for seller-co");
}

TEST_F(InvoiceReadsTest, StateReadsAndScansOfTheInvoiceAppAreLimitedToo) {
  StartApi(PartiesOptions());
  EXPECT_EQ(Read("/v1/state/invoice/inv/seller-co/INV-1", buyer_).status, 200);
  ExpectForbidden(Read("/v1/state/invoice/inv/seller-co/INV-1", other_),
                  "readable by seller-co, buyer-co and auditors");
  ExpectForbidden(
      Read("/v1/state/invoice/buyer%2Fbuyer-co%2Fseller-co%2FINV-1?height=9",
           other_),
      "readable by seller-co, buyer-co and auditors");
  EXPECT_EQ(
      Read("/v1/state/invoice/buyer/buyer-co/seller-co/INV-1", seller_).status,
      200);
  ExpectForbidden(Read("/v1/state/invoice", buyer_), "a scan of the invoice");
  ExpectForbidden(Read("/v1/state/invoice?prefix=inv/", buyer_),
                  "a scan of the invoice");
  EXPECT_EQ(Read("/v1/state/invoice?prefix=buyer/buyer-co/", buyer_).status,
            200);
  EXPECT_EQ(Read("/v1/state/invoice", auditor_).status, 200);
  // Other apps are not concerned.
  EXPECT_NE(Read("/v1/state/kv", other_).status, 403);
}

TEST_F(InvoiceReadsTest, AnInvoiceTxIsReadableByItsPartiesAndAuditors) {
  StartApi(PartiesOptions());
  TxRecord rec;
  rec.raw_tx = EncodeTx(tx_);
  rec.height = 5;
  rec.receipt.tx_hash = tx_hash_;
  rec.receipt.log = "invoice INV-1 of seller-co issued to buyer-co";
  chain_.AddTx(tx_hash_, rec);
  const std::string path = "/v1/txs/" + Hex(tx_hash_);
  for (const std::string* key : {&seller_, &buyer_, &auditor_}) {
    KeyedReply r = Read(path, *key);
    EXPECT_EQ(r.status, 200) << r.body;
  }
  ExpectForbidden(Read(path, other_),
                  "(invoice INV-1 of seller-co) is readable by seller-co, "
                  "buyer-co and auditors");
}

TEST_F(InvoiceReadsTest, BlocksWithholdInvoiceTxsFromAllButAuditors) {
  StartApi(PartiesOptions());
  chain_.AddBlock(Block());
  KeyedReply r = Read("/v1/blocks/5", other_);
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_TRUE(j["raw"].is_null());
  EXPECT_EQ(j["redacted_txs"], Json::array({1}));
  EXPECT_EQ(j["tx_hashes"][1], Hex(tx_hash_));  // what stays verifiable
  // A party too: blocks are not looked up tx by tx (GET /v1/txs/{hash} is).
  KeyedReply by_hash =
      Read("/v1/blocks/by-hash/" + Hex(Block().block_hash), buyer_);
  ASSERT_EQ(by_hash.status, 200) << by_hash.body;
  EXPECT_TRUE(by_hash.json()["raw"].is_null());
  Json audited = Read("/v1/blocks/5", auditor_).json();
  EXPECT_TRUE(audited["raw"].is_object());
  EXPECT_FALSE(audited.contains("redacted_txs"));
  EXPECT_TRUE(MetricsContain(
      "consortia_api_invoice_reads_refused_total{answer=\"redacted\"} 2"))
      << registry_.Serialize();
}

TEST_F(InvoiceReadsTest, OpenByDefault) {
  StartApi(KeyedOptions());
  chain_.AddBlock(Block());
  EXPECT_EQ(Read("/v1/apps/invoice/invoices/seller-co/INV-1", other_).status,
            200);
  EXPECT_TRUE(Read("/v1/blocks/5", other_).json()["raw"].is_object());
}

TEST(InvoiceReadsOptionsTest, PartiesNeedsKeysForReads) {
  ApiOptions o;
  o.invoice_reads = "parties";
  absl::Status s = o.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--api_reads_need_key"), std::string::npos);
  o.invoice_reads = "closed";
  EXPECT_NE(o.Validate().message().find("\"open\" or \"parties\""),
            std::string::npos);
  o.invoice_reads = "parties";
  o.keys_file = "keys.json";
  o.reads_need_key = true;
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
}

}  // namespace
}  // namespace consortia::api
