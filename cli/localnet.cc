// `consortia localnet`: validator nodes on 127.0.0.1 from the binaries next
// to this one. First use creates DIR/genesis.json, DIR/nodeI/node_key.json
// and DIR/client_key.json (with --validators N > 1 also DIR/nodeI/p2p_key.json
// and DIR/peers.json), and the API key file DIR/api_keys.json with a
// development key (organisation "dev", scopes read and submit) whose secret
// is kept in DIR/dev_api_key; later uses reuse them and the data in
// DIR/nodeI/data. Each api checks keys (submissions need one; reads are
// public) and writes its audit log to DIR/nodeI/audit.log.
// Node i uses ports base-port + 100 * i + {1, 2, 3, 4 (consensus p2p),
// 5 (mempool gossip, with several validators), 60..63 (metrics; 80..83 with
// several validators)} and serves its API on api-port + i.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "args.h"
#include "commands.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"
#include "consortia/http_client.h"
#include "consortia/peer_net.h"
#include "consortia/process.h"
#include "consortia/types.h"
#include "nlohmann/json.hpp"

namespace consortia::cli {
namespace {

namespace fs = std::filesystem;

// Validators of a new network when --validators is not given (an existing
// network keeps its own number).
constexpr uint64_t kDefaultValidators = 4;

// Port of a node's mempool gossip endpoint, above its base port. The peers
// file is rewritten on every start, so an existing network gains it too.
constexpr uint64_t kMempoolP2pOffset = 5;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "consortia localnet: %s\n",
               std::string(s.message()).c_str());
  return 1;
}

absl::Status EnsureKey(const std::string& path, const CryptoSuite& suite) {
  if (fs::exists(path)) {
    absl::StatusOr<NodeKey> key = LoadNodeKey(path);
    if (!key.ok()) return key.status();
    if (key->crypto_suite != suite.name()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " holds a key of suite ", key->crypto_suite,
                       ", not ", std::string(suite.name()), "; use --suite ",
                       key->crypto_suite, " or another --dir"));
    }
    return absl::OkStatus();
  }
  KeyPair kp = suite.GenerateKey();
  return WriteFileAtomic(
      path, NodeKeyToJson(NodeKey{std::string(suite.name()), kp.public_key,
                                  kp.secret_key}));
}

absl::Status EnsureCurveKey(const std::string& path) {
  if (fs::exists(path)) return LoadCurveKeyPair(path).status();
  auto pair = GenerateCurveKeyPair();
  if (!pair.ok()) return pair.status();
  return WriteFileAtomic(path, CurveKeyPairToJson(*pair));
}

std::string NodeDir(const std::string& dir, uint64_t i) {
  return absl::StrCat(dir, "/node", i);
}

uint64_t NodeBase(uint64_t base, uint64_t i) { return base + 100 * i; }

// Keys, genesis (and for several validators the peers file) of a network of
// `validators` nodes, created on first use and checked on later ones.
absl::Status EnsureNetwork(const std::string& dir, uint64_t validators,
                           uint64_t base, const CryptoSuite& suite) {
  std::error_code ec;
  for (uint64_t i = 0; i < validators; ++i) {
    fs::create_directories(NodeDir(dir, i) + "/data", ec);
  }
  fs::create_directories(dir + "/logs", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  for (uint64_t i = 0; i < validators; ++i) {
    if (auto s = EnsureKey(NodeDir(dir, i) + "/node_key.json", suite);
        !s.ok()) {
      return s;
    }
    if (validators > 1) {
      if (auto s = EnsureCurveKey(NodeDir(dir, i) + "/p2p_key.json"); !s.ok()) {
        return s;
      }
    }
  }
  if (auto s = EnsureKey(dir + "/client_key.json", suite); !s.ok()) return s;
  if (validators > 1) {
    nlohmann::json peers = nlohmann::json::array();
    for (uint64_t i = 0; i < validators; ++i) {
      auto pair = LoadCurveKeyPair(NodeDir(dir, i) + "/p2p_key.json");
      if (!pair.ok()) return pair.status();
      peers.push_back({{"id", absl::StrCat("node", i)},
                       {"endpoint", absl::StrCat("tcp://127.0.0.1:",
                                                 NodeBase(base, i) + 4)},
                       {"mempool_endpoint",
                        absl::StrCat("tcp://127.0.0.1:",
                                     NodeBase(base, i) + kMempoolP2pOffset)},
                       {"public_key", CurveKeyToZ85(pair->public_key)}});
    }
    if (auto s = WriteFileAtomic(dir + "/peers.json", peers.dump(2)); !s.ok()) {
      return s;
    }
  }
  std::string genesis_path = dir + "/genesis.json";
  if (fs::exists(genesis_path)) {
    auto g = LoadGenesis(genesis_path);
    if (!g.ok()) return g.status();
    if (g->validators.size() != validators) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " holds a network of ", g->validators.size(),
                       " validators; use --validators ", g->validators.size(),
                       " or another --dir"));
    }
    return absl::OkStatus();
  }
  Genesis g;
  g.chain_id = "localnet";
  g.crypto_suite = std::string(suite.name());
  g.genesis_time_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  for (uint64_t i = 0; i < validators; ++i) {
    auto key = LoadNodeKey(NodeDir(dir, i) + "/node_key.json");
    if (!key.ok()) return key.status();
    g.validators.push_back(
        Validator{absl::StrCat("validator", i), key->public_key, 1});
  }
  return WriteFileAtomic(genesis_path, GenesisToJson(g));
}

