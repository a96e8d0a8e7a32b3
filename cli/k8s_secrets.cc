// `consortia k8s-secrets`: the keys, genesis and peers file of a network of
// N validators for the Helm chart (helm/consortia), and the Kubernetes
// manifests that carry them: a Secret NAME-keys (each validator's signing
// key and p2p key, named after its pod: NAME-I.node_key.json,
// NAME-I.p2p_key.json), a ConfigMap NAME-genesis (genesis.json, peers.json)
// and, with --api-keys FILE, a Secret NAME-api-keys (api_keys.json). The
// peers file lists each validator at the DNS name of its pod behind the
// chart's headless Service: tcp://NAME-I.NAME-peers:P2P-PORT. The chart
// reads these by name (validators.existingSecret, existingConfigMap,
// api.keys.existingSecret) and never makes keys itself. Every file is new
// (mode 0600); nothing is overwritten. Files are made by network.h, as for
// `consortia localnet`.
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "args.h"
#include "commands.h"
#include "consortia/config.h"
#include "consortia/genesis_file.h"
#include "network.h"

namespace consortia::cli {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& s, int code = 1) {
  std::fprintf(stderr, "consortia k8s-secrets: %s\n",
               std::string(s.message()).c_str());
  return code;
}

// A DNS-1123 label short enough that NAME-15.NAME-peers stays a label each.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 40) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) {
      return false;
    }
  }
  return name.front() != '-' && name.back() != '-';
}

// A YAML block scalar entry `  key: |` with `text` indented by four spaces.
std::string BlockEntry(const std::string& key, const std::string& text) {
  std::string out = absl::StrCat("  ", key, ": |\n");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) continue;
    absl::StrAppend(&out, "    ", line, "\n");
  }
  return out;
}

std::string Manifest(const std::string& kind, const std::string& name,
                     const std::string& component, const std::string& body) {
  return absl::StrCat(
      "# Made by consortia k8s-secrets; apply with kubectl apply -f in the\n"
      "# release's namespace before helm install (docs/operations.md).\n"
      "apiVersion: v1\n"
      "kind: ",
      kind,
      "\n"
      "metadata:\n"
      "  name: ",
      name,
      "\n"
      "  labels:\n"
      "    app.kubernetes.io/part-of: consortia\n"
      "    app.kubernetes.io/component: ",
      component, "\n",
      kind == "Secret" ? "type: Opaque\nstringData:\n" : "data:\n", body);
}

}  // namespace

