// The `invoice` app: the e-invoice life cycle between the organisations of
// a consortium (records: common/include/consortia/invoice_records.h).
//
//   issue(number, buyer_org, amount_cents, tax_cents, currency, items_hash)
//       by a key with the issuer role; the issuer organisation (seller) is
//       the key's. buyer_org must be another organisation of the consortium.
//   accept(issuer_org, number)          \  by a key with the member role of
//   reject(issuer_org, number, reason)   } the buyer organisation; accept
//   reimburse(issuer_org, number)       /  and reject only an issued
//                                          invoice, reimburse only an
//                                          accepted one (so at most once).
//   void(issuer_org, number, reason)    by a key with the issuer role of the
//                                       issuer organisation; only an issued
//                                       or accepted invoice.
//
// Receipt codes: kBadArgs (argument count or form; the buyer is the issuer),
// kUnauthorized (the sender's key is no member, or of the wrong organisation
// or role: the log says what is needed), kNotFound (no such invoice, or no
// such buyer organisation), kExists (the number is taken for this issuer),
// kInvalidState (the invoice's status forbids the step: the log names it,
// and for a reimbursed invoice the height and tx of the reimbursement),
// kUnknownMethod. Every kOk receipt's log is a sentence an event consumer
// can show ("invoice INV-42 of org-a reimbursed by org-b").
//
// Each step rewrites the record (with its whole history) and the buyer
// index entry. Execution reads only state and the TxContext (height, block
// time, tx hash), so every node writes the same bytes.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_APPS_INVOICE_APP_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_APPS_INVOICE_APP_H_

#include <string>
#include <string_view>
#include <vector>

#include "apps/app.h"
#include "consortia/invoice_records.h"

namespace consortia::storage {

// Stateless: thread-safe.
class InvoiceApp : public NativeApp {
 public:
  static constexpr std::string_view kName = invoice::kAppName;

  std::string_view name() const override { return kName; }
  absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                     StateOverlay* state) const override;
  // inv/<org>/<number> and buyer/<org>/<org>/<number> with valid parts.
  absl::Status CheckQueryKey(std::string_view key) const override;
  // accept, reject, reimburse and void read the invoice's record (issue's
  // record key depends on the sender's organisation, read first).
  void AddReadHints(const Transaction& tx,
                    std::vector<std::string>* keys) const override;
  // Every method reads the sender's member record; issue also the buyer's
  // organisation record (app admin).
  void AddOtherAppReadHints(const Transaction& tx,
                            std::vector<AppStateKey>* keys) const override;
};

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_APPS_INVOICE_APP_H_
