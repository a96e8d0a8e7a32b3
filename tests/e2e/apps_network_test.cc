// End-to-end (issue 14): an e-invoice on four validators of a permissioned
// chain, on both crypto suites. Two reimbursements of the same invoice, sent
// at the same moment to two different nodes, both commit, and every node
// agrees that exactly one of them reimbursed it: one receipt ok, the other
// invalid_state, and the same invoice record (one reimbursed step) on every
// node. A key that is no member is refused at admission on every node.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/tx_json.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "network_harness.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

class AppsNetworkTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AppsNetworkTest, InvoiceReimbursedOnceWhenTwoNodesGetAReimbursement) {
  const CryptoSuite& suite = SuiteNamed(GetParam());
  const KeyPair seller = TestKey(41, suite);
  const KeyPair buyer = TestKey(42, suite);
  NetworkOptions o;
  o.validators = 4;
  o.crypto_suite = GetParam();
  Consortium c;
  c.approval_percent = 50;
  c.orgs.push_back(
      {"seller-co",
       "Seller Co.",
       {{seller.public_key, {admin::Role::kAdmin, admin::Role::kIssuer}}}});
  c.orgs.push_back(
      {"buyer-co",
       "Buyer Co.",
       {{buyer.public_key, {admin::Role::kAdmin, admin::Role::kMember}}}});
  o.consortium = c;
  NetworkHarness net(o);
  absl::Status started = net.StartAll();
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_TRUE(NetworkHarness::WaitUntil([&] { return net.Height(0) >= 1; }));
  const std::string chain = net.genesis().chain_id;
  const uint64_t valid_until = net.Height(0) + 1000;

  auto tx = [&](const KeyPair& key, uint64_t nonce, const std::string& method,
                std::vector<std::string> args) {
    return SignedTx(key, chain, nonce, valid_until, "invoice", method,
                    std::move(args), suite);
  };
  auto receipt = [&](int node, const Transaction& t) {
    auto r =
        HttpCall(net.api(node), "GET", "/v1/txs/" + ToHex(TxHash(suite, t)));
    if (!r.ok() || r->status != 200) return std::string();
    return json::parse(r->body, nullptr, false)["receipt"].value("code_name",
                                                                 "");
  };
  auto commit = [&](int node, const Transaction& t) {
    absl::StatusOr<Hash32> h = net.SubmitTx(node, t);
    ASSERT_TRUE(h.ok()) << h.status();
    ASSERT_TRUE(
        NetworkHarness::WaitUntil([&] { return net.Committed(0, *h); }));
    EXPECT_EQ(receipt(0, t), "ok");
  };
  ASSERT_NO_FATAL_FAILURE(commit(0, tx(seller, 1, "issue",
                                       {"INV-9", "buyer-co", "100000", "13000",
                                        "CNY", std::string(64, 'c')})));
  ASSERT_NO_FATAL_FAILURE(
      commit(1, tx(buyer, 2, "accept", {"seller-co", "INV-9"})));

  // Two reimbursements (two txs: different nonces) to nodes 0 and 2 at once.
  const Transaction first = tx(buyer, 3, "reimburse", {"seller-co", "INV-9"});
  const Transaction second = tx(buyer, 4, "reimburse", {"seller-co", "INV-9"});
  absl::StatusOr<Hash32> h1, h2;
  std::thread a([&] { h1 = net.SubmitTx(0, first); });
  std::thread b([&] { h2 = net.SubmitTx(2, second); });
  a.join();
  b.join();
  ASSERT_TRUE(h1.ok()) << h1.status();
  ASSERT_TRUE(h2.ok()) << h2.status();
  for (int i = 0; i < net.size(); ++i) {
    ASSERT_TRUE(NetworkHarness::WaitUntil([&] {
      return net.Committed(i, *h1) && net.Committed(i, *h2);
    })) << "node "
        << i;
  }
  std::string record;
  for (int i = 0; i < net.size(); ++i) {
    const std::vector<std::string> codes = {receipt(i, first),
                                            receipt(i, second)};
    EXPECT_EQ(std::count(codes.begin(), codes.end(), "ok"), 1)
        << "node " << i << ": " << codes[0] << ", " << codes[1];
    EXPECT_EQ(std::count(codes.begin(), codes.end(), "invalid_state"), 1)
        << "node " << i << ": " << codes[0] << ", " << codes[1];
    auto r = HttpCall(net.api(i), "GET",
                      "/v1/apps/invoice/invoices/seller-co/INV-9");
    ASSERT_TRUE(r.ok() && r->status == 200) << "node " << i;
    const json rec = json::parse(r->body, nullptr, false)["record"];
    EXPECT_EQ(rec.value("status", ""), "reimbursed") << rec;
    int reimbursed = 0;
    for (const json& step : rec["history"]) {
      reimbursed += step.value("step", "") == "reimbursed";
    }
    EXPECT_EQ(reimbursed, 1) << rec;
    if (i == 0) record = rec.dump();
    EXPECT_EQ(rec.dump(), record) << "node " << i;
  }

  // A key that is no member: 403 unregistered-sender on every node.
  const KeyPair stranger = TestKey(43, suite);
  for (int i = 0; i < net.size(); ++i) {
    auto r = HttpCall(
        net.api(i), "POST", "/v1/txs",
        TxToJson(tx(stranger, 10 + i, "accept", {"seller-co", "INV-9"})));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 403) << "node " << i << ": " << r->body;
    EXPECT_NE(r->body.find("unregistered-sender"), std::string::npos)
        << r->body;
  }
}

INSTANTIATE_TEST_SUITE_P(Suites, AppsNetworkTest,
                         ::testing::ValuesIn(AllCryptoSuites()),
                         [](const auto& info) {
                           return SuiteTestName(info.param);
                         });

}  // namespace
}  // namespace consortia::testing
