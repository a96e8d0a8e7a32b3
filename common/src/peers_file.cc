#include "consortia/peers_file.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/config.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

absl::Status BadField(size_t entry, const char* field, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("peers file entry ", entry, ": \"", field, "\" ", why));
}

}  // namespace

absl::StatusOr<std::vector<PeersFileEntry>> ParsePeersFile(
    std::string_view text) {
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
  std::vector<PeersFileEntry> out;
  std::set<std::string> ids;
  std::set<CurveKey> keys;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& e = doc[i];
    if (!e.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("peers file entry ", i, " is not an object"));
    }
    auto string_field = [&](const char* name,
                            std::string* value) -> absl::Status {
      auto it = e.find(name);
      if (it == e.end() || !it->is_string() || it->get<std::string>().empty()) {
        return BadField(i, name, "must be a non-empty string");
      }
      *value = it->get<std::string>();
      return absl::OkStatus();
    };
    PeersFileEntry entry;
    std::string key_text;
    for (auto [name, value] :
         {std::pair<const char*, std::string*>{"id", &entry.id},
          {"endpoint", &entry.endpoint},
          {"public_key", &key_text}}) {
      if (absl::Status s = string_field(name, value); !s.ok()) return s;
    }
    if (e.contains("mempool_endpoint")) {
      if (absl::Status s =
              string_field("mempool_endpoint", &entry.mempool_endpoint);
          !s.ok()) {
        return s;
      }
    }
    if (e.contains("role")) {
      std::string role;
      if (absl::Status s = string_field("role", &role); !s.ok()) return s;
      if (role != "validator" && role != "observer") {
        return BadField(i, "role", "must be \"validator\" or \"observer\"");
      }
      entry.observer = role == "observer";
    }
    absl::StatusOr<CurveKey> key = CurveKeyFromZ85(key_text);
    if (!key.ok()) {
      return BadField(i, "public_key", std::string(key.status().message()));
    }
    entry.public_key = *key;
    if (!ids.insert(entry.id).second || !keys.insert(*key).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peers file entry ", i, ": id or public_key appears twice"));
    }
    out.push_back(std::move(entry));
  }
  return out;
}

absl::StatusOr<std::vector<PeersFileEntry>> LoadPeersFileEntries(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<PeersFileEntry>> entries = ParsePeersFile(*text);
  if (!entries.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", entries.status().message()));
  }
  return entries;
}

std::string PeersFileToJson(const std::vector<PeersFileEntry>& entries) {
  nlohmann::json doc = nlohmann::json::array();
  for (const PeersFileEntry& p : entries) {
    nlohmann::json e = {{"id", p.id},
                        {"endpoint", p.endpoint},
                        {"public_key", CurveKeyToZ85(p.public_key)}};
    if (!p.mempool_endpoint.empty()) e["mempool_endpoint"] = p.mempool_endpoint;
    if (p.observer) e["role"] = "observer";
    doc.push_back(std::move(e));
  }
  return doc.dump(2);
}

std::vector<PeerInfo> ConsensusPeersOf(
    const std::vector<PeersFileEntry>& entries) {
  std::vector<PeerInfo> out;
  for (const PeersFileEntry& e : entries) {
    out.push_back(PeerInfo{e.id, e.endpoint, e.public_key});
  }
  return out;
}

std::vector<PeerInfo> MempoolPeersOf(
    const std::vector<PeersFileEntry>& entries) {
  std::vector<PeerInfo> out;
  for (const PeersFileEntry& e : entries) {
    if (e.mempool_endpoint.empty()) continue;
    out.push_back(PeerInfo{e.id, e.mempool_endpoint, e.public_key});
  }
  return out;
}

std::vector<AllowedKey> AllowListOf(
    const std::vector<PeersFileEntry>& entries) {
  std::vector<AllowedKey> out;
  for (const PeersFileEntry& e : entries) {
    out.push_back(AllowedKey{e.id, e.public_key});
  }
  return out;
}

}  // namespace consortia
