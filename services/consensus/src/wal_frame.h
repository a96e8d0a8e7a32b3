// The framing of the consensus WAL's segments (wal.h): a segment is a
// sequence of frames
//
//   [u32 length, little-endian][u32 crc32c, little-endian][payload]
//
// where length is the payload size (1 .. max_record_bytes) and the checksum is
// CRC-32C (Castagnoli) over the four length bytes followed by the payload, so
// a damaged length field is caught as well as a damaged payload. The payload
// is one record (wal_record.h).
#ifndef CONSORTIA_CONSENSUS_SRC_WAL_FRAME_H_
#define CONSORTIA_CONSENSUS_SRC_WAL_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "consortia/bytes.h"
#include "consortia/types.h"
#include "wal_record.h"

namespace consortia::consensus {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of data, continuing
// from a previous value `crc` (0 to start).
uint32_t Crc32c(uint32_t crc, ByteView data);

inline constexpr size_t kWalFrameHeaderBytes = 8;
// Large enough for a proposal that carries a full block.
inline constexpr size_t kDefaultMaxWalRecordBytes = kMaxBlockBytes + (1 << 20);

// Appends the frame of one record (header + payload) to *out.
void AppendWalFrame(const WalRecord& r, Bytes* out);

// What ScanWalSegment found.
struct WalSegmentScan {
  enum class Tail {
    kClean,        // every byte belongs to a good frame
    kTruncated,    // a frame header or payload runs past the end of the data
    kBadLength,    // a length of 0 or over max_record_bytes
    kBadChecksum,  // the checksum does not match the length and payload
    kUndecodable,  // the checksum matches but the payload does not decode
  };
  std::vector<WalRecord> records;  // the good records, in order
  std::vector<uint64_t> offsets;   // where each record's frame starts
  uint64_t valid_bytes = 0;        // end of the last good frame
  Tail tail = Tail::kClean;
  std::string detail;  // what was wrong at valid_bytes, "" when clean
};

// Decodes the frames of one segment's bytes, stopping at the first bad frame
// (see the recovery rules above). Never fails and never reads past `data`;
// every returned record came from a frame whose checksum verified.
WalSegmentScan ScanWalSegment(
    ByteView data, size_t max_record_bytes = kDefaultMaxWalRecordBytes);

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_WAL_FRAME_H_
