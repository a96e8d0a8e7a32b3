// End-to-end (issue 14, "Done means"): the walk-throughs of docs/tutorials/
// run. Each tutorial's `sh e2e=NAME` blocks run in order, in one working
// directory, with /bin/sh -e and the built `consortia` on the PATH, against
// a real node whose genesis carries the tutorial's own consortium.json (the
// block that writes it runs first; the node is then started from it, as the
// tutorial's `consortia localnet --consortium` would). Each block's exit
// status and the key parts of its output are checked, so a wrong command in
// a tutorial fails this test.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "consortia/types.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "network_harness.h"
#include "node_harness.h"

namespace consortia::testing {
namespace {

std::string Url(const HttpTarget& t) {
  return absl::StrCat("http://", t.host, ":", t.port, t.base_path);
}

class Tutorial {
 public:
  explicit Tutorial(const std::string& doc)
      : path_(std::string(CONSORTIA_SOURCE_DIR) + "/docs/tutorials/" + doc),
        examples_(DocExamples(ReadAll(path_))),
        work_(dir_.path() + "/work") {
    RunProgram(dir_.path(), {"/bin/mkdir", "-p", work_ + "/net"});
  }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const DocExample& e : examples_) names.push_back(e.name);
    return names;
  }

  // Runs example `name` in the working directory; its output and status.
  ProgramRun Run(const std::string& name) {
    for (const DocExample& e : examples_) {
      if (e.name != name) continue;
      const std::string script = absl::StrCat(work_, "/", e.name, ".sh");
      WriteAll(script, absl::StrCat("cd '", work_, "'\nPATH='", BinDir(),
                                    "':/usr/bin:/bin\nexport CONSORTIA_API='",
                                    api_, "'\n", e.code));
      return RunProgram(dir_.path(), {"/bin/sh", "-e", script},
                        absl::Seconds(120));
    }
    return {-1, "no example " + name + " in " + path_};
  }

  // Starts a one-validator node whose genesis has the consortium of the
  // tutorial's consortium.json, and puts its genesis at net/genesis.json.
  void StartNode() {
    absl::StatusOr<Consortium> consortium = ParseConsortiumJson(
        ReadAll(work_ + "/consortium.json"), "ed25519-sha256");
    ASSERT_TRUE(consortium.ok()) << consortium.status();
    NodeHarnessOptions o;
    o.consortium = *consortium;
    node_ = std::make_unique<NodeHarness>(dir_.path() + "/node", o);
    absl::Status started = node_->Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << node_->LogTail();
    ASSERT_TRUE(node_->CurrentHeight().ok()) << node_->LogTail();
    WriteAll(work_ + "/net/genesis.json",
             ReadAll(dir_.path() + "/node/genesis.json"));
    api_ = Url(node_->api());
  }

  void StopNode() {
    absl::Status stopped = node_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped << "\n" << node_->LogTail();
  }

  // As `consortia localnet --validators V --candidates C --consortium
  // consortium.json`: the genesis at net/genesis.json, node i's key at
  // net/nodeI/node_key.json, the api of node 0.
  void StartNetwork(int validators, int candidates) {
    absl::StatusOr<Consortium> consortium = ParseConsortiumJson(
        ReadAll(work_ + "/consortium.json"), "ed25519-sha256");
    ASSERT_TRUE(consortium.ok()) << consortium.status();
    NetworkOptions o;
    o.validators = validators;
    o.candidates = candidates;
    o.consortium = *consortium;
    net_ = std::make_unique<NetworkHarness>(o);
    absl::Status started = net_->StartAll();
    ASSERT_TRUE(started.ok()) << started;
    // Block 1 writes the consortium's records the first steps read.
    ASSERT_TRUE(
        NetworkHarness::WaitUntil([&] { return net_->Height(0) >= 1; }));
    WriteAll(work_ + "/net/genesis.json", GenesisToJson(net_->genesis()));
    for (int i = 0; i < net_->size(); ++i) {
      const std::string dir = absl::StrCat(work_, "/net/node", i);
      RunProgram(dir_.path(), {"/bin/mkdir", "-p", dir});
      WriteAll(dir + "/node_key.json", NodeKeyToJson(net_->node_key(i)));
    }
    api_ = Url(net_->api(0));
  }
  NetworkHarness& net() { return *net_; }

  const std::string& path() const { return path_; }
  const std::string& work() const { return work_; }