int K8sSecretsCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv,
                          {"validators", "chain-id", "out", "suite", "name",
                           "p2p-port", "gossip-port", "api-keys"},
                          {});
  if (!args.ok()) return Fail(args.status(), 2);
  auto out = args->Require("out");
  auto chain_id = args->Require("chain-id");
  auto validators = args->GetU64("validators", 4);
  auto p2p_port = args->GetU64("p2p-port", 26604);
  auto gossip_port = args->GetU64("gossip-port", 26605);
  for (const absl::Status& s :
       {out.status(), chain_id.status(), validators.status(), p2p_port.status(),
        gossip_port.status()}) {
    if (!s.ok()) return Fail(s, 2);
  }
  const std::string name = args->Get("name", "consortia");
  if (!ValidName(name)) {
    return Fail(absl::InvalidArgumentError(
                    "--name must be the chart's full name: lower-case "
                    "letters, digits and '-', at most 40 characters"),
                2);
  }
  if (*validators < 1 || *validators > 64) {
    return Fail(absl::InvalidArgumentError("--validators must be in 1..64"), 2);
  }
  if (*p2p_port < 1 || *p2p_port > 65535 || *gossip_port < 1 ||
      *gossip_port > 65535) {
    return Fail(absl::InvalidArgumentError("ports must be in 1..65535"), 2);
  }
  std::string api_keys;
  if (args->Has("api-keys")) {
    auto text = ReadFile(args->Get("api-keys"));
    if (!text.ok()) return Fail(text.status());
    api_keys = *text;
  }
  const std::string dir = *out;
  const std::string keys_dir = dir + "/keys";
  std::error_code ec;
  fs::create_directories(keys_dir, ec);
  if (ec) {
    return Fail(absl::InternalError(
        absl::StrCat("cannot create ", keys_dir, ": ", ec.message())));
  }
  fs::permissions(keys_dir, fs::perms::owner_all, ec);

  auto pod = [&](uint64_t i) { return absl::StrCat(name, "-", i); };
  const std::string peers_host = name + "-peers";
  NetworkLayout l;
  l.validators = *validators;
  l.chain_id = *chain_id;
  l.crypto_suite = args->Get("suite", "ed25519-sha256");
  l.node_key_path = [&](uint64_t i) {
    return absl::StrCat(keys_dir, "/", pod(i), ".node_key.json");
  };
  l.p2p_key_path = [&](uint64_t i) {
    return absl::StrCat(keys_dir, "/", pod(i), ".p2p_key.json");
  };
  l.client_key_path = dir + "/client_key.json";
  l.genesis_path = dir + "/genesis.json";
  l.peers_path = dir + "/peers.json";
  l.validator_name = pod;
  l.peer_id = pod;
  l.consensus_endpoint = [&](uint64_t i) {
    return absl::StrCat("tcp://", pod(i), ".", peers_host, ":", *p2p_port);
  };
  l.mempool_endpoint = [&](uint64_t i) {
    return absl::StrCat("tcp://", pod(i), ".", peers_host, ":", *gossip_port);
  };
  const std::string secret_file = dir + "/" + name + "-keys.secret.yaml";
  const std::string config_file = dir + "/" + name + "-genesis.configmap.yaml";
  const std::string api_file = dir + "/" + name + "-api-keys.secret.yaml";
  // Never overwrite: check the manifests too before anything is written.
  for (const std::string& p : {secret_file, config_file, api_file}) {
    if (fs::exists(p)) {
      return Fail(absl::AlreadyExistsError(
          absl::StrCat(p,
                       " already exists; nothing was written (files are never "
                       "overwritten: choose another --out)")));
    }
  }
  l.new_files_only = true;
  if (auto s = MakeNetworkFiles(l); !s.ok()) return Fail(s);

  std::string secret_body;
  for (uint64_t i = 0; i < l.validators; ++i) {
    for (const std::string& path :
         {l.node_key_path(i),
          l.validators > 1 ? l.p2p_key_path(i) : std::string()}) {
      if (path.empty()) continue;
      auto text = ReadFile(path);
      if (!text.ok()) return Fail(text.status());
      secret_body += BlockEntry(fs::path(path).filename().string(), *text);
    }
  }
  std::string config_body;
  for (const std::string& path : {l.genesis_path, l.peers_path}) {
    if (path == l.peers_path && l.validators == 1) continue;
    auto text = ReadFile(path);
    if (!text.ok()) return Fail(text.status());
    config_body += BlockEntry(fs::path(path).filename().string(), *text);
  }
  if (auto s = WriteNewKeyFile(
          secret_file,
          Manifest("Secret", name + "-keys", "validator-keys", secret_body));
      !s.ok()) {
    return Fail(s);
  }
  if (auto s = WriteNewKeyFile(
          config_file,
          Manifest("ConfigMap", name + "-genesis", "genesis", config_body));
      !s.ok()) {
    return Fail(s);
  }
  if (!api_keys.empty()) {
    if (auto s = WriteNewKeyFile(
            api_file, Manifest("Secret", name + "-api-keys", "api-keys",
                               BlockEntry("api_keys.json", api_keys)));
        !s.ok()) {
      return Fail(s);
    }
  }
  std::printf(
      "%llu validators of chain %s in %s\n"
      "  keys:      %s/NAME-I.node_key.json, NAME-I.p2p_key.json (mode 0600)\n"
      "  genesis:   %s\n"
      "  client key: %s (for consortia submit; not in any manifest)\n"
      "  manifests: %s\n             %s\n%s%s"
      "Next: kubectl apply -f each manifest in the release's namespace, then\n"
      "  helm install %s helm/consortia --set validators.count=%llu\n"
      "(the release's full name must be %s; docs/operations.md, \"Install "
      "with Helm\")\n",
      static_cast<unsigned long long>(l.validators), chain_id->c_str(),
      dir.c_str(), keys_dir.c_str(), l.genesis_path.c_str(),
      l.client_key_path.c_str(), secret_file.c_str(), config_file.c_str(),
      api_keys.empty() ? "" : "             ",
      api_keys.empty() ? "" : (api_file + "\n").c_str(), name.c_str(),
      static_cast<unsigned long long>(l.validators), name.c_str());
  return 0;
}

}  // namespace consortia::cli
