// The invoice and notary apps, executed by a real ledger over RocksDB. The
// consortium's organisations and members are written into the admin app's
// state by a test-only app ("test-seed") through ordinary txs, so they are
// part of state (and of its root) as the admin app will write them.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "apps/app.h"
#include "apps/invoice_app.h"
#include "apps/notary_app.h"
#include "consortia/admin_records.h"
#include "consortia/invoice_records.h"
#include "consortia/notary_records.h"
#include "consortia/proof_bundle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keys.h"
#include "kv_store.h"
#include "ledger.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using invoice::InvoiceRecord;
using ::testing::HasSubstr;
using testing::Suite;
using testing::TempDir;

// Test-only: writes admin records as the admin app will.
//   org(id)                      -> org/<id>
//   member(key hex, org, roles)  -> member/<hex>, roles comma-separated
class SeedAppForTest : public NativeApp {
 public:
  std::string_view name() const override { return "test-seed"; }
  absl::StatusOr<ExecResult> Execute(const TxContext& ctx,
                                     StateOverlay* state) const override {
    const Transaction& tx = *ctx.tx;
    if (tx.method == "org" && tx.args.size() == 1) {
      admin::OrgRecord org{tx.args[0], "Org " + tx.args[0], ctx.height};
      state->Put(admin::kAppName, admin::OrgKey(org.id),
                 StateEntry{ToBytes(admin::EncodeOrg(org)), tx.sender});
      return ExecResult{ExecCode::kOk, "org"};
    }
    if (tx.method == "member" && tx.args.size() == 3) {
      admin::MemberRecord m;
      m.public_key = *FromHex(tx.args[0]);
      m.org = tx.args[1];
      for (absl::string_view r : absl::StrSplit(tx.args[2], ',')) {
        m.roles.push_back(*admin::ParseRole(std::string(r)));
      }
      m.added_height = ctx.height;
      state->Put(admin::kAppName, admin::MemberKey(m.public_key),
                 StateEntry{ToBytes(admin::EncodeMember(m)), tx.sender});
      return ExecResult{ExecCode::kOk, "member"};
    }
    if (tx.method == "raw" && tx.args.size() == 3) {  // app, key, value
      state->Put(tx.args[0], tx.args[1],
                 StateEntry{ToBytes(tx.args[2]), tx.sender});
      return ExecResult{ExecCode::kOk, "raw"};
    }
    return ExecResult{ExecCode::kBadArgs, "seed"};
  }
  absl::Status CheckQueryKey(std::string_view) const override {
    return absl::OkStatus();
  }
};

// Forwards to a real store and remembers the keys read one at a time.
class CountingStoreForTest : public KvStore {
 public:
  explicit CountingStoreForTest(KvStore* inner) : inner_(inner) {}
  absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) override {
    {
      absl::MutexLock l(&mu_);
      single_reads_.emplace_back(key);
    }
    return inner_->Get(key);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    return inner_->MultiGet(keys);
  }
  std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) override {
    return inner_->NewIterator(prefix);
  }
  absl::Status Write(const WriteBatch& batch) override {
    return inner_->Write(batch);
  }
  std::string Describe() const override { return inner_->Describe(); }

  // The state records (keys::State) read one at a time since the last call.
  std::vector<std::string> TakeStateReads() {
    absl::MutexLock l(&mu_);
    std::vector<std::string> out;
    for (const std::string& k : single_reads_) {
      absl::StatusOr<keys::AppKey> ak = keys::ParseState(k);
      if (ak.ok())
        out.push_back(std::string(ak->app) + ":" + std::string(ak->key));
    }
    single_reads_.clear();
    return out;
  }

 private:
  KvStore* inner_;
  absl::Mutex mu_;
  std::vector<std::string> single_reads_ ABSL_GUARDED_BY(mu_);
};

