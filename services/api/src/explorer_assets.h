// The explorer's static files (services/api/explorer/), embedded in the api
// binary at build time (cmake/EmbedFiles.cmake writes the definition of
// ExplorerAssets()); src/explorer.cc serves them under /explorer/.
#ifndef CONSORTIA_API_EXPLORER_ASSETS_H_
#define CONSORTIA_API_EXPLORER_ASSETS_H_

#include <span>
#include <string_view>

namespace consortia::api {

struct EmbeddedFile {
  std::string_view name;  // the file name, e.g. "app.js"
  std::string_view data;  // its bytes
};

// Every file of services/api/explorer/. Thread-safe (constant).
std::span<const EmbeddedFile> ExplorerAssets();

}  // namespace consortia::api

#endif  // CONSORTIA_API_EXPLORER_ASSETS_H_
