// `consortia invoice|notary|gov`: the native apps' txs and reads. A tx
// command is `consortia submit` with the app, the method and the arguments
// filled in from named flags (so it signs, submits and waits the same way);
// a read command GETs the api's typed route and prints the record and what it
// says, and can save the answer for `consortia verify --answer FILE`.
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "api_access.h"
#include "app_words.h"
#include "args.h"
#include "commands.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"

namespace consortia::cli {
namespace {

// The flags a tx command passes on to `consortia submit` as they are.
const std::set<std::string> kSubmitFlags = {"api",     "api-key", "tls-ca-file",
                                            "genesis", "key",     "valid-for",
                                            "nonce",   "timeout"};
const std::set<std::string> kSubmitBools = {"wait", "dry-run"};

std::set<std::string> With(std::set<std::string> a,
                           std::initializer_list<std::string> b) {
  a.insert(b.begin(), b.end());
  return a;
}

// Runs `consortia submit --app APP --method METHOD [passed flags] ARG...`;
// with --wait, exit status 3 when the app refused the committed tx.
int Submit(const Args& args, const std::string& app, const std::string& method,
           const std::vector<std::string>& tx_args) {
  std::vector<std::string> argv = {"--app", app, "--method", method};
  for (const std::string& f : kSubmitFlags) {
    if (args.Has(f)) {
      argv.push_back("--" + f);
      argv.push_back(args.Get(f));
    }
  }
  for (const std::string& f : kSubmitBools) {
    if (args.Has(f)) argv.push_back("--" + f);
  }
  // "--" ends the flags: an argument that begins with "--" stays one.
  argv.push_back("--");
  argv.insert(argv.end(), tx_args.begin(), tx_args.end());
  return SubmitTx(argv, /*refusal_fails=*/true);
}

// GETs a typed route; prints what the record says and the record, and with
// --out saves the whole answer (with its proof) for `verify --answer`.
int Show(const Args& args, const std::string& path) {
  auto api = ApiTarget(args);
  if (!api.ok()) return Fail(api.status());
  auto j = GetJson(*api, path);
  if (!j.ok()) return Fail(j.status());
  if (args.Has("out") && !j->contains("items")) {
    // Saved with the next block's certificate, so that `verify --answer`
    // needs nothing else.
    auto timeout = args.GetU64("timeout", 30);
    if (!timeout.ok()) return Fail(timeout.status());
    auto complete = CompleteStateAnswer(*api, *j, absl::Seconds(*timeout));
    if (!complete.ok()) return Fail(complete.status());
    *j = *std::move(complete);
  }
  if (args.Has("out")) {
    std::ofstream out(args.Get("out"), std::ios::trunc);
    out << j->dump(2) << "\n";
    if (!out.good()) {
      return Fail(
          absl::InternalError(absl::StrCat("cannot write ", args.Get("out"))));
    }
  }
  if (j->contains("items")) {  // a page
    for (const auto& item : (*j)["items"]) {
      std::printf("%s\n",
                  DescribeRecord((*j).value("app", ""), item.value("key", ""),
                                 item.value("value", ""))
                      .c_str());
    }
    if ((*j)["next_cursor"].is_string()) {
      std::printf("more: --cursor %s\n",
                  (*j)["next_cursor"].get<std::string>().c_str());
    }
    return 0;
  }
  std::printf("%s\n", DescribeRecord(j->value("app", ""), j->value("key", ""),
                                     j->value("value", ""))
                          .c_str());
  if (j->contains("record")) {
    std::printf("%s\n", (*j)["record"].dump(2).c_str());
  }
  std::printf(
      "proven at height %llu; check it with: consortia verify "
      "--genesis FILE --state %s %s\n",
      static_cast<unsigned long long>(j->value("height", 0ULL)),
      j->value("app", "").c_str(), j->value("key", "").c_str());
  return 0;
}

std::string PageQuery(const Args& args) {
  std::string q;
  if (args.Has("cursor")) q += "&cursor=" + PathSegment(args.Get("cursor"));
  if (args.Has("limit")) q += "&limit=" + PathSegment(args.Get("limit"));
  return q;
}

// The document hash of --hash HEX or --file PATH (hashed with the genesis's
// suite: SHA-256 or SM3).
absl::StatusOr<std::string> DocumentHash(const Args& args) {
  if (args.Has("hash") == args.Has("file")) {
    return absl::InvalidArgumentError(
        "name the document by exactly one of --hash HEX and --file PATH");
  }
  if (args.Has("hash")) {
    auto h = HashFromHex(args.Get("hash"));
    if (!h.ok()) {
      return absl::InvalidArgumentError(
          "--hash must be 64 hex digits (a 32-byte digest)");
    }
    return absl::AsciiStrToLower(args.Get("hash"));
  }
  auto genesis_path = args.Require("genesis");
  if (!genesis_path.ok()) {
    return absl::InvalidArgumentError(
        "--file needs --genesis: the document is hashed with the chain's "
        "suite");
  }
  auto genesis = LoadGenesis(*genesis_path);
  if (!genesis.ok()) return genesis.status();
  auto suite = GetCryptoSuite(genesis->crypto_suite);
  if (!suite.ok()) return suite.status();
  auto data = ReadFile(args.Get("file"));
  if (!data.ok()) return data.status();
  return ToHex((*suite)->Hash(AsBytes(*data)));
}

int Usage(const char* text) { return Fail(absl::InvalidArgumentError(text)); }

}  // namespace

int InvoiceCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    return Usage(
        "usage: consortia invoice issue|accept|reject|reimburse|void|"
        "show|list ... (consortia help invoice)");
  }
  const std::string verb = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  const std::set<std::string> bools = With(kSubmitBools, {});
  auto args = Args::Parse(
      rest,
      With(kSubmitFlags, {"number", "buyer", "seller", "issuer", "amount-cents",
                          "tax-cents", "currency", "items-hash", "items-file",
                          "reason", "out", "cursor", "limit"}),
      bools);
  if (!args.ok()) return Fail(args.status());
  auto need = [&](const char* name) { return args->Require(name); };
  if (verb == "issue") {
    auto number = need("number");
    auto buyer = need("buyer");
    auto amount = need("amount-cents");
    auto tax = need("tax-cents");
    auto currency = need("currency");
    for (const auto* s : {&number, &buyer, &amount, &tax, &currency}) {
      if (!s->ok()) return Fail(s->status());
    }
    std::string items;
    if (args->Has("items-hash") == args->Has("items-file")) {
      return Usage(
          "name the items by exactly one of --items-hash HEX and "
          "--items-file PATH");
    }
    if (args->Has("items-hash")) {
      items = args->Get("items-hash");
    } else {
      auto h = DocumentHash(*Args::Parse({"--file", args->Get("items-file"),
                                          "--genesis", args->Get("genesis")},
                                         {"file", "genesis"}, {}));
      if (!h.ok()) return Fail(h.status());
      items = *h;
    }
    return Submit(*args, "invoice", "issue",
                  {*number, *buyer, *amount, *tax, *currency, items});
  }
  if (verb == "accept" || verb == "reimburse" || verb == "reject" ||
      verb == "void") {
    auto issuer = need("issuer");
    auto number = need("number");
    if (!issuer.ok()) return Fail(issuer.status());
    if (!number.ok()) return Fail(number.status());
    std::vector<std::string> tx_args = {*issuer, *number};
    if (verb == "reject" || verb == "void") {
      tx_args.push_back(args->Get("reason"));
    }
    return Submit(*args, "invoice", verb, tx_args);
  }
  if (verb == "show") {
    auto issuer = need("issuer");
    auto number = need("number");
    if (!issuer.ok()) return Fail(issuer.status());
    if (!number.ok()) return Fail(number.status());
    return Show(*args, "/v1/apps/invoice/invoices/" + PathSegment(*issuer) +
                           "/" + PathSegment(*number));
  }
  if (verb == "list") {
    if (args->Has("buyer") == args->Has("seller")) {
      return Usage("name exactly one of --buyer ORG and --seller ORG");
    }
    const std::string q = args->Has("buyer")
                              ? "buyer=" + PathSegment(args->Get("buyer"))
                              : "seller=" + PathSegment(args->Get("seller"));
    return Show(*args, "/v1/apps/invoice/invoices?" + q + PageQuery(*args));
  }
  return Usage(
      "usage: consortia invoice issue|accept|reject|reimburse|void|show|list");
}

int NotaryCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    return Usage(
        "usage: consortia notary anchor|show|revoke ... (consortia "
        "help notary)");
  }
  const std::string verb = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  auto args = Args::Parse(
      rest, With(kSubmitFlags, {"hash", "file", "metadata", "reason", "out"}),
      kSubmitBools);
  if (!args.ok()) return Fail(args.status());
  auto hash = DocumentHash(*args);
  if (!hash.ok()) return Fail(hash.status());
  if (verb == "anchor") {
    return Submit(*args, "notary", "anchor", {*hash, args->Get("metadata")});
  }
  if (verb == "revoke") {
    return Submit(*args, "notary", "revoke", {*hash, args->Get("reason")});
  }
  if (verb == "show") return Show(*args, "/v1/apps/notary/documents/" + *hash);
  return Usage("usage: consortia notary anchor|show|revoke");
}

int GovCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    return Usage(
        "usage: consortia gov propose|approve|show|list|orgs|members|"
        "validators ... (consortia help gov)");
  }
  const std::string verb = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  auto args = Args::Parse(rest,
                          With(kSubmitFlags, {"action", "action-file", "ttl",
                                              "id", "out", "cursor", "limit"}),
                          kSubmitBools);
  if (!args.ok()) return Fail(args.status());
  if (verb == "propose") {
    if (args->Has("action") == args->Has("action-file")) {
      return Usage(
          "give the action as exactly one of --action JSON and "
          "--action-file PATH");
    }
    std::string action = args->Get("action");
    if (args->Has("action-file")) {
      auto text = ReadFile(args->Get("action-file"));
      if (!text.ok()) return Fail(text.status());
      action = *text;
    }
    return Submit(*args, "admin", "propose", {action, args->Get("ttl", "100")});
  }
  if (verb == "approve") {
    auto id = args->Require("id");
    if (!id.ok()) return Fail(id.status());
    return Submit(*args, "admin", "approve", {*id});
  }
  if (verb == "show") {
    auto id = args->Require("id");
    if (!id.ok()) return Fail(id.status());
    return Show(*args, "/v1/apps/admin/proposals/" + PathSegment(*id));
  }
  if (verb == "list") {
    return Show(*args, "/v1/apps/admin/proposals?" + PageQuery(*args));
  }
  if (verb == "orgs") {
    return Show(*args, "/v1/apps/admin/orgs?" + PageQuery(*args));
  }
  if (verb == "members") {
    return Show(*args, "/v1/apps/admin/members?" + PageQuery(*args));
  }
  if (verb == "validators") {
    return Show(*args, "/v1/state/admin/validators%2Fpending");
  }
  return Usage(
      "usage: consortia gov propose|approve|show|list|orgs|members|"
      "validators");
}

}  // namespace consortia::cli