class AppsTest : public ::testing::Test {
 protected:
  AppsTest() : apps_(AppRegistry::WithBuiltins()) {
    apps_.Add(std::make_unique<SeedAppForTest>());
    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("ledger"), false});
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    counting_ = std::make_unique<CountingStoreForTest>(store_.get());
    Ledger::Options o;
    o.store = counting_.get();
    o.genesis = &chain_.genesis;
    o.suite = &Suite();
    o.apps = &apps_;
    o.location = dir_.Sub("ledger");
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(o);
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);

    for (KeyPair* k :
         {&seeder_, &issuer_a_, &admin_a_, &member_a_, &buyer_b_, &buyer2_b_,
          &auditor_b_, &member_c_, &issuer_c_, &outsider_}) {
      *k = Suite().GenerateKey();
    }
    Commit({Seed("org", {"org-a"}), Seed("org", {"org-b"}),
            Seed("org", {"org-c"}), Member(issuer_a_, "org-a", "issuer"),
            Member(admin_a_, "org-a", "admin"),
            Member(member_a_, "org-a", "member"),
            Member(buyer_b_, "org-b", "member"),
            Member(buyer2_b_, "org-b", "admin,member"),
            Member(auditor_b_, "org-b", "auditor"),
            Member(member_c_, "org-c", "member"),
            Member(issuer_c_, "org-c", "issuer,member")});
  }

  Bytes Tx(const KeyPair& key, std::string app, std::string method,
           std::vector<std::string> args) {
    Transaction tx;
    tx.chain_id = chain_.genesis.chain_id;
    tx.nonce = ++nonce_;
    tx.valid_until = 100000;
    tx.sender = key.public_key;
    tx.app = std::move(app);
    tx.method = std::move(method);
    tx.args = std::move(args);
    tx.signature = *Suite().Sign(key.secret_key, TxSignBytes(tx));
    return EncodeTx(tx);
  }
  Bytes Seed(std::string method, std::vector<std::string> args) {
    return Tx(seeder_, "test-seed", std::move(method), std::move(args));
  }
  Bytes Member(const KeyPair& k, std::string org, std::string roles) {
    return Seed("member", {ToHex(k.public_key), std::move(org), roles});
  }
  Bytes Inv(const KeyPair& k, std::string method,
            std::vector<std::string> args) {
    return Tx(k, "invoice", std::move(method), std::move(args));
  }
  Bytes Doc(const KeyPair& k, std::string method,
            std::vector<std::string> args) {
    return Tx(k, "notary", std::move(method), std::move(args));
  }
  Bytes Issue(const KeyPair& k, std::string number,
              std::string amount = "100000", std::string tax = "13000",
              std::string buyer = "org-b") {
    return Inv(k, "issue",
               {std::move(number), std::move(buyer), std::move(amount),
                std::move(tax), "CNY", std::string(64, 'c')});
  }

  ChainState State() {
    absl::StatusOr<ChainState> s = ledger_->GetChainState();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : ChainState{};
  }
  // Commits the next block; returns its header.
  BlockHeader Commit(std::vector<Bytes> txs) {
    Block b = chain_.NextBlock(State(), std::move(txs));
    absl::StatusOr<CommitResult> r =
        ledger_->CommitBlock(EncodeBlock(b), chain_.Certify(b.header));
    EXPECT_TRUE(r.ok()) << r.status();
    return b.header;
  }
  Receipt ReceiptOf(const Bytes& raw) {
    absl::StatusOr<TxRecord> rec = ledger_->GetTx(testing::Chain::HashOf(raw));
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? rec->receipt : Receipt{};
  }
  ExecCode CodeOf(const Bytes& raw) { return ReceiptOf(raw).code; }
  std::string LogOf(const Bytes& raw) { return ReceiptOf(raw).log; }

  StateRecord Get(const std::string& app, const std::string& key) {
    absl::StatusOr<StateRecord> s = ledger_->GetState(app, key);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : StateRecord{};
  }
  std::optional<InvoiceRecord> Invoice(const std::string& issuer,
                                       const std::string& number) {
    StateRecord s = Get("invoice", invoice::InvoiceKey(issuer, number));
    if (!s.found) return std::nullopt;
    absl::StatusOr<InvoiceRecord> r = invoice::DecodeInvoice(AsString(s.value));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::optional<InvoiceRecord>(*r) : std::nullopt;
  }
  std::optional<invoice::BuyerIndexEntry> Summary(const std::string& buyer,
                                                  const std::string& issuer,
                                                  const std::string& number) {
    StateRecord s =
        Get("invoice", invoice::BuyerIndexKey(buyer, issuer, number));
    if (!s.found) return std::nullopt;
    absl::StatusOr<invoice::BuyerIndexEntry> e =
        invoice::DecodeBuyerIndexEntry(AsString(s.value));
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::optional<invoice::BuyerIndexEntry>(*e) : std::nullopt;
  }
  std::optional<notary::DocRecord> Document(const Hash32& h) {
    StateRecord s = Get("notary", notary::DocKey(h));
    if (!s.found) return std::nullopt;
    absl::StatusOr<notary::DocRecord> r = notary::DecodeDoc(AsString(s.value));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::optional<notary::DocRecord>(*r) : std::nullopt;
  }

  // An invoice issued by issuer_a_ to org-b and accepted by buyer_b_.
  void IssueAndAccept(const std::string& number) {
    Bytes issue = Issue(issuer_a_, number);
    Bytes accept = Inv(buyer_b_, "accept", {"org-a", number});
    Commit({issue, accept});
    ASSERT_EQ(CodeOf(issue), ExecCode::kOk) << LogOf(issue);
    ASSERT_EQ(CodeOf(accept), ExecCode::kOk) << LogOf(accept);
  }

  TempDir dir_;
  testing::Chain chain_;
  AppRegistry apps_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<CountingStoreForTest> counting_;
  std::unique_ptr<Ledger> ledger_;
  uint64_t nonce_ = 0;
  KeyPair seeder_, issuer_a_, admin_a_, member_a_, buyer_b_, buyer2_b_,
      auditor_b_, member_c_, issuer_c_, outsider_;
};

// ---------------------------------------------------------------- invoice --

