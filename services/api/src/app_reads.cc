#include "app_reads.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "consortia/admin_records.h"
#include "consortia/bytes.h"
#include "consortia/http_server.h"
#include "consortia/invoice_records.h"

namespace consortia::api {
namespace {

absl::StatusOr<std::string> Segment(std::string_view raw,
                                    absl::string_view what) {
  absl::StatusOr<std::string> s = PercentDecode(raw);
  if (!s.ok() || s->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be non-empty and correctly percent-encoded"));
  }
  return s;
}

absl::StatusOr<std::string> OrgId(std::string_view raw,
                                  absl::string_view what) {
  absl::StatusOr<std::string> id = Segment(raw, what);
  if (!id.ok()) return id;
  if (absl::Status s = admin::CheckOrgId(*id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  }
  return id;
}

absl::StatusOr<std::string> InvoiceNumber(std::string_view raw) {
  absl::StatusOr<std::string> n = Segment(raw, "number");
  if (!n.ok()) return n;
  if (absl::Status s = invoice::CheckInvoiceNumber(*n); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("number: ", s.message()));
  }
  return n;
}

// Lower-case hex; `bytes` = 0 for any non-empty length.
absl::StatusOr<std::string> HexSegment(std::string_view raw,
                                       absl::string_view what, size_t bytes) {
  absl::StatusOr<std::string> s = Segment(raw, what);
  if (!s.ok()) return s;
  absl::StatusOr<Bytes> b = FromHex(*s);
  if (!b.ok() || b->empty() || (bytes != 0 && b->size() != bytes)) {
    return absl::InvalidArgumentError(
        bytes == 0 ? absl::StrCat(what, " must be hex")
                   : absl::StrCat(what, " must be ", 2 * bytes, " hex digits"));
  }
  return absl::AsciiStrToLower(*s);
}

AppRead One(std::string_view app, std::string key) {
  return AppRead{std::string(app), std::move(key), std::nullopt};
}

AppRead Page(std::string_view app, std::string prefix) {
  return AppRead{std::string(app), "", std::move(prefix)};
}

}  // namespace

bool IsAppRead(RouteId id) {
  switch (id) {
    case RouteId::kGetInvoice:
    case RouteId::kListInvoices:
    case RouteId::kGetDocument:
    case RouteId::kListOrgs:
    case RouteId::kListMembers:
    case RouteId::kGetMember:
    case RouteId::kListProposals:
    case RouteId::kGetProposal:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<AppRead> ResolveAppRead(
    RouteId id, const std::vector<std::string_view>& parts,
    const std::map<std::string, std::string>& query) {
  switch (id) {
    case RouteId::kGetInvoice: {  // v1 apps invoice invoices {issuer} {number}
      absl::StatusOr<std::string> issuer = OrgId(parts[4], "issuer");
      if (!issuer.ok()) return issuer.status();
      absl::StatusOr<std::string> number = InvoiceNumber(parts[5]);
      if (!number.ok()) return number.status();
      return One("invoice", absl::StrCat("inv/", *issuer, "/", *number));
    }
    case RouteId::kListInvoices: {
      const auto buyer = query.find("buyer");
      const auto seller = query.find("seller");
      if ((buyer == query.end()) == (seller == query.end())) {
        return absl::InvalidArgumentError(
            "name exactly one of ?buyer=ORG (the invoices an organisation "
            "received) and ?seller=ORG (those it issued)");
      }
      if (buyer != query.end()) {
        absl::StatusOr<std::string> org = OrgId(buyer->second, "buyer");
        if (!org.ok()) return org.status();
        return Page("invoice", absl::StrCat("buyer/", *org, "/"));
      }
      absl::StatusOr<std::string> org = OrgId(seller->second, "seller");
      if (!org.ok()) return org.status();
      return Page("invoice", absl::StrCat("inv/", *org, "/"));
    }
    case RouteId::kGetDocument: {  // v1 apps notary documents {hash}
      absl::StatusOr<std::string> hash = HexSegment(parts[4], "hash", 32);
      if (!hash.ok()) return hash.status();
      return One("notary", absl::StrCat("doc/", *hash));
    }
    case RouteId::kListOrgs:
      return Page(admin::kAppName, "org/");
    case RouteId::kListMembers:
      return Page(admin::kAppName, "member/");
    case RouteId::kGetMember: {  // v1 apps admin members {public_key}
      absl::StatusOr<std::string> key = HexSegment(parts[4], "public_key", 0);
      if (!key.ok()) return key.status();
      return One(admin::kAppName, absl::StrCat("member/", *key));
    }
    case RouteId::kListProposals:
      return Page(admin::kAppName, "proposal/");
    case RouteId::kGetProposal: {  // v1 apps admin proposals {id}
      absl::StatusOr<std::string> pid = HexSegment(parts[4], "id", 32);
      if (!pid.ok()) return pid.status();
      return One(admin::kAppName, absl::StrCat("proposal/", *pid));
    }
    default:
      return absl::InvalidArgumentError("not an app route");
  }
}

}  // namespace consortia::api
