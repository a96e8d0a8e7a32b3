#include "apps/invoice_app.h"

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "apps/membership.h"
#include "consortia/admin_records.h"

namespace consortia::storage {
namespace {

using invoice::InvoiceRecord;
using invoice::Status;

absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

ExecResult Fail(ExecCode code, std::string log) {
  return ExecResult{code, std::move(log)};
}

// "invoice INV-42 of org-a".
std::string Name(std::string_view issuer_org, std::string_view number) {
  return absl::StrCat("invoice ", Sv(number), " of ", Sv(issuer_org));
}
std::string Name(const InvoiceRecord& r) {
  return Name(r.issuer_org, r.number);
}

// 123456 -> "1234.56".
std::string Units(uint64_t cents) {
  const uint64_t rest = cents % 100;
  return absl::StrCat(cents / 100, ".", rest < 10 ? "0" : "", rest);
}

std::string RolesOf(const admin::MemberRecord& m) {
  std::vector<std::string> names;
  for (admin::Role r : m.roles) names.emplace_back(admin::RoleName(r));
  return absl::StrJoin(names, ", ");
}

// The sender's member record, or the kUnauthorized refusal.
struct Sender {
  std::optional<admin::MemberRecord> member;
  std::optional<ExecResult> refusal;
};

absl::StatusOr<Sender> FindSender(const TxContext& ctx, StateOverlay* state,
                                  std::string_view what) {
  absl::StatusOr<std::optional<admin::MemberRecord>> m =
      FindMember(state, ctx.tx->sender);
  if (!m.ok()) return m.status();
  Sender s;
  if (!m->has_value()) {
    s.refusal = Fail(ExecCode::kUnauthorized,
                     absl::StrCat("the sender's key is not a member of the "
                                  "consortium, so it may not ",
                                  Sv(what), " an invoice"));
  } else {
    s.member = *std::move(*m);
  }
  return s;
}

// The stored invoice, nullopt if there is none. DataLoss if it does not
// decode (state is corrupt: the block must not commit).
absl::StatusOr<std::optional<InvoiceRecord>> Load(StateOverlay* state,
                                                  const std::string& key) {
  absl::StatusOr<std::optional<StateEntry>> entry =
      state->Get(InvoiceApp::kName, key);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value()) return std::nullopt;
  absl::StatusOr<InvoiceRecord> r =
      invoice::DecodeInvoice(AsString((*entry)->value));
  if (!r.ok()) {
    return absl::DataLossError(absl::StrCat(
        "invoice state ", key, " does not decode: ", r.status().message()));
  }
  return *std::move(r);
}

// The invoice a step names (args issuer_org, number, already checked): its
// record, or the kNotFound result to answer when there is none.
absl::StatusOr<std::variant<InvoiceRecord, ExecResult>> LoadNamed(
    StateOverlay* state, const Transaction& tx) {
  absl::StatusOr<std::optional<InvoiceRecord>> loaded =
      Load(state, invoice::InvoiceKey(tx.args[0], tx.args[1]));
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) {
    return Fail(ExecCode::kNotFound,
                absl::StrCat("no ", Name(tx.args[0], tx.args[1])));
  }
  return *std::move(*loaded);
}

// Writes the record and its buyer index entry (both owned by the issuing
// key).
void Save(StateOverlay* state, const InvoiceRecord& r) {
  state->Put(InvoiceApp::kName, invoice::InvoiceKey(r.issuer_org, r.number),
             StateEntry{ToBytes(invoice::EncodeInvoice(r)), r.issuer_key});
  state->Put(
      InvoiceApp::kName,
      invoice::BuyerIndexKey(r.buyer_org, r.issuer_org, r.number),
      StateEntry{ToBytes(invoice::EncodeBuyerIndexEntry(invoice::SummaryOf(r))),
                 r.issuer_key});
}

void AppendStep(const TxContext& ctx, const admin::MemberRecord& sender,
                Status step, std::string note, InvoiceRecord* r) {
  r->history.push_back(invoice::Step{step, ctx.height, ctx.block_time_ms,
                                     sender.org, ctx.tx->sender, ctx.tx_hash,
                                     std::move(note)});
  r->status = step;
}

