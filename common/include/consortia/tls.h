// TLS for the HTTP server (consortia/http_server.h): the certificate chain
// and private key a server presents, read from PEM files and re-read on
// demand (the api re-reads them on SIGHUP) without a restart.
#ifndef CONSORTIA_COMMON_TLS_H_
#define CONSORTIA_COMMON_TLS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace boost::asio::ssl {
class context;
}

namespace consortia {

// A server's TLS credentials: a certificate file (PEM: the server's
// certificate first, then any intermediate CA certificates) and its private
// key file (PEM, unencrypted). TLS 1.2 and 1.3 only. Thread-safe.
class TlsServerCredentials {
 public:
  // Reads both files. InvalidArgument naming the file when one cannot be
  // read, holds no PEM certificate or key, or when the key does not belong
  // to the certificate.
  static absl::StatusOr<std::shared_ptr<TlsServerCredentials>> Load(
      const std::string& cert_file, const std::string& key_file);

  // Reads both files again. On success, connections accepted from now on
  // use the new pair (open ones keep theirs); on failure the pair in force
  // stays and the error (as Load's) is returned.
  absl::Status Reload();

  // The context new connections are served with (never null); what
  // HttpServerOptions::tls_context returns.
  std::shared_ptr<boost::asio::ssl::context> Context() const;
  // Of the certificate in force: SHA-256 of its DER encoding (lower-case
  // hex), and "subject ..., expires ..." for logs.
  std::string Fingerprint() const;
  std::string Describe() const;

  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }

 private:
  struct Loaded;
  TlsServerCredentials(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}
  static absl::StatusOr<std::shared_ptr<const Loaded>> Read(
      const std::string& cert_file, const std::string& key_file);
  std::shared_ptr<const Loaded> Current() const;

  const std::string cert_file_;
  const std::string key_file_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Loaded> loaded_ ABSL_GUARDED_BY(mu_);
};

}  // namespace consortia

#endif  // CONSORTIA_COMMON_TLS_H_
