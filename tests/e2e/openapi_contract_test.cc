// The api's contract (issue 13): every answer of a real node is the one its
// OpenAPI document (services/api/openapi.json, served at /v1/openapi.json)
// describes. A one-validator node runs with API keys (reads need a key) and a
// small body limit; the test sends real requests to every route, on the
// success and the error paths (bad parameters 400, unknown 404, no key 401,
// wrong scope 403, wrong method 405, body too large 413, quota 429, ...),
// records each exchange (method, route template, status, content type,
// headers, body) and has tools/openapi/validate-exchanges.mjs (Ajv, JSON
// Schema 2020-12) validate them all against the document the node served.
// It fails on any mismatch, and when a route of the api's table
// (services/api/src/api_routes.cc) has no recorded success and error
// exchange, or the document describes an operation the api does not serve:
// a new route without its contract breaks the build.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "api_routes.h"
#include "consortia/tx_json.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

// The secret that `consortia apikey create` printed (the line starting csk_).
std::string SecretIn(const std::string& out) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "csk_")) return std::string(line);
  }
  return "";
}

// The id of a key (csk_<id>_<secret>).
std::string IdOf(const std::string& secret) {
  std::vector<std::string> parts = absl::StrSplit(secret, '_');
  return parts.size() >= 3 ? parts[1] : "";
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

struct Exchange {
  std::string name;
  std::string method;
  std::string route;  // the route template; "" for a path of no route
  std::string path;
  std::string request_content_type;
  std::string request_body;
  int status = 0;
  std::string content_type;
  std::map<std::string, std::string> headers;
  std::string body;
  bool synthetic = false;  // hand-written, not sent
};

json ToJson(const Exchange& x) {
  json j;
  j["name"] = x.name;
  j["method"] = x.method;
  j["template"] = x.route.empty() ? json(nullptr) : json(x.route);
  j["path"] = x.path;
  j["request_content_type"] = x.request_content_type;
  j["request_body"] = x.request_body;
  j["status"] = x.status;
  j["content_type"] = x.content_type;
  j["headers"] = x.headers;
  j["body"] = x.body;
  return j;
}

std::vector<std::string_view> PathParts(std::string_view path) {
  path = path.substr(0, path.find('?'));
  std::vector<std::string_view> parts;
  if (path.empty() || path[0] != '/') return parts;
  path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return parts;
    path.remove_prefix(slash + 1);
  }
}

class OpenApiContractTest : public ::testing::Test {
 protected:
  std::string keys() const { return dir_.path() + "/api_keys.json"; }

  ProgramRun Cli(std::vector<std::string> args) {
    return RunCli(dir_.path(), std::move(args), absl::Seconds(60));
  }
  std::string CreateKey(const std::string& org, const std::string& scopes) {
    ProgramRun r = Cli({"apikey", "create", "--file", keys(), "--org", org,
                        "--scopes", scopes});
    EXPECT_EQ(r.code, 0) << r.out;
    return SecretIn(r.out);
  }

