// `consortia verify --answer FILE` on a chain whose validator set changed:
// the saved answer carries the changes (validator_changes), the CLI follows
// them from the genesis and checks the proof against the set of its height,
// printing a line per change; a tampered, missing or reordered change is
// REJECTED. Offline: no node runs, the chain is built by hand with real
// signatures (common/tests/validator_change_chain.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/proof_bundle.h"
#include "consortia/types.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"
#include "validator_change_chain.h"

namespace consortia::testing {
namespace {

class CliVerifyChangesTest : public ::testing::Test {
 protected:
  CliVerifyChangesTest() {
    Genesis genesis = vc_.genesis();
    genesis.genesis_time_ms = 1700000000000;
    WriteAll(dir_.path() + "/genesis.json", GenesisToJson(genesis));
    // kv/k = "v" after block 12, certified by block 13, which X signs.
    const StateRecord record = vc_.Record("kv", "k", "v", 12, vc_.x());
    answer_ = {{"app", "kv"},
               {"key", "k"},
               {"value", "v"},
               {"height", 12},
               {"proof",
                {{"encoding", "consortia-staterecord-v1"},
                 {"hex", ToHex(EncodeStateRecord(record))}}},
               {"validator_changes",
                {ToHex(EncodeStateRecord(vc_.change5())),
                 ToHex(EncodeStateRecord(vc_.change9()))}}};
  }

  ProgramRun Verify(const nlohmann::json& answer) {
    WriteAll(dir_.path() + "/answer.json", answer.dump(2));
    return RunCli(dir_.path(),
                  {"verify", "--genesis", dir_.path() + "/genesis.json",
                   "--answer", dir_.path() + "/answer.json"});
  }

  void ExpectRejected(const nlohmann::json& answer, const std::string& why) {
    ProgramRun r = Verify(answer);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("proof REJECTED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(why), std::string::npos) << r.out;
  }

  TempDir dir_;
  ValidatorChangeChain vc_;
  nlohmann::json answer_;
};

TEST_F(CliVerifyChangesTest, FollowsTheChangesAndPrintsEach) {
  ProgramRun r = Verify(answer_);
  ASSERT_EQ(r.code, 0) << r.out;
  const size_t first = r.out.find(
      "validator set changed at height 7 (committed at 5): 4 validators\n");
  const size_t second = r.out.find(
      "validator set changed at height 12 (committed at 9): 5 validators\n");
  const size_t ok = r.out.find("OK: kv/k = \"v\"");
  ASSERT_NE(first, std::string::npos) << r.out;
  ASSERT_NE(second, std::string::npos) << r.out;
  ASSERT_NE(ok, std::string::npos) << r.out;
  EXPECT_LT(first, second);
  EXPECT_LT(second, ok);
  EXPECT_NE(r.out.find("certified by block 13 (4 of 5 validators)"),
            std::string::npos)
      << r.out;
}

TEST_F(CliVerifyChangesTest, RejectsATamperedChange) {
  // A byte of the second change's bundle (its value, in the middle).
  nlohmann::json tampered = answer_;
  std::string hex = tampered["validator_changes"][1].get<std::string>();
  char& digit = hex[hex.size() / 4];
  digit = digit == '0' ? '1' : '0';
  tampered["validator_changes"][1] = hex;
  ExpectRejected(tampered, "validator change at height 9");

  tampered = answer_;
  tampered["validator_changes"][0] = "zz";
  ExpectRejected(tampered, "validator_changes[0]");
}

TEST_F(CliVerifyChangesTest, RejectsAMissingOrReorderedChange) {
  nlohmann::json missing = answer_;
  missing["validator_changes"].erase(0);
  ExpectRejected(missing, "validator change at height 9");
  // Without any change the proof's certificate (X's) fails the genesis set.
  missing.erase("validator_changes");
  ExpectRejected(missing, "signature");

  nlohmann::json reordered = answer_;
  std::swap(reordered["validator_changes"][0],
            reordered["validator_changes"][1]);
  ExpectRejected(reordered, "validator change at height 9");
}

}  // namespace
}  // namespace consortia::testing
