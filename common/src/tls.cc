#include "consortia/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/ssl/context.hpp"

namespace consortia {

namespace ssl = boost::asio::ssl;

struct TlsServerCredentials::Loaded {
  std::shared_ptr<ssl::context> context;
  std::string fingerprint;
  std::string describe;
};

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, ": cannot be read"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last OpenSSL error as text ("" when there is none); clears the queue.
std::string OpenSslError() {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

std::string NameText(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "?";
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

std::string TimeText(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "?";
  ASN1_TIME_print(bio, t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsServerCredentials::Loaded>>
TlsServerCredentials::Read(const std::string& cert_file,
                           const std::string& key_file) {
  absl::StatusOr<std::string> cert = ReadPem(cert_file, "certificate file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(key_file, "key file");
  if (!key.ok()) return key.status();

  auto loaded = std::make_shared<Loaded>();
  loaded->context = std::make_shared<ssl::context>(ssl::context::tls_server);
  ssl::context& ctx = *loaded->context;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                  ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ERR_clear_error();
  boost::system::error_code ec;
  ctx.use_certificate_chain(boost::asio::buffer(*cert), ec);
  if (ec) {
    std::string why = OpenSslError();
    return absl::InvalidArgumentError(
        absl::StrCat("certificate file ", cert_file,
                     ": no PEM certificate chain could be read (",
                     why.empty() ? ec.message() : why, ")"));
  }
  BIO* bio = BIO_new_mem_buf(key->data(), static_cast<int>(key->size()));
  EVP_PKEY* pkey = bio == nullptr
                       ? nullptr
                       : PEM_read_bio_PrivateKey(bio, nullptr, nullptr,
                                                 const_cast<char*>(""));
  BIO_free(bio);
  if (pkey == nullptr) {
    std::string why = OpenSslError();
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", key_file, ": no unencrypted PEM private key could be read",
        why.empty() ? "" : absl::StrCat(" (", why, ")")));
  }
  const bool used = SSL_CTX_use_PrivateKey(ctx.native_handle(), pkey) == 1;
  EVP_PKEY_free(pkey);
  if (!used || SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    OpenSslError();
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", key_file,
        " does not hold the private key of the certificate in ", cert_file));
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx.native_handle());
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate file ", cert_file, ": no certificate"));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(leaf, EVP_sha256(), md, &md_len) == 1) {
    loaded->fingerprint = Hex(md, md_len);
  }
  loaded->describe = absl::StrCat(
      "subject ", NameText(X509_get_subject_name(leaf)), ", expires ",
      TimeText(X509_get0_notAfter(leaf)), ", sha256 ", loaded->fingerprint);
  return std::shared_ptr<const Loaded>(std::move(loaded));
}

absl::StatusOr<std::shared_ptr<TlsServerCredentials>>
TlsServerCredentials::Load(const std::string& cert_file,
                           const std::string& key_file) {
  absl::StatusOr<std::shared_ptr<const Loaded>> loaded =
      Read(cert_file, key_file);
  if (!loaded.ok()) return loaded.status();
  std::shared_ptr<TlsServerCredentials> creds(
      new TlsServerCredentials(cert_file, key_file));
  absl::MutexLock l(&creds->mu_);
  creds->loaded_ = *std::move(loaded);
  return creds;
}

absl::Status TlsServerCredentials::Reload() {
  absl::StatusOr<std::shared_ptr<const Loaded>> loaded =
      Read(cert_file_, key_file_);
  if (!loaded.ok()) return loaded.status();
  absl::MutexLock l(&mu_);
  loaded_ = *std::move(loaded);
  return absl::OkStatus();
}

std::shared_ptr<const TlsServerCredentials::Loaded>
TlsServerCredentials::Current() const {
  absl::MutexLock l(&mu_);
  return loaded_;
}

std::shared_ptr<ssl::context> TlsServerCredentials::Context() const {
  return Current()->context;
}

std::string TlsServerCredentials::Fingerprint() const {
  return Current()->fingerprint;
}

std::string TlsServerCredentials::Describe() const {
  return Current()->describe;
}

}  // namespace consortia