TEST_F(AppsTest, InvoiceIssueAcceptReimburseKeepsTheWholeHistory) {
  Bytes issue = Issue(issuer_a_, "INV-42");
  const BlockHeader h_issue = Commit({issue});
  EXPECT_EQ(CodeOf(issue), ExecCode::kOk) << LogOf(issue);
  EXPECT_EQ(LogOf(issue),
            "invoice INV-42 of org-a issued to org-b for 1130.00 CNY "
            "(1000.00 + 130.00 tax)");
  std::optional<InvoiceRecord> r = Invoice("org-a", "INV-42");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->issuer_org, "org-a");
  EXPECT_EQ(r->issuer_key, issuer_a_.public_key);
  EXPECT_EQ(r->buyer_org, "org-b");
  EXPECT_EQ(r->amount_cents, 100000u);
  EXPECT_EQ(r->tax_cents, 13000u);
  EXPECT_EQ(r->currency, "CNY");
  EXPECT_EQ(ToHex(r->items_hash), std::string(64, 'c'));
  EXPECT_EQ(r->status, invoice::Status::kIssued);
  ASSERT_EQ(r->history.size(), 1u);
  EXPECT_EQ(r->history[0].height, h_issue.height);
  EXPECT_EQ(r->history[0].time_ms, h_issue.time_ms);
  EXPECT_EQ(r->history[0].org, "org-a");
  EXPECT_EQ(r->history[0].tx, testing::Chain::HashOf(issue));
  std::optional<invoice::BuyerIndexEntry> s =
      Summary("org-b", "org-a", "INV-42");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->status, invoice::Status::kIssued);
  EXPECT_EQ(s->height, h_issue.height);

  Bytes accept = Inv(buyer_b_, "accept", {"org-a", "INV-42"});
  Commit({accept});
  EXPECT_EQ(LogOf(accept), "invoice INV-42 of org-a accepted by org-b");
  Bytes reimburse = Inv(buyer2_b_, "reimburse", {"org-a", "INV-42"});
  const BlockHeader h_reimb = Commit({reimburse});
  EXPECT_EQ(CodeOf(reimburse), ExecCode::kOk) << LogOf(reimburse);
  EXPECT_EQ(LogOf(reimburse), "invoice INV-42 of org-a reimbursed by org-b");

  r = Invoice("org-a", "INV-42");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, invoice::Status::kReimbursed);
  ASSERT_EQ(r->history.size(), 3u);
  EXPECT_EQ(r->history[1].step, invoice::Status::kAccepted);
  EXPECT_EQ(r->history[1].key, buyer_b_.public_key);
  EXPECT_EQ(r->history[2].step, invoice::Status::kReimbursed);
  EXPECT_EQ(r->history[2].org, "org-b");
  EXPECT_EQ(r->history[2].key, buyer2_b_.public_key);
  EXPECT_EQ(r->history[2].height, h_reimb.height);
  EXPECT_EQ(r->history[2].time_ms, h_reimb.time_ms);
  EXPECT_EQ(r->history[2].tx, testing::Chain::HashOf(reimburse));
  s = Summary("org-b", "org-a", "INV-42");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->status, invoice::Status::kReimbursed);
  EXPECT_EQ(s->height, h_reimb.height);

  // One state proof proves the whole history, from the genesis alone.
  Commit({});
  absl::StatusOr<StateRecord> at = ledger_->GetStateAt(
      "invoice", invoice::InvoiceKey("org-a", "INV-42"), h_reimb.height);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_TRUE(VerifyStateRecord(Suite(), chain_.genesis, "invoice",
                                invoice::InvoiceKey("org-a", "INV-42"), *at,
                                true)
                  .ok());
  EXPECT_EQ(invoice::DecodeInvoice(AsString(at->value))->history.size(), 3u);
}

TEST_F(AppsTest, InvoiceReimbursedTwiceInOneBlockIsRefusedTheSecondTime) {
  IssueAndAccept("INV-1");
  Bytes first = Inv(buyer_b_, "reimburse", {"org-a", "INV-1"});
  Bytes second = Inv(buyer2_b_, "reimburse", {"org-a", "INV-1"});
  const BlockHeader h = Commit({first, second});
  EXPECT_EQ(CodeOf(first), ExecCode::kOk) << LogOf(first);
  EXPECT_EQ(CodeOf(second), ExecCode::kInvalidState);
  EXPECT_EQ(
      LogOf(second),
      absl::StrCat("invoice INV-1 of org-a was already reimbursed at "
                   "height ",
                   h.height, " by tx ", ToHex(testing::Chain::HashOf(first))));
  std::optional<InvoiceRecord> r = Invoice("org-a", "INV-1");
  ASSERT_TRUE(r.has_value());
  int reimbursements = 0;
  for (const invoice::Step& s : r->history) {
    if (s.step == invoice::Status::kReimbursed) ++reimbursements;
  }
  EXPECT_EQ(reimbursements, 1);
  EXPECT_EQ(r->history.back().key, buyer_b_.public_key);
}

TEST_F(AppsTest, InvoiceReimbursedAgainInALaterBlockIsRefused) {
  IssueAndAccept("INV-2");
  Bytes first = Inv(buyer_b_, "reimburse", {"org-a", "INV-2"});
  const BlockHeader h = Commit({first});
  const Hash32 root = State().state_root;
  Bytes again = Inv(buyer_b_, "reimburse", {"org-a", "INV-2"});
  Commit({again});
  EXPECT_EQ(CodeOf(again), ExecCode::kInvalidState);
  EXPECT_THAT(
      LogOf(again),
      HasSubstr(absl::StrCat("already reimbursed at height ", h.height,
                             " by tx ", ToHex(testing::Chain::HashOf(first)))));
  EXPECT_EQ(State().state_root, root);
  EXPECT_EQ(Invoice("org-a", "INV-2")->history.size(), 3u);
}

