#include "consortia/testing/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace consortia::testing {
namespace {

// Test code: any OpenSSL failure is a broken test environment.
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test_certs: %s failed\n", what);
    std::abort();
  }
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr,
                                 nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_X509(bio, cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, not yet signed.
X509* NewCert(EVP_PKEY* key, const std::string& cn, uint64_t serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  return cert;
}

std::string Sha256(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  Check(X509_digest(cert, EVP_sha256(), md, &n) == 1, "X509_digest");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kDigits[md[i] >> 4]);
    out.push_back(kDigits[md[i] & 15]);
  }
  return out;
}

}  // namespace

struct TestCertificateAuthority::Keys {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~Keys() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

TestCertificateAuthority::TestCertificateAuthority(
    const std::string& common_name)
    : keys_(std::make_unique<Keys>()) {
  keys_->key = NewKey();
  keys_->cert = NewCert(keys_->key, common_name, 1);
  X509_set_issuer_name(keys_->cert, X509_get_subject_name(keys_->cert));
  AddExt(keys_->cert, keys_->cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExt(keys_->cert, keys_->cert, NID_key_usage,
         "critical,keyCertSign,cRLSign");
  AddExt(keys_->cert, keys_->cert, NID_subject_key_identifier, "hash");
  Check(X509_sign(keys_->cert, keys_->key, EVP_sha256()) > 0, "X509_sign");
  cert_pem_ = CertPem(keys_->cert);
}

TestCertificateAuthority::~TestCertificateAuthority() = default;

TestCert TestCertificateAuthority::Issue(const std::string& common_name,
                                         uint64_t serial,
                                         const std::string& names) const {
  EVP_PKEY* key = NewKey();
  X509* cert = NewCert(key, common_name, serial);
  X509_set_issuer_name(cert, X509_get_subject_name(keys_->cert));
  AddExt(cert, keys_->cert, NID_basic_constraints, "critical,CA:FALSE");
  AddExt(cert, keys_->cert, NID_subject_alt_name, names.c_str());
  AddExt(cert, keys_->cert, NID_ext_key_usage, "serverAuth");
  AddExt(cert, keys_->cert, NID_authority_key_identifier, "keyid:always");
  Check(X509_sign(cert, keys_->key, EVP_sha256()) > 0, "X509_sign");
  TestCert out{CertPem(cert), KeyPem(key), Sha256(cert)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

absl::Status WriteTestFile(const std::string& path,
                           const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp));
  }
  return absl::OkStatus();
}

}  // namespace consortia::testing
