// The records of the `notary` app as they stand in state (app "notary"):
// proof that a document (its hash) was anchored by a block, by whom and
// when, and whether it was later revoked. Storage's notary app writes them;
// the api, the CLI and `consortia verify` decode them. A record is a JSON
// object written by EncodeDoc (sorted keys, no spaces).
//
// State key (app "notary"):
//   doc/<64 lower-case hex>  -> DocRecord (the document's 32-byte digest,
//                               SHA-256 or SM3 or any other)
// A record is never deleted: a revoked document stays revoked, and the same
// hash cannot be anchored again.
#ifndef CONSORTIA_COMMON_NOTARY_RECORDS_H_
#define CONSORTIA_COMMON_NOTARY_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"

namespace consortia::notary {

inline constexpr std::string_view kAppName = "notary";

// The metadata anchored with a hash (UTF-8; e.g. a title or a JSON text).
inline constexpr size_t kMaxMetadataBytes = 1024;
// A reason given to revoke (UTF-8), stored in the step's note.
inline constexpr size_t kMaxNoteBytes = 256;

// anchored -> revoked (final).
enum class Status : uint8_t { kAnchored, kRevoked };
std::string_view StatusName(Status s);
// InvalidArgument for any other name.
absl::StatusOr<Status> ParseStatus(std::string_view name);

struct Step {
  Status step = Status::kAnchored;
  uint64_t height = 0;   // the block that committed the step
  uint64_t time_ms = 0;  // that block's time
  Bytes key;             // the sender's public key
  Hash32 tx{};           // the tx's hash
  std::string note;      // the reason of a revocation, else ""
  bool operator==(const Step&) const = default;
};

struct DocRecord {
  Hash32 hash{};
  Bytes owner_key;        // the key that anchored it
  std::string owner_org;  // its organisation; "" on a chain without one
  std::string metadata;   // <= kMaxMetadataBytes
  uint64_t anchored_height = 0;
  uint64_t anchored_time_ms = 0;      // the anchoring block's time
  Status status = Status::kAnchored;  // == history.back().step
  std::vector<Step> history;          // first step anchored, oldest first
  bool operator==(const DocRecord&) const = default;
};

// "doc/<lower-case hex of hash>".
std::string DocKey(const Hash32& hash);

// Argument checks: InvalidArgument saying what is wrong.
// 64 hex digits (either case) -> the 32 bytes.
absl::StatusOr<Hash32> ParseDocHash(std::string_view hex);
// Valid UTF-8 of at most kMaxMetadataBytes bytes.
absl::Status CheckMetadata(std::string_view metadata);
// Valid UTF-8 of at most kMaxNoteBytes bytes.
absl::Status CheckNote(std::string_view note);

std::string EncodeDoc(const DocRecord& r);
// Strict: every field present and well-formed (hex in lower case), no extra
// fields, no repeated keys, owner_org "" or an organisation id, a history
// that begins with anchored at anchored_height and ends with `status`.
// InvalidArgument naming the field otherwise.
absl::StatusOr<DocRecord> DecodeDoc(std::string_view json);

}  // namespace consortia::notary

#endif  // CONSORTIA_COMMON_NOTARY_RECORDS_H_