TEST_F(AppsTest, InvoiceVoidOnlyBeforeReimbursement) {
  IssueAndAccept("V-1");
  Bytes reimburse = Inv(buyer_b_, "reimburse", {"org-a", "V-1"});
  Commit({reimburse});
  Bytes void_reimbursed = Inv(issuer_a_, "void", {"org-a", "V-1", "typo"});
  Commit({void_reimbursed});
  EXPECT_EQ(CodeOf(void_reimbursed), ExecCode::kInvalidState);
  EXPECT_THAT(LogOf(void_reimbursed),
              HasSubstr("a reimbursed invoice cannot be voided"));
  EXPECT_THAT(LogOf(void_reimbursed), HasSubstr("already reimbursed at"));
  EXPECT_EQ(Invoice("org-a", "V-1")->status, invoice::Status::kReimbursed);

  // From issued and from accepted, voiding works; after it nothing does.
  Bytes issue2 = Issue(issuer_a_, "V-2");
  Bytes void2 = Inv(issuer_a_, "void", {"org-a", "V-2", "wrong buyer"});
  IssueAndAccept("V-3");
  Bytes void3 = Inv(issuer_a_, "void", {"org-a", "V-3", ""});
  Commit({issue2, void2, void3});
  EXPECT_EQ(CodeOf(void2), ExecCode::kOk) << LogOf(void2);
  EXPECT_EQ(CodeOf(void3), ExecCode::kOk) << LogOf(void3);
  EXPECT_EQ(LogOf(void2), "invoice V-2 of org-a voided by org-a");
  std::optional<InvoiceRecord> r2 = Invoice("org-a", "V-2");
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, invoice::Status::kVoided);
  EXPECT_EQ(r2->history.back().note, "wrong buyer");
  EXPECT_EQ(Summary("org-b", "org-a", "V-2")->status, invoice::Status::kVoided);

  Bytes void_again = Inv(issuer_a_, "void", {"org-a", "V-2", ""});
  Bytes accept_voided = Inv(buyer_b_, "accept", {"org-a", "V-2"});
  Bytes reimburse_voided = Inv(buyer_b_, "reimburse", {"org-a", "V-3"});
  Commit({void_again, accept_voided, reimburse_voided});
  EXPECT_EQ(CodeOf(void_again), ExecCode::kInvalidState);
  EXPECT_THAT(LogOf(void_again), HasSubstr("is voided"));
  EXPECT_EQ(CodeOf(accept_voided), ExecCode::kInvalidState);
  EXPECT_EQ(CodeOf(reimburse_voided), ExecCode::kInvalidState);
  EXPECT_THAT(LogOf(reimburse_voided),
              HasSubstr("only an accepted invoice can be reimbursed"));
}

TEST_F(AppsTest, InvoiceRejectIsFinalAndStepsNeedTheRightStatus) {
  Bytes issue = Issue(issuer_a_, "R-1");
  Bytes reimburse_issued = Inv(buyer_b_, "reimburse", {"org-a", "R-1"});
  Bytes reject = Inv(buyer_b_, "reject", {"org-a", "R-1", "税额错误"});
  Bytes accept_rejected = Inv(buyer_b_, "accept", {"org-a", "R-1"});
  Bytes reject_again = Inv(buyer_b_, "reject", {"org-a", "R-1", ""});
  Bytes void_rejected = Inv(issuer_a_, "void", {"org-a", "R-1", ""});
  Commit({issue, reimburse_issued, reject, accept_rejected, reject_again,
          void_rejected});
  EXPECT_EQ(CodeOf(reimburse_issued), ExecCode::kInvalidState);
  EXPECT_EQ(LogOf(reimburse_issued),
            "invoice R-1 of org-a is issued; only an accepted invoice can be "
            "reimbursed");
  EXPECT_EQ(CodeOf(reject), ExecCode::kOk) << LogOf(reject);
  EXPECT_EQ(LogOf(reject), "invoice R-1 of org-a rejected by org-b");
  EXPECT_EQ(CodeOf(accept_rejected), ExecCode::kInvalidState);
  EXPECT_EQ(LogOf(accept_rejected),
            "invoice R-1 of org-a is rejected; only an issued invoice can be "
            "accepted");
  EXPECT_EQ(CodeOf(reject_again), ExecCode::kInvalidState);
  EXPECT_EQ(CodeOf(void_rejected), ExecCode::kInvalidState);
  std::optional<InvoiceRecord> r = Invoice("org-a", "R-1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, invoice::Status::kRejected);
  ASSERT_EQ(r->history.size(), 2u);
  EXPECT_EQ(r->history[1].note, "税额错误");

  // Accepting twice: the second is refused.
  IssueAndAccept("R-2");
  Bytes accept_again = Inv(buyer2_b_, "accept", {"org-a", "R-2"});
  Commit({accept_again});
  EXPECT_EQ(CodeOf(accept_again), ExecCode::kInvalidState);
  EXPECT_THAT(LogOf(accept_again), HasSubstr("is accepted"));
}

TEST_F(AppsTest, InvoiceAmountsAtAndOverTheLimit) {
  const std::string max = "1000000000000000";  // 10^15
  Bytes at_limit = Issue(issuer_a_, "MAX", max, max);
  Bytes zero = Issue(issuer_a_, "ZERO", "0", "0");
  Bytes over_amount = Issue(issuer_a_, "O-1", "1000000000000001", "0");
  Bytes over_tax = Issue(issuer_a_, "O-2", "1", "1000000000000001");
  Bytes huge = Issue(issuer_a_, "O-3", "18446744073709551617", "0");
  Bytes leading_zero = Issue(issuer_a_, "O-4", "0100", "0");
  Bytes negative = Issue(issuer_a_, "O-5", "-100", "0");
  Bytes decimal = Issue(issuer_a_, "O-6", "10.50", "0");
  Commit({at_limit, zero, over_amount, over_tax, huge, leading_zero, negative,
          decimal});
  EXPECT_EQ(CodeOf(at_limit), ExecCode::kOk) << LogOf(at_limit);
  EXPECT_EQ(LogOf(at_limit),
            "invoice MAX of org-a issued to org-b for 20000000000000.00 CNY "
            "(10000000000000.00 + 10000000000000.00 tax)");
  EXPECT_EQ(Invoice("org-a", "MAX")->amount_cents, invoice::kMaxCents);
  EXPECT_EQ(Invoice("org-a", "MAX")->tax_cents, invoice::kMaxCents);
  EXPECT_EQ(CodeOf(zero), ExecCode::kOk) << LogOf(zero);
  for (const Bytes* b :
       {&over_amount, &over_tax, &huge, &leading_zero, &negative, &decimal}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kBadArgs) << LogOf(*b);
  }
  EXPECT_THAT(LogOf(over_amount), HasSubstr("amount_cents: "));
  EXPECT_THAT(LogOf(over_amount), HasSubstr("over the limit"));
  EXPECT_THAT(LogOf(over_tax), HasSubstr("tax_cents: "));
  EXPECT_THAT(LogOf(leading_zero), HasSubstr("leading zero"));
  EXPECT_FALSE(Invoice("org-a", "O-1").has_value());
}

