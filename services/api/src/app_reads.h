// The native apps' typed read routes (/v1/apps/...): each names one state
// record, or a page of records under a key prefix, of one app. This file maps
// a matched route and its path and query to that state read; the handler
// answers it like /v1/state (same proof) and adds the record itself, decoded
// from its JSON, as `record`.
#ifndef CONSORTIA_API_APP_READS_H_
#define CONSORTIA_API_APP_READS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "api_routes.h"

namespace consortia::api {

struct AppRead {
  std::string app;
  // One record: its key. A page: key_prefix set and key empty.
  std::string key;
  std::optional<std::string> key_prefix;
};

// True for the /v1/apps/... routes.
bool IsAppRead(RouteId id);

// The state read of an app route, from the request's path segments (without
// the leading slash: {"v1", "apps", ...}) and query. InvalidArgument with a
// sentence for the client when a segment or parameter is malformed (an
// organisation id, an invoice number, a hash or a key that no record can
// have; neither or both of ?buyer and ?seller).
absl::StatusOr<AppRead> ResolveAppRead(
    RouteId id, const std::vector<std::string_view>& parts,
    const std::map<std::string, std::string>& query);

}  // namespace consortia::api

#endif  // CONSORTIA_API_APP_READS_H_
