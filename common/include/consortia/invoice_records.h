// The records of the `invoice` app as they stand in state (app "invoice"):
// e-invoices with their whole history, and a per-buyer index of summaries.
// Storage's invoice app writes them; the api, the CLI and `consortia verify`
// decode them. A record is a JSON object written by the Encode functions
// below (sorted keys, no spaces), so every node writes the same bytes.
//
// State keys (app "invoice"):
//   inv/<issuer org>/<number>                -> InvoiceRecord
//   buyer/<buyer org>/<issuer org>/<number>  -> BuyerIndexEntry (a summary,
//                                               rewritten on every step)
// A seller's invoices are the prefix `inv/<org>/`, a buyer's the prefix
// `buyer/<org>/`: one prefix scan each.
//
// The argument checks below are shared by the app (which refuses a tx with
// kBadArgs when one fails) and the CLI (which refuses before signing).
#ifndef CONSORTIA_COMMON_INVOICE_RECORDS_H_
#define CONSORTIA_COMMON_INVOICE_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"

namespace consortia::invoice {

inline constexpr std::string_view kAppName = "invoice";

// The largest amount (and tax) in cents: 10^15 cents, ten trillion units.
// amount + tax then fits easily in 64 bits.
inline constexpr uint64_t kMaxCents = 1'000'000'000'000'000;
// An invoice number: 1-64 of [A-Za-z0-9._-].
inline constexpr size_t kMaxNumberBytes = 64;
// A reason given to reject or void (UTF-8), stored in the step's note.
inline constexpr size_t kMaxNoteBytes = 256;

// Where an invoice is in its life cycle:
//   issued -> accepted -> reimbursed
//   issued -> rejected
//   issued | accepted -> voided
// rejected, reimbursed and voided are final.
enum class Status : uint8_t {
  kIssued,
  kAccepted,
  kRejected,
  kReimbursed,
  kVoided
};
std::string_view StatusName(Status s);
// InvalidArgument for any other name.
absl::StatusOr<Status> ParseStatus(std::string_view name);

// One step of an invoice's history: what happened, in which block, by whom.
struct Step {
  Status step = Status::kIssued;
  uint64_t height = 0;   // the block that committed the step
  uint64_t time_ms = 0;  // that block's time
  std::string org;       // the organisation of the key that sent it
  Bytes key;             // the sender's public key
  Hash32 tx{};           // the tx's hash
  std::string note;      // the reason of a reject or void, else ""
  bool operator==(const Step&) const = default;
};

struct InvoiceRecord {
  std::string issuer_org;  // the seller
  std::string number;      // unique per issuer_org
  Bytes issuer_key;        // the key that issued it
  std::string buyer_org;
  uint64_t amount_cents = 0;        // <= kMaxCents
  uint64_t tax_cents = 0;           // <= kMaxCents
  std::string currency;             // ISO 4217 style: 3 upper-case letters
  Hash32 items_hash{};              // digest of the line items (kept off chain)
  Status status = Status::kIssued;  // == history.back().step
  std::vector<Step> history;        // first step issued, oldest first
  bool operator==(const InvoiceRecord&) const = default;
};

// The buyer index's value: the invoice as of its last step.
struct BuyerIndexEntry {
  std::string issuer_org;
  std::string number;
  Status status = Status::kIssued;
  uint64_t amount_cents = 0;
  uint64_t tax_cents = 0;
  std::string currency;
  uint64_t height = 0;  // the height of the invoice's last step
  bool operator==(const BuyerIndexEntry&) const = default;
};
// The summary of `r` (height = its last step's).
BuyerIndexEntry SummaryOf(const InvoiceRecord& r);

// Keys. The arguments must already be valid (CheckOrgId, CheckInvoiceNumber).
std::string InvoiceKey(std::string_view issuer_org, std::string_view number);
std::string IssuerPrefix(std::string_view issuer_org);  // "inv/<org>/"
std::string BuyerIndexKey(std::string_view buyer_org,
                          std::string_view issuer_org, std::string_view number);
std::string BuyerPrefix(std::string_view buyer_org);  // "buyer/<org>/"

// Argument checks: InvalidArgument saying what is wrong.
absl::Status CheckInvoiceNumber(std::string_view number);
// Decimal digits, no sign, no leading zero except "0" itself, <= kMaxCents.
absl::StatusOr<uint64_t> ParseCents(std::string_view text);
// Exactly 3 upper-case ASCII letters.
absl::Status CheckCurrency(std::string_view currency);
// 64 hex digits (either case) -> the 32 bytes.
absl::StatusOr<Hash32> ParseHashHex(std::string_view hex);
// Valid UTF-8 of at most kMaxNoteBytes bytes.
absl::Status CheckNote(std::string_view note);

std::string EncodeInvoice(const InvoiceRecord& r);
std::string EncodeBuyerIndexEntry(const BuyerIndexEntry& e);
// Strict: every field present and well-formed (as the checks above, hex in
// lower case), no extra fields, no repeated keys, a history that begins
// with issued and ends with `status`. InvalidArgument naming the field
// otherwise.
absl::StatusOr<InvoiceRecord> DecodeInvoice(std::string_view json);
absl::StatusOr<BuyerIndexEntry> DecodeBuyerIndexEntry(std::string_view json);

}  // namespace consortia::invoice

#endif  // CONSORTIA_COMMON_INVOICE_RECORDS_H_
