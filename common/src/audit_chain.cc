#include "consortia/audit_chain.h"

#include <sodium.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "consortia/bytes.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

constexpr std::string_view kHashField = ",\"hash\":\"";
constexpr std::string_view kPrevField = ",\"prev\":\"";
constexpr size_t kHexLength = 64;
// ,"hash":"<64 hex>"}
constexpr size_t kSealSuffix = kHashField.size() + kHexLength + 2;

std::string Sha256Hex(std::string_view bytes) {
  static const bool ok = [] { return sodium_init() >= 0; }();
  if (!ok) std::abort();
  uint8_t out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size());
  return ToHex(ByteView(out, sizeof(out)));
}

bool IsLowerHex(std::string_view s) {
  if (s.size() != kHexLength) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string AuditChainStart() { return std::string(kHexLength, '0'); }

std::string SealAuditLine(std::string_view record_json,
                          std::string_view prev_hash_hex) {
  // record_json is "{...}": drop its closing brace, append prev, hash that.
  std::string body(record_json.substr(0, record_json.rfind('}')));
  body.append(kPrevField).append(prev_hash_hex).append("\"");
  std::string line = body;
  line.append(kHashField).append(Sha256Hex(body)).append("\"}");
  return line;
}

absl::StatusOr<AuditSeal> CheckAuditLine(std::string_view line) {
  if (line.empty()) return absl::InvalidArgumentError("empty line");
  if (line.size() <= kSealSuffix ||
      line.substr(line.size() - kSealSuffix, kHashField.size()) != kHashField ||
      line.substr(line.size() - 2) != "\"}") {
    return absl::InvalidArgumentError(
        "not a sealed audit line (it must end with ,\"hash\":\"<64 hex>\"})");
  }
  std::string_view body = line.substr(0, line.size() - kSealSuffix);
  AuditSeal seal;
  seal.hash =
      std::string(line.substr(line.size() - kHexLength - 2, kHexLength));
  if (!IsLowerHex(seal.hash)) {
    return absl::InvalidArgumentError(
        "\"hash\" is not 64 lower-case hex digits");
  }
  // The prev field is the last one before hash.
  if (body.size() < kPrevField.size() + kHexLength + 1 ||
      body.substr(body.size() - kPrevField.size() - kHexLength - 1,
                  kPrevField.size()) != kPrevField ||
      body.back() != '"') {
    return absl::InvalidArgumentError(
        "\"prev\" does not come right before \"hash\"");
  }
  seal.prev =
      std::string(body.substr(body.size() - kHexLength - 1, kHexLength));
  if (!IsLowerHex(seal.prev)) {
    return absl::InvalidArgumentError(
        "\"prev\" is not 64 lower-case hex digits");
  }
  absl::StatusOr<nlohmann::json> parsed =
      json_internal::ParseStrictJson(line, "audit line");
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  if (Sha256Hex(body) != seal.hash) {
    return absl::InvalidArgumentError(
        "the line does not match its own hash (it was changed)");
  }
  return seal;
}

bool AuditChainVerifier::Add(std::string_view line) {
  if (!ok()) return false;
  ++lines_;
  absl::StatusOr<AuditSeal> seal = CheckAuditLine(line);
  if (!seal.ok()) {
    bad_line_ = lines_;
    reason_ = std::string(seal.status().message());
    return false;
  }
  if (seal->prev != head_) {
    bad_line_ = lines_;
    reason_ =
        lines_ == 1
            ? "the first line's prev is not the chain start (lines "
              "before it were removed)"
            : absl::StrCat("prev does not match line ", lines_ - 1,
                           " (a line was removed, inserted or moved here, or "
                           "line ",
                           lines_ - 1, " was changed and re-hashed)");
    return false;
  }
  head_ = seal->hash;
  return true;
}

void AuditChainVerifier::MarkIncompleteLastLine() {
  if (!ok() || lines_ == 0) return;
  bad_line_ = lines_;
  reason_ =
      "the last line is incomplete (no newline: a torn write or a cut copy)";
}

absl::StatusOr<AuditReport> VerifyAuditLogFile(const std::string& path) {
  return VerifyAuditLogFiles({path});
}

absl::StatusOr<AuditReport> VerifyAuditLogFiles(
    const std::vector<std::string>& paths, const std::string& after) {
  AuditChainVerifier v(after);
  AuditReport r;
  uint64_t before = 0;  // lines of the files before this one
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      int err = errno;
      std::string what =
          absl::StrCat("cannot read ", path, ": ", std::strerror(err));
      if (err == ENOENT) return absl::NotFoundError(what);
      if (err == EACCES) return absl::PermissionDeniedError(what);
      return absl::InternalError(what);
    }
    std::string line;
    bool cut = false;
    while (std::getline(in, line)) {
      // getline stops at EOF without a newline for an unterminated last line.
      const bool terminated = !in.eof();
      if (!v.Add(line)) break;
      if (!terminated) {
        v.MarkIncompleteLastLine();
        cut = true;
        break;
      }
    }
    if (in.bad()) {
      return absl::InternalError(absl::StrCat("cannot read ", path));
    }
    if (!v.ok()) {
      r.bad_file = path;
      r.bad_line = v.bad_line() - before;
      r.lines = v.lines() - before;
      break;
    }
    r.lines = v.lines() - before;
    before = v.lines();
    if (cut) break;
  }
  r.ok = v.ok();
  r.total_lines = v.lines();
  r.reason = v.reason();
  r.head = v.head();
  return r;
}

}  // namespace consortia
