#include "node_harness.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/config.h"
#include "nlohmann/json.hpp"

namespace consortia::testing {

namespace fs = std::filesystem;

KeyPair TestKey(uint8_t seed_byte, const CryptoSuite& suite) {
  Bytes seed(32, seed_byte);
  auto kp = suite.KeyFromSeed(seed);
  if (!kp.ok()) std::abort();  // a 32-byte seed is always valid
  return *kp;
}

Transaction SignedTx(const KeyPair& key, const std::string& chain_id,
                     uint64_t nonce, uint64_t valid_until,
                     const std::string& app, const std::string& method,
                     std::vector<std::string> args, const CryptoSuite& suite) {
  Transaction tx;
  tx.chain_id = chain_id;
  tx.nonce = nonce;
  tx.valid_until = valid_until;
  tx.sender = key.public_key;
  tx.app = app;
  tx.method = method;
  tx.args = std::move(args);
  auto sig = suite.Sign(key.secret_key, TxSignBytes(tx));
  if (!sig.ok()) std::abort();
  tx.signature = *sig;
  return tx;
}

std::vector<std::string> AllCryptoSuites() {
  return {"ed25519-sha256", "sm2-sm3"};
}

std::string SuiteTestName(const std::string& suite) {
  std::string out = suite;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

const CryptoSuite& SuiteNamed(const std::string& name) {
  absl::StatusOr<const CryptoSuite*> suite = GetCryptoSuite(name);
  if (!suite.ok()) std::abort();
  return **suite;
}

TempDir::TempDir() {
  std::string tmpl =
      (fs::temp_directory_path() / "consortia-test-XXXXXX").string();
  char* p = ::mkdtemp(tmpl.data());
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string BinDir() {
  const char* env = std::getenv("CONSORTIA_BIN_DIR");
  return env != nullptr ? env : CONSORTIA_BIN_DIR;
}

NodeHarness::NodeHarness(std::string dir, NodeHarnessOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {
  const CryptoSuite& suite = SuiteNamed(options_.crypto_suite);
  KeyPair validator = suite.GenerateKey();
  genesis_.chain_id = "e2e-chain";
  genesis_.crypto_suite = options_.crypto_suite;
  genesis_.genesis_time_ms = 1;
  genesis_.validators.push_back(
      Validator{"validator0", validator.public_key, 1});
  genesis_.consortium = options_.consortium;
  fs::create_directories(dir_ + "/data");
  if (!WriteFileAtomic(dir_ + "/genesis.json", GenesisToJson(genesis_)).ok() ||
      !WriteFileAtomic(
           dir_ + "/node_key.json",
           NodeKeyToJson(NodeKey{options_.crypto_suite, validator.public_key,
                                 validator.secret_key}))
           .ok()) {
    std::abort();
  }
}

NodeHarness::~NodeHarness() { (void)Stop(); }

absl::Status NodeHarness::Start(absl::Duration timeout) {
  auto port = [] {
    auto p = PickFreePort();
    if (!p.ok()) std::abort();
    return *p;
  };
  api_ = HttpTarget{"127.0.0.1", port(), ""};
  if (!options_.api_tls_ca_file.empty()) {
    api_.host = "localhost";
    api_.tls = true;
    api_.tls_ca_file = options_.api_tls_ca_file;
  }
  std::vector<std::string> common = {
      "--node_name=e2e",
      "--genesis=" + dir_ + "/genesis.json",
      "--node_key=" + dir_ + "/node_key.json",
      "--data_dir=" + dir_ + "/data",
      absl::StrCat("--mempool_endpoint=tcp://127.0.0.1:", port()),
      absl::StrCat("--storage_endpoint=tcp://127.0.0.1:", port()),
      absl::StrCat("--storage_events=tcp://127.0.0.1:", port()),
  };
  // Each binary knows only its own service's flags; consortia-node knows all.
  std::map<std::string, std::vector<std::string>> own = {
      {"consortia-api", {absl::StrCat("--api_port=", api_.port)}},
      {"consortia-consensus", {"--consensus_empty_block_interval_ms=200"}},
  };
  std::vector<std::string> binaries =
      options_.single_process
          ? std::vector<std::string>{"consortia-node"}
          : std::vector<std::string>{"consortia-storage", "consortia-mempool",
                                     "consortia-consensus", "consortia-api"};
  for (const auto& b : binaries) {
    HttpTarget ops{"127.0.0.1", port(), ""};
    std::vector<std::string> argv = {BinDir() + "/" + b};
    argv.insert(argv.end(), common.begin(), common.end());
    for (const auto& [binary, flags] : own) {
      if (binary == b || options_.single_process) {
        argv.insert(argv.end(), flags.begin(), flags.end());
      }
    }
    auto extra = options_.extra_flags.find(b);
    if (extra != options_.extra_flags.end()) {
      argv.insert(argv.end(), extra->second.begin(), extra->second.end());
    }
    argv.push_back(absl::StrCat("--metrics_port=", ops.port));
    auto p = ChildProcess::Start(argv, dir_ + "/" + b + ".log");
    if (!p.ok()) return p.status();
    ops_[b] = ops;
    argv_[b] = argv;
    killed_[b] = false;
    procs_.emplace_back(b, *std::move(p));
  }
  return WaitReady(timeout);
}

absl::Status NodeHarness::Kill(const std::vector<std::string>& binaries) {
  auto wanted = [&](const std::string& name) {
    return binaries.empty() ||
           std::find(binaries.begin(), binaries.end(), name) != binaries.end();
  };
  // Signal all first, so that a whole node dies at (nearly) one moment.
  for (auto& [name, p] : procs_) {
    if (wanted(name) && !killed_[name]) p.Signal(SIGKILL);
  }
  for (auto& [name, p] : procs_) {
    if (!wanted(name) || killed_[name]) continue;
    auto st = p.Wait(absl::Seconds(30));
    if (!st.ok()) return st.status();
    killed_[name] = true;
  }
  return absl::OkStatus();
}

absl::Status NodeHarness::Restart(absl::Duration timeout) {
  for (int attempt = 1;; ++attempt) {
    for (auto& [name, p] : procs_) {
      if (!killed_[name]) continue;
      auto started =
          ChildProcess::Start(argv_[name], dir_ + "/" + name + ".log");
      if (!started.ok()) return started.status();
      p = *std::move(started);
      killed_[name] = false;
    }
    absl::Status s = WaitReady(timeout);
    if (s.ok() || attempt == 3 || !absl::IsInternal(s)) return s;
    // A process exited while starting. Its ports are the ones it had, freed
    // by the kill, and another socket on the machine may have taken one for
    // a moment: start it again a few times before giving up.
    bool exited = false;
    for (auto& [name, p] : procs_) {
      if (!p.running()) killed_[name] = exited = true;
    }
    if (!exited) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

absl::Status NodeHarness::WaitReady(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (auto& [name, p] : procs_) {
      if (!p.running()) {
        return absl::InternalError(
            absl::StrCat(name, " exited during start:\n", LogTail()));
      }
    }
    auto r = HttpCall(api_, "GET", "/readyz", "", "", absl::Seconds(2));
    if (r.ok() && r->status == 200) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("node not ready after ",
                                                  absl::FormatDuration(timeout),
                                                  ":\n", LogTail()));
}

absl::Status NodeHarness::Stop() {
  absl::Status first = absl::OkStatus();
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) {
    int status = it->second.Stop(absl::Seconds(20));
    if (first.ok() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      first = absl::InternalError(absl::StrCat(
          it->first, " did not exit cleanly (wait status ", status, ")"));
    }
  }
  procs_.clear();
  return first;
}

absl::StatusOr<uint64_t> NodeHarness::CurrentHeight(
    absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<HttpResult> r = Get("/v1/blocks/latest");
    if (r.ok() && r->status == 200) {
      return nlohmann::json::parse(r->body)["header"]["height"].get<uint64_t>();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no block was committed:\n", LogTail()));
}

std::string NodeHarness::LogTail(size_t bytes) const {
  std::string out;
  for (const auto& [name, p] : procs_) {
    std::ifstream in(dir_ + "/" + name + ".log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    if (s.size() > bytes) s = s.substr(s.size() - bytes);
    absl::StrAppend(&out, "==== ", name, " ====\n", s, "\n");
  }
  return out;
}

absl::StatusOr<HttpResult> NodeHarness::Get(const std::string& path) const {
  return HttpCall(api_, "GET", path);
}

absl::StatusOr<HttpResult> NodeHarness::Post(const std::string& path,
                                             const std::string& body) const {
  return HttpCall(api_, "POST", path, body);
}

}  // namespace consortia::testing

namespace consortia::testing {

pid_t NodeHarness::pid(const std::string& binary) const {
  for (const auto& [name, p] : procs_) {
    if (name == binary) return p.pid();
  }
  return -1;
}

}  // namespace consortia::testing
