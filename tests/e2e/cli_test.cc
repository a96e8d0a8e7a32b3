// End-to-end: the quick start's path. `consortia localnet` starts a node,
// the CLI signs and submits a tx and waits for it, `consortia verify` checks
// its proof, and `consortia localnet --stop` stops every process.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/genesis_file.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "e2e_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"

namespace consortia::testing {
namespace {

bool PortFree(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// A base port whose localnet ports are all free: for each of the four
// validators i, base+100i+{1..5, 80..83}; and base+50..53 for their APIs.
uint16_t PickBasePort() {
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint16_t base = static_cast<uint16_t>(20000 + rng() % 20000);
    bool free = true;
    for (int i = 0; i < 4; ++i) {
      for (int off : {1, 2, 3, 4, 5, 80, 81, 82, 83})
        free = free && PortFree(base + 100 * i + off);
      free = free && PortFree(base + 50 + i);
    }
    if (free) return base;
  }
  return 0;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(CliLocalnetTest, QuickStartPathWorks) {
  TempDir dir;
  uint16_t base = PickBasePort();
  ASSERT_NE(base, 0);
  const absl::StatusOr<uint16_t> api_port = static_cast<uint16_t>(base + 50);
  std::string net = dir.path() + "/net";
  std::string api = absl::StrCat("http://127.0.0.1:", *api_port);
  auto launcher = ChildProcess::Start(
      {BinDir() + "/consortia", "localnet", "--dir", net, "--api-port",
       std::to_string(*api_port), "--base-port", std::to_string(base)},
      dir.path() + "/localnet.log");
  ASSERT_TRUE(launcher.ok());

  // Ready when the launcher prints the API address.
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (ReadAll(dir.path() + "/localnet.log").find("API:") ==
         std::string::npos) {
    ASSERT_TRUE(launcher->running()) << ReadAll(dir.path() + "/localnet.log");
    ASSERT_LT(absl::Now(), deadline) << ReadAll(dir.path() + "/localnet.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(ReadAll(dir.path() + "/localnet.log").find(api), std::string::npos);
  // The quick start runs four validators.
  EXPECT_NE(ReadAll(dir.path() + "/localnet.log").find("4 validators"),
            std::string::npos);

  // `consortia probe` (the containers' health check): 0 for a 200 from the
  // api's and a service's metrics /healthz, 1 for another status or no
  // server.
  auto [pcode, pout] = RunCli(dir.path(), {"probe", api + "/healthz"});
  EXPECT_EQ(pcode, 0) << pout;
  auto [mcode, mout] = RunCli(
      dir.path(),
      {"probe", absl::StrCat("http://127.0.0.1:", base + 80, "/healthz")});
  EXPECT_EQ(mcode, 0) << mout;
  auto [p404, p404_out] = RunCli(dir.path(), {"probe", api + "/no-such-route"});
  EXPECT_EQ(p404, 1) << p404_out;
  EXPECT_NE(p404_out.find("answered HTTP 404"), std::string::npos) << p404_out;
  auto [pdown, pdown_out] = RunCli(
      dir.path(),
      {"probe", absl::StrCat("http://127.0.0.1:", base + 99, "/healthz")});
  EXPECT_EQ(pdown, 1) << pdown_out;

  // The chain id comes from the genesis the user holds: a genesis of
  // another chain is refused against this node, before anything is signed.
  auto [ocode, oout] = RunCli(
      dir.path(), {"genesis", "--chain-id", "other-chain", "--out",
                   dir.path() + "/other.json", net + "/client_key.json"});
  ASSERT_EQ(ocode, 0) << oout;
  auto [xcode, xout] =
      RunCli(dir.path(),
             {"submit", "--api", api, "--genesis", dir.path() + "/other.json",
              "--key", net + "/client_key.json", "--app", "kv", "--method",
              "set", "greeting", "forged"});
  EXPECT_EQ(xcode, 1) << xout;
  EXPECT_NE(xout.find("but the genesis says \"other-chain\""),
            std::string::npos)
      << xout;

  // Submissions need the development key that localnet made and printed.
  EXPECT_NE(
      ReadAll(dir.path() + "/localnet.log")
          .find("export CONSORTIA_API_KEY=$(cat " + net + "/dev_api_key)"),
      std::string::npos)
      << ReadAll(dir.path() + "/localnet.log");
  std::string dev_key = ReadAll(net + "/dev_api_key");
  while (!dev_key.empty() && dev_key.back() == '\n') dev_key.pop_back();
  ASSERT_EQ(dev_key.rfind("csk_", 0), 0u) << dev_key;
  EXPECT_EQ(ModeOf(net + "/dev_api_key"), static_cast<mode_t>(0600));
  auto [ncode, nout] = RunCli(
      dir.path(), {"submit", "--api", api, "--genesis", net + "/genesis.json",
                   "--key", net + "/client_key.json", "--app", "kv", "--method",
                   "set", "greeting", "nokey"});
  EXPECT_EQ(ncode, 1) << nout;
  EXPECT_NE(nout.find("api-key-missing"), std::string::npos) << nout;
  EXPECT_NE(nout.find("--api-key"), std::string::npos) << nout;

  auto [code, out] =
      RunCli(dir.path(),
             {"submit", "--api", api, "--api-key", dev_key, "--genesis",
              net + "/genesis.json", "--key", net + "/client_key.json", "--app",
              "kv", "--method", "set", "--wait", "greeting", "hello"});
  ASSERT_EQ(code, 0) << out;
  // The first line is the submit answer with the tx hash.
  nlohmann::json first =
      nlohmann::json::parse(out.substr(0, out.find('\n')), nullptr, false);
  ASSERT_TRUE(first.is_object()) << out;
  std::string hash = first.value("tx_hash", "");
  ASSERT_EQ(hash.size(), 64u) << out;

  // Verify once the receipt is certified too (the next block).
  std::string verify_out;
  deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto [vcode, vout] = RunCli(
        dir.path(),
        {"verify", "--api", api, "--genesis", net + "/genesis.json", hash});
    ASSERT_EQ(vcode, 0) << vout;
    verify_out = vout;
    if (vout.find("receipt ok certified") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(verify_out.find("receipt ok certified"), std::string::npos)
      << verify_out;

  auto [gcode, gout] =
      RunCli(dir.path(), {"get", "--api", api, "state", "kv", "greeting"});
  ASSERT_EQ(gcode, 0) << gout;
  EXPECT_NE(gout.find("\"hello\""), std::string::npos) << gout;

  // The submissions are in node 0's audit log, whose chain is intact.
  auto [acode, aout] =
      RunCli(dir.path(), {"audit", "verify", net + "/node0/audit.log"});
  EXPECT_EQ(acode, 0) << aout;
  EXPECT_NE(aout.find("OK: "), std::string::npos) << aout;
  EXPECT_NE(ReadAll(net + "/node0/audit.log").find(hash), std::string::npos);

  // Bad usage is exit code 2 with a message.
  auto [ucode, uout] = RunCli(
      dir.path(), {"submit", "--api", api, "--genesis", net + "/genesis.json"});
  EXPECT_EQ(ucode, 2) << uout;
  EXPECT_NE(uout.find("--key is required"), std::string::npos) << uout;

  auto [scode, sout] = RunCli(dir.path(), {"localnet", "--dir", net, "--stop"});
  EXPECT_EQ(scode, 0) << sout;
  auto status = launcher->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << ReadAll(dir.path() + "/localnet.log");
}

// `consortia localnet --init-only` (deploy/compose.yaml's init service):
// writes the network directory, starts nothing, names the peer hosts by the
// patterns, keeps the keys on a second run; the host patterns need
// --init-only.
TEST(CliLocalnetTest, ConsortiumFileMakesAPermissionedGenesisOnlyOnce) {
  TempDir dir;
  const std::string net = dir.path() + "/net";
  auto [keygen, key_hex] =
      RunCli(dir.path(), {"keygen", "--out", dir.path() + "/admin.key"});
  ASSERT_EQ(keygen, 0) << key_hex;
  key_hex = key_hex.substr(0, key_hex.find('\n'));
  const std::string file = dir.path() + "/consortium.json";
  WriteAll(file,
           absl::StrCat(R"({"approval_percent": 50, "orgs": [{"id": "org-a",
      "name": "Org A", "members": [{"public_key": ")",
                        key_hex, R"(", "roles": ["admin"]}]}]})"));
  const std::vector<std::string> init = {
      "localnet",    "--dir",        net, "--validators=1",
      "--init-only", "--consortium", file};
  auto [code, out] = RunCli(dir.path(), init);
  ASSERT_EQ(code, 0) << out;
  nlohmann::json genesis =
      nlohmann::json::parse(ReadAll(net + "/genesis.json"), nullptr, false);
  EXPECT_EQ(genesis["consortium"]["orgs"][0]["members"][0]["public_key"],
            key_hex)
      << genesis;
  // The same file again: the same network.
  EXPECT_EQ(RunCli(dir.path(), init).code, 0);
  // Another consortium for the existing chain: refused, nothing changed.
  const std::string before = ReadAll(net + "/genesis.json");
  WriteAll(file,
           absl::StrCat(R"({"approval_percent": 60, "orgs": [{"id": "org-a",
      "name": "Org A", "members": [{"public_key": ")",
                        key_hex, R"(", "roles": ["admin"]}]}]})"));
  auto [changed, changed_out] = RunCli(dir.path(), init);
  EXPECT_NE(changed, 0);
  EXPECT_NE(changed_out.find("another consortium"), std::string::npos)
      << changed_out;
  EXPECT_EQ(ReadAll(net + "/genesis.json"), before);
  // A malformed file names the field.
  WriteAll(file, R"({"approval_percent": 50, "orgs": [{"id": "Org A",
      "name": "A", "members": []}]})");
  auto [bad, bad_out] = RunCli(
      dir.path(), {"localnet", "--dir", dir.path() + "/net2", "--validators=1",
                   "--init-only", "--consortium", file});
  EXPECT_NE(bad, 0);
  EXPECT_NE(bad_out.find("consortium.orgs[0].id"), std::string::npos)
      << bad_out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/net2/genesis.json"));
}

