#include "network.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "commands.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/curve_keys.h"
#include "consortia/genesis_file.h"
#include "consortia/peers_file.h"

namespace consortia::cli {
namespace {

namespace fs = std::filesystem;

absl::Status WriteFile(const NetworkLayout& l, const std::string& path,
                       std::string_view data) {
  return l.new_files_only ? WriteNewKeyFile(path, data)
                          : WriteFileAtomic(path, data);
}

absl::Status EnsureKey(const NetworkLayout& l, const std::string& path) {
  if (!l.new_files_only && fs::exists(path)) {
    absl::StatusOr<NodeKey> key = LoadNodeKey(path);
    if (!key.ok()) return key.status();
    if (key->crypto_suite != l.crypto_suite) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " holds a key of suite ", key->crypto_suite,
                       ", not ", l.crypto_suite, "; use --suite ",
                       key->crypto_suite, " or another --dir"));
    }
    return absl::OkStatus();
  }
  auto suite = GetCryptoSuite(l.crypto_suite);
  if (!suite.ok()) return suite.status();
  KeyPair kp = (*suite)->GenerateKey();
  return WriteFile(l, path,
                   NodeKeyToJson(NodeKey{std::string((*suite)->name()),
                                         kp.public_key, kp.secret_key}));
}

absl::Status EnsureCurveKey(const NetworkLayout& l, const std::string& path) {
  if (!l.new_files_only && fs::exists(path)) {
    return LoadCurveKeyPair(path).status();
  }
  auto pair = GenerateCurveKeyPair();
  if (!pair.ok()) return pair.status();
  return WriteFile(l, path, CurveKeyPairToJson(*pair));
}

}  // namespace

std::vector<std::string> NetworkFilePaths(const NetworkLayout& l) {
  std::vector<std::string> paths;
  const uint64_t nodes = l.validators + l.candidates;
  for (uint64_t i = 0; i < nodes; ++i) {
    paths.push_back(l.node_key_path(i));
    if (nodes > 1) paths.push_back(l.p2p_key_path(i));
  }
  paths.push_back(l.client_key_path);
  if (nodes > 1) paths.push_back(l.peers_path);
  paths.push_back(l.genesis_path);
  return paths;
}

absl::Status MakeNetworkFiles(const NetworkLayout& l) {
  if (auto suite = GetCryptoSuite(l.crypto_suite); !suite.ok()) {
    return suite.status();
  }
  if (l.new_files_only) {
    for (const std::string& p : NetworkFilePaths(l)) {
      if (fs::exists(p)) {
        return absl::AlreadyExistsError(absl::StrCat(
            p,
            " already exists; nothing was written (files are never "
            "overwritten: choose another directory)"));
      }
    }
  }
  const uint64_t n = l.validators;
  const uint64_t nodes = n + l.candidates;
  for (uint64_t i = 0; i < nodes; ++i) {
    if (auto s = EnsureKey(l, l.node_key_path(i)); !s.ok()) return s;
    if (nodes > 1) {
      if (auto s = EnsureCurveKey(l, l.p2p_key_path(i)); !s.ok()) return s;
    }
  }
  if (auto s = EnsureKey(l, l.client_key_path); !s.ok()) return s;
  if (nodes > 1) {
    std::vector<PeersFileEntry> peers;
    for (uint64_t i = 0; i < nodes; ++i) {
      auto pair = LoadCurveKeyPair(l.p2p_key_path(i));
      if (!pair.ok()) return pair.status();
      peers.push_back(PeersFileEntry{l.peer_id(i), l.consensus_endpoint(i),
                                     l.mempool_endpoint(i), pair->public_key,
                                     false});
    }
    if (auto s = WriteFile(l, l.peers_path, PeersFileToJson(peers)); !s.ok()) {
      return s;
    }
  }
  if (!l.new_files_only && fs::exists(l.genesis_path)) {
    auto g = LoadGenesis(l.genesis_path);
    if (!g.ok()) return g.status();
    if (g->validators.size() != n) {
      return absl::FailedPreconditionError(
          absl::StrCat(l.genesis_path, " holds a network of ",
                       g->validators.size(), " validators; use --validators ",
                       g->validators.size(), " or another --dir"));
    }
    if (l.consortium.has_value() && g->consortium != l.consortium) {
      return absl::FailedPreconditionError(absl::StrCat(
          l.genesis_path,
          " was made with another consortium (or none); a chain's consortium "
          "changes only by governance: use another --dir for a new chain"));
    }
    return absl::OkStatus();
  }
  Genesis g;
  g.chain_id = l.chain_id;
  g.crypto_suite = l.crypto_suite;
  if (l.replay_window > 0) g.rules.replay_window = l.replay_window;
  g.consortium = l.consortium;
  g.genesis_time_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  for (uint64_t i = 0; i < n; ++i) {
    auto key = LoadNodeKey(l.node_key_path(i));
    if (!key.ok()) return key.status();
    g.validators.push_back(Validator{l.validator_name(i), key->public_key, 1});
  }
  return WriteFile(l, l.genesis_path, GenesisToJson(g));
}

}  // namespace consortia::cli