  void SetUp() override {
    ASSERT_EQ(
        Cli({"apikey", "set-quota", "--file", keys(), "--org", "acme"}).code,
        0);
    // One request, then one per 1000 s: the second request is 429.
    ASSERT_EQ(Cli({"apikey", "set-quota", "--file", keys(), "--org", "tight",
                   "--requests-per-s", "0.001", "--requests-burst", "1"})
                  .code,
              0);
    ASSERT_EQ(
        Cli({"apikey", "set-quota", "--file", keys(), "--org", "other-co"})
            .code,
        0);
    // The api limits invoice reads to their parties (seller-co, buyer-co):
    // acme's keys audit, other-co's key is neither party.
    all_ = CreateKey("acme", "read,submit,audit");
    reader_ = CreateKey("acme", "read,audit");
    outsider_ = CreateKey("other-co", "read");
    submitter_ = CreateKey("acme", "submit");
    tight_ = CreateKey("tight", "read");
    revoked_ = CreateKey("acme", "read");
    expired_ = CreateKey("acme", "read");
    ASSERT_EQ(
        Cli({"apikey", "revoke", "--file", keys(), "--id", IdOf(revoked_)})
            .code,
        0);
    ASSERT_EQ(Cli({"apikey", "expire", "--file", keys(), "--id", IdOf(expired_),
                   "--at", "2020-01-01T00:00:00Z"})
                  .code,
              0);
    NodeHarnessOptions o;
    // A permissioned chain: the signer issues for seller-co, whose invoices
    // go to buyer-co; any other key is refused at admission.
    Consortium consortium;
    consortium.approval_percent = 50;
    consortium.orgs.push_back({"seller-co",
                               "Seller Co.",
                               {{signer_.public_key,
                                 {admin::Role::kAdmin, admin::Role::kIssuer,
                                  admin::Role::kMember}}}});
    consortium.orgs.push_back(
        {"buyer-co",
         "Buyer Co.",
         {{TestKey(32).public_key, {admin::Role::kAdmin}}}});
    o.consortium = consortium;
    o.extra_flags["consortia-api"] = {
        "--api_keys_file=" + keys(), "--api_reads_need_key=true",
        "--api_invoice_reads=parties", "--api_max_body_bytes=1024"};
    node_ = std::make_unique<NodeHarness>(dir_.path() + "/node", o);
    absl::Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    chain_ = node_->genesis().chain_id;
  }
  void TearDown() override {
    if (node_) {
      absl::Status s = node_->Stop();
      EXPECT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    }
  }

  // Sends one request with `key` ("" for none) and records it; fails the
  // test when the answer's status is not one of `expected` (the test must
  // reach the path it means to cover).
  const Exchange& Send(const std::string& name, const std::string& method,
                       const std::string& route, const std::string& path,
                       const std::string& key, std::set<int> expected,
                       const std::string& body = "") {
    HttpTarget t = node_->api();
    if (!key.empty()) t.headers.emplace_back("Authorization", "Bearer " + key);
    Exchange x;
    x.name = name;
    x.method = method;
    x.route = route;
    x.path = path;
    x.request_content_type = "application/json";
    x.request_body = body;
    absl::StatusOr<HttpResult> r = HttpCall(t, method, path, body);
    if (!r.ok()) {
      ADD_FAILURE() << name << ": " << r.status();
    } else {
      x.status = r->status;
      x.content_type = r->content_type;
      x.headers = r->headers;
      x.body = r->body;
      EXPECT_TRUE(expected.count(r->status) > 0)
          << name << ": " << method << " " << path << " answered " << r->status
          << " " << r->body;
    }
    exchanges_.push_back(std::move(x));
    return exchanges_.back();
  }

