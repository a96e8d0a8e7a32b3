#include "app_words.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "consortia/admin_records.h"
#include "consortia/invoice_records.h"
#include "consortia/notary_records.h"

namespace consortia::cli {
namespace {

absl::string_view V(std::string_view s) { return {s.data(), s.size()}; }

// 123456 -> "1234.56".
std::string Money(uint64_t cents) {
  const uint64_t c = cents % 100;
  return absl::StrCat(cents / 100, ".", c < 10 ? "0" : "", c);
}

std::string Utc(uint64_t time_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::FromUnixMillis(static_cast<int64_t>(time_ms)),
                          absl::UTCTimeZone());
}

std::string Short(const std::string& hex) {
  return hex.size() > 16 ? hex.substr(0, 16) + "..." : hex;
}

std::string Invoice(const invoice::InvoiceRecord& r) {
  std::vector<std::string> steps;
  for (const invoice::Step& s : r.history) {
    std::string step = absl::StrCat(V(invoice::StatusName(s.step)), " by ",
                                    s.org, " at height ", s.height);
    if (!s.note.empty()) absl::StrAppend(&step, " (\"", s.note, "\")");
    steps.push_back(std::move(step));
  }
  const bool final = r.status == invoice::Status::kReimbursed ||
                     r.status == invoice::Status::kRejected ||
                     r.status == invoice::Status::kVoided;
  return absl::StrCat(
      "invoice ", r.number, " of ", r.issuer_org, " to ", r.buyer_org, ", ",
      Money(r.amount_cents), " ", r.currency, " + tax ", Money(r.tax_cents),
      ": ", absl::StrJoin(steps, ", "), final ? "; final" : "; not final");
}

std::string Document(const notary::DocRecord& r) {
  std::string owner = r.owner_org.empty()
                          ? absl::StrCat("key ", Short(ToHex(r.owner_key)))
                          : absl::StrCat("org ", r.owner_org);
  std::string s = absl::StrCat("document ", ToHex(r.hash), " anchored by ",
                               owner, " at height ", r.anchored_height,
                               ", block time ", Utc(r.anchored_time_ms));
  if (!r.metadata.empty()) absl::StrAppend(&s, " (\"", r.metadata, "\")");
  for (const notary::Step& step : r.history) {
    if (step.step == notary::Status::kRevoked) {
      absl::StrAppend(&s, "; revoked at height ", step.height);
      if (!step.note.empty()) absl::StrAppend(&s, " (\"", step.note, "\")");
    }
  }
  return s;
}

std::string Proposal(const admin::ProposalRecord& p) {
  std::string s =
      absl::StrCat("proposal ", Short(p.id), " by ", p.proposer_org, ": ",
                   V(admin::ActionTypeName(p.action.type)), ", approved by ",
                   absl::StrJoin(p.approvals, ", "), "; ",
                   V(admin::ProposalStatusName(p.status)));
  if (p.executed_height != 0) {
    absl::StrAppend(&s, " at height ", p.executed_height);
  } else {
    absl::StrAppend(&s, " until height ", p.expires_height);
  }
  return s;
}

std::string Names(const std::vector<admin::ValidatorEntry>& vals) {
  std::vector<std::string> names;
  for (const admin::ValidatorEntry& v : vals) {
    names.push_back(
        v.power == 1 ? v.name : absl::StrCat(v.name, " (power ", v.power, ")"));
  }
  return absl::StrCat(vals.size(), " validators: ", absl::StrJoin(names, ", "));
}

std::string ValidatorChange(const admin::ValidatorChangeRecord& c) {
  if (c.committed_height == 0) {
    return absl::StrCat(Names(c.validators), " (the genesis set)");
  }
  return absl::StrCat("from height ", c.effective_height, ", ",
                      Names(c.validators), "; below it, ", Names(c.previous),
                      " (changed by proposal ", Short(c.proposal),
                      " at height ", c.committed_height, ")");
}

std::string Member(const admin::MemberRecord& m) {
  std::vector<std::string> roles;
  for (admin::Role r : m.roles) roles.emplace_back(admin::RoleName(r));
  return absl::StrCat("key ", Short(ToHex(m.public_key)), " is a member of ",
                      m.org, " with roles ", absl::StrJoin(roles, ","),
                      m.added_height == 0 ? " (named in the genesis)"
                                          : absl::StrCat(" (since height ",
                                                         m.added_height, ")"));
}

}  // namespace

std::string DescribeRecord(std::string_view app, std::string_view key,
                           std::string_view value) {
  const absl::string_view k = V(key);
  if (app == invoice::kAppName && absl::StartsWith(k, "inv/")) {
    if (auto r = invoice::DecodeInvoice(value); r.ok()) return Invoice(*r);
  } else if (app == invoice::kAppName && absl::StartsWith(k, "buyer/")) {
    if (auto e = invoice::DecodeBuyerIndexEntry(value); e.ok()) {
      return absl::StrCat("invoice ", e->number, " of ", e->issuer_org, ", ",
                          Money(e->amount_cents), " ", e->currency, ": ",
                          V(invoice::StatusName(e->status)), " at height ",
                          e->height);
    }
  } else if (app == notary::kAppName && absl::StartsWith(k, "doc/")) {
    if (auto r = notary::DecodeDoc(value); r.ok()) return Document(*r);
  } else if (app == admin::kAppName && absl::StartsWith(k, "org/")) {
    if (auto o = admin::DecodeOrg(value); o.ok()) {
      return absl::StrCat("organisation ", o->id, " (", o->name, ")",
                          o->added_height == 0 ? ", named in the genesis"
                                               : absl::StrCat(", since height ",
                                                              o->added_height));
    }
  } else if (app == admin::kAppName && absl::StartsWith(k, "member/")) {
    if (auto m = admin::DecodeMember(value); m.ok()) return Member(*m);
  } else if (app == admin::kAppName && absl::StartsWith(k, "proposal/")) {
    if (auto p = admin::DecodeProposal(value); p.ok()) return Proposal(*p);
  } else if (app == admin::kAppName && k == V(admin::kValidatorsKey)) {
    if (auto c = admin::DecodeValidatorChange(value); c.ok()) {
      return ValidatorChange(*c);
    }
  }
  return absl::StrCat(V(app), "/", k, " = ", V(value));
}

}  // namespace consortia::cli
