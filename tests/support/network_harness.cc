#include "network_harness.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "consortia/config.h"
#include "consortia/peer_net.h"
#include "consortia/tx_json.h"
#include "nlohmann/json.hpp"

namespace consortia::testing {
namespace {

using nlohmann::json;

uint16_t Port() {
  absl::StatusOr<uint16_t> p = PickFreePort();
  if (!p.ok()) std::abort();
  return *p;
}

void MustWrite(const std::string& path, const std::string& text) {
  if (!WriteFileAtomic(path, text).ok()) std::abort();
}

}  // namespace

const std::vector<std::string>& NetworkHarness::Binaries() {
  static const auto* b =
      new std::vector<std::string>{"consortia-storage", "consortia-mempool",
                                   "consortia-consensus", "consortia-api"};
  return *b;
}

void LiveNodes::Set(int node, bool live) {
  absl::MutexLock lock(&mu_);
  live_[node] = live;
}

bool LiveNodes::Live(int node) const {
  absl::MutexLock lock(&mu_);
  return live_[node];
}

int LiveNodes::Next() {
  absl::MutexLock lock(&mu_);
  const int n = static_cast<int>(live_.size());
  for (int k = 0; k < n; ++k) {
    const int i = (next_ + k) % n;
    if (live_[i]) {
      next_ = i + 1;
      return i;
    }
  }
  return -1;
}

NetworkHarness::NetworkHarness(NetworkOptions options)
    : options_(std::move(options)) {
  const int n = options_.validators + options_.candidates + options_.observers;
  genesis_.chain_id = "network-e2e";
  genesis_.genesis_time_ms = 1;
  genesis_.rules = options_.chain_rules;
  genesis_.crypto_suite = options_.crypto_suite;
  genesis_.consortium = options_.consortium;
  const CryptoSuite& suite = SuiteNamed(options_.crypto_suite);
  client_ = TestKey(9, suite);
  std::vector<NodeKey> keys;
  std::vector<CurveKeyPair> curves;
  std::vector<uint16_t> p2p_ports;
  std::vector<uint16_t> mempool_ports;  // options_.mempool_gossip
  for (int i = 0; i < n; ++i) {
    KeyPair kp = suite.GenerateKey();
    keys.push_back(
        NodeKey{options_.crypto_suite, kp.public_key, kp.secret_key});
    if (i < options_.validators) {
      genesis_.validators.push_back(
          Validator{absl::StrCat("validator", i), kp.public_key, 1});
    }
    absl::StatusOr<CurveKeyPair> curve = GenerateCurveKeyPair();
    if (!curve.ok()) std::abort();
    curves.push_back(*curve);
    p2p_ports.push_back(Port());
    if (options_.mempool_gossip) mempool_ports.push_back(Port());
  }
  const std::string genesis_path = root_.path() + "/genesis.json";
  MustWrite(genesis_path, GenesisToJson(genesis_));
  if (options_.proxied) proxy_ = std::make_unique<FaultProxy>();
  node_keys_ = keys;
  for (int j = 0; j < n; ++j) {
    peers_.push_back({absl::StrCat("node", j),
                      absl::StrCat("tcp://127.0.0.1:", p2p_ports[j]),
                      curves[j].public_key});
  }
  if (options_.tester_peer) {
    absl::StatusOr<CurveKeyPair> k = GenerateCurveKeyPair();
    if (!k.ok()) std::abort();
    tester_key_ = *k;
    tester_ = {"tester", absl::StrCat("tcp://127.0.0.1:", Port()),
               k->public_key};
  }

  for (int i = 0; i < n; ++i) {
    auto node = std::make_unique<Node>();
    node->dir = absl::StrCat(root_.path(), "/node", i);
    std::filesystem::create_directories(node->dir + "/data");
    MustWrite(node->dir + "/node_key.json", NodeKeyToJson(keys[i]));
    MustWrite(node->dir + "/p2p_key.json", CurveKeyPairToJson(curves[i]));
    // This node's view of the others: direct, or through its own proxy
    // link to each of them.
    json peers = json::array();
    for (int j = 0; j < n; ++j) {
      uint16_t port = p2p_ports[j];
      if (proxy_ != nullptr && j != i) {
        int link = 0;
        absl::StatusOr<uint16_t> p = proxy_->AddLink(p2p_ports[j], &link);
        if (!p.ok()) std::abort();
        port = *p;
        links_[{i, j}] = link;
      }
      peers.push_back({{"id", absl::StrCat("node", j)},
                       {"endpoint", absl::StrCat("tcp://127.0.0.1:", port)},
                       {"public_key", CurveKeyToZ85(curves[j].public_key)}});
      if (j >= options_.validators + options_.candidates) {
        peers.back()["role"] = "observer";
      }
      if (options_.mempool_gossip) {
        uint16_t mport = mempool_ports[j];
        if (proxy_ != nullptr && j != i) {
          int link = 0;
          absl::StatusOr<uint16_t> p = proxy_->AddLink(mempool_ports[j], &link);
          if (!p.ok()) std::abort();
          mport = *p;
          mempool_links_[{i, j}] = link;
        }
        peers.back()["mempool_endpoint"] =
            absl::StrCat("tcp://127.0.0.1:", mport);
      }
    }
    if (options_.tester_peer) {
      peers.push_back({{"id", tester_.id},
                       {"endpoint", tester_.endpoint},
                       {"public_key", CurveKeyToZ85(tester_.public_key)}});
    }
    MustWrite(node->dir + "/peers.json", peers.dump());
    node->api = HttpTarget{"127.0.0.1", Port(), ""};
    node->common_flags = {
        absl::StrCat("--node_name=node", i),
        "--genesis=" + genesis_path,
        "--node_key=" + node->dir + "/node_key.json",
        "--data_dir=" + node->dir + "/data",
        absl::StrCat("--mempool_endpoint=tcp://127.0.0.1:", Port()),
        absl::StrCat("--storage_endpoint=tcp://127.0.0.1:", Port()),
        absl::StrCat("--storage_events=tcp://127.0.0.1:", Port()),
    };
    node->own_flags["consortia-api"] = {
        absl::StrCat("--api_port=", node->api.port)};
    node->own_flags["consortia-consensus"] = {
        absl::StrCat("--consensus_p2p_endpoint=tcp://127.0.0.1:", p2p_ports[i]),
        "--consensus_p2p_key=" + node->dir + "/p2p_key.json",
        "--consensus_peers=" + node->dir + "/peers.json",
        "--consensus_timeout_propose_ms=1000",
        "--consensus_timeout_prevote_ms=300",
        "--consensus_timeout_precommit_ms=300",
        "--consensus_timeout_delta_ms=200",
        "--consensus_timeout_commit_ms=100",
        "--consensus_gossip_interval_ms=200",
    };
    if (options_.mempool_gossip) {
      node->own_flags["consortia-mempool"] = {
          absl::StrCat("--mempool_p2p_endpoint=tcp://127.0.0.1:",
                       mempool_ports[i]),
          "--mempool_p2p_key=" + node->dir + "/p2p_key.json",
          "--mempool_peers=" + node->dir + "/peers.json",
      };
    }
    for (const std::string& b : Binaries()) {
      node->ops[b] = HttpTarget{"127.0.0.1", Port(), ""};
      std::vector<std::string>& own = node->own_flags[b];
      own.push_back(absl::StrCat("--metrics_port=", node->ops[b].port));
      auto extra = options_.extra_flags.find(b);
      if (extra != options_.extra_flags.end()) {
        own.insert(own.end(), extra->second.begin(), extra->second.end());
      }
    }
    nodes_.push_back(std::move(node));
  }
}

NetworkHarness::~NetworkHarness() {
  for (int i = 0; i < size(); ++i) StopNode(i);
  proxy_.reset();
}

absl::Status NetworkHarness::StartProcess(int node, const std::string& binary) {
  Node& n = *nodes_[node];
  std::string executable = binary;
  if (auto it = options_.replace_binary.find(node);
      it != options_.replace_binary.end()) {
    if (auto b = it->second.find(binary); b != it->second.end()) {
      executable = b->second;
    }
  }
  std::vector<std::string> argv = {BinDir() + "/" + executable};
  argv.insert(argv.end(), n.common_flags.begin(), n.common_flags.end());
  const std::vector<std::string>& own = n.own_flags[binary];
  argv.insert(argv.end(), own.begin(), own.end());
  absl::StatusOr<ChildProcess> p =
      ChildProcess::Start(argv, n.dir + "/" + binary + ".log");
  if (!p.ok()) return p.status();
  n.procs.erase(binary);
  n.procs.emplace(binary, *std::move(p));
  return absl::OkStatus();
}

absl::Status NetworkHarness::WaitReady(int node, absl::Duration timeout) {
  const bool ready = WaitUntil(
      [&] {
        auto r =
            HttpCall(api(node), "GET", "/readyz", "", "", absl::Seconds(2));
        return r.ok() && r->status == 200;
      },
      timeout);
  if (ready) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat(
      "node", node, " not ready after ", absl::FormatDuration(timeout), ":\n",
      LogTail(node, "consortia-consensus")));
}

