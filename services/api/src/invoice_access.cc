#include "invoice_access.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/admin_records.h"
#include "consortia/bytes.h"
#include "consortia/invoice_records.h"

namespace consortia::api {
namespace {

constexpr std::string_view kInvoicePrefix = "inv/";
constexpr std::string_view kBuyerPrefix = "buyer/";

std::string Whose(const Caller* caller) {
  if (caller == nullptr) return "the request has no API key";
  return absl::StrCat("this key is of organisation ", caller->org);
}

bool Is(const Caller* caller, std::string_view org) {
  return caller != nullptr && !org.empty() && caller->org == org;
}

// The segments of a key after its prefix ("inv/a/INV-1" -> {"a", "INV-1"}).
std::vector<std::string> Segments(std::string_view key,
                                  std::string_view prefix) {
  key.remove_prefix(prefix.size());
  std::vector<std::string> out;
  while (true) {
    const size_t slash = key.find('/');
    out.emplace_back(key.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    key.remove_prefix(slash + 1);
  }
}

std::string Readable(const std::string& what, const std::string& seller,
                     const std::string& buyer, const Caller* caller) {
  return absl::StrCat(what, " is readable by ", seller, ", ", buyer,
                      " and auditors; ", Whose(caller));
}

}  // namespace

absl::StatusOr<InvoiceReads> ParseInvoiceReads(std::string_view name) {
  if (name == "open") return InvoiceReads::kOpen;
  if (name == "parties") return InvoiceReads::kParties;
  return absl::InvalidArgumentError(absl::StrCat(
      "--api_invoice_reads must be \"open\" or \"parties\", not \"",
      std::string(name), "\""));
}

bool IsInvoiceApp(std::string_view app) { return app == invoice::kAppName; }

bool ReadsAllInvoices(const Caller* caller) {
  return caller != nullptr && caller->audit;
}

std::optional<std::string> RefuseInvoiceRecord(
    const Caller* caller, std::string_view key,
    const std::optional<ByteView>& value) {
  if (ReadsAllInvoices(caller)) return std::nullopt;
  if (key.starts_with(kInvoicePrefix)) {
    std::vector<std::string> s = Segments(key, kInvoicePrefix);
    if (s.size() == 2) {
      const std::string what = absl::StrCat("invoice ", s[1], " of ", s[0]);
      if (Is(caller, s[0])) return std::nullopt;
      if (!value.has_value()) {
        // Absent: only its seller (or an auditor) learns so.
        return Readable(what, s[0], "its buyer", caller);
      }
      absl::StatusOr<invoice::InvoiceRecord> rec =
          invoice::DecodeInvoice(AsString(*value));
      if (!rec.ok()) return Readable(what, s[0], "its buyer", caller);
      if (Is(caller, rec->buyer_org)) return std::nullopt;
      return Readable(what, s[0], rec->buyer_org, caller);
    }
  } else if (key.starts_with(kBuyerPrefix)) {
    std::vector<std::string> s = Segments(key, kBuyerPrefix);
    if (s.size() == 3) {
      if (Is(caller, s[0]) || Is(caller, s[1])) return std::nullopt;
      return Readable(absl::StrCat("invoice ", s[2], " of ", s[1]), s[1], s[0],
                      caller);
    }
  }
  return absl::StrCat(
      "invoice record ", std::string(key),
      " is readable by auditors only (organisations read inv/<own org>/... "
      "and buyer/<own org>/...); ",
      Whose(caller));
}

std::optional<std::string> RefuseInvoiceScan(const Caller* caller,
                                             std::string_view prefix) {
  if (ReadsAllInvoices(caller)) return std::nullopt;
  if (caller != nullptr && !caller->org.empty()) {
    const std::string own_sold =
        std::string(kInvoicePrefix) + caller->org + "/";
    const std::string own_bought =
        std::string(kBuyerPrefix) + caller->org + "/";
    if (prefix.starts_with(own_sold) || prefix.starts_with(own_bought)) {
      return std::nullopt;
    }
  }
  // The two lists of the typed route, named as the client asked for them.
  for (std::string_view p : {kInvoicePrefix, kBuyerPrefix}) {
    if (!prefix.starts_with(p) || !prefix.ends_with('/')) continue;
    const std::string org(
        prefix.substr(p.size(), prefix.size() - p.size() - 1));
    if (org.empty() || org.find('/') != std::string::npos) continue;
    return absl::StrCat(
        "the invoices ", p == kInvoicePrefix ? "issued by " : "received by ",
        org, " are listed for ", org, " and auditors only; ", Whose(caller));
  }
  return absl::StrCat(
      "a scan of the invoice app is readable by auditors, or by an "
      "organisation under its own prefixes inv/<org>/ and buyer/<org>/; ",
      Whose(caller));
}

absl::StatusOr<std::optional<std::string>> RefuseInvoiceTx(
    StateQueries* state, const Caller* caller, const Transaction& tx,
    const Hash32& hash) {
  if (ReadsAllInvoices(caller)) return std::nullopt;
  const bool issue = tx.method == "issue";
  // The organisation the tx names: the buyer of an issue, the seller of a
  // step.
  const size_t named_arg = issue ? 1 : 0;
  const std::string named =
      tx.args.size() > named_arg ? tx.args[named_arg] : "";
  if (Is(caller, named)) return std::nullopt;
  absl::StatusOr<StateRecord> member = state->GetState(
      std::string(admin::kAppName), admin::MemberKey(tx.sender));
  if (!member.ok()) return member.status();
  std::string sender_org;
  if (member->found) {
    absl::StatusOr<admin::MemberRecord> m =
        admin::DecodeMember(AsString(member->value));
    if (m.ok()) sender_org = m->org;
  }
  if (Is(caller, sender_org)) return std::nullopt;
  const std::string seller = issue ? sender_org : named;
  const size_t number_arg = issue ? 0 : 1;
  const std::string number =
      tx.args.size() > number_arg ? tx.args[number_arg] : "";
  const std::string what =
      absl::StrCat("tx ", ToHex(ByteView(hash)), " (invoice ", number, " of ",
                   seller.empty() ? "?" : seller, ")");
  if (admin::CheckOrgId(seller).ok() &&
      invoice::CheckInvoiceNumber(number).ok()) {
    absl::StatusOr<StateRecord> inv = state->GetState(
        std::string(invoice::kAppName), invoice::InvoiceKey(seller, number));
    if (!inv.ok()) return inv.status();
    if (inv->found) {
      absl::StatusOr<invoice::InvoiceRecord> rec =
          invoice::DecodeInvoice(AsString(inv->value));
      if (rec.ok()) {
        bool step = false;
        for (const invoice::Step& s : rec->history) step |= s.tx == hash;
        if (step) {
          if (Is(caller, rec->issuer_org) || Is(caller, rec->buyer_org)) {
            return std::nullopt;
          }
          return Readable(what, rec->issuer_org, rec->buyer_org, caller);
        }
      }
    }
  }
  return absl::StrCat(what,
                      " is readable by the organisation that sent it, the "
                      "organisations it names, the invoice's seller and "
                      "buyer, and auditors; ",
                      Whose(caller));
}

}  // namespace consortia::api
