// What every CLI command that talks to an api shares: where the api is, its
// key and CA, a GET of JSON, and how a failure is reported.
#ifndef CONSORTIA_CLI_API_ACCESS_H_
#define CONSORTIA_CLI_API_ACCESS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "args.h"
#include "consortia/http_client.h"
#include "nlohmann/json.hpp"

namespace consortia::cli {

// Prints "consortia: <message>" to stderr; exit status 2 for
// InvalidArgument (a usage error), else 1.
int Fail(const absl::Status& s);

// --api, else $CONSORTIA_API, else http://127.0.0.1:26657.
std::string ApiUrl(const Args& args);

// The api named by --api (ApiUrl), with the API key of --api-key, or else of
// $CONSORTIA_API_KEY, as `Authorization: Bearer`. An https:// api is checked
// against the system's CAs, or only against those of --tls-ca-file, or else
// of $CONSORTIA_TLS_CA_FILE.
absl::StatusOr<HttpTarget> ApiTarget(const Args& args);

// What to add to an error from the api that refused the key.
std::string KeyHint(int status);

// GET path on the api; the parsed JSON body for a 200, NotFound with the
// problem's detail for a 404, else an error that carries the detail.
absl::StatusOr<nlohmann::json> GetJson(const HttpTarget& api,
                                       const std::string& path);

// Percent-encodes everything but RFC 3986's unreserved characters, so that
// any app name or key survives as one path segment.
std::string PathSegment(std::string_view s);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_API_ACCESS_H_
