#include "consortia/invoice_records.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "consortia/admin_records.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"
#include "record_fields.h"

namespace consortia::invoice {
namespace {

using nlohmann::json;
using records_internal::CheckText;
using records_internal::ExactFields;
using records_internal::LowerHashField;
using records_internal::LowerHexField;
using records_internal::Shown;
using records_internal::StringField;
using records_internal::UintField;

absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

constexpr Status kAllStatuses[] = {Status::kIssued, Status::kAccepted,
                                   Status::kRejected, Status::kReimbursed,
                                   Status::kVoided};

absl::StatusOr<Status> StatusField(const json& j, const char* name,
                                   absl::string_view what) {
  absl::StatusOr<std::string> s = StringField(j, name, what);
  if (!s.ok()) return s.status();
  absl::StatusOr<Status> st = ParseStatus(*s);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", st.status().message()));
  }
  return st;
}

absl::StatusOr<uint64_t> CentsField(const json& j, const char* name,
                                    absl::string_view what) {
  absl::StatusOr<uint64_t> v = UintField(j, name, what);
  if (!v.ok()) return v.status();
  if (*v > kMaxCents) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field '", name, "' is over the limit of ", kMaxCents));
  }
  return v;
}

absl::StatusOr<std::string> OrgField(const json& j, const char* name,
                                     absl::string_view what) {
  absl::StatusOr<std::string> s = StringField(j, name, what);
  if (!s.ok()) return s.status();
  if (absl::Status st = admin::CheckOrgId(*s); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", name, "': ", st.message()));
  }
  return s;
}

json StepJson(const Step& s) {
  return json{{"step", std::string(StatusName(s.step))},
              {"height", s.height},
              {"time_ms", s.time_ms},
              {"org", s.org},
              {"key", ToHex(s.key)},
              {"tx", ToHex(s.tx)},
              {"note", s.note}};
}

absl::StatusOr<Step> DecodeStep(const json& j) {
  constexpr absl::string_view kWhat = "invoice history step";
  if (absl::Status s = ExactFields(
          j, kWhat, {"step", "height", "time_ms", "org", "key", "tx", "note"});
      !s.ok()) {
    return s;
  }
  Step out;
  absl::StatusOr<Status> st = StatusField(j, "step", kWhat);
  if (!st.ok()) return st.status();
  out.step = *st;
  absl::StatusOr<uint64_t> h = UintField(j, "height", kWhat);
  if (!h.ok()) return h.status();
  out.height = *h;
  absl::StatusOr<uint64_t> t = UintField(j, "time_ms", kWhat);
  if (!t.ok()) return t.status();
  out.time_ms = *t;
  absl::StatusOr<std::string> org = OrgField(j, "org", kWhat);
  if (!org.ok()) return org.status();
  out.org = *std::move(org);
  absl::StatusOr<Bytes> key = LowerHexField(j, "key", kWhat);
  if (!key.ok()) return key.status();
  out.key = *std::move(key);
  absl::StatusOr<Hash32> tx = LowerHashField(j, "tx", kWhat);
  if (!tx.ok()) return tx.status();
  out.tx = *tx;
  absl::StatusOr<std::string> note = StringField(j, "note", kWhat);
  if (!note.ok()) return note.status();
  if (absl::Status s = CheckNote(*note); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  out.note = *std::move(note);
  return out;
}

}  // namespace

std::string_view StatusName(Status s) {
  switch (s) {
    case Status::kIssued:
      return "issued";
    case Status::kAccepted:
      return "accepted";
    case Status::kRejected:
      return "rejected";
    case Status::kReimbursed:
      return "reimbursed";
    case Status::kVoided:
      return "voided";
  }
  return "unknown";
}

absl::StatusOr<Status> ParseStatus(std::string_view name) {
  for (Status s : kAllStatuses) {
    if (StatusName(s) == name) return s;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown invoice status ", Shown(name),
      " (the statuses are issued, accepted, rejected, reimbursed, voided)"));
}

