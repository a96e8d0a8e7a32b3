#include "explorer.h"

#include <string>

#include "explorer_assets.h"

namespace consortia::api {
namespace {

std::string_view ContentType(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() &&
           name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

}  // namespace

std::optional<HttpResponse> ExplorerFile(std::string_view name) {
  if (name.empty()) name = "index.html";
  for (const EmbeddedFile& f : ExplorerAssets()) {
    if (f.name != name) continue;
    HttpResponse r;
    r.status = 200;
    r.content_type = std::string(ContentType(name));
    r.body = std::string(f.data);
    r.headers.emplace_back("Content-Security-Policy",
                           std::string(kExplorerCsp));
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  return std::nullopt;
}

}  // namespace consortia::api
