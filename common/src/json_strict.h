// Private to consortia_types: JSON parsing that turns nlohmann's exceptions
// into Status and rejects an object that repeats a key (nlohmann would keep
// the last value silently, so {"nonce":1,"nonce":2} could sign one thing and
// show another).
#ifndef CONSORTIA_COMMON_SRC_JSON_STRICT_H_
#define CONSORTIA_COMMON_SRC_JSON_STRICT_H_

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace consortia::json_internal {

// Parses `text` (what = "genesis", "transaction", ... for messages).
// InvalidArgument on malformed JSON or a repeated key in any object.
inline absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text,
                                                      absl::string_view what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                      nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty() &&
               duplicate.empty() && parsed.is_string()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), callback,
                              /*allow_exceptions=*/true,
                              /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": malformed JSON: ", e.what()));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", duplicate, "' appears twice"));
  }
  return j;
}

// The JSON type of a value, for error messages.
inline absl::string_view JsonTypeName(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return "unsigned integer";
  if (j.is_number_integer()) return "negative integer";
  if (j.is_number_float()) return "non-integer number";
  return j.type_name();
}

}  // namespace consortia::json_internal

#endif  // CONSORTIA_COMMON_SRC_JSON_STRICT_H_
