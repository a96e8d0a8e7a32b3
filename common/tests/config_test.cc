#include "consortia/config.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "consortia/crypto_suite.h"
#include "consortia/log.h"
#include "consortia/options.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

// A fresh directory under the test's temporary directory.
std::string MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") +
                     "/consortia_config_test_XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

// Runs ParseFlagsAndEnv over argv (program name first). The returned
// pointers point into args.
std::vector<char*> Parse(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return ParseFlagsAndEnv(static_cast<int>(args.size()), argv.data(),
                          "config_test");
}

class ConfigTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("CONSORTIA_NODE_NAME");
    unsetenv("CONSORTIA_DATA_DIR");
    unsetenv("CONSORTIA_METRICS_PORT");
  }
  absl::FlagSaver saver_;  // restores every flag after the test
};

TEST_F(ConfigTest, DefaultsAreValid) {
  NodeConfig c = NodeConfig::FromFlags();
  EXPECT_EQ(c.node_name, "node0");
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_EQ(c.mempool_endpoint, "tcp://127.0.0.1:26601");
  EXPECT_EQ(c.storage_endpoint, "tcp://127.0.0.1:26602");
  EXPECT_EQ(c.storage_events, "tcp://127.0.0.1:26603");
  EXPECT_EQ(c.metrics_port, 0);
  EXPECT_EQ(c.bus_timeout, absl::Milliseconds(5000));
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
}

TEST_F(ConfigTest, EnvironmentSetsFlagsAndCommandLineWins) {
  setenv("CONSORTIA_NODE_NAME", "from-env", 1);
  setenv("CONSORTIA_DATA_DIR", "/env/data", 1);
  setenv("CONSORTIA_METRICS_PORT", "9100", 1);
  std::vector<std::string> args = {"prog", "--data_dir=/cli/data",
                                   "positional"};
  std::vector<char*> rest = Parse(args);
  NodeConfig c = NodeConfig::FromFlags();
  EXPECT_EQ(c.node_name, "from-env");
  EXPECT_EQ(c.data_dir, "/cli/data");
  EXPECT_EQ(c.metrics_port, 9100);
  ASSERT_EQ(rest.size(), 2u);  // program name, then positional arguments
  EXPECT_STREQ(rest[1], "positional");
}

TEST_F(ConfigTest, BadEnvironmentValueIsReported) {
  EXPECT_EXIT(
      {
        setenv("CONSORTIA_METRICS_PORT", "not-a-number", 1);
        std::vector<std::string> args = {"prog"};
        Parse(args);
      },
      ::testing::ExitedWithCode(2), "CONSORTIA_METRICS_PORT.*not-a-number");
}

TEST_F(ConfigTest, ValidateNamesTheBadOption) {
  auto expect_bad = [](NodeConfig c, const std::string& name) {
    absl::Status s = c.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(s.message().find(name), absl::string_view::npos) << s;
  };
  NodeConfig good = NodeConfig::FromFlags();
  NodeConfig c = good;
  c.metrics_port = 65536;
  expect_bad(c, "metrics_port");
  c = good;
  c.metrics_port = -1;
  expect_bad(c, "metrics_port");
  c = good;
  c.bus_timeout = absl::Milliseconds(5);
  expect_bad(c, "bus_timeout_ms");
  c = good;
  c.bus_timeout = absl::Minutes(11);
  expect_bad(c, "bus_timeout_ms");
  c = good;
  c.mempool_endpoint = "";
  expect_bad(c, "mempool_endpoint");
  c = good;
  c.storage_endpoint = "http://127.0.0.1:1";
  expect_bad(c, "storage_endpoint");
  c = good;
  c.storage_events = "tcp://";
  expect_bad(c, "storage_events");
  c = good;
  c.log_level = "loud";
  expect_bad(c, "log_level");

  c = good;
  c.mempool_endpoint = "ipc:///tmp/mempool.sock";
  c.storage_endpoint = "inproc://storage";
  c.metrics_port = 65535;
  c.bus_timeout = absl::Milliseconds(10);
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
}

TEST(FileTest, WriteFileAtomicThenReadFile) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/genesis.json";
  ASSERT_TRUE(WriteFileAtomic(path, "first").ok());
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "first");

  std::string big(300 * 1024, 'x');
  big[12345] = '\0';  // binary data survives
  ASSERT_TRUE(WriteFileAtomic(path, big).ok());
  read = ReadFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, big);
  // No temporary file is left behind.
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"genesis.json"});
}