absl::Status NetworkHarness::StartNode(int node, absl::Duration timeout) {
  for (const std::string& b : Binaries()) {
    if (absl::Status s = StartProcess(node, b); !s.ok()) return s;
  }
  return WaitReady(node, timeout);
}

absl::Status NetworkHarness::StartAll(absl::Duration timeout) {
  for (int i = 0; i < size(); ++i) {
    for (const std::string& b : Binaries()) {
      if (absl::Status s = StartProcess(i, b); !s.ok()) return s;
    }
  }
  for (int i = 0; i < size(); ++i) {
    if (absl::Status s = WaitReady(i, timeout); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void NetworkHarness::Kill(int node, const std::string& binary) {
  auto it = nodes_[node]->procs.find(binary);
  if (it == nodes_[node]->procs.end()) return;
  it->second.Signal(SIGKILL);
  (void)it->second.Wait(absl::Seconds(10));
  nodes_[node]->procs.erase(it);
}

void NetworkHarness::Pause(int node, const std::string& binary) {
  auto it = nodes_[node]->procs.find(binary);
  if (it != nodes_[node]->procs.end()) it->second.Signal(SIGSTOP);
}

void NetworkHarness::Resume(int node, const std::string& binary) {
  auto it = nodes_[node]->procs.find(binary);
  if (it != nodes_[node]->procs.end()) it->second.Signal(SIGCONT);
}

void NetworkHarness::KillNode(int node) {
  for (const std::string& b : Binaries()) Kill(node, b);
}

void NetworkHarness::StopNode(int node) {
  const std::vector<std::string>& b = Binaries();
  for (auto it = b.rbegin(); it != b.rend(); ++it) {
    auto p = nodes_[node]->procs.find(*it);
    if (p == nodes_[node]->procs.end()) continue;
    p->second.Stop(absl::Seconds(20));
    nodes_[node]->procs.erase(p);
  }
}

bool NetworkHarness::Running(int node, const std::string& binary) const {
  auto it = nodes_[node]->procs.find(binary);
  return it != nodes_[node]->procs.end() &&
         const_cast<ChildProcess&>(it->second).running();
}

void NetworkHarness::SetLinkCut(int from, int to, bool cut) {
  if (proxy_ == nullptr) std::abort();  // needs NetworkOptions::proxied
  auto it = links_.find({from, to});
  if (it != links_.end()) proxy_->SetCut(it->second, cut);
  it = mempool_links_.find({from, to});
  if (it != mempool_links_.end()) proxy_->SetCut(it->second, cut);
}

void NetworkHarness::Isolate(int node) {
  for (int j = 0; j < size(); ++j) {
    if (j == node) continue;
    SetLinkCut(node, j, true);
    SetLinkCut(j, node, true);
  }
}

void NetworkHarness::HealAll() {
  if (proxy_ == nullptr) std::abort();
  for (const auto& [pair, link] : links_) proxy_->SetCut(link, false);
  for (const auto& [pair, link] : mempool_links_) proxy_->SetCut(link, false);
}

uint64_t NetworkHarness::Height(int node) const {
  auto r = HttpCall(api(node), "GET", "/v1/blocks/latest");
  if (!r.ok() || r->status != 200) return 0;
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("header")) return 0;
  return j["header"].value("height", uint64_t{0});
}

std::string NetworkHarness::BlockHashAt(int node, uint64_t height) const {
  auto r = HttpCall(api(node), "GET", absl::StrCat("/v1/blocks/", height));
  if (!r.ok() || r->status != 200) return "";
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return "";
  return j.value("block_hash", std::string());
}

bool NetworkHarness::Committed(int node, const Hash32& tx_hash) const {
  auto r = HttpCall(api(node), "GET", "/v1/txs/" + ToHex(tx_hash));
  return r.ok() && r->status == 200;
}

std::optional<double> NetworkHarness::Metric(int node,
                                             const std::string& binary,
                                             const std::string& sample) const {
  auto r = HttpCall(ops(node, binary), "GET", "/metrics");
  if (!r.ok() || r->status != 200) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::StartsWith(line, sample)) {
      continue;
    }
    const size_t space = line.rfind(' ');
    double v = 0;
    if (space != absl::string_view::npos &&
        absl::SimpleAtod(line.substr(space + 1), &v)) {
      return v;
    }
  }
  return std::nullopt;
}

