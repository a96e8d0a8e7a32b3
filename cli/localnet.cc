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
// With --consortium FILE a new genesis carries that consortium section (a
// permissioned chain: docs/apps.md); an existing one must have the same.
// With --candidates C, C more nodes (numbered after the validators) run
// with keys that are not in the genesis; the peers file lists them as
// validators' nodes, so that a governance vote can add them to the set.
// With --init-only it writes DIR and exits without starting anything; then
// --consensus-host and --mempool-host (patterns, "{i}" = node index) name
// the hosts in DIR/peers.json, for nodes that do not share 127.0.0.1 (the
// containers of deploy/compose.yaml).
#include "localnet.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "args.h"
#include "commands.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/types.h"
#include "network.h"

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

std::string NodeDir(const std::string& dir, uint64_t i) {
  return absl::StrCat(dir, "/node", i);
}

uint64_t NodeBase(uint64_t base, uint64_t i) { return base + 100 * i; }

// Where node i's consensus p2p and mempool gossip endpoints are reached from
// the other nodes: "{i}" in a pattern becomes the node index.
struct PeerHosts {
  std::string consensus = "127.0.0.1";
  std::string mempool = "127.0.0.1";
};

std::string HostOf(const std::string& pattern, uint64_t i) {
  return absl::StrReplaceAll(pattern, {{"{i}", absl::StrCat(i)}});
}

