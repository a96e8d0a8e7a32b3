#include "consortia/codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace consortia {
namespace {

constexpr size_t kMaxVarintBytes = 10;

// Debian's Abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0), which std::string_view does not convert to implicitly.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status Malformed(absl::string_view what, size_t offset) {
  return absl::InvalidArgumentError(absl::StrCat(what, " at offset ", offset));
}

}  // namespace

void Encoder::PutU8(uint8_t v) { buf_.push_back(v); }

void Encoder::PutU16(uint16_t v) {
  for (int i = 0; i < 2; ++i)
    buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void Encoder::PutU32(uint32_t v) {
  for (int i = 0; i < 4; ++i)
    buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void Encoder::PutU64(uint64_t v) {
  for (int i = 0; i < 8; ++i)
    buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void Encoder::PutVarint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<uint8_t>(v));
}

void Encoder::PutBytes(ByteView v) {
  PutVarint(v.size());
  PutRaw(v);
}

void Encoder::PutRaw(ByteView v) {
  buf_.insert(buf_.end(), v.begin(), v.end());
}

absl::Status Decoder::Truncated(std::string_view what) const {
  return Malformed(absl::StrCat("truncated ", Absl(what)), pos_);
}

absl::Status Decoder::GetU8(uint8_t* v) {
  if (remaining() < 1) return Truncated("u8");
  *v = in_[pos_++];
  return absl::OkStatus();
}

absl::Status Decoder::GetU16(uint16_t* v) {
  if (remaining() < 2) return Truncated("u16");
  uint16_t r = 0;
  for (int i = 0; i < 2; ++i)
    r |= static_cast<uint16_t>(in_[pos_ + i] << (8 * i));
  pos_ += 2;
  *v = r;
  return absl::OkStatus();
}

absl::Status Decoder::GetU32(uint32_t* v) {
  if (remaining() < 4) return Truncated("u32");
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i)
    r |= static_cast<uint32_t>(in_[pos_ + i]) << (8 * i);
  pos_ += 4;
  *v = r;
  return absl::OkStatus();
}

absl::Status Decoder::GetU64(uint64_t* v) {
  if (remaining() < 8) return Truncated("u64");
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i)
    r |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
  pos_ += 8;
  *v = r;
  return absl::OkStatus();
}

absl::Status Decoder::GetVarint(uint64_t* v) {
  const size_t start = pos_;
  uint64_t r = 0;
  for (size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (pos_ >= in_.size()) {
      return Malformed("truncated varint", start);
    }
    const uint8_t b = in_[pos_++];
    if (i == kMaxVarintBytes - 1) {
      // 9 bytes carry 63 bits: the 10th may only hold the top bit, and
      // cannot continue.
      if (b > 1) return Malformed("varint overflows 64 bits", start);
    }
    r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      // A zero final byte after others means a shorter form existed.
      if (b == 0 && i > 0) return Malformed("non-canonical varint", start);
      *v = r;
      return absl::OkStatus();
    }
  }
  // Unreachable: the 10th byte either ended the varint or was rejected.
  return Malformed("varint longer than 10 bytes", start);
}

absl::Status Decoder::GetBool(bool* v) {
  const size_t start = pos_;
  uint8_t b = 0;
  if (absl::Status s = GetU8(&b); !s.ok()) return s;
  if (b > 1) return Malformed(absl::StrCat("bool byte ", b), start);
  *v = b == 1;
  return absl::OkStatus();
}

absl::Status Decoder::GetBytes(Bytes* v, size_t max_len) {
  ByteView view;
  if (absl::Status s = GetBytesView(&view, max_len); !s.ok()) return s;
  v->assign(view.begin(), view.end());
  return absl::OkStatus();
}

absl::Status Decoder::GetBytesView(ByteView* v, size_t max_len) {
  const size_t start = pos_;
  uint64_t len = 0;
  if (absl::Status s = GetVarint(&len); !s.ok()) return s;
  if (len > max_len) {
    return Malformed(absl::StrCat("length ", len, " over its bound ", max_len),
                     start);
  }
  if (len > remaining()) return Truncated("byte string");
  *v = in_.subspan(pos_, len);
  pos_ += len;
  return absl::OkStatus();
}

absl::Status Decoder::GetString(std::string* v, size_t max_len) {
  const size_t start = pos_;
  uint64_t len = 0;
  if (absl::Status s = GetVarint(&len); !s.ok()) return s;
  if (len > max_len) {
    return Malformed(absl::StrCat("length ", len, " over its bound ", max_len),
                     start);
  }
  if (len > remaining()) return Truncated("string");
  v->assign(reinterpret_cast<const char*>(in_.data()) + pos_, len);
  pos_ += len;
  return absl::OkStatus();
}

absl::Status Decoder::GetRaw(uint8_t* out, size_t n) {
  if (n > remaining()) return Truncated(absl::StrCat(n, " raw bytes"));
  if (n > 0) std::memcpy(out, in_.data() + pos_, n);
  pos_ += n;
  return absl::OkStatus();
}

absl::Status Decoder::GetCount(uint64_t* n, uint64_t max_count,
                               size_t min_elem_bytes) {
  const size_t start = pos_;
  uint64_t count = 0;
  if (absl::Status s = GetVarint(&count); !s.ok()) return s;
  if (count > max_count) {
    return Malformed(
        absl::StrCat("count ", count, " over its bound ", max_count), start);
  }
  if (min_elem_bytes > 0 && count > remaining() / min_elem_bytes) {
    return Malformed(absl::StrCat("count ", count, " exceeds what the ",
                                  remaining(), " remaining bytes can hold"),
                     start);
  }
  *n = count;
  return absl::OkStatus();
}

absl::Status Decoder::ExpectEnd() const {
  if (pos_ != in_.size()) {
    return Malformed(absl::StrCat("trailing bytes (", remaining(), ")"), pos_);
  }
  return absl::OkStatus();
}

}  // namespace consortia