std::optional<double> NetworkHarness::MetricSum(
    int node, const std::string& binary, const std::string& name,
    const std::string& label) const {
  auto r = HttpCall(ops(node, binary), "GET", "/metrics");
  if (!r.ok() || r->status != 200) return std::nullopt;
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::StartsWith(line, name)) {
      continue;
    }
    const absl::string_view rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') continue;
    if (!label.empty() && !absl::StrContains(rest, label)) continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (space != absl::string_view::npos &&
        absl::SimpleAtod(line.substr(space + 1), &v)) {
      sum += v;
    }
  }
  return sum;
}

std::optional<uint64_t> NetworkHarness::RssBytes(
    int node, const std::string& binary) const {
  auto it = nodes_[node]->procs.find(binary);
  if (it == nodes_[node]->procs.end()) return std::nullopt;
  std::ifstream status(absl::StrCat("/proc/", it->second.pid(), "/status"));
  std::string line;
  while (std::getline(status, line)) {
    uint64_t kb = 0;
    if (absl::StartsWith(line, "VmRSS:") &&
        absl::SimpleAtoi(
            absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(6), "kB")),
            &kb)) {
      return kb * 1024;
    }
  }
  return std::nullopt;
}

Transaction NetworkHarness::MakeTx(int node, uint64_t nonce) const {
  return SignedTx(client_, genesis_.chain_id, nonce, Height(node) + 1000, "kv",
                  "set", {absl::StrCat("k", nonce), "v"}, suite());
}

