// `consortia localnet`: a validator node on 127.0.0.1 from the binaries next
// to this one. First use creates DIR/genesis.json, DIR/node0/node_key.json and
// DIR/client_key.json; later uses reuse them and the data in DIR/node0/data.
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
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/types.h"

namespace consortia::cli {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "consortia localnet: %s\n",
               std::string(s.message()).c_str());
  return 1;
}

absl::Status EnsureKey(const std::string& path) {
  if (fs::exists(path)) return LoadNodeKey(path).status();
  KeyPair kp = Ed25519Sha256().GenerateKey();
  return WriteFileAtomic(
      path,
      NodeKeyToJson(NodeKey{"ed25519-sha256", kp.public_key, kp.secret_key}));
}

absl::Status EnsureNetwork(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir + "/node0/data", ec);
  fs::create_directories(dir + "/logs", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  if (auto s = EnsureKey(dir + "/node0/node_key.json"); !s.ok()) return s;
  if (auto s = EnsureKey(dir + "/client_key.json"); !s.ok()) return s;
  std::string genesis_path = dir + "/genesis.json";
  if (fs::exists(genesis_path)) {
    auto text = ReadFile(genesis_path);
    if (!text.ok()) return text.status();
    return ParseGenesisJson(*text).status();
  }
  auto key = LoadNodeKey(dir + "/node0/node_key.json");
  if (!key.ok()) return key.status();
  Genesis g;
  g.chain_id = "localnet";
  g.genesis_time_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  g.validators.push_back(Validator{"validator0", key->public_key, 1});
  return WriteFileAtomic(genesis_path, GenesisToJson(g));
}

bool WaitReady(const HttpTarget& api, const std::vector<ChildProcess*>& procs,
               absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (ChildProcess* p : procs) {
      if (!p->running()) return false;
    }
    auto res = HttpCall(api, "GET", "/readyz", "", "", absl::Seconds(2));
    if (res.ok() && res->status == 200) return true;
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
  auto args = Args::Parse(argv, {"dir", "api-port", "base-port"},
                          {"single-process", "stop"});
  if (!args.ok()) return Fail(args.status());
  std::string dir = fs::absolute(args->Get("dir", "localnet")).string();
  std::string pid_file = dir + "/localnet.pid";
  if (args->Has("stop")) return StopLocalnet(pid_file);
  auto api_port = args->GetU64("api-port", 26657);
  auto base = args->GetU64("base-port", 26600);
  if (!api_port.ok()) return Fail(api_port.status());
  if (!base.ok()) return Fail(base.status());
  if (*api_port == 0 || *api_port > 65535 || *base == 0 || *base > 65400) {
    return Fail(absl::InvalidArgumentError("ports must be in 1..65535"));
  }
  if (auto s = EnsureNetwork(dir); !s.ok()) return Fail(s);

  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  fs::path bin_dir = ec ? fs::path(self).parent_path() : exe.parent_path();
  auto bin = [&](const char* name) { return (bin_dir / name).string(); };

  std::vector<std::string> common = {
      "--node_name=node0",
      "--genesis=" + dir + "/genesis.json",
      "--node_key=" + dir + "/node0/node_key.json",
      "--data_dir=" + dir + "/node0/data",
      absl::StrCat("--mempool_endpoint=tcp://127.0.0.1:", *base + 1),
      absl::StrCat("--storage_endpoint=tcp://127.0.0.1:", *base + 2),
      absl::StrCat("--storage_events=tcp://127.0.0.1:", *base + 3),
  };
  std::string api_flag = absl::StrCat("--api_port=", *api_port);
  struct Spec {
    const char* binary;
    uint64_t metrics_port;
  };
  std::vector<Spec> specs;
  if (args->Has("single-process")) {
    specs = {{"consortia-node", *base + 60}};
  } else {
    // Start order: storage, mempool, consensus, api.
    specs = {{"consortia-storage", *base + 60},
             {"consortia-mempool", *base + 61},
             {"consortia-consensus", *base + 62},
             {"consortia-api", *base + 63}};
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
    std::vector<std::string> cmd = {bin(spec.binary)};
    cmd.insert(cmd.end(), common.begin(), common.end());
    cmd.push_back(absl::StrCat("--metrics_port=", spec.metrics_port));
    std::string binary = spec.binary;
    if (binary == "consortia-api" || binary == "consortia-node") {
      cmd.push_back(api_flag);
    }
    std::string log = absl::StrCat(dir, "/logs/", spec.binary, ".log");
    auto p = ChildProcess::Start(cmd, log);
    if (!p.ok()) return Fail(p.status());
    std::printf(
        "started %-20s pid %-7d metrics http://127.0.0.1:%llu/metrics  log "
        "%s\n",
        spec.binary, p->pid(),
        static_cast<unsigned long long>(spec.metrics_port), log.c_str());
    procs.push_back(*std::move(p));
  }
  auto stop_all = [&] {
    for (auto it = procs.rbegin(); it != procs.rend(); ++it) it->Stop();
    std::error_code ignored;
    fs::remove(pid_file, ignored);
  };

  HttpTarget api{"127.0.0.1", static_cast<uint16_t>(*api_port), ""};
  std::vector<ChildProcess*> ptrs;
  for (auto& p : procs) ptrs.push_back(&p);
  if (!WaitReady(api, ptrs, absl::Seconds(60))) {
    stop_all();
    return Fail(absl::UnavailableError(absl::StrCat(
        "the node did not become ready; see the logs in ", dir, "/logs")));
  }
  std::string url = absl::StrCat("http://127.0.0.1:", *api_port);
  std::printf(
      "\nConsortia local network is ready.\n"
      "  API:     %s\n"
      "  Genesis: %s/genesis.json\n\n"
      "Try it (in another terminal):\n"
      "  %s submit --api %s --key %s/client_key.json --app kv --method set "
      "--wait hello world\n"
      "  curl %s/v1/state/kv/hello\n"
      "  curl %s/v1/blocks/latest\n"
      "  %s verify --api %s --genesis %s/genesis.json <tx_hash>\n\n"
      "Ctrl-C stops every process.\n",
      url.c_str(), dir.c_str(), bin("consortia").c_str(), url.c_str(),
      dir.c_str(), url.c_str(), url.c_str(), bin("consortia").c_str(),
      url.c_str(), dir.c_str());
  std::fflush(stdout);

  int code = 0;
  while (true) {
    timespec tick{0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    bool died = false;
    for (size_t i = 0; i < procs.size(); ++i) {
      if (!procs[i].running()) {
        std::fprintf(stderr, "%s exited unexpectedly; see %s/logs/%s.log\n",
                     specs[i].binary, dir.c_str(), specs[i].binary);
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
