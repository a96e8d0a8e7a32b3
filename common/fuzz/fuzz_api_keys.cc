// libFuzzer target for the api key file parser (consortia/api_keys.h): a
// file that parses must survive ApiKeyFileToJson -> ParseApiKeyFile
// unchanged; nothing may crash or throw.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "consortia/api_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ApiKeyFile> file = ParseApiKeyFile(text);
  // The token parser sees the same bytes (a client's bearer token).
  std::optional<std::string_view> id = ApiKeyIdOf(text);
  if (id.has_value() && id->empty()) std::abort();
  if (!file.ok()) return 0;
  const std::string again = ApiKeyFileToJson(*file);
  absl::StatusOr<ApiKeyFile> back = ParseApiKeyFile(again);
  if (!back.ok() || *back != *file) {
    std::fprintf(stderr, "key file round trip failed: %s\n", again.c_str());
    std::abort();
  }
  return 0;
}