BuyerIndexEntry SummaryOf(const InvoiceRecord& r) {
  BuyerIndexEntry e;
  e.issuer_org = r.issuer_org;
  e.number = r.number;
  e.status = r.status;
  e.amount_cents = r.amount_cents;
  e.tax_cents = r.tax_cents;
  e.currency = r.currency;
  e.height = r.history.empty() ? 0 : r.history.back().height;
  return e;
}

std::string InvoiceKey(std::string_view issuer_org, std::string_view number) {
  return absl::StrCat("inv/", Sv(issuer_org), "/", Sv(number));
}

std::string IssuerPrefix(std::string_view issuer_org) {
  return absl::StrCat("inv/", Sv(issuer_org), "/");
}

std::string BuyerIndexKey(std::string_view buyer_org,
                          std::string_view issuer_org,
                          std::string_view number) {
  return absl::StrCat("buyer/", Sv(buyer_org), "/", Sv(issuer_org), "/",
                      Sv(number));
}

std::string BuyerPrefix(std::string_view buyer_org) {
  return absl::StrCat("buyer/", Sv(buyer_org), "/");
}

absl::Status CheckInvoiceNumber(std::string_view number) {
  if (number.empty() || number.size() > kMaxNumberBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("invoice number must be 1-", kMaxNumberBytes,
                     " characters, got ", number.size()));
  }
  for (char c : number) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("invoice number ", Shown(number),
                       " may hold only A-Z, a-z, 0-9, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ParseCents(std::string_view text) {
  // 10^15 has 16 digits; anything longer is over the limit (or has a
  // leading zero), and refusing it early keeps the sum below from
  // overflowing.
  if (text.empty()) {
    return absl::InvalidArgumentError("an amount in cents must not be empty");
  }
  if (text.size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "amount ", Shown(text), " is over the limit of ", kMaxCents, " cents"));
  }
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(
          absl::StrCat("amount ", Shown(text),
                       " must be decimal digits only (cents, no sign)"));
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (text.size() > 1 && text[0] == '0') {
    return absl::InvalidArgumentError(
        absl::StrCat("amount ", Shown(text), " must not have a leading zero"));
  }
  if (v > kMaxCents) {
    return absl::InvalidArgumentError(absl::StrCat(
        "amount ", v, " is over the limit of ", kMaxCents, " cents"));
  }
  return v;
}