TEST(FileTest, Errors) {
  std::string dir = MakeTempDir();
  EXPECT_EQ(ReadFile(dir + "/missing").status().code(),
            absl::StatusCode::kNotFound);
  absl::Status s = WriteFileAtomic(dir + "/no/such/dir/file", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("no/such/dir"), absl::string_view::npos) << s;
}

class NodeKeyTest : public ::testing::Test {
 protected:
  NodeKey MakeKey(uint8_t seed) {
    KeyPair kp = *Ed25519Sha256().KeyFromSeed(Bytes(32, seed));
    return NodeKey{"ed25519-sha256", kp.public_key, kp.secret_key};
  }
  std::string Write(const std::string& text) {
    std::string path = dir_ + "/key" + std::to_string(n_++) + ".json";
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }
  absl::StatusCode LoadCode(const std::string& text) {
    return LoadNodeKey(Write(text)).status().code();
  }
  std::string dir_ = MakeTempDir();
  int n_ = 0;
};

TEST_F(NodeKeyTest, RoundTrip) {
  NodeKey k = MakeKey(1);
  auto loaded = LoadNodeKey(Write(NodeKeyToJson(k)));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->crypto_suite, k.crypto_suite);
  EXPECT_EQ(loaded->public_key, k.public_key);
  EXPECT_EQ(loaded->secret_key, k.secret_key);
}

// sm2-sm3 key files: 65-byte points and 32-byte scalars; a key of one suite
// is not taken for the other, and mismatched halves are refused.
TEST_F(NodeKeyTest, Sm2KeysLoadAndAreCheckedForTheirSuite) {
  const KeyPair kp = *Sm2Sm3().KeyFromSeed(Bytes(32, 5));
  const NodeKey k{"sm2-sm3", kp.public_key, kp.secret_key};
  auto loaded = LoadNodeKey(Write(NodeKeyToJson(k)));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->crypto_suite, "sm2-sm3");
  EXPECT_EQ(loaded->public_key, kp.public_key);
  EXPECT_EQ(loaded->secret_key, kp.secret_key);

  NodeKey as_ed25519 = k;
  as_ed25519.crypto_suite = "ed25519-sha256";
  EXPECT_EQ(LoadCode(NodeKeyToJson(as_ed25519)),
            absl::StatusCode::kInvalidArgument);
  NodeKey ed_as_sm2 = MakeKey(6);
  ed_as_sm2.crypto_suite = "sm2-sm3";
  EXPECT_EQ(LoadCode(NodeKeyToJson(ed_as_sm2)),
            absl::StatusCode::kInvalidArgument);
  NodeKey mixed = k;
  mixed.secret_key = Sm2Sm3().KeyFromSeed(Bytes(32, 6))->secret_key;
  const absl::Status s = LoadNodeKey(Write(NodeKeyToJson(mixed))).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s;
}

TEST_F(NodeKeyTest, Errors) {
  EXPECT_EQ(LoadNodeKey(dir_ + "/missing.json").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadCode("not json"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadCode("[1,2]"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadCode(R"({"crypto_suite":"ed25519-sha256","public_key":"00"})"),
            absl::StatusCode::kInvalidArgument);

  NodeKey k = MakeKey(2);
  NodeKey bad_suite = k;
  bad_suite.crypto_suite = "rot13";
  EXPECT_EQ(LoadCode(NodeKeyToJson(bad_suite)),
            absl::StatusCode::kInvalidArgument);

  std::string bad_hex = NodeKeyToJson(k);
  bad_hex.replace(bad_hex.find(ToHex(k.secret_key)), 2, "zz");
  EXPECT_EQ(LoadCode(bad_hex), absl::StatusCode::kInvalidArgument);

  NodeKey short_pub = k;
  short_pub.public_key.pop_back();
  EXPECT_EQ(LoadCode(NodeKeyToJson(short_pub)),
            absl::StatusCode::kInvalidArgument);

  // Halves of two different keys.
  NodeKey mixed = k;
  mixed.secret_key = MakeKey(3).secret_key;
  absl::Status s = LoadNodeKey(Write(NodeKeyToJson(mixed))).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), absl::string_view::npos) << s;
}