TEST(CliLocalnetTest, InitOnlyWritesTheNetworkWithPeerHostsAndStartsNothing) {
  TempDir dir;
  const std::string net = dir.path() + "/net";
  const std::vector<std::string> init = {
      "localnet",
      "--dir",
      net,
      "--validators=4",
      "--init-only",
      "--consensus-host=validator{i}-consensus",
      "--mempool-host=validator{i}-mempool"};
  auto [code, out] = RunCli(dir.path(), init);
  ASSERT_EQ(code, 0) << out;
  EXPECT_FALSE(std::filesystem::exists(net + "/localnet.pid"));
  EXPECT_TRUE(std::filesystem::is_empty(net + "/logs")) << "a process ran";
  for (const char* f :
       {"/genesis.json", "/client_key.json", "/api_keys.json", "/dev_api_key",
        "/node3/node_key.json", "/node3/p2p_key.json"}) {
    EXPECT_TRUE(std::filesystem::exists(net + f)) << f;
  }
  nlohmann::json peers =
      nlohmann::json::parse(ReadAll(net + "/peers.json"), nullptr, false);
  ASSERT_TRUE(peers.is_array() && peers.size() == 4) << peers;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(
        peers[i].value("endpoint", ""),
        absl::StrCat("tcp://validator", i, "-consensus:", 26604 + 100 * i));
    EXPECT_EQ(peers[i].value("mempool_endpoint", ""),
              absl::StrCat("tcp://validator", i, "-mempool:", 26605 + 100 * i));
  }
  nlohmann::json genesis =
      nlohmann::json::parse(ReadAll(net + "/genesis.json"), nullptr, false);
  EXPECT_EQ(genesis["validators"].size(), 4u) << genesis;

  // Again: the same keys and genesis, the peers file rewritten.
  const std::string key = ReadAll(net + "/node0/node_key.json");
  const std::string gen = ReadAll(net + "/genesis.json");
  auto [again, again_out] = RunCli(dir.path(), init);
  ASSERT_EQ(again, 0) << again_out;
  EXPECT_EQ(ReadAll(net + "/node0/node_key.json"), key);
  EXPECT_EQ(ReadAll(net + "/genesis.json"), gen);

  // Host patterns without --init-only: refused (the nodes started here
  // listen on 127.0.0.1).
  auto [bad, bad_out] = RunCli(
      dir.path(), {"localnet", "--dir", net, "--consensus-host=validator{i}"});
  EXPECT_NE(bad, 0) << bad_out;
  EXPECT_NE(bad_out.find("need --init-only"), std::string::npos) << bad_out;
}