// Keys, genesis (and for several validators the peers file) of a network of
// `validators` nodes, created on first use and checked on later ones
// (network.h; the peers file is rewritten on every start). A new genesis
// gets the replay window `replay_window` (0: ChainRules' default).
absl::Status EnsureNetwork(const std::string& dir, uint64_t validators,
                           uint64_t candidates, uint64_t base,
                           const PeerHosts& hosts, uint64_t replay_window,
                           const std::string& crypto_suite,
                           const std::optional<Consortium>& consortium) {
  std::error_code ec;
  for (uint64_t i = 0; i < validators + candidates; ++i) {
    fs::create_directories(NodeDir(dir, i) + "/data", ec);
  }
  fs::create_directories(dir + "/logs", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  NetworkLayout l;
  l.validators = validators;
  l.candidates = candidates;
  l.chain_id = "localnet";
  l.replay_window = replay_window;
  l.crypto_suite = crypto_suite;
  l.consortium = consortium;
  l.node_key_path = [&](uint64_t i) {
    return NodeDir(dir, i) + "/node_key.json";
  };
  l.p2p_key_path = [&](uint64_t i) {
    return NodeDir(dir, i) + "/p2p_key.json";
  };
  l.client_key_path = dir + "/client_key.json";
  l.genesis_path = dir + "/genesis.json";
  l.peers_path = dir + "/peers.json";
  l.validator_name = [](uint64_t i) { return absl::StrCat("validator", i); };
  l.peer_id = [](uint64_t i) { return absl::StrCat("node", i); };
  l.consensus_endpoint = [&](uint64_t i) {
    return absl::StrCat("tcp://", HostOf(hosts.consensus, i), ":",
                        NodeBase(base, i) + 4);
  };
  l.mempool_endpoint = [&](uint64_t i) {
    return absl::StrCat("tcp://", HostOf(hosts.mempool, i), ":",
                        NodeBase(base, i) + kMempoolP2pOffset);
  };
  return MakeNetworkFiles(l);
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

// --init-only: write DIR's network (peers named by the host patterns) and
// its API keys, start nothing.
int InitLocalnet(const Args& args, const std::string& dir, uint64_t n,
                 uint64_t base, const std::string& crypto_suite,
                 const std::optional<Consortium>& consortium) {
  if (n < 1 || n > 16) {
    return Fail(absl::InvalidArgumentError("--validators must be in 1..16"));
  }
  if (base == 0 || NodeBase(base, n - 1) > 65400) {
    return Fail(absl::InvalidArgumentError("ports must be in 1..65535"));
  }
  PeerHosts hosts;
  hosts.consensus = args.Get("consensus-host", hosts.consensus);
  hosts.mempool = args.Get("mempool-host", hosts.mempool);
  if (hosts.consensus.empty() || hosts.mempool.empty()) {
    return Fail(absl::InvalidArgumentError("a peer host must not be empty"));
  }
  if (auto s =
          EnsureNetwork(dir, n, 0, base, hosts, 0, crypto_suite, consortium);
      !s.ok())
    return Fail(s);
  if (auto s = EnsureDevApiKey(dir + "/api_keys.json", dir + "/dev_api_key");
      !s.ok()) {
    return Fail(s.status());
  }
  std::printf(
      "network of %llu validator(s) in %s (genesis.json, nodeI/, "
      "client_key.json, api_keys.json, dev_api_key%s)\n",
      static_cast<unsigned long long>(n), dir.c_str(),
      n > 1 ? ", peers.json" : "");
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Localnet>> StartLocalnet(
    const LocalnetOptions& opt, const std::string& self) {
  const std::string& dir = opt.dir;
  // Validators, then candidates: every node runs; only the first n are in
  // the genesis.
  const uint64_t validators = opt.validators;
  const uint64_t n = validators + opt.candidates;
  if (validators < 1 || n > 16) {
    return absl::InvalidArgumentError(
        "--validators must be at least 1, and with --candidates at most 16");
  }
  if (opt.candidates > 0 && validators < 2) {
    return absl::InvalidArgumentError(
        "--candidates needs --validators 2 or more: a chain that starts with "
        "one validator decides alone and its validator set cannot change");
  }
  if (opt.api_port == 0 || opt.api_port + n - 1 > 65535 || opt.base_port == 0 ||
      NodeBase(opt.base_port, n - 1) > 65400) {
    return absl::InvalidArgumentError("ports must be in 1..65535");
  }
  if (n > 1 && opt.single_process) {
    return absl::InvalidArgumentError(
        "--single-process runs one validator; use --validators 1");
  }
  if (auto s = EnsureNetwork(dir, validators, opt.candidates, opt.base_port,
                             PeerHosts{}, opt.replay_window, opt.crypto_suite,
                             opt.consortium);
      !s.ok()) {
    return s;
  }
  auto net = std::unique_ptr<Localnet>(new Localnet());
  net->dir_ = dir;
  net->keys_file_ = dir + "/api_keys.json";
  net->dev_key_file_ = dir + "/dev_api_key";
  net->pid_file_ = dir + "/localnet.pid";
  if (auto s = EnsureDevApiKey(net->keys_file_, net->dev_key_file_); !s.ok()) {
    return s.status();
  }

  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  fs::path bin_dir = ec ? fs::path(self).parent_path() : exe.parent_path();
  net->bin_dir_ = bin_dir.string();
  auto bin = [&](const std::string& name) { return (bin_dir / name).string(); };

  struct Spec {
    std::string binary;
    uint64_t node;
    uint64_t metrics_port;
    std::vector<std::string> flags;
    std::string log;
  };
  std::vector<Spec> specs;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t b = NodeBase(opt.base_port, i);
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
    const uint64_t node_api = opt.api_port + i;
    net->apis_.push_back(
        HttpTarget{"127.0.0.1", static_cast<uint16_t>(node_api), ""});
    const std::vector<std::string> api_flags = {
        absl::StrCat("--api_port=", node_api),
        "--api_keys_file=" + net->keys_file_,
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
      Spec spec{binary, i, metrics_port, common, ""};
      spec.flags.insert(spec.flags.end(), own.begin(), own.end());
      spec.log = n > 1 ? absl::StrCat(dir, "/logs/node", i, "-", binary, ".log")
                       : absl::StrCat(dir, "/logs/", binary, ".log");
      specs.push_back(std::move(spec));
    };
    std::vector<std::string> storage_flags;
    if (i < opt.storage_flags.size()) storage_flags = opt.storage_flags[i];
    if (opt.single_process) {
      std::vector<std::string> own = api_flags;
      own.insert(own.end(), storage_flags.begin(), storage_flags.end());
      add("consortia-node", m + 0, own);
    } else {
      // Start order: storage, mempool, consensus, api.
      add("consortia-storage", m + 0, storage_flags);
      add("consortia-mempool", m + 1, gossip_flags);
      add("consortia-consensus", m + 2, p2p_flags);
      add("consortia-api", m + 3, api_flags);
    }
  }

  if (fs::exists(net->pid_file_)) {
    auto text = ReadFile(net->pid_file_);
    int other = text.ok() ? std::atoi(text->c_str()) : 0;
    if (other > 0 && ::kill(other, 0) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a local network (pid ", other, ") already runs from ", dir,
          "; stop it with: consortia localnet --dir ", dir, " --stop"));
    }
  }
  if (auto s = WriteFileAtomic(net->pid_file_, std::to_string(::getpid()));
      !s.ok()) {
    return s;
  }
  net->owns_pid_file_ = true;

  for (const Spec& spec : specs) {
    std::vector<std::string> cmd = {bin(spec.binary)};
    cmd.insert(cmd.end(), spec.flags.begin(), spec.flags.end());
    cmd.push_back(absl::StrCat("--metrics_port=", spec.metrics_port));
    auto p = ChildProcess::Start(cmd, spec.log);
    if (!p.ok()) return p.status();  // ~Localnet stops those started
    if (opt.verbose) {
      std::printf(
          "started %-20s pid %-7d metrics http://127.0.0.1:%llu/metrics  log "
          "%s\n",
          spec.binary.c_str(), p->pid(),
          static_cast<unsigned long long>(spec.metrics_port), spec.log.c_str());
    }
    net->procs_.push_back(
        LocalnetProcess{spec.binary, spec.node, spec.log, *std::move(p), cmd});
  }

  std::vector<ChildProcess*> ptrs;
  for (auto& p : net->procs_) ptrs.push_back(&p.process);
  if (!WaitReady(net->apis_, ptrs, absl::Seconds(60))) {
    return absl::UnavailableError(absl::StrCat(
        "the node did not become ready; see the logs in ", dir, "/logs"));
  }
  return net;
}