TEST_F(AppsTest, InvoiceNonMembersAreUnauthorized) {
  IssueAndAccept("N-1");
  Bytes issue = Issue(outsider_, "N-2");
  Bytes accept = Inv(outsider_, "accept", {"org-a", "N-1"});
  Bytes reimburse = Inv(outsider_, "reimburse", {"org-a", "N-1"});
  Bytes void_it = Inv(outsider_, "void", {"org-a", "N-1", ""});
  Commit({issue, accept, reimburse, void_it});
  for (const Bytes* b : {&issue, &accept, &reimburse, &void_it}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kUnauthorized) << LogOf(*b);
    EXPECT_THAT(LogOf(*b), HasSubstr("not a member of the consortium"));
  }
  EXPECT_EQ(Invoice("org-a", "N-1")->status, invoice::Status::kAccepted);
}

TEST_F(AppsTest, InvoiceWrongOrganisationOrRoleIsUnauthorized) {
  Bytes no_issuer_role = Issue(member_a_, "W-0");
  Bytes admin_no_issuer = Issue(admin_a_, "W-0");
  Bytes issue = Issue(issuer_a_, "W-1");
  Bytes other_org_accepts = Inv(member_c_, "accept", {"org-a", "W-1"});
  Bytes seller_accepts = Inv(issuer_a_, "accept", {"org-a", "W-1"});
  Bytes auditor_accepts = Inv(auditor_b_, "accept", {"org-a", "W-1"});
  Bytes buyer_voids = Inv(buyer_b_, "void", {"org-a", "W-1", ""});
  Bytes other_issuer_voids = Inv(issuer_c_, "void", {"org-a", "W-1", ""});
  Bytes seller_member_voids = Inv(member_a_, "void", {"org-a", "W-1", ""});
  Commit({no_issuer_role, admin_no_issuer, issue, other_org_accepts,
          seller_accepts, auditor_accepts, buyer_voids, other_issuer_voids,
          seller_member_voids});
  EXPECT_EQ(CodeOf(no_issuer_role), ExecCode::kUnauthorized);
  EXPECT_EQ(LogOf(no_issuer_role),
            "issuing an invoice needs a key with the issuer role; the "
            "sender's key (of org-a) has: member");
  EXPECT_EQ(CodeOf(admin_no_issuer), ExecCode::kUnauthorized);
  EXPECT_EQ(CodeOf(issue), ExecCode::kOk);
  for (const Bytes* b :
       {&other_org_accepts, &seller_accepts, &auditor_accepts}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kUnauthorized) << LogOf(*b);
    EXPECT_THAT(LogOf(*b), HasSubstr("needs a key with the member role of its "
                                     "buyer org-b"));
  }
  EXPECT_THAT(LogOf(other_org_accepts),
              HasSubstr("the sender's key is of org-c"));
  for (const Bytes* b :
       {&buyer_voids, &other_issuer_voids, &seller_member_voids}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kUnauthorized) << LogOf(*b);
    EXPECT_THAT(LogOf(*b), HasSubstr("needs a key with the issuer role of "
                                     "org-a"));
  }
  EXPECT_EQ(Invoice("org-a", "W-1")->status, invoice::Status::kIssued);
  EXPECT_FALSE(Invoice("org-a", "W-0").has_value());
}

