// libFuzzer target for the bus envelope: DecodeEnvelope never crashes, and an
// envelope it accepts re-encodes to exactly the input (one value, one
// encoding).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "consortia/bus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  consortia::ByteView in(data, size);
  absl::StatusOr<consortia::Envelope> env = consortia::DecodeEnvelope(in);
  if (!env.ok()) return 0;
  consortia::Bytes again = consortia::EncodeEnvelope(*env);
  if (again != consortia::Bytes(data, data + size)) std::abort();
  return 0;
}