  // GET of an event stream (which never ends by itself): over HTTP/1.0, so
  // that the body is not chunked, reads the head and the body until it holds
  // `events` events, then hangs up; records what it read.
  const Exchange& SendStream(const std::string& name, const std::string& path,
                             const std::string& key, size_t events) {
    Exchange x;
    x.name = name;
    x.method = "GET";
    x.route = "/v1/events";
    x.path = path;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(node_->api().port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string raw;
    if (fd >= 0 &&
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const std::string req =
          absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n",
                       "Authorization: Bearer ", key, "\r\n\r\n");
      (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
      const absl::Time deadline = absl::Now() + absl::Seconds(30);
      auto enough = [&] {
        const size_t head = raw.find("\r\n\r\n");
        if (head == std::string::npos) return false;
        size_t n = 0;
        for (size_t at = raw.find("\n\n", head + 4); at != std::string::npos;
             at = raw.find("\n\n", at + 2)) {
          ++n;
        }
        return n >= events;
      };
      while (!enough() && absl::Now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        char buf[8192];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        raw.append(buf, static_cast<size_t>(n));
      }
    }
    if (fd >= 0) ::close(fd);
    const size_t head = raw.find("\r\n\r\n");
    if (head == std::string::npos) {
      ADD_FAILURE() << name << ": no answer: " << raw;
    } else {
      std::vector<std::string> lines =
          absl::StrSplit(raw.substr(0, head), "\r\n");
      std::vector<std::string> status = absl::StrSplit(lines[0], ' ');
      if (status.size() >= 2) (void)absl::SimpleAtoi(status[1], &x.status);
      for (size_t i = 1; i < lines.size(); ++i) {
        const size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        const std::string field = Lower(lines[i].substr(0, colon));
        std::string value = lines[i].substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        if (field == "content-type") x.content_type = value;
        x.headers[field] = value;
      }
      // Up to the end of the last whole event.
      x.body = raw.substr(head + 4);
      x.body.erase(x.body.rfind("\n\n") + 2);
      EXPECT_EQ(x.status, 200) << name << ": " << raw;
    }
    exchanges_.push_back(std::move(x));
    return exchanges_.back();
  }

  std::string TxJson(uint64_t nonce, const std::string& chain,
                     uint64_t valid_until, const std::string& key_name) {
    return TxToJson(SignedTx(signer_, chain, nonce, valid_until, "kv", "set",
                             {key_name, "v"}));
  }

  // Submits a tx of the signer (not recorded) and waits until it commits;
  // its hash.
  std::string CommitTx(uint64_t nonce, uint64_t valid_until,
                       const std::string& app, const std::string& method,
                       std::vector<std::string> args) {
    const Transaction tx = SignedTx(signer_, chain_, nonce, valid_until, app,
                                    method, std::move(args));
    const std::string hash = ToHex(TxHash(node_->suite(), tx));
    auto posted = HttpCall(Keyed(), "POST", "/v1/txs", TxToJson(tx));
    EXPECT_TRUE(posted.ok() && posted->status == 202)
        << app << "." << method << ": "
        << (posted.ok() ? posted->body : posted.status().ToString());
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto r = HttpCall(Keyed(), "GET", "/v1/txs/" + hash);
      if (r.ok() && r->status == 200) {
        EXPECT_EQ(json::parse(r->body, nullptr, false)["receipt"].value(
                      "code_name", ""),
                  "ok")
            << r->body;
        return hash;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << app << "." << method << " not committed in 30 s";
    return hash;
  }

  // The api target with the read-and-submit key.
  HttpTarget Keyed() const {
    HttpTarget t = node_->api();
    t.headers.emplace_back("Authorization", "Bearer " + all_);
    return t;
  }
  // The chain's height (GET /v1/blocks/latest with a key), waiting for
  // block 1; a failure if none came.
  uint64_t KeyedHeight() const {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto r = HttpCall(Keyed(), "GET", "/v1/blocks/latest");
      if (r.ok() && r->status == 200) {
        return json::parse(r->body, nullptr, false)
            .value("height", uint64_t{0});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no block 1 within 30 s\n" << node_->LogTail();
    return 0;
  }

  void RecordExchanges();
  std::vector<Exchange> SyntheticExchanges();

  TempDir dir_;
  std::unique_ptr<NodeHarness> node_;
  std::string chain_;
  std::string all_, reader_, submitter_, tight_, revoked_, expired_, outsider_;
  KeyPair signer_ = TestKey(31);
  std::vector<Exchange> exchanges_;
};

void OpenApiContractTest::RecordExchanges() {
  const std::string unknown_key = "csk_0123456789ab_" + std::string(64, '0');
  const std::string zeros(64, '0');

  // Open routes.
  Send("liveness", "GET", "/healthz", "/healthz", "", {200});
  Send("liveness, wrong method", "POST", "/healthz", "/healthz", "", {405});
  Send("readiness", "GET", "/readyz", "/readyz", "", {200});
  Send("readiness, wrong method", "POST", "/readyz", "/readyz", "", {405});
  Send("the document", "GET", "/v1/openapi.json", "/v1/openapi.json", "",
       {200});
  Send("the document, wrong method", "DELETE", "/v1/openapi.json",
       "/v1/openapi.json", "", {405});
  Send("a path of no route", "GET", "", "/v1/no-such-route", all_, {404});
  Send("the explorer", "GET", "/explorer", "/explorer", "", {200});
  Send("the explorer, wrong method", "POST", "/explorer", "/explorer", "",
       {405});
  Send("an explorer file", "GET", "/explorer/{file}", "/explorer/app.js", "",
       {200});
  Send("an explorer file that does not exist", "GET", "/explorer/{file}",
       "/explorer/no-such-file.js", "", {404});

  // Submissions, valid until 900 blocks after the current height (reads
  // need a key here, so NodeHarness::CurrentHeight cannot ask).
  const uint64_t height = KeyedHeight();
  const std::string tx = TxJson(1, chain_, height + 900, "contract-key");
  const Exchange& accepted =
      Send("submit", "POST", "/v1/txs", "/v1/txs", all_, {202}, tx);
  const std::string tx_hash =
      json::parse(accepted.body, nullptr, false).value("tx_hash", "");
  // Still pending (200), or committed already (409).
  Send("resubmit", "POST", "/v1/txs", "/v1/txs", all_, {200, 409}, tx);
  Send("submit without a key", "POST", "/v1/txs", "/v1/txs", "", {401}, tx);
  Send("submit with an unknown key", "POST", "/v1/txs", "/v1/txs", unknown_key,
       {401}, tx);
  Send("submit with a read-only key", "POST", "/v1/txs", "/v1/txs", reader_,
       {403}, tx);
  Send("submit, not JSON", "POST", "/v1/txs", "/v1/txs", all_, {400}, "{");
  Send("submit, unknown field", "POST", "/v1/txs", "/v1/txs", all_, {400},
       R"({"chain_id":"x","extra":1})");
  Send("submit, body over --api_max_body_bytes", "POST", "/v1/txs", "/v1/txs",
       all_, {413}, std::string(2000, ' '));
  Send("submit for another chain", "POST", "/v1/txs", "/v1/txs", all_, {422},
       TxJson(2, "another-chain", height + 900, "k2"));
  Send("submit, expired", "POST", "/v1/txs", "/v1/txs", all_, {422},
       TxJson(3, chain_, 0, "k3"));
  std::string bad_sig = TxJson(4, chain_, height + 900, "k4");
  json bad = json::parse(bad_sig);
  std::string sig = bad["signature"];
  sig[0] = sig[0] == '0' ? '1' : '0';
  bad["signature"] = sig;
  Send("submit, bad signature", "POST", "/v1/txs", "/v1/txs", all_, {422},
       bad.dump());

  // Wait until the tx is committed (not recorded), then read it.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto r = HttpCall(Keyed(), "GET", "/v1/txs/" + tx_hash);
    if (r.ok() && r->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Send("get tx", "GET", "/v1/txs/{hash}", "/v1/txs/" + tx_hash, all_, {200});
  Send("resubmit a committed tx", "POST", "/v1/txs", "/v1/txs", all_, {409},
       tx);
  Send("get tx, bad hash", "GET", "/v1/txs/{hash}", "/v1/txs/xyz", all_, {400});
  Send("get tx, unknown", "GET", "/v1/txs/{hash}", "/v1/txs/" + zeros, all_,
       {404});
  Send("get tx without a key", "GET", "/v1/txs/{hash}", "/v1/txs/" + tx_hash,
       "", {401});
  Send("get tx with a submit-only key", "GET", "/v1/txs/{hash}",
       "/v1/txs/" + tx_hash, submitter_, {403});

  Send("get tx with a revoked key", "GET", "/v1/txs/{hash}",
       "/v1/txs/" + tx_hash, revoked_, {403});
  Send("get tx with an expired key", "GET", "/v1/txs/{hash}",
       "/v1/txs/" + tx_hash, expired_, {403});

  // Blocks.
  const Exchange& block = Send("block 1", "GET", "/v1/blocks/{height}",
                               "/v1/blocks/1", all_, {200});
  const std::string block_hash =
      json::parse(block.body, nullptr, false).value("block_hash", "");
  Send("latest block", "GET", "/v1/blocks/{height}", "/v1/blocks/latest",
       reader_, {200});
  Send("block, bad height", "GET", "/v1/blocks/{height}", "/v1/blocks/tip",
       all_, {400});
  Send("block beyond the tip", "GET", "/v1/blocks/{height}",
       "/v1/blocks/99999999", all_, {404});
  Send("block by hash", "GET", "/v1/blocks/by-hash/{hash}",
       "/v1/blocks/by-hash/" + block_hash, all_, {200});
  Send("block by hash, bad hash", "GET", "/v1/blocks/by-hash/{hash}",
       "/v1/blocks/by-hash/12", all_, {400});
  Send("block by hash, unknown", "GET", "/v1/blocks/by-hash/{hash}",
       "/v1/blocks/by-hash/" + zeros, all_, {404});
  Send("block page", "GET", "/v1/blocks", "/v1/blocks?from=1&limit=2", all_,
       {200});
  Send("empty block page", "GET", "/v1/blocks", "/v1/blocks?from=99999999",
       all_, {200});
  Send("block page, bad limit", "GET", "/v1/blocks", "/v1/blocks?limit=0", all_,
       {400});

  // Evidence.
  Send("evidence page", "GET", "/v1/evidence", "/v1/evidence?limit=5", all_,
       {200});
  Send("evidence page, bad limit", "GET", "/v1/evidence",
       "/v1/evidence?limit=101", all_, {400});

  // A key that is no member of the consortium is refused at admission.
  Send("submit from an unregistered key", "POST", "/v1/txs", "/v1/txs", all_,
       {403},
       TxToJson(SignedTx(TestKey(33), chain_, 9, height + 900, "kv", "set",
                         {"stranger", "v"})));

  // The native apps' typed reads, over records the signer wrote.
  const std::string doc(64, 'd');
  CommitTx(20, height + 900, "notary", "anchor", {doc, "contract"});
  const std::string invoice_tx = CommitTx(
      21, height + 900, "invoice", "issue",
      {"INV-1", "buyer-co", "100000", "13000", "CNY", std::string(64, 'e')});
  const std::string proposal = CommitTx(
      22, height + 900, "admin", "propose",
      {R"({"type":"add_org","id":"auditor-co","name":"Auditor Co."})", "50"});
  Send("invoice", "GET", "/v1/apps/invoice/invoices/{issuer}/{number}",
       "/v1/apps/invoice/invoices/seller-co/INV-1", all_, {200});
  Send("invoice absent (proof of absence)", "GET",
       "/v1/apps/invoice/invoices/{issuer}/{number}",
       "/v1/apps/invoice/invoices/seller-co/INV-2", all_, {404});
  Send("invoice, bad issuer", "GET",
       "/v1/apps/invoice/invoices/{issuer}/{number}",
       "/v1/apps/invoice/invoices/Seller%20Co/INV-1", all_, {400});
  Send("invoices of a buyer", "GET", "/v1/apps/invoice/invoices",
       "/v1/apps/invoice/invoices?buyer=buyer-co", all_, {200});
  Send("invoices of a seller", "GET", "/v1/apps/invoice/invoices",
       "/v1/apps/invoice/invoices?seller=seller-co&limit=5", reader_, {200});
  Send("invoices, neither buyer nor seller", "GET", "/v1/apps/invoice/invoices",
       "/v1/apps/invoice/invoices", all_, {400});
  // --api_invoice_reads=parties: a key of neither party, without audit.
  Send("invoice, not a party", "GET",
       "/v1/apps/invoice/invoices/{issuer}/{number}",
       "/v1/apps/invoice/invoices/seller-co/INV-1", outsider_, {403});
  Send("invoices of a seller, not a party", "GET", "/v1/apps/invoice/invoices",
       "/v1/apps/invoice/invoices?seller=seller-co", outsider_, {403});
  Send("invoice state, not a party", "GET", "/v1/state/{app}/{key}",
       "/v1/state/invoice/inv/seller-co/INV-1", outsider_, {403});
  Send("invoice state page, not a party", "GET", "/v1/state/{app}",
       "/v1/state/invoice", outsider_, {403});
  Send("invoice tx, not a party", "GET", "/v1/txs/{hash}",
       "/v1/txs/" + invoice_tx, outsider_, {403});
  {
    auto r = HttpCall(Keyed(), "GET", "/v1/txs/" + invoice_tx);
    ASSERT_TRUE(r.ok() && r->status == 200);
    const std::string h = std::to_string(
        json::parse(r->body, nullptr, false).value("height", uint64_t{0}));
    const Exchange& withheld =
        Send("block with an invoice tx withheld", "GET", "/v1/blocks/{height}",
             "/v1/blocks/" + h, outsider_, {200});
    EXPECT_TRUE(json::parse(withheld.body, nullptr, false)["raw"].is_null())
        << withheld.body;
    const Exchange& events =
        SendStream("events with an invoice log withheld",
                   "/v1/events?app=invoice&from_height=" + h, outsider_, 2);
    EXPECT_NE(events.body.find("\"log_redacted\":true"), std::string::npos)
        << events.body;
  }
  Send("document", "GET", "/v1/apps/notary/documents/{hash}",
       "/v1/apps/notary/documents/" + doc, all_, {200});
  Send("document, bad hash", "GET", "/v1/apps/notary/documents/{hash}",
       "/v1/apps/notary/documents/abc", all_, {400});
  Send("organisations", "GET", "/v1/apps/admin/orgs", "/v1/apps/admin/orgs",
       all_, {200});
  Send("organisations without a key", "GET", "/v1/apps/admin/orgs",
       "/v1/apps/admin/orgs", "", {401});
  Send("members", "GET", "/v1/apps/admin/members", "/v1/apps/admin/members",
       all_, {200});
  Send("members, bad limit", "GET", "/v1/apps/admin/members",
       "/v1/apps/admin/members?limit=0", all_, {400});
  Send("member", "GET", "/v1/apps/admin/members/{public_key}",
       "/v1/apps/admin/members/" + ToHex(signer_.public_key), all_, {200});
  Send("member, bad key", "GET", "/v1/apps/admin/members/{public_key}",
       "/v1/apps/admin/members/xyz", all_, {400});
  Send("proposals", "GET", "/v1/apps/admin/proposals",
       "/v1/apps/admin/proposals", all_, {200});
  Send("proposals, bad cursor", "GET", "/v1/apps/admin/proposals",
       "/v1/apps/admin/proposals?cursor=zz", all_, {400});
  Send("proposal", "GET", "/v1/apps/admin/proposals/{id}",
       "/v1/apps/admin/proposals/" + proposal, all_, {200});
  Send("proposal, bad id", "GET", "/v1/apps/admin/proposals/{id}",
       "/v1/apps/admin/proposals/12", all_, {400});

  // State.
  Send("state page", "GET", "/v1/state/{app}",
       "/v1/state/kv?prefix=contract&limit=5", all_, {200});
  Send("state page, bad cursor", "GET", "/v1/state/{app}",
       "/v1/state/kv?cursor=zz", all_, {400});
  Send("state value", "GET", "/v1/state/{app}/{key}",
       "/v1/state/kv/contract-key", all_, {200});
  Send("state value absent (proof of absence)", "GET", "/v1/state/{app}/{key}",
       "/v1/state/kv/no-such-key", all_, {404});
  Send("state value, bad height", "GET", "/v1/state/{app}/{key}",
       "/v1/state/kv/contract-key?height=abc", all_, {400});
  Send("state value beyond the tip", "GET", "/v1/state/{app}/{key}",
       "/v1/state/kv/contract-key?height=99999999", all_, {404});

  // The event stream: block 1 and what follows (the submitted tx is in one
  // of the first blocks), and its error paths.
  SendStream("events from height 1", "/v1/events?from_height=1", all_, 3);
  Send("events, bad from_height", "GET", "/v1/events",
       "/v1/events?from_height=x", all_, {400});
  Send("events without a key", "GET", "/v1/events", "/v1/events", "", {401});

  // Batch submission: one tx admitted, one (for another chain) refused on
  // its own (answered in order), and the whole-batch refusals.
  const std::string batch_tx = TxJson(3, chain_, height + 900, "batch-key");
  Send("batch", "POST", "/v1/txs:batch", "/v1/txs:batch", all_, {200},
       absl::StrCat("{\"txs\":[", batch_tx, ",",
                    TxJson(4, "another-chain", height + 900, "k4"), "]}"));
  Send("batch without a key", "POST", "/v1/txs:batch", "/v1/txs:batch", "",
       {401}, R"({"txs":[]})");
  Send("batch with a read-only key", "POST", "/v1/txs:batch", "/v1/txs:batch",
       reader_, {403}, R"({"txs":[]})");
  Send("batch, empty", "POST", "/v1/txs:batch", "/v1/txs:batch", all_, {400},
       R"({"txs":[]})");
  Send("batch, body over --api_max_body_bytes", "POST", "/v1/txs:batch",
       "/v1/txs:batch", all_, {413}, std::string(2000, ' '));

  // Quota: the tight key's one request, then 429.
  Send("within quota", "GET", "/v1/blocks/{height}", "/v1/blocks/latest",
       tight_, {200});
  Send("over quota", "GET", "/v1/blocks/{height}", "/v1/blocks/latest", tight_,
       {429});
}

// Hand-written exchanges of the routes in kRoutesAddedByOtherBranches, as the
// shared contract (issue 13) gives them: they check that the document's
// schemas take what those branches answer.
std::vector<Exchange> OpenApiContractTest::SyntheticExchanges() {
  const std::string h(64, 'a');
  const std::string trace = "0123456789abcdef";
  auto problem = [](int status, const std::string& type) {
    return json{
        {"type", type}, {"title", "t"}, {"status", status}, {"detail", "d"}}
        .dump();
  };
  std::vector<Exchange> out;
  Exchange events;
  events.name = "events (hand-written)";
  events.method = "GET";
  events.route = "/v1/events";
  events.path =
      "/v1/events?from_height=1&app=kv&sender=" + std::string(64, 'b');
  events.status = 200;
  events.content_type = "text/event-stream";
  events.headers = {{"x-trace-id", trace},
                    {"cache-control", "no-cache"},
                    {"x-accel-buffering", "no"}};
  events.body = absl::StrCat(
      "id: 1-0\nevent: block\ndata: {\"height\":1,\"hash\":\"", h,
      "\",\"time\":\"2026-12-03T01:02:03Z\",\"tx_count\":1,"
      "\"time_ms\":1764723723000}\n\n"
      ": heartbeat\n\n"
      "id: 1-1\nevent: tx\ndata: {\"height\":1,\"index\":0,\"tx_hash\":\"",
      h, "\",\"app\":\"kv\",\"method\":\"set\",\"sender\":\"",
      std::string(64, 'b'),
      "\",\"result\":{\"code\":0,\"code_name\":\"ok\",\"log\":\"\"}}\n\n"
      "event: cutoff\ndata: {\"reason\":\"too_slow\",\"resume_after\":"
      "\"1-1\"}\n\n");
  out.push_back(events);
  Exchange events_bad = events;
  events_bad.name = "events, bad from_height (hand-written)";
  events_bad.path = "/v1/events?from_height=x";
  events_bad.status = 400;
  events_bad.content_type = "application/problem+json";
  events_bad.headers = {{"x-trace-id", trace}};
  events_bad.body = problem(400, "https://consortia.dev/problems/bad-request");
  out.push_back(events_bad);

  const std::string tx =
      TxToJson(SignedTx(signer_, "c", 1, 9, "kv", "set", {"a", "b"}));
  Exchange batch;
  batch.name = "batch (hand-written)";
  batch.method = "POST";
  batch.route = "/v1/txs:batch";
  batch.path = "/v1/txs:batch";
  batch.request_content_type = "application/json";
  batch.request_body = absl::StrCat("{\"txs\":[", tx, ",", tx, "]}");
  batch.status = 200;
  batch.content_type = "application/json";
  batch.headers = {{"x-trace-id", trace}};
  batch.body = absl::StrCat(
      "{\"results\":[{\"tx_hash\":\"", h,
      "\",\"status\":\"pending\"},{\"tx_hash\":\"", h, "\",\"problem\":",
      problem(422, "https://consortia.dev/problems/bad-signature"), "}]}");
  out.push_back(batch);
  Exchange batch_401 = batch;
  batch_401.name = "batch without a key (hand-written)";
  batch_401.status = 401;
  batch_401.content_type = "application/problem+json";
  batch_401.headers = {{"x-trace-id", trace},
                       {"www-authenticate", "Bearer realm=\"consortia\""}};
  batch_401.body =
      problem(401, "https://consortia.dev/problems/api-key-missing");
  out.push_back(batch_401);
  Exchange batch_413 = batch_401;
  batch_413.name = "batch over --api_max_body_bytes (hand-written)";
  batch_413.status = 413;
  batch_413.headers = {};
  batch_413.body = problem(413, "about:blank");
  out.push_back(batch_413);
  for (Exchange& x : out) x.synthetic = true;
  return out;
}

TEST_F(OpenApiContractTest, EveryAnswerIsTheOneTheDocumentDescribes) {
  RecordExchanges();
  ASSERT_FALSE(HasFailure()) << node_->LogTail();
  // The document is the one the node serves.
  std::string doc_text;
  for (const Exchange& x : exchanges_) {
    if (x.route == "/v1/openapi.json" && x.status == 200) doc_text = x.body;
  }
  const json doc = json::parse(doc_text, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << "GET /v1/openapi.json is not JSON";

  // Each recorded path is one of its route (the real matcher says so).
  for (const Exchange& x : exchanges_) {
    const api::RouteSpec* m = api::MatchRoute(PathParts(x.path));
    const std::string matched = m == nullptr ? "" : m->path;
    EXPECT_EQ(matched, x.route) << x.name << ": " << x.path;
  }

  // Every route of the api has a success and an error exchange, and an
  // operation in the document.
  auto covered = [&](const std::string& method, const std::string& route,
                     bool synthetic, std::string* missing) {
    bool ok = false, error = false;
    for (const Exchange& x : exchanges_) {
      if (x.route != route || x.synthetic != synthetic) continue;
      ok = ok || (x.method == method && x.status >= 200 && x.status < 300);
      error = error || x.status >= 400;
    }
    if (!ok) *missing += " success";
    if (!error) *missing += " error";
    if (!doc["paths"].contains(route) ||
        !doc["paths"][route].contains(Lower(method))) {
      *missing += " operation-in-document";
    }
    return ok && error;
  };
  std::set<std::pair<std::string, std::string>> served;
  for (const api::RouteSpec& r : api::ApiRoutes()) {
    served.insert({r.method, r.path});
    std::string missing;
    covered(r.method, r.path, false, &missing);
    EXPECT_TRUE(missing.empty())
        << r.method << " " << r.path << " has no recorded" << missing
        << ": add its exchanges to RecordExchanges (and its operation to "
           "services/api/openapi.json)";
  }
  // Hand-written examples (the stream's cutoff event, which a healthy node
  // never sends here) are validated too.
  const std::vector<Exchange> synthetic = SyntheticExchanges();
  exchanges_.insert(exchanges_.end(), synthetic.begin(), synthetic.end());
  // The document describes no operation the api does not serve.
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return std::toupper(c); });
      EXPECT_EQ(served.count({upper, path}), 1u)
          << "services/api/openapi.json describes " << upper << " " << path
          << ", which the api does not serve";
    }
  }

  // Validate every exchange against the document.
  json all = json::array();
  for (const Exchange& x : exchanges_) all.push_back(ToJson(x));
  const std::string doc_file = dir_.path() + "/openapi.json";
  const std::string exchanges_file = dir_.path() + "/exchanges.json";
  WriteAll(doc_file, doc_text);
  WriteAll(exchanges_file, all.dump(2));
  const std::string node_bin = CONSORTIA_NODE;
  ASSERT_FALSE(node_bin.empty() || absl::EndsWith(node_bin, "NOTFOUND"))
      << "Node.js not found at configure time: run scripts/install-deps.sh "
         "and configure again";
  const std::string tools =
      std::string(CONSORTIA_SOURCE_DIR) + "/tools/openapi";
  ProgramRun v = RunProgram(
      dir_.path(),
      {node_bin, tools + "/validate-exchanges.mjs", doc_file, exchanges_file},
      absl::Seconds(60));
  EXPECT_EQ(v.code, 0) << v.out
                       << "(tools/openapi/node_modules missing? run "
                          "scripts/install-deps.sh)";
  std::cout << v.out.substr(v.out.rfind("openapi contract:") ==
                                    std::string::npos
                                ? 0
                                : v.out.rfind("openapi contract:"));
}

}  // namespace
}  // namespace consortia::testing
