// LoadGenesis (consortia/genesis_file.h): the one way every binary reads the
// genesis file.
#include "consortia/genesis_file.h"

#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class GenesisFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") +
                       "/consortia_genesis_file_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;

    const KeyPair key = Ed25519Sha256().GenerateKey();
    genesis_.chain_id = "genesis-file-test";
    genesis_.genesis_time_ms = 1700000000000;
    genesis_.validators.push_back(Validator{"v0", key.public_key, 1});
    genesis_.rules.replay_window = 77;
  }

  // Writes `text` as a file of the test directory; returns its path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }

  // The genesis JSON with `from` replaced by `to` (which must occur).
  std::string Edited(const std::string& from, const std::string& to) {
    std::string text = GenesisToJson(genesis_);
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  }

  std::string dir_;
  Genesis genesis_;
};

TEST_F(GenesisFileTest, LoadsWhatGenesisToJsonWrote) {
  const std::string path = Write("genesis.json", GenesisToJson(genesis_));
  absl::StatusOr<Genesis> g = LoadGenesis(path);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(*g, genesis_);
}

TEST_F(GenesisFileTest, AMissingFileIsNotFoundNamingTheFileOnce) {
  const std::string path = dir_ + "/missing.json";
  absl::StatusOr<Genesis> g = LoadGenesis(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound) << g.status();
  const std::string message(g.status().message());
  EXPECT_THAT(message, StartsWith("genesis: cannot open " + path + ": "));
  EXPECT_EQ(message.find(path), message.rfind(path)) << message;
}

TEST_F(GenesisFileTest, ADirectoryIsNotAGenesis) {
  absl::StatusOr<Genesis> g = LoadGenesis(dir_);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), StartsWith("genesis"));
}

// Every refusal of the content: InvalidArgument, "genesis <path>: " and the
// problem, with no second "genesis:" inside.
TEST_F(GenesisFileTest, RefusesBadContentNamingTheFileAndTheField) {
  struct Case {
    std::string name;
    std::string text;
    std::string problem;  // a part of the message
  };
  const std::vector<Case> cases = {
      {"empty", "", "malformed JSON"},
      {"not_json", "chain_id: x", "malformed JSON"},
      {"array", "[]", "top level must be an object"},
      {"trailing", GenesisToJson(genesis_) + "{}", "malformed JSON"},
      {"twice", Edited("\"chain_id\"", "\"chain_id\": \"a\", \"chain_id\""),
       "'chain_id' appears twice"},
      {"unknown_field", Edited("\"chain_id\"", "\"color\": 1, \"chain_id\""),
       "'color' is unknown"},
      {"empty_chain_id", Edited("\"genesis-file-test\"", "\"\""),
       "'chain_id' must be 1 to"},
      {"long_chain_id",
       Edited("\"genesis-file-test\"",
              "\"" + std::string(kMaxChainIdBytes + 1, 'c') + "\""),
       "'chain_id' must be 1 to"},
      {"chain_id_not_string", Edited("\"genesis-file-test\"", "7"),
       "'chain_id' must be a string"},
      {"unknown_suite", Edited("\"ed25519-sha256\"", "\"rot13\""),
       "'crypto_suite'"},
      {"short_public_key",
       Edited(
           absl::StrCat("\"", ToHex(genesis_.validators[0].public_key), "\""),
           "\"00\""),
       "'validators[0].public_key' must be"},
      {"zero_power", Edited("\"power\": 1", "\"power\": 0"),
       "'validators[0].power' must be at least 1"},
      {"replay_window_zero",
       Edited("\"replay_window\": 77", "\"replay_window\": 0"),
       "'chain_rules.replay_window' must be 1 to"},
  };
  for (const Case& c : cases) {
    const std::string path = Write(c.name + ".json", c.text);
    absl::StatusOr<Genesis> g = LoadGenesis(path);
    ASSERT_FALSE(g.ok()) << c.name;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name << ": " << g.status();
    const std::string message(g.status().message());
    EXPECT_THAT(message, StartsWith("genesis " + path + ": ")) << c.name;
    EXPECT_THAT(message, HasSubstr(c.problem)) << c.name;
    EXPECT_FALSE(absl::StrContains(message, "genesis: ")) << message;
  }
}

}  // namespace
}  // namespace consortia
