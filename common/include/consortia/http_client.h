// A small blocking HTTP/1.1 client for the CLI and the tests: one request per
// connection, to 127.0.0.1 or any host:port, over TCP or TLS (https). Not for
// the services' hot paths.
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
  // https: SHA-256 of the server's certificate (DER), lower-case hex.
  std::string peer_cert_sha256;
};

struct HttpTarget {
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // "" or "/prefix"
  // Header fields sent with every request to this target (the CLI's
  // {"Authorization", "Bearer <api key>"}).
  std::vector<std::pair<std::string, std::string>> headers = {};
  // https: TLS 1.2 or later; the server's certificate must chain to a
  // trusted CA and name `host` (a DNS name or IP address in its subject
  // alternative names). Trusted are the system's CAs, or, when tls_ca_file
  // is set, only the CA certificates of that PEM file.
  bool tls = false;
  std::string tls_ca_file = {};
};

// Parses "http://host[:port][/path]" (port 80 by default) and
// "https://host[:port][/path]" (tls, port 443 by default). InvalidArgument
// otherwise.
absl::StatusOr<HttpTarget> ParseHttpUrl(const std::string& url);

// Sends one request and reads the whole response. Unavailable if the server
// cannot be reached or, with tls, the TLS handshake fails (the message says
// why the server's certificate was refused: "certificate verify failed:
// ..."); InvalidArgument if tls_ca_file cannot be loaded; DeadlineExceeded
// after `timeout`. Any HTTP status, including 4xx and 5xx, is a successful
// call.
absl::StatusOr<HttpResult> HttpCall(
    const HttpTarget& target, const std::string& method,
    const std::string& path, const std::string& body = "",
    const std::string& content_type = "application/json",
    absl::Duration timeout = absl::Seconds(10));

}  // namespace consortia

#endif  // CONSORTIA_COMMON_HTTP_CLIENT_H_