// "already reimbursed at height H by tx T".
std::string ReimbursedAt(const InvoiceRecord& r) {
  for (const invoice::Step& s : r.history) {
    if (s.step == Status::kReimbursed) {
      return absl::StrCat("already reimbursed at height ", s.height, " by tx ",
                          ToHex(s.tx));
    }
  }
  return "already reimbursed";
}

// The args (issuer_org, number[, reason]) of the steps after issue:
// empty when they are well-formed, else the reason.
std::string StepArgsProblem(const Transaction& tx, size_t want,
                            std::string_view usage) {
  if (tx.args.size() != want) {
    return absl::StrCat(tx.method, " takes ", want, " args (", Sv(usage),
                        "), got ", tx.args.size());
  }
  if (absl::Status s = admin::CheckOrgId(tx.args[0]); !s.ok()) {
    return absl::StrCat("issuer_org: ", s.message());
  }
  if (absl::Status s = invoice::CheckInvoiceNumber(tx.args[1]); !s.ok()) {
    return std::string(s.message());
  }
  if (want == 3) {
    if (absl::Status s = invoice::CheckNote(tx.args[2]); !s.ok()) {
      return std::string(s.message());
    }
  }
  return "";
}

absl::StatusOr<ExecResult> Issue(const TxContext& ctx, StateOverlay* state) {
  const Transaction& tx = *ctx.tx;
  if (tx.args.size() != 6) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("issue takes 6 args (number, buyer_org, "
                             "amount_cents, tax_cents, currency, items_hash), "
                             "got ",
                             tx.args.size()));
  }
  const std::string& number = tx.args[0];
  const std::string& buyer = tx.args[1];
  if (absl::Status s = invoice::CheckInvoiceNumber(number); !s.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(s.message()));
  }
  if (absl::Status s = admin::CheckOrgId(buyer); !s.ok()) {
    return Fail(ExecCode::kBadArgs, absl::StrCat("buyer_org: ", s.message()));
  }
  absl::StatusOr<uint64_t> amount = invoice::ParseCents(tx.args[2]);
  if (!amount.ok()) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("amount_cents: ", amount.status().message()));
  }
  absl::StatusOr<uint64_t> tax = invoice::ParseCents(tx.args[3]);
  if (!tax.ok()) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("tax_cents: ", tax.status().message()));
  }
  if (absl::Status s = invoice::CheckCurrency(tx.args[4]); !s.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(s.message()));
  }
  absl::StatusOr<Hash32> items = invoice::ParseHashHex(tx.args[5]);
  if (!items.ok()) {
    return Fail(ExecCode::kBadArgs, std::string(items.status().message()));
  }

  absl::StatusOr<Sender> sender = FindSender(ctx, state, "issue");
  if (!sender.ok()) return sender.status();
  if (sender->refusal) return *sender->refusal;
  const admin::MemberRecord& m = *sender->member;
  if (!m.Has(admin::Role::kIssuer)) {
    return Fail(ExecCode::kUnauthorized,
                absl::StrCat("issuing an invoice needs a key with the issuer "
                             "role; the sender's key (of ",
                             m.org, ") has: ", RolesOf(m)));
  }
  if (buyer == m.org) {
    return Fail(ExecCode::kBadArgs,
                absl::StrCat("the buyer must be another organisation than the "
                             "issuer ",
                             m.org));
  }
  absl::StatusOr<std::optional<StateEntry>> buyer_org =
      state->Get(admin::kAppName, admin::OrgKey(buyer));
  if (!buyer_org.ok()) return buyer_org.status();
  if (!buyer_org->has_value()) {
    return Fail(ExecCode::kNotFound,
                absl::StrCat("no organisation ", buyer, " in the consortium"));
  }
  const std::string key = invoice::InvoiceKey(m.org, number);
  absl::StatusOr<std::optional<InvoiceRecord>> existing = Load(state, key);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return Fail(
        ExecCode::kExists,
        absl::StrCat(Name(m.org, number),
                     " exists already (issued at "
                     "height ",
                     (*existing)->history.front().height, ", now ",
                     Sv(invoice::StatusName((*existing)->status)), ")"));
  }

  InvoiceRecord r;
  r.issuer_org = m.org;
  r.number = number;
  r.issuer_key = tx.sender;
  r.buyer_org = buyer;
  r.amount_cents = *amount;
  r.tax_cents = *tax;
  r.currency = tx.args[4];
  r.items_hash = *items;
  AppendStep(ctx, m, Status::kIssued, "", &r);
  Save(state, r);
  return ExecResult{
      ExecCode::kOk,
      absl::StrCat(Name(r), " issued to ", buyer, " for ",
                   Units(r.amount_cents + r.tax_cents), " ", r.currency, " (",
                   Units(r.amount_cents), " + ", Units(r.tax_cents), " tax)")};
}