// Keys on the client side, without a node: keygen writes 0600 and never
// overwrites; a key file others can read draws a warning; a malformed key
// file is refused naming the field; submit refuses to sign without a
// genesis (the chain id is never taken from the node).
TEST(CliKeysTest, KeygenNeverOverwritesAndKeysAreCheckedStrictly) {
  TempDir dir;
  const std::string key = dir.path() + "/key.json";
  auto [kcode, kout] = RunCli(dir.path(), {"keygen", "--out", key});
  ASSERT_EQ(kcode, 0) << kout;
  const std::string first = ReadAll(key);
  EXPECT_EQ(ModeOf(key), static_cast<mode_t>(0600));

  // A second keygen onto the same file fails and leaves it as it was.
  auto [again, again_out] = RunCli(dir.path(), {"keygen", "--out", key});
  EXPECT_NE(again, 0) << again_out;
  EXPECT_NE(again_out.find("already exists"), std::string::npos) << again_out;
  EXPECT_EQ(ReadAll(key), first);
  // No temporary file is left beside it.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << entry.path();
  }
  // An owner-only key loads without a warning.
  auto [lcode, lout] =
      RunCli(dir.path(), {"genesis", "--chain-id", "keys-test", "--out",
                          dir.path() + "/genesis.json", key});
  ASSERT_EQ(lcode, 0) << lout;
  EXPECT_EQ(lout.find("warning"), std::string::npos) << lout;

  // Readable by others: a warning on stderr, and the command still works.
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto [wcode, wout] =
      RunCli(dir.path(), {"genesis", "--chain-id", "keys-test", "--out",
                          dir.path() + "/genesis2.json", key});
  EXPECT_EQ(wcode, 0) << wout;
  EXPECT_NE(wout.find("warning: key file " + key +
                      " is accessible by group or others (mode 0644)"),
            std::string::npos)
      << wout;

  // Strict parsing: an unknown field is named.
  const std::string odd = dir.path() + "/odd.json";
  {
    nlohmann::json j = nlohmann::json::parse(first);
    j["note"] = "hi";
    std::ofstream(odd) << j.dump();
  }
  auto [pcode, pout] =
      RunCli(dir.path(), {"genesis", "--chain-id", "keys-test", "--out",
                          dir.path() + "/genesis3.json", odd});
  EXPECT_EQ(pcode, 2) << pout;
  EXPECT_NE(pout.find("unknown field \"note\""), std::string::npos) << pout;

  // submit without --genesis: refused before any network call (nothing
  // listens on this api).
  auto [scode, sout] =
      RunCli(dir.path(), {"submit", "--api", "http://127.0.0.1:1", "--key", key,
                          "--app", "kv", "--method", "set", "k", "v"});
  EXPECT_EQ(scode, 2) << sout;
  EXPECT_NE(sout.find("--genesis is required"), std::string::npos) << sout;
}

