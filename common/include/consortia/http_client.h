// A small blocking HTTP/1.1 client for the CLI and the tests: one request per
// connection, to 127.0.0.1 or any host:port. Not for the services' hot paths.
#ifndef CONSORTIA_COMMON_HTTP_CLIENT_H_
#define CONSORTIA_COMMON_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace consortia {

struct HttpResult {
  int status = 0;
  std::string content_type;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct HttpTarget {
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // "" or "/prefix"
  // Header fields sent with every request to this target (the CLI's
  // {"Authorization", "Bearer <api key>"}).
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Parses "http://host:port[/path]". InvalidArgument otherwise (https is not
// spoken by this client).
absl::StatusOr<HttpTarget> ParseHttpUrl(const std::string& url);

// Sends one request and reads the whole response. Unavailable if the server
// cannot be reached, DeadlineExceeded after `timeout`. Any HTTP status,
// including 4xx and 5xx, is a successful call.
absl::StatusOr<HttpResult> HttpCall(
    const HttpTarget& target, const std::string& method,
    const std::string& path, const std::string& body = "",
    const std::string& content_type = "application/json",
    absl::Duration timeout = absl::Seconds(10));

}  // namespace consortia

#endif  // CONSORTIA_COMMON_HTTP_CLIENT_H_