TEST_F(AppsTest, InvoiceArgumentAndExistenceRefusals) {
  Bytes first = Issue(issuer_a_, "E-1");
  Bytes same_number = Issue(issuer_a_, "E-1", "5", "0");
  Bytes other_issuer_same_number = Issue(issuer_c_, "E-1");
  Bytes unknown_buyer = Issue(issuer_a_, "E-2", "1", "0", "org-z");
  Bytes self_buyer = Issue(issuer_a_, "E-3", "1", "0", "org-a");
  Bytes bad_buyer = Issue(issuer_a_, "E-4", "1", "0", "Org B");
  Bytes bad_number = Issue(issuer_a_, "E/5");
  Bytes long_number = Issue(issuer_a_, std::string(65, 'n'));
  Bytes bad_currency =
      Inv(issuer_a_, "issue",
          {"E-6", "org-b", "1", "0", "cny", std::string(64, 'c')});
  Bytes bad_hash =
      Inv(issuer_a_, "issue", {"E-7", "org-b", "1", "0", "CNY", "abc"});
  Bytes five_args = Inv(issuer_a_, "issue", {"E-8", "org-b", "1", "0", "CNY"});
  Bytes accept_missing = Inv(buyer_b_, "accept", {"org-a", "NOPE"});
  Bytes accept_one_arg = Inv(buyer_b_, "accept", {"org-a"});
  Bytes reject_no_reason = Inv(buyer_b_, "reject", {"org-a", "E-1"});
  Bytes long_reason =
      Inv(buyer_b_, "reject", {"org-a", "E-1", std::string(257, 'r')});
  Bytes bad_utf8 = Inv(buyer_b_, "reject", {"org-a", "E-1", "\xff"});
  Bytes unknown = Inv(buyer_b_, "pay", {"org-a", "E-1"});
  Commit({first, same_number, other_issuer_same_number, unknown_buyer,
          self_buyer, bad_buyer, bad_number, long_number, bad_currency,
          bad_hash, five_args, accept_missing, accept_one_arg, reject_no_reason,
          long_reason, bad_utf8, unknown});
  EXPECT_EQ(CodeOf(first), ExecCode::kOk);
  EXPECT_EQ(CodeOf(same_number), ExecCode::kExists);
  EXPECT_THAT(LogOf(same_number),
              HasSubstr("invoice E-1 of org-a exists already"));
  EXPECT_EQ(Invoice("org-a", "E-1")->amount_cents, 100000u);
  EXPECT_EQ(CodeOf(other_issuer_same_number), ExecCode::kOk)
      << LogOf(other_issuer_same_number);
  EXPECT_EQ(CodeOf(unknown_buyer), ExecCode::kNotFound);
  EXPECT_EQ(LogOf(unknown_buyer), "no organisation org-z in the consortium");
  EXPECT_EQ(CodeOf(self_buyer), ExecCode::kBadArgs);
  for (const Bytes* b : {&bad_buyer, &bad_number, &long_number, &bad_currency,
                         &bad_hash, &five_args, &accept_one_arg,
                         &reject_no_reason, &long_reason, &bad_utf8}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kBadArgs) << LogOf(*b);
  }
  EXPECT_EQ(CodeOf(accept_missing), ExecCode::kNotFound);
  EXPECT_EQ(LogOf(accept_missing), "no invoice NOPE of org-a");
  EXPECT_EQ(CodeOf(unknown), ExecCode::kUnknownMethod);
  EXPECT_EQ(Invoice("org-a", "E-1")->status, invoice::Status::kIssued);
}

TEST_F(AppsTest, InvoiceListsAreOnePrefixScanEach) {
  Commit({Issue(issuer_a_, "L-1"), Issue(issuer_a_, "L-2"),
          Issue(issuer_c_, "L-1"), Issue(issuer_a_, "L-3", "1", "0", "org-c")});
  auto count = [&](const std::string& prefix) {
    std::unique_ptr<KvIterator> it =
        store_->NewIterator(keys::State("invoice", prefix));
    int n = 0;
    for (; it->Valid(); it->Next()) ++n;
    return n;
  };
  EXPECT_EQ(count(invoice::BuyerPrefix("org-b")), 3);
  EXPECT_EQ(count(invoice::BuyerPrefix("org-c")), 1);
  EXPECT_EQ(count(invoice::IssuerPrefix("org-a")), 3);
  EXPECT_EQ(count(invoice::IssuerPrefix("org-c")), 1);
}

// The ledger reads the records the invoice steps need (the invoice, the
// sender's member record) in its one batch per block, not one at a time.
TEST_F(AppsTest, InvoiceStepsReadTheirRecordsInTheBlocksOneBatch) {
  Bytes issue = Issue(issuer_a_, "P-1");
  counting_->TakeStateReads();
  Commit({issue});
  ASSERT_EQ(CodeOf(issue), ExecCode::kOk);
  // issue's record key depends on the sender's organisation: read alone.
  EXPECT_THAT(counting_->TakeStateReads(),
              ::testing::ElementsAre("invoice:inv/org-a/P-1"));
  Bytes accept = Inv(buyer_b_, "accept", {"org-a", "P-1"});
  Bytes reimburse = Inv(buyer2_b_, "reimburse", {"org-a", "P-1"});
  Bytes anchor = Doc(member_c_, "anchor", {std::string(64, 'd'), "m"});
  Commit({accept, reimburse, anchor});
  ASSERT_EQ(CodeOf(reimburse), ExecCode::kOk) << LogOf(reimburse);
  ASSERT_EQ(CodeOf(anchor), ExecCode::kOk) << LogOf(anchor);
  EXPECT_THAT(counting_->TakeStateReads(), ::testing::IsEmpty());
}