// accept, reject and reimburse: a step of the buyer organisation.
absl::StatusOr<ExecResult> BuyerStep(const TxContext& ctx, StateOverlay* state,
                                     Status to) {
  const Transaction& tx = *ctx.tx;
  const bool with_reason = to == Status::kRejected;
  std::string problem = StepArgsProblem(
      tx, with_reason ? 3 : 2,
      with_reason ? "issuer_org, number, reason" : "issuer_org, number");
  if (!problem.empty()) return Fail(ExecCode::kBadArgs, std::move(problem));
  const std::string verb = tx.method;  // accept, reject, reimburse
  absl::StatusOr<Sender> sender = FindSender(ctx, state, verb);
  if (!sender.ok()) return sender.status();
  if (sender->refusal) return *sender->refusal;
  const admin::MemberRecord& m = *sender->member;

  absl::StatusOr<std::variant<InvoiceRecord, ExecResult>> named =
      LoadNamed(state, tx);
  if (!named.ok()) return named.status();
  if (auto* refused = std::get_if<ExecResult>(&*named)) return *refused;
  InvoiceRecord r = std::get<InvoiceRecord>(*std::move(named));
  if (m.org != r.buyer_org || !m.Has(admin::Role::kMember)) {
    return Fail(ExecCode::kUnauthorized,
                absl::StrCat("to ", verb, " ", Name(r),
                             " needs a key with the member role of its buyer ",
                             r.buyer_org, "; the sender's key is of ", m.org,
                             " with roles: ", RolesOf(m)));
  }
  if (to == Status::kReimbursed) {
    if (r.status == Status::kReimbursed) {
      return Fail(ExecCode::kInvalidState,
                  absl::StrCat(Name(r), " was ", ReimbursedAt(r)));
    }
    if (r.status != Status::kAccepted) {
      return Fail(
          ExecCode::kInvalidState,
          absl::StrCat(Name(r), " is ", Sv(invoice::StatusName(r.status)),
                       "; only an accepted invoice can be reimbursed"));
    }
  } else if (r.status != Status::kIssued) {
    std::string log = absl::StrCat(
        Name(r), " is ", Sv(invoice::StatusName(r.status)),
        "; only an issued invoice can be ", Sv(invoice::StatusName(to)));
    if (r.status == Status::kReimbursed) {
      absl::StrAppend(&log, " (", ReimbursedAt(r), ")");
    }
    return Fail(ExecCode::kInvalidState, std::move(log));
  }
  AppendStep(ctx, m, to, with_reason ? tx.args[2] : "", &r);
  Save(state, r);
  return ExecResult{
      ExecCode::kOk,
      absl::StrCat(Name(r), " ", Sv(invoice::StatusName(to)), " by ", m.org)};
}

