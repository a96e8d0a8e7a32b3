// The canonical binary encoding. Everything that is hashed, signed or sent
// between services is written with Encoder and read with Decoder; there is no
// other encoder.
//
// Wire rules: fixed-width integers are little-endian; a varint is LEB128
// (at most 10 bytes, and the shortest form is required, so one value has one
// encoding); byte strings and strings are a varint length then the bytes;
// lists are a varint count then the elements.
//
// Decoder never reads past its input, never allocates more than the input
// could possibly hold, and reports every malformation as InvalidArgument with
// the offset where it was found.
#ifndef CONSORTIA_COMMON_CODEC_H_
#define CONSORTIA_COMMON_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "consortia/bytes.h"

namespace consortia {

// Appends canonical encodings to an internal buffer. Not thread-safe.
class Encoder {
 public:
  Encoder() = default;

  void PutU8(uint8_t v);
  void PutU16(uint16_t v);
  void PutU32(uint32_t v);
  void PutU64(uint64_t v);
  void PutVarint(uint64_t v);
  void PutBool(bool v) { PutU8(v ? 1 : 0); }
  // Varint length, then the bytes.
  void PutBytes(ByteView v);
  void PutString(std::string_view v) { PutBytes(AsBytes(v)); }
  // The bytes alone, no length (for fixed-size fields such as hashes).
  void PutRaw(ByteView v);
  void PutHash(const Hash32& h) { PutRaw(h); }

  const Bytes& data() const { return buf_; }
  size_t size() const { return buf_.size(); }
  Bytes Take() { return std::move(buf_); }

 private:
  Bytes buf_;
};

// Reads canonical encodings from a view it does not own. Every Get returns
// InvalidArgument on truncated input, a non-canonical varint, a length over
// its bound, or a bool other than 0/1; after an error the decoder's position
// is unspecified. Not thread-safe.
class Decoder {
 public:
  explicit Decoder(ByteView in) : in_(in) {}

  absl::Status GetU8(uint8_t* v);
  absl::Status GetU16(uint16_t* v);
  absl::Status GetU32(uint32_t* v);
  absl::Status GetU64(uint64_t* v);
  absl::Status GetVarint(uint64_t* v);
  absl::Status GetBool(bool* v);
  // A length-prefixed byte string of at most max_len bytes.
  absl::Status GetBytes(Bytes* v, size_t max_len);
  // As GetBytes, without a copy: *v points into the decoder's input, so it is
  // valid as long as that input is.
  absl::Status GetBytesView(ByteView* v, size_t max_len);
  absl::Status GetString(std::string* v, size_t max_len);
  // Exactly n raw bytes.
  absl::Status GetRaw(uint8_t* out, size_t n);
  absl::Status GetHash(Hash32* h) { return GetRaw(h->data(), h->size()); }
  // A list count of at most max_count, and also no more than the remaining
  // input could hold if every element took min_elem_bytes (so a forged count
  // cannot make the caller reserve gigabytes).
  absl::Status GetCount(uint64_t* n, uint64_t max_count,
                        size_t min_elem_bytes = 1);

  // OK when all input was consumed; InvalidArgument("trailing bytes") if not.
  absl::Status ExpectEnd() const;

  size_t offset() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  absl::Status Truncated(std::string_view what) const;

  ByteView in_;
  size_t pos_ = 0;
};

}  // namespace consortia

#endif  // CONSORTIA_COMMON_CODEC_H_