TEST_F(AppsTest, InvoiceAndNotaryQueryKeys) {
  const NativeApp* inv = apps_.Find("invoice");
  const NativeApp* doc = apps_.Find("notary");
  ASSERT_NE(inv, nullptr);
  ASSERT_NE(doc, nullptr);
  EXPECT_TRUE(inv->CheckQueryKey("inv/org-a/INV-1").ok());
  EXPECT_TRUE(inv->CheckQueryKey("buyer/org-b/org-a/INV-1").ok());
  for (const char* bad : {"", "inv/org-a", "inv/org-a/", "inv/Org/1",
                          "inv/org-a/1/2", "buyer/org-b/org-a", "doc/x"}) {
    EXPECT_FALSE(inv->CheckQueryKey(bad).ok()) << bad;
  }
  EXPECT_TRUE(doc->CheckQueryKey("doc/" + std::string(64, 'a')).ok());
  EXPECT_FALSE(doc->CheckQueryKey("doc/" + std::string(64, 'A')).ok());
  EXPECT_FALSE(doc->CheckQueryKey("doc/" + std::string(62, 'a')).ok());
  EXPECT_FALSE(doc->CheckQueryKey(std::string(68, 'a')).ok());
  EXPECT_EQ(ledger_->GetState("invoice", "nope").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ----------------------------------------------------------------- notary --

TEST_F(AppsTest, NotaryAnchorLookupAndRevokeByTheOwner) {
  const std::string hex = std::string(63, 'a') + "1";
  Bytes anchor = Doc(member_a_, "anchor", {hex, R"({"title":"contract"})"});
  const BlockHeader h = Commit({anchor});
  EXPECT_EQ(CodeOf(anchor), ExecCode::kOk) << LogOf(anchor);
  EXPECT_EQ(LogOf(anchor),
            absl::StrCat("document ", hex, " anchored by org-a at height ",
                         h.height, " (block time ", h.time_ms, " ms)"));
  const Hash32 hash = *HashFromHex(hex);
  std::optional<notary::DocRecord> d = Document(hash);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->hash, hash);
  EXPECT_EQ(d->owner_key, member_a_.public_key);
  EXPECT_EQ(d->owner_org, "org-a");
  EXPECT_EQ(d->metadata, R"({"title":"contract"})");
  EXPECT_EQ(d->anchored_height, h.height);
  EXPECT_EQ(d->anchored_time_ms, h.time_ms);
  EXPECT_EQ(d->status, notary::Status::kAnchored);
  ASSERT_EQ(d->history.size(), 1u);
  EXPECT_EQ(d->history[0].tx, testing::Chain::HashOf(anchor));

  Bytes again = Doc(member_c_, "anchor", {hex, "mine"});
  Bytes revoke = Doc(member_a_, "revoke", {hex, "superseded"});
  Bytes revoke_again = Doc(member_a_, "revoke", {hex, ""});
  const BlockHeader h2 = Commit({again, revoke, revoke_again});
  EXPECT_EQ(CodeOf(again), ExecCode::kExists);
  EXPECT_EQ(CodeOf(revoke), ExecCode::kOk) << LogOf(revoke);
  EXPECT_EQ(LogOf(revoke), absl::StrCat("document ", hex,
                                        " revoked by its owner org-a at "
                                        "height ",
                                        h2.height));
  EXPECT_EQ(CodeOf(revoke_again), ExecCode::kInvalidState);
  EXPECT_EQ(LogOf(revoke_again),
            absl::StrCat("document ", hex, " was revoked already at height ",
                         h2.height, " by tx ",
                         ToHex(testing::Chain::HashOf(revoke))));
  d = Document(hash);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, notary::Status::kRevoked);
  ASSERT_EQ(d->history.size(), 2u);
  EXPECT_EQ(d->history[1].note, "superseded");
  EXPECT_EQ(d->history[1].time_ms, h2.time_ms);
  EXPECT_EQ(d->metadata, R"({"title":"contract"})");

  // Revoked is kept: the hash cannot be anchored again, even by its owner.
  Bytes re_anchor = Doc(member_a_, "anchor", {hex, "v2"});
  Commit({re_anchor});
  EXPECT_EQ(CodeOf(re_anchor), ExecCode::kExists);
  EXPECT_THAT(LogOf(re_anchor), HasSubstr("(since revoked)"));
}

TEST_F(AppsTest, NotaryRevokeByAnotherOrgIsRefusedByAnAdminOfTheOwnersOrgIs) {
  const std::string hex(64, 'b');
  Bytes anchor = Doc(member_a_, "anchor", {hex, ""});
  Bytes other_org = Doc(buyer2_b_, "revoke", {hex, ""});  // admin of org-b
  Bytes same_org_no_admin = Doc(issuer_a_, "revoke", {hex, ""});
  Bytes outsider = Doc(outsider_, "revoke", {hex, ""});
  Commit({anchor, other_org, same_org_no_admin, outsider});
  for (const Bytes* b : {&other_org, &same_org_no_admin, &outsider}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kNotOwner) << LogOf(*b);
    EXPECT_THAT(LogOf(*b), HasSubstr("or an admin of org-a may revoke it"));
  }
  EXPECT_EQ(Document(*HashFromHex(hex))->status, notary::Status::kAnchored);
  Bytes by_admin = Doc(admin_a_, "revoke", {hex, "key lost"});
  Commit({by_admin});
  EXPECT_EQ(CodeOf(by_admin), ExecCode::kOk) << LogOf(by_admin);
  EXPECT_THAT(LogOf(by_admin), HasSubstr("revoked by an admin of org-a"));
  std::optional<notary::DocRecord> d = Document(*HashFromHex(hex));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, notary::Status::kRevoked);
  EXPECT_EQ(d->history.back().key, admin_a_.public_key);
}

