// End-to-end: the explorer (GET /explorer) in a real browser against a real
// one-validator node. The browser side is tests/browser/explorer_test.mjs
// (Debian's chromium, headless, driven by playwright-core from
// tests/browser/node_modules, installed by scripts/install-deps.sh); this
// test starts the node, hands the script a signed tx to submit once the page
// is up, and checks that every step of the script passed.
//
// CONSORTIA_EXPLORER_SCREENSHOTS=DIR saves the screenshots of the main pages
// there (docs/images/ holds the committed ones).
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "consortia/process.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

using nlohmann::json;

constexpr char kBrowserDir[] = CONSORTIA_SOURCE_DIR "/tests/browser";

std::string Chromium() {
  const char* env = std::getenv("CONSORTIA_CHROMIUM");
  return env != nullptr ? env : "/usr/bin/chromium";
}

TEST(ExplorerE2eTest, PageShowsANewTxAndVerifiesItsProofInTheBrowser) {
  ASSERT_TRUE(std::filesystem::exists(Chromium()))
      << Chromium() << " is missing: run scripts/install-deps.sh";
  ASSERT_TRUE(std::filesystem::exists(
      absl::StrCat(kBrowserDir, "/node_modules/playwright-core/package.json")))
      << "tests/browser/node_modules is missing: run scripts/install-deps.sh";

  TempDir dir;
  NodeHarness node(dir.path());
  ASSERT_TRUE(node.Start().ok()) << node.LogTail();
  absl::StatusOr<uint64_t> height = node.CurrentHeight();
  ASSERT_TRUE(height.ok()) << height.status();

  const KeyPair client = TestKey(42);
  const Transaction tx =
      SignedTx(client, node.genesis().chain_id, 1, *height + 1000, "kv", "set",
               {"explorer-key", "explorer-value"});
  const std::string tx_hash = ToHex(TxHash(Ed25519Sha256(), tx));

  json config;
  config["base"] =
      absl::StrCat("http://", node.api().host, ":", node.api().port);
  config["genesis_file"] = dir.path() + "/genesis-copy.json";
  config["vectors_file"] = absl::StrCat(kBrowserDir, "/verify-vectors.json");
  config["tx_json"] = json::parse(TxToJson(tx));
  config["tx_hash"] = tx_hash;
  config["state_app"] = "kv";
  config["state_key"] = "explorer-key";
  config["state_value"] = "explorer-value";
  config["chromium"] = Chromium();
  if (const char* shots = std::getenv("CONSORTIA_EXPLORER_SCREENSHOTS")) {
    config["screenshots_dir"] = shots;
  }
  ASSERT_TRUE(WriteFileAtomic(config["genesis_file"].get<std::string>(),
                              GenesisToJson(node.genesis()))
                  .ok());
  const std::string config_path = dir.path() + "/explorer-test.json";
  ASSERT_TRUE(WriteFileAtomic(config_path, config.dump()).ok());

  const std::string log = dir.path() + "/browser.log";
  absl::StatusOr<ChildProcess> browser = ChildProcess::Start(
      {"/usr/bin/env", "node", absl::StrCat(kBrowserDir, "/explorer_test.mjs"),
       config_path},
      log);
  ASSERT_TRUE(browser.ok()) << browser.status();
  absl::StatusOr<int> status = browser->Wait(absl::Seconds(120));
  const std::string out = ReadFile(log).value_or("(no output)");
  ASSERT_TRUE(status.ok()) << status.status() << "\n" << out;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << out << "\n"
      << node.LogTail();
  // Every step ran and passed (the script prints one "ok:" line per step).
  EXPECT_TRUE(absl::StrContains(out, "10 passed, 0 failed")) << out;
}

}  // namespace
}  // namespace consortia::testing