// The national suite from the CLI: keygen --suite sm2-sm3 writes a 65-byte
// public key; genesis takes the keys' suite; a key of another suite is
// refused by genesis with its name.
TEST(CliKeysTest, Sm2KeysMakeAnSm2Genesis) {
  TempDir dir;
  const std::string key = dir.path() + "/sm2.json";
  auto [kcode, kout] =
      RunCli(dir.path(), {"keygen", "--suite", "sm2-sm3", "--out", key});
  ASSERT_EQ(kcode, 0) << kout;
  nlohmann::json j = nlohmann::json::parse(ReadAll(key));
  EXPECT_EQ(j["crypto_suite"], "sm2-sm3");
  EXPECT_EQ(j["public_key"].get<std::string>().size(), 130u);
  EXPECT_EQ(j["public_key"].get<std::string>().substr(0, 2), "04");
  EXPECT_EQ(j["secret_key"].get<std::string>().size(), 64u);

  const std::string genesis = dir.path() + "/genesis.json";
  auto [gcode, gout] = RunCli(dir.path(), {"genesis", "--chain-id", "sm2-chain",
                                           "--out", genesis, key});
  ASSERT_EQ(gcode, 0) << gout;
  absl::StatusOr<Genesis> g = LoadGenesis(genesis);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->crypto_suite, "sm2-sm3");

  const std::string ed = dir.path() + "/ed.json";
  auto [ecode, eout] = RunCli(dir.path(), {"keygen", "--out", ed});
  ASSERT_EQ(ecode, 0) << eout;
  auto [mcode, mout] =
      RunCli(dir.path(), {"genesis", "--chain-id", "mixed", "--out",
                          dir.path() + "/mixed.json", key, ed});
  EXPECT_NE(mcode, 0) << mout;
  EXPECT_NE(mout.find(": a key of suite ed25519-sha256, but the chain's "
                      "suite is sm2-sm3"),
            std::string::npos)
      << mout;
}

}  // namespace
}  // namespace consortia::testing
