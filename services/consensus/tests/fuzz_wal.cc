// libFuzzer target for the consensus WAL reader: arbitrary bytes as the
// contents of a WAL segment. The scan must never crash, and every record it
// returns must sit in a frame whose checksum verifies: re-framing the record
// gives back exactly the bytes at its offset (the codec is canonical), and the
// frames tile the file from offset 0 to valid_bytes.
//   ./bin/fuzz_wal -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "wal.h"

namespace {

void Die(const char* what) {
  std::fprintf(stderr, "fuzz_wal: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;
  using namespace consortia::consensus;
  const ByteView in(data, size);
  // A small record bound as well as the default one, so the length check is
  // exercised on short inputs.
  for (size_t max_record : {size_t{64}, kDefaultMaxWalRecordBytes}) {
    WalSegmentScan scan = ScanWalSegment(in, max_record);
    if (scan.records.size() != scan.offsets.size()) Die("offsets mismatch");
    if (scan.valid_bytes > size) Die("valid_bytes past the input");
    if ((scan.tail == WalSegmentScan::Tail::kClean) !=
        (scan.valid_bytes == size)) {
      Die("clean scan that does not cover the input");
    }
    uint64_t pos = 0;
    for (size_t i = 0; i < scan.records.size(); ++i) {
      if (scan.offsets[i] != pos) Die("frames do not tile the input");
      Bytes frame;
      AppendWalFrame(scan.records[i], &frame);
      if (frame.size() > size - pos ||
          std::memcmp(frame.data(), data + pos, frame.size()) != 0) {
        Die("returned record is not the verified frame at its offset");
      }
      if (frame.size() - kWalFrameHeaderBytes > max_record) {
        Die("record over the bound");
      }
      pos += frame.size();
    }
    if (pos != scan.valid_bytes)
      Die("valid_bytes is not the end of the frames");
  }
  return 0;
}
