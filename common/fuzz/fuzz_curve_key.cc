// libFuzzer target for the transport key decoders: CurveKeyFromZ85 never
// crashes and a key it accepts re-encodes to exactly the input (one key, one
// text); ParseCurveKeyPairJson never crashes, and a pair it accepts
// round-trips through CurveKeyPairToJson.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "consortia/peer_net.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<consortia::CurveKey> key = consortia::CurveKeyFromZ85(in);
  if (key.ok() && consortia::CurveKeyToZ85(*key) != in) std::abort();

  absl::StatusOr<consortia::CurveKeyPair> pair =
      consortia::ParseCurveKeyPairJson(in);
  if (pair.ok()) {
    absl::StatusOr<consortia::CurveKeyPair> again =
        consortia::ParseCurveKeyPairJson(consortia::CurveKeyPairToJson(*pair));
    if (!again.ok() || again->public_key != pair->public_key ||
        again->secret_key != pair->secret_key) {
      std::abort();
    }
  }
  return 0;
}