bool WaitReady(const std::vector<HttpTarget>& apis,
               const std::vector<ChildProcess*>& procs,
               absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  size_t ready = 0;
  while (absl::Now() < deadline) {
    for (ChildProcess* p : procs) {
      if (!p->running()) return false;
    }
    auto res =
        HttpCall(apis[ready], "GET", "/readyz", "", "", absl::Seconds(2));
    if (res.ok() && res->status == 200) {
      if (ready + 1 < apis.size()) {
        ++ready;
        continue;
      }
      // Ready once the chain has its first block (the CLI's submit needs a
      // height); with several validators that takes a round of votes.
      auto block = HttpCall(apis[0], "GET", "/v1/blocks/latest", "", "",
                            absl::Seconds(2));
      if (block.ok() && block->status == 200) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// Sends SIGTERM to the launcher whose pid is in pid_file and waits for it to
// stop its processes and exit.
int StopLocalnet(const std::string& pid_file) {
  auto text = ReadFile(pid_file);
  if (!text.ok()) {
    return Fail(absl::NotFoundError(absl::StrCat("no local network runs here (",
                                                 pid_file, " is missing)")));
  }
  int pid = std::atoi(text->c_str());
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) {
    std::error_code ignored;
    fs::remove(pid_file, ignored);
    return Fail(absl::NotFoundError("the local network was not running"));
  }
  // The launcher removes its pid file once every process has stopped (it may
  // then linger as a zombie until its parent reaps it, so its pid alone does
  // not say it is done).
  auto running = [&] { return fs::exists(pid_file) && ::kill(pid, 0) == 0; };
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (running() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (running()) {
    return Fail(absl::DeadlineExceededError(
        absl::StrCat("the local network (pid ", pid, ") did not stop")));
  }
  std::printf("stopped the local network (pid %d)\n", pid);
  return 0;
}

}  // namespace

int LocalnetCommand(const std::vector<std::string>& argv,
                    const std::string& self) {
  auto args =
      Args::Parse(argv, {"dir", "api-port", "base-port", "validators", "suite"},
                  {"single-process", "stop"});
  if (!args.ok()) return Fail(args.status());
  std::string dir = fs::absolute(args->Get("dir", "localnet")).string();
  std::string pid_file = dir + "/localnet.pid";
  if (args->Has("stop")) return StopLocalnet(pid_file);
  auto api_port = args->GetU64("api-port", 26657);
  auto base = args->GetU64("base-port", 26600);
  // One process runs one validator.
  uint64_t default_validators =
      args->Has("single-process") ? 1 : kDefaultValidators;
  if (auto g = LoadGenesis(dir + "/genesis.json");
      g.ok() && !g->validators.empty()) {
    default_validators = g->validators.size();
  }
  auto validators = args->GetU64("validators", default_validators);
  // The crypto suite of a new network; an existing one keeps its genesis's.
  std::string default_suite = "ed25519-sha256";
  if (auto g = LoadGenesis(dir + "/genesis.json"); g.ok()) {
    default_suite = g->crypto_suite;
  }
  auto suite = GetCryptoSuite(args->Get("suite", default_suite));
  if (!suite.ok()) return Fail(suite.status());
  if (!api_port.ok()) return Fail(api_port.status());
  if (!base.ok()) return Fail(base.status());
  if (!validators.ok()) return Fail(validators.status());
  if (*validators < 1 || *validators > 16) {
    return Fail(absl::InvalidArgumentError("--validators must be in 1..16"));
  }
  const uint64_t n = *validators;
  if (*api_port == 0 || *api_port + n - 1 > 65535 || *base == 0 ||
      NodeBase(*base, n - 1) > 65400) {
    return Fail(absl::InvalidArgumentError("ports must be in 1..65535"));
  }
  if (n > 1 && args->Has("single-process")) {
    return Fail(absl::InvalidArgumentError(
        "--single-process runs one validator; use --validators 1"));
  }
  if (auto s = EnsureNetwork(dir, n, *base, **suite); !s.ok()) return Fail(s);
  const std::string keys_file = dir + "/api_keys.json";
  const std::string dev_key_file = dir + "/dev_api_key";
  if (auto s = EnsureDevApiKey(keys_file, dev_key_file); !s.ok()) {
    return Fail(s.status());
  }

  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  fs::path bin_dir = ec ? fs::path(self).parent_path() : exe.parent_path();
  auto bin = [&](const char* name) { return (bin_dir / name).string(); };

  struct Spec {
    std::string binary;
    uint64_t metrics_port;
    std::vector<std::string> flags;
    std::string log;
  };
  std::vector<Spec> specs;
  std::vector<HttpTarget> apis;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t b = NodeBase(*base, i);
    // Metrics at +60..63 for one node (monitoring/prometheus-localnet.yml);
    // with several, +80..83, clear of the APIs at api-port + i.
    const uint64_t m = b + (n > 1 ? 80 : 60);
    const std::string node_dir = NodeDir(dir, i);
    std::vector<std::string> common = {
        absl::StrCat("--node_name=node", i),
        "--genesis=" + dir + "/genesis.json",
        "--node_key=" + node_dir + "/node_key.json",
        "--data_dir=" + node_dir + "/data",
        absl::StrCat("--mempool_endpoint=tcp://127.0.0.1:", b + 1),
        absl::StrCat("--storage_endpoint=tcp://127.0.0.1:", b + 2),
        absl::StrCat("--storage_events=tcp://127.0.0.1:", b + 3),
    };
    const uint64_t node_api = *api_port + i;
    apis.push_back(
        HttpTarget{"127.0.0.1", static_cast<uint16_t>(node_api), ""});
    const std::vector<std::string> api_flags = {
        absl::StrCat("--api_port=", node_api), "--api_keys_file=" + keys_file,
        "--api_audit_log=" + node_dir + "/audit.log"};
    std::vector<std::string> p2p_flags;
    // Mempool gossip, so that a tx sent to any node's API reaches every
    // proposer; the same key and peers file as consensus.
    std::vector<std::string> gossip_flags;
    if (n > 1) {
      p2p_flags = {
          absl::StrCat("--consensus_p2p_endpoint=tcp://127.0.0.1:", b + 4),
          "--consensus_p2p_key=" + node_dir + "/p2p_key.json",
          "--consensus_peers=" + dir + "/peers.json"};
      gossip_flags = {absl::StrCat("--mempool_p2p_endpoint=tcp://127.0.0.1:",
                                   b + kMempoolP2pOffset),
                      "--mempool_p2p_key=" + node_dir + "/p2p_key.json",
                      "--mempool_peers=" + dir + "/peers.json"};
    }
    auto add = [&](const char* binary, uint64_t metrics_port,
                   std::vector<std::string> own) {
      Spec spec{binary, metrics_port, common, ""};
      spec.flags.insert(spec.flags.end(), own.begin(), own.end());
      spec.log = n > 1 ? absl::StrCat(dir, "/logs/node", i, "-", binary, ".log")
                       : absl::StrCat(dir, "/logs/", binary, ".log");
      specs.push_back(std::move(spec));
    };
    if (args->Has("single-process")) {
      add("consortia-node", m + 0, api_flags);
    } else {
      // Start order: storage, mempool, consensus, api.
      add("consortia-storage", m + 0, {});
      add("consortia-mempool", m + 1, gossip_flags);
      add("consortia-consensus", m + 2, p2p_flags);
      add("consortia-api", m + 3, api_flags);
    }
  }

  // Ctrl-C and SIGTERM are taken with sigwait below, not by a handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  if (fs::exists(pid_file)) {
    auto text = ReadFile(pid_file);
    int other = text.ok() ? std::atoi(text->c_str()) : 0;
    if (other > 0 && ::kill(other, 0) == 0) {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
          "a local network (pid ", other, ") already runs from ", dir,
          "; stop it with: consortia localnet --dir ", dir, " --stop")));
    }
  }
  if (auto s = WriteFileAtomic(pid_file, std::to_string(::getpid())); !s.ok()) {
    return Fail(s);
  }

  std::vector<ChildProcess> procs;
  for (const Spec& spec : specs) {
    std::vector<std::string> cmd = {bin(spec.binary.c_str())};
    cmd.insert(cmd.end(), spec.flags.begin(), spec.flags.end());
    cmd.push_back(absl::StrCat("--metrics_port=", spec.metrics_port));
    auto p = ChildProcess::Start(cmd, spec.log);
    if (!p.ok()) return Fail(p.status());
    std::printf(
        "started %-20s pid %-7d metrics http://127.0.0.1:%llu/metrics  log "
        "%s\n",
        spec.binary.c_str(), p->pid(),
        static_cast<unsigned long long>(spec.metrics_port), spec.log.c_str());
    procs.push_back(*std::move(p));
  }
  auto stop_all = [&] {
    for (auto it = procs.rbegin(); it != procs.rend(); ++it) it->Stop();
    std::error_code ignored;
    fs::remove(pid_file, ignored);
  };

  std::vector<ChildProcess*> ptrs;
  for (auto& p : procs) ptrs.push_back(&p);
  if (!WaitReady(apis, ptrs, absl::Seconds(60))) {
    stop_all();
    return Fail(absl::UnavailableError(absl::StrCat(
        "the node did not become ready; see the logs in ", dir, "/logs")));
  }
  std::string url = absl::StrCat("http://127.0.0.1:", *api_port);
  if (n > 1) {
    std::printf("\n%llu validators; node i serves its API on port %llu + i\n",
                static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(*api_port));
  }
  const std::string cli = bin("consortia");
  std::printf(
      "\nConsortia local network is ready.\n"
      "  API:     %s\n"
      "  Genesis: %s/genesis.json\n"
      "  API key: %s (organisation dev, scopes read and submit;\n"
      "           submissions need a key, reads do not; more keys: %s apikey "
      "--help)\n\n"
      "Try it (in another terminal):\n"
      "  export CONSORTIA_API_KEY=$(cat %s)\n"
      "  %s submit --api %s --genesis %s/genesis.json --key "
      "%s/client_key.json --app kv --method set --wait hello world\n"
      "  curl %s/v1/state/kv/hello\n"
      "  curl %s/v1/blocks/latest\n"
      "  %s verify --api %s --genesis %s/genesis.json <tx_hash>\n"
      "  (with curl: -H \"Authorization: Bearer $CONSORTIA_API_KEY\"; "
      "docs/api.md)\n"
      "  %s apikey list --file %s\n"
      "  %s audit verify %s/node0/audit.log\n\n"
      "Ctrl-C stops every process.\n",
      url.c_str(), dir.c_str(), dev_key_file.c_str(), cli.c_str(),
      dev_key_file.c_str(), cli.c_str(), url.c_str(), dir.c_str(), dir.c_str(),
      url.c_str(), url.c_str(), cli.c_str(), url.c_str(), dir.c_str(),
      cli.c_str(), keys_file.c_str(), cli.c_str(), dir.c_str());
  std::fflush(stdout);

  int code = 0;
  while (true) {
    timespec tick{0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    bool died = false;
    for (size_t i = 0; i < procs.size(); ++i) {
      if (!procs[i].running()) {
        std::fprintf(stderr, "%s exited unexpectedly; see %s\n",
                     specs[i].binary.c_str(), specs[i].log.c_str());
        died = true;
      }
    }
    if (died) {
      code = 1;
      break;
    }
  }
  std::printf("stopping...\n");
  stop_all();
  std::printf("stopped\n");
  return code;
}

}  // namespace consortia::cli