// Strict parsing: every way a key file can be wrong is an InvalidArgument
// that names the file and the field.
TEST_F(NodeKeyTest, StrictParsingNamesTheField) {
  const NodeKey k = MakeKey(4);
  const std::string pub = ToHex(k.public_key);
  const std::string sec = ToHex(k.secret_key);
  auto json = [&](const std::string& body) { return "{" + body + "}"; };
  const std::string suite = R"("crypto_suite":"ed25519-sha256")";
  const std::string good_pub = R"("public_key":")" + pub + R"(")";
  const std::string good_sec = R"("secret_key":")" + sec + R"(")";
  struct Case {
    std::string text;
    std::string must_mention;
  };
  const std::vector<Case> cases = {
      // An unknown field (a typo, or a file of another kind).
      {json(suite + "," + good_pub + "," + good_sec + R"(,"comment":"x")"),
       "unknown field \"comment\""},
      // A field twice: which one would be used?
      {json(suite + "," + good_pub + "," + good_sec + "," + good_sec),
       "'secret_key' appears twice"},
      // Missing fields.
      {json(suite + "," + good_pub), "\"secret_key\" is missing"},
      {json(good_pub + "," + good_sec), "\"crypto_suite\" is missing"},
      // Wrong hex lengths: one byte short, and an odd number of digits.
      {json(suite + "," + good_pub + R"(,"secret_key":")" +
            sec.substr(0, sec.size() - 2) + R"(")"),
       "secret_key has 31 bytes"},
      {json(suite + R"(,"public_key":")" + pub.substr(0, pub.size() - 1) +
            R"(",)" + good_sec),
       "\"public_key\""},
      {json(suite + R"(,"public_key":")" + pub + R"(00",)" + good_sec),
       "public_key has 33 bytes"},
      // A number where a string belongs.
      {json(suite + R"(,"public_key":12,)" + good_sec),
       "\"public_key\" is missing or not a string"},
      // Trailing garbage after the object.
      {NodeKeyToJson(k) + "}", "malformed JSON"},
      {NodeKeyToJson(k) + "{}", "malformed JSON"},
  };
  for (const Case& c : cases) {
    const std::string path = Write(c.text);
    const absl::Status s = LoadNodeKey(path).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(s.message().find(c.must_mention), absl::string_view::npos)
        << "want \"" << c.must_mention << "\" in: " << s;
    EXPECT_NE(s.message().find(path), absl::string_view::npos) << s;
  }
  // The well-formed file, with whitespace around it, still loads.
  EXPECT_TRUE(LoadNodeKey(Write("\n  " + NodeKeyToJson(k) + "\n\n")).ok());
}

TEST_F(NodeKeyTest, KeyFileModeIsCheckedAndWrittenOwnerOnly) {
  const std::string path = Write(NodeKeyToJson(MakeKey(5)));
  // WriteFileAtomic (what keygen and localnet use) writes 0600.
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(CheckKeyFileMode(path).ok());
  for (mode_t mode : {0640, 0604, 0660, 0601}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    absl::Status s = CheckKeyFileMode(path);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << mode;
    EXPECT_NE(s.message().find("chmod 600"), absl::string_view::npos) << s;
  }
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(CheckKeyFileMode(path).ok());
  EXPECT_EQ(CheckKeyFileMode(dir_ + "/missing.json").code(),
            absl::StatusCode::kNotFound);
}

TEST(LogTest, LevelsAndFallback) {
  InitLogging("test", "debug");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  InitLogging("test", "error");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::err);
  InitLogging("test", "no-such-level");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info);
  spdlog::info("logging works");
}

// --- Options declared once (options.h) ---------------------------------------

const OptionSpec* FindOption(const std::string& name) {
  for (const OptionSpec* s : DeclaredOptions()) {
    if (s->name == name) return s;
  }
  return nullptr;
}

TEST(OptionsTest, NodeWideOptionsAreDeclaredWithTheirBounds) {
  std::vector<std::string> names;
  for (const OptionSpec* s : DeclaredOptions("node")) names.push_back(s->name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "node_name", "genesis", "node_key", "data_dir",
                       "mempool_endpoint", "storage_endpoint", "storage_events",
                       "metrics_host", "metrics_port", "log_level",
                       "bus_timeout_ms"}));
  const OptionSpec* port = FindOption("metrics_port");
  ASSERT_NE(port, nullptr);
  EXPECT_EQ(port->min, 0);
  EXPECT_EQ(port->max, 65535);
  EXPECT_EQ(port->DefaultValue(), "0");
  EXPECT_EQ(port->EnvVar(), "CONSORTIA_METRICS_PORT");
  const OptionSpec* timeout = FindOption("bus_timeout_ms");
  ASSERT_NE(timeout, nullptr);
  EXPECT_EQ(timeout->min, 10);
  EXPECT_EQ(timeout->max, 600000);
  EXPECT_EQ(timeout->DefaultValue(), "5000");
  const OptionSpec* name = FindOption("node_name");
  ASSERT_NE(name, nullptr);
  EXPECT_FALSE(name->min.has_value());
  EXPECT_EQ(name->DefaultValue(), "node0");
}