 private:
  TempDir dir_;
  std::string path_;
  std::vector<DocExample> examples_;
  std::string work_;
  std::string api_ = "http://127.0.0.1:1";
  std::unique_ptr<NodeHarness> node_;
  std::unique_ptr<NetworkHarness> net_;
};

#define RUN_OK(t, name)                                                   \
  [&] {                                                                   \
    SCOPED_TRACE(absl::StrCat((t).path(), " e2e=", name));                \
    ProgramRun r = (t).Run(name);                                         \
    EXPECT_EQ(r.code, 0) << "the example failed; its output:\n" << r.out; \
    return r;                                                             \
  }()

TEST(TutorialE2eTest, InvoiceIssuedReimbursedOnceAndVerified) {
  Tutorial t("invoice.md");
  ASSERT_EQ(t.Names(),
            (std::vector<std::string>{"keys", "consortium", "issue", "accept",
                                      "again", "show", "verify"}));
  RUN_OK(t, "keys");
  RUN_OK(t, "consortium");
  t.StartNode();
  ProgramRun issued = RUN_OK(t, "issue");
  EXPECT_NE(issued.out.find("\"code_name\": \"ok\""), std::string::npos)
      << issued.out;
  ProgramRun accepted = RUN_OK(t, "accept");
  EXPECT_EQ(accepted.out.find("refused"), std::string::npos) << accepted.out;
  // The block prints "reimbursed twice" and exits 1 if the second
  // reimbursement went through; the refusal is the app's, with its reason.
  ProgramRun again = RUN_OK(t, "again");
  EXPECT_NE(again.out.find("invalid_state"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("already reimbursed"), std::string::npos)
      << again.out;
  ProgramRun shown = RUN_OK(t, "show");
  EXPECT_NE(shown.out.find("reimbursed by buyer-co"), std::string::npos)
      << shown.out;
  ProgramRun verified = RUN_OK(t, "verify");
  EXPECT_TRUE(
      absl::StartsWith(verified.out, "OK: invoice/inv/seller-co/INV-42"))
      << verified.out;
  EXPECT_NE(verified.out.find("proven: invoice INV-42 of seller-co to "
                              "buyer-co, 1000.00 CNY + tax 130.00: issued"),
            std::string::npos)
      << verified.out;
  EXPECT_NE(verified.out.find("; final"), std::string::npos) << verified.out;

  // The saved answer, tampered with, is rejected: the verifier trusts only
  // the genesis. Once the value a reader sees, once a digit of the proof.
  const std::string saved = ReadAll(t.work() + "/inv-42.json");
  auto rejects = [&](const std::string& tampered, const char* what) {
    WriteAll(t.work() + "/tampered.json", tampered);
    ProgramRun r =
        RunProgram(t.work(), {BinDir() + "/consortia", "verify", "--genesis",
                              t.work() + "/net/genesis.json", "--answer",
                              t.work() + "/tampered.json"});
    EXPECT_EQ(r.code, 1) << what << ": " << r.out;
    EXPECT_NE(r.out.find("proof REJECTED"), std::string::npos)
        << what << ": " << r.out;
  };
  std::string value = saved;
  const size_t value_at = value.find("\"value\": \"");
  ASSERT_NE(value_at, std::string::npos) << saved;
  const size_t step_at = value.find("reimbursed", value_at);
  ASSERT_NE(step_at, std::string::npos) << saved;
  value.replace(step_at, 10, "accepted__");
  rejects(value, "a changed value");
  std::string proof = saved;
  const size_t hex_at = proof.find("\"hex\": \"");
  ASSERT_NE(hex_at, std::string::npos) << saved;
  char& digit = proof[hex_at + 8 + 200];
  digit = digit == '0' ? '1' : '0';
  rejects(proof, "a changed proof");
  t.StopNode();
}

TEST(TutorialE2eTest, NotaryAnchorShowAndVerify) {
  Tutorial t("notary.md");
  ASSERT_EQ(t.Names(),
            (std::vector<std::string>{"keys", "anchor", "show", "changed"}));
  RUN_OK(t, "keys");
  t.StartNode();
  ProgramRun anchored = RUN_OK(t, "anchor");
  EXPECT_NE(anchored.out.find("\"code_name\": \"ok\""), std::string::npos)
      << anchored.out;
  ProgramRun shown = RUN_OK(t, "show");
  EXPECT_NE(shown.out.find("proven: document "), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("anchored by org notary-office at height"),
            std::string::npos)
      << shown.out;
  ProgramRun changed = RUN_OK(t, "changed");
  EXPECT_NE(changed.out.find("no value"), std::string::npos) << changed.out;
  t.StopNode();
}

TEST(TutorialE2eTest, GovernanceAdmitsAnOrganisationByVote) {
  Tutorial t("governance.md");
  ASSERT_EQ(t.Names(),
            (std::vector<std::string>{"keys", "refused", "propose", "approve",
                                      "member", "admitted"}));
  RUN_OK(t, "keys");
  t.StartNode();
  ProgramRun refused = RUN_OK(t, "refused");
  EXPECT_NE(refused.out.find("unregistered-sender"), std::string::npos)
      << refused.out;
  ProgramRun proposed = RUN_OK(t, "propose");
  EXPECT_NE(proposed.out.find("add_org, approved by tax-bureau; open"),
            std::string::npos)
      << proposed.out;
  ProgramRun approved = RUN_OK(t, "approve");
  EXPECT_NE(approved.out.find("approved by bank-a, tax-bureau; executed"),
            std::string::npos)
      << approved.out;
  EXPECT_NE(approved.out.find("organisation auditor (City Audit Office)"),
            std::string::npos)
      << approved.out;
  // Two of four organisations are not a majority; the third approval
  // executes the proposal.
  ProgramRun member = RUN_OK(t, "member");
  EXPECT_NE(member.out.find("approved by bank-a, bank-b; open"),
            std::string::npos)
      << member.out;
  EXPECT_NE(member.out.find("approved by bank-a, bank-b, tax-bureau; executed"),
            std::string::npos)
      << member.out;
  ProgramRun admitted = RUN_OK(t, "admitted");
  EXPECT_NE(admitted.out.find("\"code_name\": \"ok\""), std::string::npos)
      << admitted.out;
  t.StopNode();
}

TEST(TutorialE2eTest, FifthValidatorJoinsByVote) {
  Tutorial t("validator.md");
  ASSERT_EQ(t.Names(), (std::vector<std::string>{"keys", "before", "propose",
                                                 "recorded"}));
  RUN_OK(t, "keys");
  t.StartNetwork(4, 1);
  ProgramRun before = RUN_OK(t, "before");
  EXPECT_NE(before.out.find("4 validators: validator0, validator1, "
                            "validator2, validator3 (the genesis set)"),
            std::string::npos)
      << before.out;
  ProgramRun proposed = RUN_OK(t, "propose");
  EXPECT_NE(proposed.out.find("add_validator, approved by city-it, grid-co; "
                              "executed at height "),
            std::string::npos)
      << proposed.out;
  ProgramRun recorded = RUN_OK(t, "recorded");
  const size_t from = recorded.out.find("from height ");
  ASSERT_NE(from, std::string::npos) << recorded.out;
  EXPECT_NE(recorded.out.find("5 validators: validator0, validator1, "
                              "validator2, validator3, validator4; below it, "
                              "4 validators"),
            std::string::npos)
      << recorded.out;
  const uint64_t effective = std::stoull(
      recorded.out.substr(from + std::string("from height ").size()));
  // Node 4 signs from `effective` on: it says so, and certificates of later
  // blocks carry its precommit (index 4).
  NetworkHarness& net = t.net();
  ASSERT_TRUE(NetworkHarness::WaitUntil(
      [&] { return net.Height(0) >= effective + 11; }));
  EXPECT_EQ(
      net.Metric(4, "consortia-consensus", "consortia_consensus_is_validator"),
      std::optional<double>(1));
  EXPECT_EQ(
      net.Metric(0, "consortia-consensus", "consortia_consensus_validators"),
      std::optional<double>(5));
  bool signed_by_node4 = false;
  for (uint64_t h = effective; h <= effective + 10 && !signed_by_node4; ++h) {
    auto r = HttpCall(net.api(0), "GET", absl::StrCat("/v1/blocks/", h));
    ASSERT_TRUE(r.ok() && r->status == 200);
    signed_by_node4 =
        r->body.find("\"validator_index\":4") != std::string::npos ||
        r->body.find("\"validator_index\": 4") != std::string::npos;
  }
  EXPECT_TRUE(signed_by_node4) << "no certificate from height " << effective
                               << " on carries node 4's precommit";
}

}  // namespace
}  // namespace consortia::testing
