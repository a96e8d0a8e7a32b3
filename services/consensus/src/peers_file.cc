#include "peers_file.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "nlohmann/json.hpp"

namespace consortia::consensus {

absl::StatusOr<std::vector<PeerInfo>> ParsePeersJson(std::string_view text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("peers file is not JSON: ", e.what()));
  }
  if (!doc.is_array()) {
    return absl::InvalidArgumentError("peers file must be a JSON array");
  }
  std::vector<PeerInfo> peers;
  std::set<std::string> ids;
  std::set<CurveKey> keys;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& e = doc[i];
    std::string fields[3];
    const char* names[3] = {"id", "endpoint", "public_key"};
    for (int f = 0; f < 3; ++f) {
      if (!e.is_object() || !e.contains(names[f]) || !e[names[f]].is_string() ||
          e[names[f]].get<std::string>().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("peers file entry ", i, ": \"", names[f],
                         "\" must be a non-empty string"));
      }
      fields[f] = e[names[f]].get<std::string>();
    }
    absl::StatusOr<CurveKey> key = CurveKeyFromZ85(fields[2]);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peers file entry ", i, ": public_key: ", key.status().message()));
    }
    if (!ids.insert(fields[0]).second || !keys.insert(*key).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peers file entry ", i, ": id or public_key appears twice"));
    }
    peers.push_back(PeerInfo{fields[0], fields[1], *key});
  }
  return peers;
}

absl::StatusOr<std::vector<PeerInfo>> LoadPeersFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<PeerInfo>> peers = ParsePeersJson(*text);
  if (!peers.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", peers.status().message()));
  }
  return peers;
}

std::string PeersToJson(const std::vector<PeerInfo>& peers) {
  nlohmann::json doc = nlohmann::json::array();
  for (const PeerInfo& p : peers) {
    doc.push_back({{"id", p.id},
                   {"endpoint", p.endpoint},
                   {"public_key", CurveKeyToZ85(p.public_key)}});
  }
  return doc.dump(2);
}

}  // namespace consortia::consensus
