// libFuzzer target for the notary app's records and argument checks
// (notary_records.h). The input is tried as a document record and as each
// tx argument. A record that decodes must encode to bytes that decode to the
// same record; a hash that parses must name the key of its lower-case hex.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "consortia/notary_records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia::notary;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<DocRecord> r = DecodeDoc(text);
  if (r.ok()) {
    const std::string again = EncodeDoc(*r);
    absl::StatusOr<DocRecord> back = DecodeDoc(again);
    if (!back.ok() || *back != *r || EncodeDoc(*back) != again) {
      std::fprintf(stderr, "document record round trip failed: %s\n",
                   again.c_str());
      std::abort();
    }
  }

  absl::StatusOr<consortia::Hash32> hash = ParseDocHash(text);
  if (hash.ok() && DocKey(*hash).size() != 4 + 64) {
    std::fprintf(stderr, "a parsed document hash gives a malformed key\n");
    std::abort();
  }
  (void)CheckMetadata(text);
  (void)CheckNote(text);
  return 0;
}