absl::StatusOr<ExecResult> Void(const TxContext& ctx, StateOverlay* state) {
  const Transaction& tx = *ctx.tx;
  std::string problem = StepArgsProblem(tx, 3, "issuer_org, number, reason");
  if (!problem.empty()) return Fail(ExecCode::kBadArgs, std::move(problem));
  absl::StatusOr<Sender> sender = FindSender(ctx, state, "void");
  if (!sender.ok()) return sender.status();
  if (sender->refusal) return *sender->refusal;
  const admin::MemberRecord& m = *sender->member;

  absl::StatusOr<std::variant<InvoiceRecord, ExecResult>> named =
      LoadNamed(state, tx);
  if (!named.ok()) return named.status();
  if (auto* refused = std::get_if<ExecResult>(&*named)) return *refused;
  InvoiceRecord r = std::get<InvoiceRecord>(*std::move(named));
  if (m.org != r.issuer_org || !m.Has(admin::Role::kIssuer)) {
    return Fail(ExecCode::kUnauthorized,
                absl::StrCat("to void ", Name(r),
                             " needs a key with the issuer role of ",
                             r.issuer_org, "; the sender's key is of ", m.org,
                             " with roles: ", RolesOf(m)));
  }
  if (r.status == Status::kReimbursed) {
    return Fail(ExecCode::kInvalidState,
                absl::StrCat(Name(r), " was ", ReimbursedAt(r),
                             "; a reimbursed invoice cannot be voided"));
  }
  if (r.status != Status::kIssued && r.status != Status::kAccepted) {
    return Fail(ExecCode::kInvalidState,
                absl::StrCat(Name(r), " is ", Sv(invoice::StatusName(r.status)),
                             "; only an issued or accepted invoice can be "
                             "voided"));
  }
  AppendStep(ctx, m, Status::kVoided, tx.args[2], &r);
  Save(state, r);
  return ExecResult{ExecCode::kOk, absl::StrCat(Name(r), " voided by ", m.org)};
}

// Splits `key` at '/'.
std::vector<std::string_view> Parts(std::string_view key) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  while (true) {
    const size_t slash = key.find('/', begin);
    if (slash == std::string_view::npos) {
      out.push_back(key.substr(begin));
      return out;
    }
    out.push_back(key.substr(begin, slash - begin));
    begin = slash + 1;
  }
}

}  // namespace

absl::StatusOr<ExecResult> InvoiceApp::Execute(const TxContext& ctx,
                                               StateOverlay* state) const {
  const std::string& method = ctx.tx->method;
  if (method == "issue") return Issue(ctx, state);
  if (method == "accept") return BuyerStep(ctx, state, Status::kAccepted);
  if (method == "reject") return BuyerStep(ctx, state, Status::kRejected);
  if (method == "reimburse") return BuyerStep(ctx, state, Status::kReimbursed);
  if (method == "void") return Void(ctx, state);
  return Fail(ExecCode::kUnknownMethod,
              absl::StrCat("invoice has no method '", method,
                           "' (issue, accept, reject, reimburse, void)"));
}

void InvoiceApp::AddReadHints(const Transaction& tx,
                              std::vector<std::string>* keys) const {
  const std::string& m = tx.method;
  if ((m == "accept" || m == "reject" || m == "reimburse" || m == "void") &&
      tx.args.size() >= 2 && admin::CheckOrgId(tx.args[0]).ok() &&
      invoice::CheckInvoiceNumber(tx.args[1]).ok()) {
    keys->push_back(invoice::InvoiceKey(tx.args[0], tx.args[1]));
  }
}

void InvoiceApp::AddOtherAppReadHints(const Transaction& tx,
                                      std::vector<AppStateKey>* keys) const {
  keys->push_back(
      AppStateKey{std::string(admin::kAppName), admin::MemberKey(tx.sender)});
  if (tx.method == "issue" && tx.args.size() >= 2 &&
      admin::CheckOrgId(tx.args[1]).ok()) {
    keys->push_back(
        AppStateKey{std::string(admin::kAppName), admin::OrgKey(tx.args[1])});
  }
}

absl::Status InvoiceApp::CheckQueryKey(std::string_view key) const {
  const std::vector<std::string_view> parts = Parts(key);
  bool ok = false;
  if (parts.size() == 3 && parts[0] == "inv") {
    ok = admin::CheckOrgId(parts[1]).ok() &&
         invoice::CheckInvoiceNumber(parts[2]).ok();
  } else if (parts.size() == 4 && parts[0] == "buyer") {
    ok = admin::CheckOrgId(parts[1]).ok() && admin::CheckOrgId(parts[2]).ok() &&
         invoice::CheckInvoiceNumber(parts[3]).ok();
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        "an invoice key is inv/<issuer org>/<number> or "
        "buyer/<buyer org>/<issuer org>/<number>");
  }
  return absl::OkStatus();
}

}  // namespace consortia::storage