absl::StatusOr<Hash32> NetworkHarness::SubmitTx(int node,
                                                const Transaction& tx) const {
  auto r = HttpCall(api(node), "POST", "/v1/txs", TxToJson(tx));
  if (!r.ok()) return r.status();
  if (r->status != 202) {
    return absl::UnavailableError(
        absl::StrCat("HTTP ", r->status, ": ", r->body));
  }
  return TxHash(suite(), tx);
}

std::vector<Hash32> NetworkHarness::Submit(int node, int count,
                                           uint64_t nonce_base) const {
  std::vector<Hash32> out;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Hash32> h = SubmitTx(node, MakeTx(node, nonce_base + i));
    if (h.ok()) out.push_back(*h);
  }
  return out;
}

::testing::AssertionResult NetworkHarness::SameHashes(
    uint64_t up_to, const std::vector<int>& nodes) const {
  for (uint64_t h = 1; h <= up_to; ++h) {
    const std::string first = BlockHashAt(nodes[0], h);
    if (first.empty()) {
      return ::testing::AssertionFailure()
             << "node" << nodes[0] << " lacks height " << h;
    }
    for (int i : nodes) {
      const std::string other = BlockHashAt(i, h);
      if (other != first) {
        return ::testing::AssertionFailure()
               << "height " << h << ": node" << nodes[0] << " has " << first
               << ", node" << i << " has "
               << (other.empty() ? "nothing" : other);
      }
    }
  }
  return ::testing::AssertionSuccess();
}

bool NetworkHarness::WaitUntil(const std::function<bool()>& cond,
                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

std::string NetworkHarness::LogTail(int node, const std::string& binary,
                                    size_t bytes) const {
  absl::StatusOr<std::string> text =
      ReadFile(nodes_[node]->dir + "/" + binary + ".log");
  if (!text.ok()) return "";
  return text->size() > bytes ? text->substr(text->size() - bytes) : *text;
}

}  // namespace consortia::testing
