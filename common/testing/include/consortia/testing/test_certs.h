// Throwaway X.509 certificates for the TLS tests: a CA made on the spot and
// server certificates it signs, as PEM text. Part of the test-only library
// consortia_test_certs (common/testing/README.md). Never for production: the
// keys live in memory and in the test's files only.
#ifndef CONSORTIA_COMMON_TESTING_TEST_CERTS_H_
#define CONSORTIA_COMMON_TESTING_TEST_CERTS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace consortia::testing {

// A server certificate and its key (PEM), with the SHA-256 of the
// certificate's DER encoding (lower-case hex, as HttpResult's
// peer_cert_sha256 gives it).
struct TestCert {
  std::string cert_pem;
  std::string key_pem;
  std::string sha256;
};

// A self-signed CA (P-256 key, valid from an hour ago for a day). Not
// thread-safe.
class TestCertificateAuthority {
 public:
  explicit TestCertificateAuthority(const std::string& common_name);
  ~TestCertificateAuthority();
  TestCertificateAuthority(const TestCertificateAuthority&) = delete;
  TestCertificateAuthority& operator=(const TestCertificateAuthority&) = delete;

  // The CA's certificate (what a client trusts).
  const std::string& cert_pem() const { return cert_pem_; }
  // A server certificate for the subject alternative names `names`
  // (OpenSSL's syntax; by default DNS name localhost and IP 127.0.0.1),
  // with this serial number, signed by this CA.
  TestCert Issue(const std::string& common_name, uint64_t serial,
                 const std::string& names = "DNS:localhost,IP:127.0.0.1") const;

 private:
  struct Keys;
  std::unique_ptr<Keys> keys_;
  std::string cert_pem_;
};

// Writes `content` to `path` (replacing it: write + rename).
absl::Status WriteTestFile(const std::string& path, const std::string& content);

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTING_TEST_CERTS_H_