TEST_F(AppsTest, NotaryWithoutAConsortiumTheOwnerIsTheKeyAlone) {
  const std::string hex(64, 'E');  // upper case is accepted, stored lower
  Bytes anchor = Doc(outsider_, "anchor", {hex, "open chain"});
  Bytes stranger = Doc(admin_a_, "revoke", {hex, ""});
  Commit({anchor, stranger});
  EXPECT_EQ(CodeOf(anchor), ExecCode::kOk) << LogOf(anchor);
  EXPECT_THAT(LogOf(anchor), HasSubstr(absl::StrCat(
                                 "anchored by key ",
                                 ToHex(outsider_.public_key).substr(0, 16))));
  std::optional<notary::DocRecord> d = Document(*HashFromHex(hex));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->owner_org, "");
  EXPECT_TRUE(Get("notary", "doc/" + std::string(64, 'e')).found);
  EXPECT_EQ(CodeOf(stranger), ExecCode::kNotOwner);
  EXPECT_EQ(LogOf(stranger),
            absl::StrCat("only the key that anchored document ",
                         std::string(64, 'e'), " may revoke it"));
  Bytes owner = Doc(outsider_, "revoke", {hex, ""});
  Commit({owner});
  EXPECT_EQ(CodeOf(owner), ExecCode::kOk) << LogOf(owner);
}

TEST_F(AppsTest, NotaryArgumentRefusals) {
  Bytes short_hash = Doc(member_a_, "anchor", {std::string(62, 'a'), ""});
  Bytes not_hex = Doc(member_a_, "anchor", {std::string(64, 'z'), ""});
  Bytes one_arg = Doc(member_a_, "anchor", {std::string(64, 'a')});
  Bytes at_limit =
      Doc(member_a_, "anchor", {std::string(64, '1'), std::string(1024, 'm')});
  Bytes too_long =
      Doc(member_a_, "anchor", {std::string(64, '2'), std::string(1025, 'm')});
  Bytes not_utf8 = Doc(member_a_, "anchor", {std::string(64, '3'), "\xc3"});
  Bytes missing = Doc(member_a_, "revoke", {std::string(64, '4'), ""});
  Bytes long_reason =
      Doc(member_a_, "revoke", {std::string(64, '1'), std::string(257, 'r')});
  Bytes lookup = Doc(member_a_, "lookup", {std::string(64, '1')});
  Commit({short_hash, not_hex, one_arg, at_limit, too_long, not_utf8, missing,
          long_reason, lookup});
  for (const Bytes* b :
       {&short_hash, &not_hex, &one_arg, &too_long, &not_utf8, &long_reason}) {
    EXPECT_EQ(CodeOf(*b), ExecCode::kBadArgs) << LogOf(*b);
  }
  EXPECT_EQ(CodeOf(at_limit), ExecCode::kOk) << LogOf(at_limit);
  EXPECT_EQ(CodeOf(missing), ExecCode::kNotFound);
  EXPECT_EQ(CodeOf(lookup), ExecCode::kUnknownMethod);
  EXPECT_FALSE(Document(*HashFromHex(std::string(64, '2'))).has_value());
}

// A stored record that does not decode is corrupt state: the block that
// reads it does not commit (every node refuses it alike), rather than
// getting a receipt that depends on what a node's store holds.
TEST_F(AppsTest, ACorruptRecordStopsTheBlockInsteadOfBeingOverwritten) {
  Commit({Seed("raw", {"invoice", "inv/org-a/BAD", "{not json"}),
          Seed("raw", {"notary", "doc/" + std::string(64, '9'), "{}"})});
  const uint64_t height = State().height;
  for (Bytes tx : {Inv(buyer_b_, "accept", {"org-a", "BAD"}),
                   Doc(member_a_, "anchor", {std::string(64, '9'), ""})}) {
    Block b = chain_.NextBlock(State(), {tx});
    absl::StatusOr<CommitResult> r =
        ledger_->CommitBlock(EncodeBlock(b), chain_.Certify(b.header));
    EXPECT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("does not decode"));
    EXPECT_EQ(State().height, height);
  }
}

// Two nodes executing the same blocks write the same state.
TEST_F(AppsTest, ExecutionIsDeterministicAcrossNodes) {
  IssueAndAccept("D-1");
  Commit({Inv(buyer_b_, "reimburse", {"org-a", "D-1"}),
          Inv(buyer_b_, "reimburse", {"org-a", "D-1"}),
          Doc(member_a_, "anchor", {std::string(64, 'f'), "x"})});
  const ChainState here = State();

  TempDir other_dir;
  absl::StatusOr<std::unique_ptr<KvStore>> other_store =
      OpenRocksDbStore(RocksDbStoreOptions{other_dir.Sub("ledger"), false});
  ASSERT_TRUE(other_store.ok());
  Ledger::Options o;
  o.store = other_store->get();
  o.genesis = &chain_.genesis;
  o.suite = &Suite();
  o.apps = &apps_;
  o.location = other_dir.Sub("ledger");
  absl::StatusOr<std::unique_ptr<Ledger>> other = Ledger::Open(o);
  ASSERT_TRUE(other.ok()) << other.status();
  for (uint64_t h = 1; h <= here.height; ++h) {
    absl::StatusOr<BlockRecord> b = ledger_->GetCertifiedBlock(h);
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_TRUE((*other)
                    ->CommitBlock(EncodeBlock(b->block),
                                  chain_.Certify(b->block.header))
                    .ok());
  }
  absl::StatusOr<ChainState> there = (*other)->GetChainState();
  ASSERT_TRUE(there.ok());
  EXPECT_EQ(there->state_root, here.state_root);
  EXPECT_EQ(there->receipts_root, here.receipts_root);
}

}  // namespace
}  // namespace consortia::storage