TEST(OptionsTest, BoundsCheckNamesTheFlagAndTheBounds) {
  const OptionSpec* port = FindOption("metrics_port");
  ASSERT_NE(port, nullptr);
  EXPECT_TRUE(CheckOptionBounds(*port, int64_t{0}).ok());
  EXPECT_TRUE(CheckOptionBounds(*port, int64_t{65535}).ok());
  absl::Status s = CheckOptionBounds(*port, int64_t{65536});
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_EQ(s.message(), "--metrics_port=65536 is out of bounds [0, 65535]");
  EXPECT_TRUE(absl::IsInvalidArgument(CheckOptionBounds(*port, int64_t{-1})));
  EXPECT_TRUE(absl::IsInvalidArgument(
      CheckOptionBounds(*port, uint64_t{1} << 63)));  // over int64
  EXPECT_TRUE(absl::IsInvalidArgument(CheckOptionRange(*port, 5, 10, 20)));
}

TEST(OptionsTest, DumpOptionsIsJsonWithEveryField) {
  nlohmann::json j = nlohmann::json::parse(DumpOptionsJson());
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), DeclaredOptions().size());
  bool found = false;
  for (const nlohmann::json& o : j) {
    for (const char* key :
         {"name", "owner", "type", "default", "min", "max", "help", "env"}) {
      EXPECT_TRUE(o.contains(key)) << key << " in " << o.dump();
    }
    if (o["name"] == "bus_timeout_ms") {
      found = true;
      EXPECT_EQ(o["owner"], "node");
      EXPECT_EQ(o["type"], "int64_t");
      EXPECT_EQ(o["default"], 5000);
      EXPECT_EQ(o["min"], 10);
      EXPECT_EQ(o["max"], 600000);
      EXPECT_EQ(o["env"], "CONSORTIA_BUS_TIMEOUT_MS");
    }
    if (o["name"] == "genesis") {
      EXPECT_EQ(o["default"], "");
      EXPECT_TRUE(o["min"].is_null());
    }
  }
  EXPECT_TRUE(found);
}

TEST(OptionsTest, HelpListsTheDeclaredOptions) {
  const std::string help = OptionsHelpText();
  for (const OptionSpec* s : DeclaredOptions()) {
    EXPECT_NE(help.find("--" + s->name + " "), std::string::npos) << s->name;
  }
  EXPECT_NE(help.find("CONSORTIA_BUS_TIMEOUT_MS"), std::string::npos);
}

TEST(OptionsTest, HelpAndDumpOptionsExitZero) {
  std::vector<std::string> help = {"prog", "--help"};
  EXPECT_EXIT(Parse(help), ::testing::ExitedWithCode(0), "");
  std::vector<std::string> dump = {"prog", "--node_name=x", "--dump_options"};
  EXPECT_EXIT(Parse(dump), ::testing::ExitedWithCode(0), "");
}

TEST(OptionsTest, OperationsTableMatchesTheDeclarations) {
  absl::Status s = CheckOptionsTableInTree(CONSORTIA_SOURCE_DIR,
                                           "docs/operations.md", "node");
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(OptionsTest, ATableThatDisagreesFailsAndCanBeRewritten) {
  const std::string path = MakeTempDir() + "/README.md";
  std::string table = OptionsMarkdownTable("node");
  const std::string row = "| `--metrics_port` | `CONSORTIA_METRICS_PORT` | ";
  const size_t at = table.find(row);
  ASSERT_NE(at, std::string::npos) << table;
  std::string stale = table;
  stale.replace(stale.find("65535", at), 5, "9999");  // a bound changed
  ASSERT_TRUE(WriteFileAtomic(path, "# x\n<!-- options:node -->\n" + stale +
                                        "<!-- /options -->\ntail\n")
                  .ok());
  absl::Status s = CheckOptionsTable(path, "node", /*update=*/false);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("metrics_port"), std::string::npos) << s;
  EXPECT_TRUE(CheckOptionsTable(path, "node", /*update=*/true).ok());
  EXPECT_TRUE(CheckOptionsTable(path, "node", /*update=*/false).ok());
  absl::StatusOr<std::string> text = ReadFile(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "# x\n<!-- options:node -->\n" + table +
                       "<!-- /options -->\ntail\n");
  // No markers: an error, not a rewrite.
  ASSERT_TRUE(WriteFileAtomic(path, "no table here\n").ok());
  EXPECT_FALSE(CheckOptionsTable(path, "node", /*update=*/true).ok());
}

}  // namespace
}  // namespace consortia