Localnet::~Localnet() { Stop(); }

const LocalnetProcess* Localnet::FirstDead() {
  for (LocalnetProcess& p : procs_) {
    if (!p.stopped && !p.process.running()) return &p;
  }
  return nullptr;
}

void Localnet::StopNode(uint64_t i) {
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) {
    if (it->node != i || it->stopped) continue;
    it->process.Stop();
    it->stopped = true;
  }
}

absl::Status Localnet::StartNode(uint64_t i) {
  for (LocalnetProcess& p : procs_) {
    if (p.node != i || !p.stopped) continue;
    auto started = ChildProcess::Start(p.argv, p.log);
    if (!started.ok()) return started.status();
    p.process = *std::move(started);
    p.stopped = false;
  }
  return absl::OkStatus();
}

void Localnet::Stop() {
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) {
    it->process.Stop();
  }
  procs_.clear();
  if (owns_pid_file_) {
    std::error_code ignored;
    fs::remove(pid_file_, ignored);
    owns_pid_file_ = false;
  }
}

int LocalnetCommand(const std::vector<std::string>& argv,
                    const std::string& self) {
  auto args =
      Args::Parse(argv,
                  {"dir", "api-port", "base-port", "validators", "candidates",
                   "consensus-host", "mempool-host", "suite", "consortium"},
                  {"single-process", "stop", "init-only"});
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
  auto candidates = args->GetU64("candidates", 0);
  if (!candidates.ok()) return Fail(candidates.status());
  if (!api_port.ok()) return Fail(api_port.status());
  if (!base.ok()) return Fail(base.status());
  if (!validators.ok()) return Fail(validators.status());
  const uint64_t n = *validators;
  // The crypto suite of a new network; an existing one keeps its genesis's.
  std::string suite = "ed25519-sha256";
  if (auto g = LoadGenesis(dir + "/genesis.json"); g.ok()) {
    suite = g->crypto_suite;
  }
  suite = args->Get("suite", suite);
  if (auto s = GetCryptoSuite(suite); !s.ok()) return Fail(s.status());
  // --consortium FILE: the genesis's "consortium" section (docs/apps.md).
  std::optional<Consortium> consortium;
  if (args->Has("consortium")) {
    auto text = ReadFile(args->Get("consortium"));
    if (!text.ok()) return Fail(text.status());
    auto c = ParseConsortiumJson(*text, suite);
    if (!c.ok()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(args->Get("consortium"), ": ", c.status().message())));
    }
    consortium = *std::move(c);
  }
  if (args->Has("init-only")) {
    if (*candidates > 0) {
      return Fail(absl::InvalidArgumentError(
          "--candidates is for a local network; not with --init-only"));
    }
    return InitLocalnet(*args, dir, n, *base, suite, consortium);
  }
  if (args->Has("consensus-host") || args->Has("mempool-host")) {
    // The nodes started here all listen on 127.0.0.1.
    return Fail(absl::InvalidArgumentError(
        "--consensus-host and --mempool-host need --init-only"));
  }

  // Ctrl-C and SIGTERM are taken with sigwait below, not by a handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  LocalnetOptions opt;
  opt.dir = dir;
  opt.api_port = *api_port;
  opt.base_port = *base;
  opt.validators = n;
  opt.candidates = *candidates;
  opt.single_process = args->Has("single-process");
  opt.crypto_suite = suite;
  opt.consortium = consortium;
  auto started = StartLocalnet(opt, self);
  if (!started.ok()) return Fail(started.status());
  Localnet& net = **started;
  const std::string& keys_file = net.keys_file();
  const std::string& dev_key_file = net.dev_key_file();
  auto bin = [&](const char* name) { return net.bin_dir() + "/" + name; };
  std::string url = absl::StrCat("http://127.0.0.1:", *api_port);
  if (n > 1) {
    std::printf("\n%llu validators; node i serves its API on port %llu + i\n",
                static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(*api_port));
  }
  if (*candidates > 0) {
    std::printf(
        "%llu candidate node(s) after them (not in the genesis): a governance "
        "vote can make each a validator (docs/tutorials/validator.md)\n",
        static_cast<unsigned long long>(*candidates));
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
    if (const LocalnetProcess* dead = net.FirstDead(); dead != nullptr) {
      std::fprintf(stderr, "%s exited unexpectedly; see %s\n",
                   dead->binary.c_str(), dead->log.c_str());
      code = 1;
      break;
    }
  }
  std::printf("stopping...\n");
  net.Stop();
  std::printf("stopped\n");
  return code;
}

}  // namespace consortia::cli
