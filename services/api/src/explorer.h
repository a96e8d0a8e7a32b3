// The explorer page (GET /explorer and its files under /explorer/...): the
// static files embedded in the binary, answered with a strict
// Content-Security-Policy. docs/api.md ("The explorer") has the guide.
#ifndef CONSORTIA_API_EXPLORER_H_
#define CONSORTIA_API_EXPLORER_H_

#include <optional>
#include <string_view>

#include "consortia/http_server.h"

namespace consortia::api {

// The policy every explorer answer carries: its own scripts, styles and
// fetches only (no inline script or style, no eval, no other origin), and it
// may not be framed.
inline constexpr std::string_view kExplorerCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// The answer for the explorer file `name` ("" and "index.html" are the
// page): 200 with its content type and the security headers, or nullopt when
// there is no such file.
std::optional<HttpResponse> ExplorerFile(std::string_view name);

}  // namespace consortia::api

#endif  // CONSORTIA_API_EXPLORER_H_
