// Who may read invoice records through the api (issue 14): with
// --api_invoice_reads=parties, only the invoice's parties — a key whose
// organisation is the invoice's seller (issuer_org) or its buyer — and keys
// with scope `audit`. The handler asks these functions on every route that
// reveals invoice data (docs/api.md, "Invoice reads"):
//   - one record of app `invoice` (GET /v1/apps/invoice/invoices/{issuer}/
//     {number}, GET /v1/state/invoice/{key}): RefuseInvoiceRecord, after the
//     read, since the buyer is in the record; the answer is 403 otherwise,
//     also for an absent invoice of another seller (no probing);
//   - a page of app `invoice` (GET /v1/apps/invoice/invoices?buyer|seller,
//     GET /v1/state/invoice?prefix): RefuseInvoiceScan, before the read;
//   - a committed tx of app `invoice` (GET /v1/txs/{hash}):
//     RefuseInvoiceTx, which reads the sender's member record and the
//     invoice; 403 for others;
//   - blocks and the event stream carry many txs: an invoice tx there is
//     redacted for every caller without `audit` (BlockRecordView,
//     EventsOfBlock) rather than looked up one by one.
// Each Refuse* returns nullopt when the caller may read, else the detail of
// the 403 invoice-read-forbidden answer, naming who may. Thread-safe (pure,
// but for RefuseInvoiceTx's state reads).
#ifndef CONSORTIA_API_INVOICE_ACCESS_H_
#define CONSORTIA_API_INVOICE_ACCESS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "auth.h"
#include "consortia/storage_queries.h"
#include "consortia/types.h"

namespace consortia::api {

// --api_invoice_reads: kOpen (every reader, as before) or kParties.
enum class InvoiceReads { kOpen, kParties };
// "open" or "parties"; InvalidArgument naming both otherwise.
absl::StatusOr<InvoiceReads> ParseInvoiceReads(std::string_view name);

// True for app "invoice".
bool IsInvoiceApp(std::string_view app);
// True when the caller reads invoices without restriction (a key with scope
// `audit`). `caller` null: no key.
bool ReadsAllInvoices(const Caller* caller);

// One record of app invoice: `key`, and its value when found (nullopt when
// absent). inv/<seller>/<number>: the seller, and the buyer of the record;
// buyer/<buyer>/<seller>/<number>: that buyer and seller; any other key:
// auditors only.
std::optional<std::string> RefuseInvoiceRecord(
    const Caller* caller, std::string_view key,
    const std::optional<ByteView>& value);

// A page of app invoice under `prefix`: an organisation reads under its
// own inv/<org>/ (the invoices it issued) and buyer/<org>/ (those it
// received); auditors anything.
std::optional<std::string> RefuseInvoiceScan(const Caller* caller,
                                             std::string_view prefix);

// A committed tx of app invoice with hash `hash`: readable by the
// organisation that sent it (its member record in app admin), the
// organisations it names (the buyer of `issue`, the seller of the other
// methods), the seller and buyer of the invoice it is a step of (the tx is
// in the record's history), and auditors. Errors of the state reads (an
// outage) are returned as they are.
absl::StatusOr<std::optional<std::string>> RefuseInvoiceTx(
    StateQueries* state, const Caller* caller, const Transaction& tx,
    const Hash32& hash);

}  // namespace consortia::api

#endif  // CONSORTIA_API_INVOICE_ACCESS_H_
