// Decoding helpers and nested-encoding bounds shared by the payload codecs of
// the proof bundles (proof_bundle.cc) and of the bus messages
// (service_messages.cc). Internal to common/: not a public header.
#ifndef CONSORTIA_COMMON_SRC_WIRE_DECODE_H_
#define CONSORTIA_COMMON_SRC_WIRE_DECODE_H_

#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "consortia/bytes.h"
#include "consortia/codec.h"
#include "consortia/types.h"

// Returns from the enclosing function when a Status-returning expression
// fails.
#define WIRE_RETURN_IF_ERROR(expr)                                \
  do {                                                            \
    if (absl::Status wire_status_ = (expr); !wire_status_.ok()) { \
      return wire_status_;                                        \
    }                                                             \
  } while (0)

namespace consortia::wire_decode {

// Bounds of the encodings nested inside a record or message (each nested
// decoder also checks its own limits).
inline constexpr size_t kMaxStateValueBytes = kMaxTxBytes;
inline constexpr size_t kMaxEncodedBlockBytes = 2 * kMaxBlockBytes;
inline constexpr size_t kMaxEncodedCertBytes = 1024 * 1024;
// EncodeBlockRecord: a block, its hash and its certificate, each with its
// length prefix.
inline constexpr size_t kMaxEncodedBlockRecordBytes =
    kMaxEncodedBlockBytes + kMaxEncodedCertBytes + 64;
inline constexpr size_t kMaxEncodedReceiptBytes = 2 * kMaxLogBytes + 1024;

// Gives a nested decoder's error the name of the message it sits in, keeping
// the InvalidArgument code.
inline absl::Status Context(absl::string_view what, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
}

// A nested encoding: length-prefixed bytes, decoded by its own decoder.
template <typename T, typename DecodeFn>
absl::Status GetNested(Decoder* d, size_t max_len, DecodeFn decode, T* out) {
  Bytes raw;
  WIRE_RETURN_IF_ERROR(d->GetBytes(&raw, max_len));
  absl::StatusOr<T> v = decode(raw);
  if (!v.ok()) return v.status();
  *out = *std::move(v);
  return absl::OkStatus();
}

// A length-prefixed EncodeCertificate.
inline absl::Status GetNestedCertificate(Decoder* d, CommitCertificate* c) {
  return GetNested(d, kMaxEncodedCertBytes, DecodeCertificate, c);
}

// A length-prefixed EncodeBlock.
inline absl::Status GetNestedBlock(Decoder* d, Block* b) {
  return GetNested(d, kMaxEncodedBlockBytes, DecodeBlock, b);
}

// Runs `body` over a decoder of `data`, requires all input consumed, and
// names the message in any error.
template <typename T, typename Body>
absl::StatusOr<T> DecodeWith(absl::string_view what, ByteView data, Body body) {
  Decoder d(data);
  T out{};
  absl::Status s = body(&d, &out);
  if (s.ok()) s = d.ExpectEnd();
  if (!s.ok()) return Context(what, s);
  return out;
}

}  // namespace consortia::wire_decode

#endif  // CONSORTIA_COMMON_SRC_WIRE_DECODE_H_