absl::Status CheckCurrency(std::string_view currency) {
  const bool ok = currency.size() == 3 &&
                  std::all_of(currency.begin(), currency.end(),
                              [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("currency ", Shown(currency),
                     " must be 3 upper-case letters (e.g. CNY)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Hash32> ParseHashHex(std::string_view hex) {
  return records_internal::ParseHash(hex, "items hash");
}

absl::Status CheckNote(std::string_view note) {
  return CheckText(note, kMaxNoteBytes, "reason");
}

std::string EncodeInvoice(const InvoiceRecord& r) {
  json history = json::array();
  for (const Step& s : r.history) history.push_back(StepJson(s));
  json j = {{"issuer_org", r.issuer_org},
            {"number", r.number},
            {"issuer_key", ToHex(r.issuer_key)},
            {"buyer_org", r.buyer_org},
            {"amount_cents", r.amount_cents},
            {"tax_cents", r.tax_cents},
            {"currency", r.currency},
            {"items_hash", ToHex(r.items_hash)},
            {"status", std::string(StatusName(r.status))},
            {"history", std::move(history)}};
  return j.dump();
}

std::string EncodeBuyerIndexEntry(const BuyerIndexEntry& e) {
  json j = {{"issuer_org", e.issuer_org},
            {"number", e.number},
            {"status", std::string(StatusName(e.status))},
            {"amount_cents", e.amount_cents},
            {"tax_cents", e.tax_cents},
            {"currency", e.currency},
            {"height", e.height}};
  return j.dump();
}

absl::StatusOr<InvoiceRecord> DecodeInvoice(std::string_view text) {
  constexpr absl::string_view kWhat = "invoice record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(
          *j, kWhat,
          {"issuer_org", "number", "issuer_key", "buyer_org", "amount_cents",
           "tax_cents", "currency", "items_hash", "status", "history"});
      !s.ok()) {
    return s;
  }
  InvoiceRecord r;
  absl::StatusOr<std::string> issuer = OrgField(*j, "issuer_org", kWhat);
  if (!issuer.ok()) return issuer.status();
  r.issuer_org = *std::move(issuer);
  absl::StatusOr<std::string> number = StringField(*j, "number", kWhat);
  if (!number.ok()) return number.status();
  if (absl::Status s = CheckInvoiceNumber(*number); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  r.number = *std::move(number);
  absl::StatusOr<Bytes> key = LowerHexField(*j, "issuer_key", kWhat);
  if (!key.ok()) return key.status();
  r.issuer_key = *std::move(key);
  absl::StatusOr<std::string> buyer = OrgField(*j, "buyer_org", kWhat);
  if (!buyer.ok()) return buyer.status();
  r.buyer_org = *std::move(buyer);
  absl::StatusOr<uint64_t> amount = CentsField(*j, "amount_cents", kWhat);
  if (!amount.ok()) return amount.status();
  r.amount_cents = *amount;
  absl::StatusOr<uint64_t> tax = CentsField(*j, "tax_cents", kWhat);
  if (!tax.ok()) return tax.status();
  r.tax_cents = *tax;
  absl::StatusOr<std::string> currency = StringField(*j, "currency", kWhat);
  if (!currency.ok()) return currency.status();
  if (absl::Status s = CheckCurrency(*currency); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  r.currency = *std::move(currency);
  absl::StatusOr<Hash32> items = LowerHashField(*j, "items_hash", kWhat);
  if (!items.ok()) return items.status();
  r.items_hash = *items;
  absl::StatusOr<Status> status = StatusField(*j, "status", kWhat);
  if (!status.ok()) return status.status();
  r.status = *status;
  const json& history = j->at("history");
  if (!history.is_array() || history.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": history must be a non-empty array"));
  }
  for (const json& v : history) {
    absl::StatusOr<Step> step = DecodeStep(v);
    if (!step.ok()) return step.status();
    r.history.push_back(*std::move(step));
  }
  if (r.history.front().step != Status::kIssued) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": history must begin with issued"));
  }
  if (r.history.back().step != r.status) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": status '", std::string(StatusName(r.status)),
                     "' is not the last step of the history"));
  }
  return r;
}

absl::StatusOr<BuyerIndexEntry> DecodeBuyerIndexEntry(std::string_view text) {
  constexpr absl::string_view kWhat = "buyer index entry";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s =
          ExactFields(*j, kWhat,
                      {"issuer_org", "number", "status", "amount_cents",
                       "tax_cents", "currency", "height"});
      !s.ok()) {
    return s;
  }
  BuyerIndexEntry e;
  absl::StatusOr<std::string> issuer = OrgField(*j, "issuer_org", kWhat);
  if (!issuer.ok()) return issuer.status();
  e.issuer_org = *std::move(issuer);
  absl::StatusOr<std::string> number = StringField(*j, "number", kWhat);
  if (!number.ok()) return number.status();
  if (absl::Status s = CheckInvoiceNumber(*number); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  e.number = *std::move(number);
  absl::StatusOr<Status> status = StatusField(*j, "status", kWhat);
  if (!status.ok()) return status.status();
  e.status = *status;
  absl::StatusOr<uint64_t> amount = CentsField(*j, "amount_cents", kWhat);
  if (!amount.ok()) return amount.status();
  e.amount_cents = *amount;
  absl::StatusOr<uint64_t> tax = CentsField(*j, "tax_cents", kWhat);
  if (!tax.ok()) return tax.status();
  e.tax_cents = *tax;
  absl::StatusOr<std::string> currency = StringField(*j, "currency", kWhat);
  if (!currency.ok()) return currency.status();
  if (absl::Status s = CheckCurrency(*currency); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  e.currency = *std::move(currency);
  absl::StatusOr<uint64_t> h = UintField(*j, "height", kWhat);
  if (!h.ok()) return h.status();
  e.height = *h;
  return e;
}

}  // namespace consortia::invoice
