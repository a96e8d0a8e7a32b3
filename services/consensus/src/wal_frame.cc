#include "wal_frame.h"

#include <array>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace consortia::consensus {
namespace {

void PutU32Le(uint32_t v, uint8_t* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t GetU32Le(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(in[i]) << (8 * i);
  return v;
}

uint32_t FrameChecksum(const uint8_t* length_le, ByteView payload) {
  return Crc32c(Crc32c(0, ByteView(length_le, 4)), payload);
}

std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

const char* TailName(WalSegmentScan::Tail t) {
  switch (t) {
    case WalSegmentScan::Tail::kClean:
      return "clean";
    case WalSegmentScan::Tail::kTruncated:
      return "truncated frame";
    case WalSegmentScan::Tail::kBadLength:
      return "bad frame length";
    case WalSegmentScan::Tail::kBadChecksum:
      return "checksum mismatch";
    case WalSegmentScan::Tail::kUndecodable:
      return "undecodable record";
  }
  return "?";
}

}  // namespace

uint32_t Crc32c(uint32_t crc, ByteView data) {
  static const std::array<uint32_t, 256> kTable = MakeCrc32cTable();
  uint32_t c = ~crc;
  for (uint8_t b : data) c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
  return ~c;
}

void AppendWalFrame(const WalRecord& r, Bytes* out) {
  Bytes payload = EncodeWalRecord(r);
  uint8_t header[kWalFrameHeaderBytes];
  PutU32Le(static_cast<uint32_t>(payload.size()), header);
  PutU32Le(FrameChecksum(header, payload), header + 4);
  out->insert(out->end(), header, header + kWalFrameHeaderBytes);
  out->insert(out->end(), payload.begin(), payload.end());
}

WalSegmentScan ScanWalSegment(ByteView data, size_t max_record_bytes) {
  WalSegmentScan scan;
  size_t pos = 0;
  auto stop = [&](WalSegmentScan::Tail tail, std::string detail) {
    scan.tail = tail;
    scan.detail = absl::StrCat(TailName(tail), " at offset ", pos, ": ",
                               std::move(detail));
  };
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    if (left < kWalFrameHeaderBytes) {
      stop(WalSegmentScan::Tail::kTruncated,
           absl::StrCat(left, " bytes, less than a frame header"));
      break;
    }
    const uint8_t* header = data.data() + pos;
    const uint32_t length = GetU32Le(header);
    if (length == 0 || length > max_record_bytes) {
      stop(WalSegmentScan::Tail::kBadLength, absl::StrCat("length ", length));
      break;
    }
    if (left - kWalFrameHeaderBytes < length) {
      stop(WalSegmentScan::Tail::kTruncated,
           absl::StrCat("length ", length, " but ", left - kWalFrameHeaderBytes,
                        " bytes left"));
      break;
    }
    ByteView payload = data.subspan(pos + kWalFrameHeaderBytes, length);
    if (FrameChecksum(header, payload) != GetU32Le(header + 4)) {
      stop(WalSegmentScan::Tail::kBadChecksum, absl::StrCat("length ", length));
      break;
    }
    absl::StatusOr<WalRecord> rec = DecodeWalRecord(payload);
    if (!rec.ok()) {
      stop(WalSegmentScan::Tail::kUndecodable,
           std::string(rec.status().message()));
      break;
    }
    scan.records.push_back(*std::move(rec));
    scan.offsets.push_back(pos);
    pos += kWalFrameHeaderBytes + length;
    scan.valid_bytes = pos;
  }
  return scan;
}

}  // namespace consortia::consensus
