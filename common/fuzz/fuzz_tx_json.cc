// libFuzzer target for the transaction JSON parser. A successful parse must
// survive TxToJson -> TxFromJson unchanged, and its binary encoding must
// decode back to the same tx.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "consortia/tx_json.h"
#include "consortia/types.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Transaction> tx = TxFromJson(text);
  if (!tx.ok()) return 0;

  const std::string again = TxToJson(*tx);
  absl::StatusOr<Transaction> back = TxFromJson(again);
  if (!back.ok() || *back != *tx) {
    std::fprintf(stderr, "tx JSON round trip failed: %s\n", again.c_str());
    std::abort();
  }
  absl::StatusOr<Transaction> decoded = DecodeTx(EncodeTx(*tx));
  if (!decoded.ok() || *decoded != *tx) {
    std::fprintf(stderr, "a tx accepted from JSON does not decode back\n");
    std::abort();
  }
  return 0;
}
