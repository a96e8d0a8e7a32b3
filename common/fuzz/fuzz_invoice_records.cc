// libFuzzer target for the invoice app's records and argument checks
// (invoice_records.h). The input is tried as an invoice record, as a buyer
// index entry and as each tx argument. A record that decodes must encode to
// bytes that decode to the same record (what storage writes is what the api
// and verify read back); an amount that parses must be canonical decimal
// within the limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "consortia/invoice_records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia::invoice;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<InvoiceRecord> r = DecodeInvoice(text);
  if (r.ok()) {
    const std::string again = EncodeInvoice(*r);
    absl::StatusOr<InvoiceRecord> back = DecodeInvoice(again);
    if (!back.ok() || *back != *r || EncodeInvoice(*back) != again) {
      std::fprintf(stderr, "invoice record round trip failed: %s\n",
                   again.c_str());
      std::abort();
    }
  }
  absl::StatusOr<BuyerIndexEntry> e = DecodeBuyerIndexEntry(text);
  if (e.ok()) {
    const std::string again = EncodeBuyerIndexEntry(*e);
    absl::StatusOr<BuyerIndexEntry> back = DecodeBuyerIndexEntry(again);
    if (!back.ok() || *back != *e) {
      std::fprintf(stderr, "buyer index round trip failed: %s\n",
                   again.c_str());
      std::abort();
    }
  }

  absl::StatusOr<uint64_t> cents = ParseCents(text);
  if (cents.ok() && (*cents > kMaxCents || std::to_string(*cents) != text)) {
    std::fprintf(stderr, "ParseCents accepted a non-canonical amount\n");
    std::abort();
  }
  (void)CheckInvoiceNumber(text);
  (void)CheckCurrency(text);
  (void)ParseHashHex(text);
  (void)CheckNote(text);
  return 0;
}
