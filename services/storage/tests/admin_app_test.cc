// The admin app and the permissioned chain, through the ledger: the genesis's
// consortium in block 1's state, the execution check of the sender's member
// key, and governance (proposals, approvals, expiry, every action).
#include "apps/admin_app.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/app.h"
#include "consortia/admin_records.h"
#include "consortia/proof_bundle.h"
#include "consortia/state_proof.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keys.h"
#include "kv_store.h"
#include "ledger.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using testing::Chain;
using ::testing::HasSubstr;
using testing::Suite;
using testing::TempDir;

// Counts the store's point reads.
class ReadCountingStore : public KvStore {
 public:
  explicit ReadCountingStore(KvStore* inner) : inner_(inner) {}
  absl::StatusOr<std::optional<std::string>> Get(std::string_view k) override {
    ++gets;
    return inner_->Get(k);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    return inner_->MultiGet(keys);
  }
  std::unique_ptr<KvIterator> NewIterator(std::string_view p) override {
    return inner_->NewIterator(p);
  }
  absl::Status Write(const WriteBatch& b) override { return inner_->Write(b); }
  std::string Describe() const override { return inner_->Describe(); }

  int gets = 0;

 private:
  KvStore* inner_;
};

// A ledger over RocksDB whose genesis has a consortium of 4 organisations
// (org-a .. org-d, one admin key each; org-a also has a plain member key)
// and approval_percent 50: a proposal executes with 3 approvals of 4.
class AdminAppTest : public ::testing::Test {
 protected:
  AdminAppTest() : AdminAppTest(1) {}
  // With `validators` genesis validators (v0, v1, ...; power 1 each), who
  // all sign every block.
  explicit AdminAppTest(int validators) : apps_(AppRegistry::WithBuiltins()) {
    for (int i = 1; i < validators; ++i) {
      extra_validators_.push_back(Suite().GenerateKey());
      chain_.genesis.validators.push_back(Validator{
          absl::StrCat("v", i), extra_validators_.back().public_key, 1});
    }
    Consortium c;
    c.approval_percent = 50;
    for (char o : std::string("abcd")) {
      admins_.push_back(Suite().GenerateKey());
      ConsortiumOrg org;
      org.id = absl::StrCat("org-", std::string(1, o));
      org.name = absl::StrCat("Organisation ", std::string(1, o));
      org.members.push_back({admins_.back().public_key,
                             {admin::Role::kAdmin, admin::Role::kIssuer}});
      c.orgs.push_back(std::move(org));
    }
    clerk_ = Suite().GenerateKey();
    c.orgs[0].members.push_back({clerk_.public_key, {admin::Role::kMember}});
    stranger_ = Suite().GenerateKey();
    chain_.genesis.consortium = std::move(c);
    signers_ = {&chain_.validator};
    for (const KeyPair& k : extra_validators_) signers_.push_back(&k);
    Open();
  }

  void Open() {
    absl::StatusOr<std::unique_ptr<KvStore>> store =
        OpenRocksDbStore(RocksDbStoreOptions{dir_.Sub("ledger"), true});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    OpenOn(store_.get());
  }

  void OpenOn(KvStore* store) {
    ledger_.reset();
    Ledger::Options o;
    o.store = store;
    o.genesis = &chain_.genesis;
    o.suite = &Suite();
    o.apps = &apps_;
    o.location = dir_.Sub("ledger");
    absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(o);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  ChainState State() {
    absl::StatusOr<ChainState> s = ledger_->GetChainState();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : ChainState{};
  }

  // Commits the next block with `txs`, certified by signers_; fails the
  // test if it is refused.
  void CommitTxs(std::vector<Bytes> txs) {
    Block b = chain_.NextBlock(State(), std::move(txs));
    absl::StatusOr<CommitResult> r = ledger_->CommitBlock(
        EncodeBlock(b), chain_.CertifyBy(b.header, signers_));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  Bytes Kv(const KeyPair& key, std::string k, std::string v) {
    return chain_.Tx(key, "set", {std::move(k), std::move(v)}, ++nonce_);
  }
  Bytes Propose(const KeyPair& key, std::string action_json,
                std::string ttl = "10") {
    return chain_.AppTx(key, "admin", "propose",
                        {std::move(action_json), std::move(ttl)}, ++nonce_);
  }
  Bytes Approve(const KeyPair& key, const Bytes& propose_tx) {
    return chain_.AppTx(key, "admin", "approve", {IdOf(propose_tx)}, ++nonce_);
  }
  static std::string IdOf(const Bytes& propose_tx) {
    return ToHex(Chain::HashOf(propose_tx));
  }

  Receipt ReceiptOf(const Bytes& raw) {
    absl::StatusOr<TxRecord> rec = ledger_->GetTx(Chain::HashOf(raw));
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? rec->receipt : Receipt{};
  }

  // Commits `tx` alone in a block and returns its receipt.
  Receipt Run(const Bytes& tx) {
    CommitTxs({tx});
    return ReceiptOf(tx);
  }

  std::optional<std::string> AdminRecord(const std::string& key) {
    absl::StatusOr<StateRecord> s = ledger_->GetState("admin", key);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok() || !s->found) return std::nullopt;
    return std::string(s->value.begin(), s->value.end());
  }

  std::optional<admin::MemberRecord> Member(const KeyPair& key) {
    std::optional<std::string> raw =
        AdminRecord(admin::MemberKey(key.public_key));
    if (!raw.has_value()) return std::nullopt;
    absl::StatusOr<admin::MemberRecord> m = admin::DecodeMember(*raw);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::optional<admin::MemberRecord>(*m) : std::nullopt;
  }

  admin::ProposalRecord Proposal(const Bytes& propose_tx) {
    std::optional<std::string> raw =
        AdminRecord(admin::ProposalKey(IdOf(propose_tx)));
    EXPECT_TRUE(raw.has_value());
    absl::StatusOr<admin::ProposalRecord> p =
        admin::DecodeProposal(raw.value_or(""));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : admin::ProposalRecord{};
  }

  std::string AddMemberJson(const KeyPair& key, const std::string& org,
                            const std::string& roles = R"(["member"])") {
    return absl::StrCat(R"({"type":"add_member","public_key":")",
                        ToHex(key.public_key), R"(","org":")", org,
                        R"(","roles":)", roles, "}");
  }

  // Commits the proposal of `action_json` by org-a and the approvals of
  // org-b and org-c (3 of 4: executed); checks each receipt.
  void Govern(const std::string& action_json) {
    Bytes p = Propose(admins_[0], action_json);
    ASSERT_EQ(Run(p).code, ExecCode::kOk) << ReceiptOf(p).log;
    Bytes b = Approve(admins_[1], p);
    ASSERT_EQ(Run(b).code, ExecCode::kOk) << ReceiptOf(b).log;
    Bytes c = Approve(admins_[2], p);
    ASSERT_EQ(Run(c).code, ExecCode::kOk) << ReceiptOf(c).log;
    ASSERT_EQ(Proposal(p).status, admin::ProposalStatus::kExecuted);
  }

  TempDir dir_;
  Chain chain_;
  AppRegistry apps_;
  std::vector<KeyPair> admins_;            // of org-a .. org-d
  KeyPair clerk_;                          // org-a, role member
  KeyPair stranger_;                       // no member record
  std::vector<KeyPair> extra_validators_;  // v1, v2, ... (v0 is chain_'s)
  // Who certifies CommitTxs's blocks: signers_[i] as validator i (every
  // genesis validator unless a test changes it).
  std::vector<const KeyPair*> signers_;
  uint64_t nonce_ = 0;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(AdminAppTest, Block1SeedsTheConsortiumAsProvableRecords) {
  // Block 1's txs already see the records written before them.
  Bytes first = Kv(clerk_, "k", "v");
  CommitTxs({first});
  EXPECT_EQ(ReceiptOf(first).code, ExecCode::kOk) << ReceiptOf(first).log;
  CommitTxs({});  // block 2 certifies block 1's state root

  absl::StatusOr<StateRecord> rec =
      ledger_->GetStateAt("admin", admin::MemberKey(clerk_.public_key), 1);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_TRUE(rec->found);
  EXPECT_TRUE(VerifyStateRecord(Suite(), chain_.genesis, "admin",
                                admin::MemberKey(clerk_.public_key), *rec, true)
                  .ok());
  absl::StatusOr<admin::MemberRecord> m =
      admin::DecodeMember(std::string(rec->value.begin(), rec->value.end()));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->org, "org-a");
  EXPECT_EQ(m->roles, std::vector<admin::Role>{admin::Role::kMember});
  EXPECT_EQ(m->added_height, 0u);
  // A forged role does not verify.
  StateRecord forged = *rec;
  admin::MemberRecord promoted = *m;
  promoted.roles = {admin::Role::kAdmin};
  forged.value = ToBytes(admin::EncodeMember(promoted));
  EXPECT_FALSE(VerifyStateRecord(Suite(), chain_.genesis, "admin",
                                 admin::MemberKey(clerk_.public_key), forged,
                                 true)
                   .ok());

  EXPECT_EQ(AdminRecord("org/org-b"),
            admin::EncodeOrg({"org-b", "Organisation b", 0}));
  EXPECT_EQ(AdminRecord("orgs"),
            admin::EncodeOrgList({{"org-a", "org-b", "org-c", "org-d"}}));
  absl::StatusOr<admin::ConfigRecord> config =
      admin::DecodeConfig(AdminRecord("config").value_or(""));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->approval_percent, 50u);
  EXPECT_EQ(config->validator_change_delay,
            admin::kDefaultValidatorChangeDelay);
  EXPECT_EQ(config->max_block_txs, chain_.genesis.rules.max_block_txs);
  EXPECT_EQ(config->max_block_bytes, chain_.genesis.rules.max_block_bytes);
  EXPECT_EQ(config->replay_window, chain_.genesis.rules.replay_window);
  absl::StatusOr<admin::ValidatorChangeRecord> vals =
      admin::DecodeValidatorChange(
          AdminRecord("validators/pending").value_or(""));
  ASSERT_TRUE(vals.ok()) << vals.status();
  ASSERT_EQ(vals->validators.size(), 1u);
  EXPECT_EQ(vals->validators[0].public_key, chain_.validator.public_key);
  EXPECT_EQ(vals->effective_height, 1u);
}

TEST_F(AdminAppTest, NonMemberIsRefusedAtExecutionAndChangesNothing) {
  Bytes refused = Kv(stranger_, "k", "stranger");
  Bytes ok = Kv(clerk_, "k2", "clerk");
  CommitTxs({refused, ok});
  Receipt r = ReceiptOf(refused);
  EXPECT_EQ(r.code, ExecCode::kUnauthorized);
  EXPECT_THAT(r.log, HasSubstr("is not a registered member key"));
  EXPECT_THAT(r.log, HasSubstr(ToHex(stranger_.public_key)));
  EXPECT_FALSE(ledger_->GetState("kv", "k")->found);
  EXPECT_EQ(ReceiptOf(ok).code, ExecCode::kOk);
  // Not for the admin app either.
  Bytes p = Propose(stranger_, R"({"type":"remove_org","id":"org-d"})");
  EXPECT_EQ(Run(p).code, ExecCode::kUnauthorized);
  EXPECT_FALSE(AdminRecord(admin::ProposalKey(IdOf(p))).has_value());
}

TEST_F(AdminAppTest, SenderMemberKeysAreReadInTheBlocksOneBatch) {
  CommitTxs({Kv(clerk_, "old", "1")});
  ReadCountingStore counting(store_.get());
  OpenOn(&counting);
  std::vector<Bytes> txs;
  for (int i = 0; i < 20; ++i) {
    txs.push_back(
        Kv(i % 2 == 0 ? clerk_ : admins_[i % 4], absl::StrCat("k", i), "v"));
  }
  Bytes refused = Kv(stranger_, "s", "v");
  txs.push_back(refused);
  const int gets = counting.gets;
  CommitTxs(txs);
  EXPECT_EQ(counting.gets - gets, 0);
  EXPECT_EQ(ReceiptOf(txs[0]).code, ExecCode::kOk);
  EXPECT_EQ(ReceiptOf(refused).code, ExecCode::kUnauthorized);
  ledger_.reset();  // before `counting` goes
}

TEST_F(AdminAppTest, GovernanceNeedsMoreThanItsMajority) {
  KeyPair newcomer = Suite().GenerateKey();
  CommitTxs({});
  // Refused before it is added.
  EXPECT_EQ(Run(Kv(newcomer, "n", "1")).code, ExecCode::kUnauthorized);

  Bytes p = Propose(admins_[0], AddMemberJson(newcomer, "org-b"));
  Receipt r = Run(p);
  ASSERT_EQ(r.code, ExecCode::kOk) << r.log;
  EXPECT_THAT(r.log, HasSubstr("1 of 4 organisations approve"));
  admin::ProposalRecord rec = Proposal(p);
  EXPECT_EQ(rec.id, IdOf(p));
  EXPECT_EQ(rec.proposer_org, "org-a");
  EXPECT_EQ(rec.approvals, std::vector<std::string>{"org-a"});
  EXPECT_EQ(rec.expires_height, rec.created_height + 10);
  EXPECT_EQ(rec.status, admin::ProposalStatus::kOpen);

  // 2 of 4 is 50 %, not more: still open.
  r = Run(Approve(admins_[1], p));
  ASSERT_EQ(r.code, ExecCode::kOk) << r.log;
  EXPECT_THAT(r.log, HasSubstr("2 of 4"));
  EXPECT_EQ(Proposal(p).status, admin::ProposalStatus::kOpen);
  EXPECT_FALSE(Member(newcomer).has_value());
  EXPECT_EQ(Run(Kv(newcomer, "n", "2")).code, ExecCode::kUnauthorized);

  // The third executes it, in that tx.
  Bytes third = Approve(admins_[3], p);
  r = Run(third);
  ASSERT_EQ(r.code, ExecCode::kOk) << r.log;
  EXPECT_THAT(r.log, HasSubstr("executed"));
  rec = Proposal(p);
  EXPECT_EQ(rec.status, admin::ProposalStatus::kExecuted);
  EXPECT_EQ(rec.approvals,
            (std::vector<std::string>{"org-a", "org-b", "org-d"}));
  EXPECT_EQ(rec.executed_height, State().height);
  std::optional<admin::MemberRecord> m = Member(newcomer);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->org, "org-b");
  EXPECT_EQ(m->added_height, State().height);

  // The member added by governance is accepted from the next block on.
  EXPECT_EQ(Run(Kv(newcomer, "n", "3")).code, ExecCode::kOk);
  // An executed proposal takes no more approvals.
  r = Run(Approve(admins_[2], p));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
  EXPECT_THAT(r.log, HasSubstr("executed"));
}

TEST_F(AdminAppTest, ApprovalsByNonAdminsTwiceOrLateAreRefused) {
  Bytes p =
      Propose(admins_[0], R"({"type":"add_org","id":"org-e","name":"E"})", "6");
  ASSERT_EQ(Run(p).code, ExecCode::kOk);
  const uint64_t created = State().height;

  // A member key without role admin may neither approve nor propose.
  Receipt r = Run(Approve(clerk_, p));
  EXPECT_EQ(r.code, ExecCode::kUnauthorized);
  EXPECT_THAT(r.log, HasSubstr("role admin"));
  EXPECT_EQ(Run(Propose(clerk_, R"({"type":"remove_org","id":"org-d"})")).code,
            ExecCode::kUnauthorized);
  // The proposer's organisation approved already.
  r = Run(Approve(admins_[0], p));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
  EXPECT_THAT(r.log, HasSubstr("org-a already approved"));
  // Org-b approves once, not twice (even in one block).
  Bytes b1 = Approve(admins_[1], p);
  Bytes b2 = Approve(admins_[1], p);
  CommitTxs({b1, b2});
  EXPECT_EQ(ReceiptOf(b1).code, ExecCode::kOk) << ReceiptOf(b1).log;
  EXPECT_EQ(ReceiptOf(b2).code, ExecCode::kInvalidState);
  EXPECT_EQ(Proposal(p).approvals,
            (std::vector<std::string>{"org-a", "org-b"}));

  // Past expires_height (created + 6) an approval is refused.
  while (State().height < created + 6) CommitTxs({});
  r = Run(Approve(admins_[2], p));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
  EXPECT_THAT(r.log, HasSubstr("expired"));
  const admin::ProposalRecord rec = Proposal(p);
  EXPECT_EQ(rec.status, admin::ProposalStatus::kOpen);
  EXPECT_EQ(rec.StatusAt(State().height), admin::ProposalStatus::kExpired);
  EXPECT_FALSE(AdminRecord("org/org-e").has_value());

  // Unknown proposals, malformed ids, actions and ttls.
  EXPECT_EQ(Run(chain_.AppTx(admins_[1], "admin", "approve",
                             {std::string(64, 'a')}, ++nonce_))
                .code,
            ExecCode::kNotFound);
  EXPECT_EQ(
      Run(chain_.AppTx(admins_[1], "admin", "approve", {"xyz"}, ++nonce_)).code,
      ExecCode::kBadArgs);
  EXPECT_EQ(Run(Propose(admins_[0], R"({"type":"add_org","id":"x"})")).code,
            ExecCode::kBadArgs);
  EXPECT_EQ(
      Run(Propose(admins_[0], R"({"type":"remove_org","id":"org-d"})", "0"))
          .code,
      ExecCode::kBadArgs);
  EXPECT_EQ(Run(chain_.AppTx(admins_[0], "admin", "vote", {}, ++nonce_)).code,
            ExecCode::kUnknownMethod);
}

TEST_F(AdminAppTest, RemovedMemberIsRefusedAfterTheRemovalsBlock) {
  CommitTxs({});
  Govern(absl::StrCat(R"({"type":"remove_member","public_key":")",
                      ToHex(clerk_.public_key), R"("})"));
  EXPECT_FALSE(Member(clerk_).has_value());
  Receipt r = Run(Kv(clerk_, "k", "v"));
  EXPECT_EQ(r.code, ExecCode::kUnauthorized);
  EXPECT_THAT(r.log, HasSubstr("is not a registered member key"));
  absl::StatusOr<admin::OrgMembersRecord> members =
      admin::DecodeOrgMembers(AdminRecord("org_members/org-a").value_or(""));
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->members, std::vector<Bytes>{admins_[0].public_key});
  // An organisation keeps an admin.
  r = Run(Propose(admins_[0],
                  absl::StrCat(R"({"type":"remove_member","public_key":")",
                               ToHex(admins_[0].public_key), R"("})")));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
  EXPECT_THAT(r.log, HasSubstr("last admin of org-a"));
}

TEST_F(AdminAppTest, RemoveOrgRemovesItsMembers) {
  CommitTxs({});
  Govern(R"({"type":"remove_org","id":"org-a"})");
  EXPECT_FALSE(AdminRecord("org/org-a").has_value());
  EXPECT_FALSE(AdminRecord("org_members/org-a").has_value());
  EXPECT_FALSE(Member(admins_[0]).has_value());
  EXPECT_FALSE(Member(clerk_).has_value());
  EXPECT_EQ(AdminRecord("orgs"),
            admin::EncodeOrgList({{"org-b", "org-c", "org-d"}}));
  EXPECT_EQ(Run(Kv(clerk_, "k", "v")).code, ExecCode::kUnauthorized);
  EXPECT_EQ(Run(Kv(admins_[1], "k", "v")).code, ExecCode::kOk);
  // With 3 organisations at 50 %, 2 approvals execute.
  Bytes p =
      Propose(admins_[1], R"({"type":"set_approval_percent","value":66})");
  ASSERT_EQ(Run(p).code, ExecCode::kOk);
  Receipt r = Run(Approve(admins_[2], p));
  ASSERT_EQ(r.code, ExecCode::kOk) << r.log;
  EXPECT_THAT(r.log, HasSubstr("2 of 3 organisations approve; executed"));
  absl::StatusOr<admin::ConfigRecord> config =
      admin::DecodeConfig(AdminRecord("config").value_or(""));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->approval_percent, 66u);
}

TEST_F(AdminAppTest, OrgsMembersRolesAndRulesByGovernance) {
  CommitTxs({});
  KeyPair e_admin = Suite().GenerateKey();
  Govern(R"({"type":"add_org","id":"org-e","name":"Org E"})");
  EXPECT_EQ(AdminRecord("org/org-e"),
            admin::EncodeOrg({"org-e", "Org E", State().height}));
  Govern(AddMemberJson(e_admin, "org-e", R"(["admin","auditor"])"));
  EXPECT_EQ(
      Member(e_admin)->roles,
      (std::vector<admin::Role>{admin::Role::kAdmin, admin::Role::kAuditor}));
  Govern(absl::StrCat(R"({"type":"set_roles","public_key":")",
                      ToHex(clerk_.public_key), R"(","roles":["issuer"]})"));
  EXPECT_EQ(Member(clerk_)->roles,
            std::vector<admin::Role>{admin::Role::kIssuer});
  Govern(R"({"type":"set_rule","name":"replay_window","value":2000})");
  absl::StatusOr<admin::ConfigRecord> config =
      admin::DecodeConfig(AdminRecord("config").value_or(""));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->replay_window, 2000u);

  // Checked when proposed: existing things, missing things, bounds.
  EXPECT_EQ(
      Run(Propose(admins_[0], R"({"type":"add_org","id":"org-e","name":"E"})"))
          .code,
      ExecCode::kExists);
  EXPECT_EQ(Run(Propose(admins_[0], AddMemberJson(clerk_, "org-b"))).code,
            ExecCode::kExists);
  EXPECT_EQ(Run(Propose(admins_[0], AddMemberJson(stranger_, "org-z"))).code,
            ExecCode::kNotFound);
  // The window may only grow; the block limits stay within the genesis's.
  Receipt r = Run(Propose(
      admins_[0], R"({"type":"set_rule","name":"replay_window","value":77})"));
  EXPECT_EQ(r.code, ExecCode::kBadArgs);
  EXPECT_THAT(r.log, HasSubstr("replay_window must be 2000 to 1000000 (the "
                               "replay window may only grow), got 77"));
  r = Run(
      Propose(admins_[0],
              R"({"type":"set_rule","name":"max_block_txs","value":5001})"));
  EXPECT_EQ(r.code, ExecCode::kBadArgs);
  EXPECT_THAT(r.log, HasSubstr("max_block_txs must be 1 to 5000 (at most the "
                               "genesis's), got 5001"));
  r = Run(Propose(admins_[0],
                  absl::StrCat(R"({"type":"add_member","public_key":"abcd",)",
                               R"("org":"org-a","roles":["member"]})")));
  EXPECT_EQ(r.code, ExecCode::kBadArgs);
  EXPECT_THAT(r.log, HasSubstr("32 bytes"));
  // Demoting an organisation's last admin is refused.
  r = Run(Propose(
      admins_[0],
      absl::StrCat(R"({"type":"set_roles","public_key":")",
                   ToHex(e_admin.public_key), R"(","roles":["auditor"]})")));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
}

// A set_rule vote executed in block H puts the rule in force from H + 1:
// the chain state and commit result of H name it (next_rules), and so does
// H's commit event, kept for GetCommitted; the rules survive a reopen and
// are what a member page names. Before the vote, the genesis's.
TEST_F(AdminAppTest, ChainRulesTakeEffectFromTheNextHeight) {
  CommitTxs({});
  EXPECT_EQ(State().next_rules, chain_.genesis.rules);
  Govern(R"({"type":"set_rule","name":"max_block_txs","value":7})");
  const uint64_t h = State().height;
  ChainRules expected = chain_.genesis.rules;
  expected.max_block_txs = 7;
  EXPECT_EQ(State().next_rules, expected);
  // The vote's block event carries the change; the proposal's block none.
  absl::StatusOr<CommittedPage> page = ledger_->GetCommitted(h - 2, h);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 3u);
  EXPECT_EQ(page->events[0].rules, std::nullopt);
  EXPECT_EQ(page->events[2].rules, expected);
  CommitTxs({Kv(clerk_, "k", "v")});
  page = ledger_->GetCommitted(h + 1, h + 1);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].rules, std::nullopt);

  Govern(R"({"type":"set_rule","name":"replay_window","value":3000})");
  expected.replay_window = 3000;
  EXPECT_EQ(State().next_rules, expected);
  ledger_.reset();
  store_.reset();
  Open();
  EXPECT_EQ(State().next_rules, expected);
  absl::StatusOr<MemberPage> members = ledger_->ListMembers(Bytes(), 10);
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_EQ(members->rules, expected);
  // A commit result names them, and so does an idempotent re-commit.
  const Block b = chain_.NextBlock(State(), {});
  const CommitCertificate cert = chain_.CertifyBy(b.header, signers_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<CommitResult> r = ledger_->CommitBlock(EncodeBlock(b), cert);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->next_rules, expected);
  }
}

// A chain that starts with one validator decides blocks without Tendermint:
// its set cannot change.
TEST_F(AdminAppTest, OneValidatorChainRefusesValidatorChanges) {
  CommitTxs({});
  KeyPair v1 = Suite().GenerateKey();
  Receipt r = Run(Propose(
      admins_[0],
      absl::StrCat(R"({"type":"add_validator","name":"v1","public_key":")",
                   ToHex(v1.public_key), R"(","power":1})")));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
  EXPECT_THAT(r.log, HasSubstr("started with one validator"));
}

// A validator change is recorded at its commit and in force from
// effective_height on: the ledger keeps it with its proof, checks the
// certificates of later blocks against the new set, names the set of the
// next height to consensus, and keeps all of it across a restart (and a
// crash between the block's write and the record's).
TEST_F(AdminAppTest, ValidatorChangeTakesEffectAtItsEffectiveHeight) {
  KeyPair w1 = Suite().GenerateKey();
  chain_.genesis.validators.push_back(Validator{"w1", w1.public_key, 1});
  OpenOn(store_.get());
  signers_ = {&chain_.validator, &w1};
  CommitTxs({});
  KeyPair v2 = Suite().GenerateKey();
  Govern(absl::StrCat(R"({"type":"add_validator","name":"v2","public_key":")",
                      ToHex(v2.public_key), R"(","power":2})"));
  const uint64_t committed = State().height;
  absl::StatusOr<admin::ValidatorChangeRecord> change =
      admin::DecodeValidatorChange(
          AdminRecord("validators/pending").value_or(""));
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->committed_height, committed);
  const uint64_t effective = committed + admin::kDefaultValidatorChangeDelay;
  EXPECT_EQ(change->effective_height, effective);
  ASSERT_EQ(change->validators.size(), 3u);
  EXPECT_EQ(change->validators[2],
            (admin::ValidatorEntry{"v2", v2.public_key, 2}));
  ASSERT_EQ(change->previous.size(), 2u);
  EXPECT_EQ(change->proposal.size(), 64u);
  const std::vector<Validator> three = {chain_.genesis.validators[0],
                                        chain_.genesis.validators[1],
                                        Validator{"v2", v2.public_key, 2}};
  EXPECT_EQ(State().next_validators, chain_.genesis.validators);

  // Kept with its proof under block `committed`'s state root.
  absl::StatusOr<std::optional<std::string>> kept =
      store_->Get(keys::ValidatorChange(committed));
  ASSERT_TRUE(kept.ok() && kept->has_value());
  absl::StatusOr<StateRecord> rec = DecodeStateRecord(AsBytes(**kept));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->height, committed);
  EXPECT_TRUE(VerifyStateRecord(Suite(), chain_.genesis, "admin",
                                "validators/pending", *rec, false)
                  .ok());

  // Another change waits until the first holds.
  Receipt r = Run(Propose(
      admins_[0], R"({"type":"set_validator_power","name":"v2","power":5})"));
  EXPECT_EQ(r.code, ExecCode::kInvalidState);
  EXPECT_THAT(r.log,
              HasSubstr(absl::StrCat("pending until height ", effective)));
  while (State().height + 1 < effective) CommitTxs({});
  EXPECT_EQ(State().next_validators, three);

  // From `effective` on the old set alone (2 of 4 power) certifies nothing.
  Block b = chain_.NextBlock(State(), {});
  absl::StatusOr<CommitResult> refused = ledger_->CommitBlock(
      EncodeBlock(b), chain_.CertifyBy(b.header, signers_));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("two thirds"));
  signers_ = {&chain_.validator, &w1, &v2};
  CommitTxs({});
  EXPECT_EQ(State().height, effective);

  // A restart, and one after a crash that lost the record's write.
  OpenOn(store_.get());
  EXPECT_EQ(State().next_validators, three);
  // (The record and its index entry are written in one batch.)
  WriteBatch drop;
  drop.Delete(keys::ValidatorChange(committed));
  drop.Delete(keys::ValidatorChangeHeights());
  ASSERT_TRUE(store_->Write(drop).ok());
  OpenOn(store_.get());
  EXPECT_EQ(State().next_validators, three);
  kept = store_->Get(keys::ValidatorChange(committed));
  ASSERT_TRUE(kept.ok() && kept->has_value()) << "not kept again at start";
  ASSERT_EQ(ledger_->ValidatorEpochs()->size(), 2u);
  EXPECT_EQ(ledger_->ValidatorEpochs()->back().from_height, effective);

  // Removing one: the remaining two sign from its effective height on.
  Govern(R"({"type":"remove_validator","name":"v0"})");
  change = admin::DecodeValidatorChange(
      AdminRecord("validators/pending").value_or(""));
  ASSERT_TRUE(change.ok());
  ASSERT_EQ(change->validators.size(), 2u);
  EXPECT_EQ(change->validators[0].name, "w1");
  EXPECT_EQ(change->previous.size(), 3u);
  while (State().height + 1 < change->effective_height) CommitTxs({});
  signers_ = {&w1, &v2};
  CommitTxs({});
  EXPECT_EQ(ledger_->ValidatorEpochs()->size(), 3u);
}

// Each validator-set change is kept with its proof, and ListValidatorChanges
// hands them out with the next block's header and certificate: what a
// verifier that trusts only the genesis follows (FollowValidatorChanges).
// A chain of three validators (a chain of one cannot change its set).
class AdminAppValidatorsTest : public AdminAppTest {
 protected:
  AdminAppValidatorsTest() : AdminAppTest(3) {}
};

TEST_F(AdminAppValidatorsTest, ListValidatorChangesGivesWhatAVerifierFollows) {
  CommitTxs({});
  // Block 1's record (the genesis set, committed at 0) is no change.
  absl::StatusOr<std::vector<StateRecord>> changes =
      ledger_->ListValidatorChanges(100);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->empty());

  Govern(R"({"type":"set_validator_power","name":"v0","power":5})");
  const uint64_t first = State().height;
  changes = ledger_->ListValidatorChanges(first);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].height, first);
  // Its block is the tip: the next one, which certifies it, does not exist.
  EXPECT_FALSE((*changes)[0].next_header.has_value());
  EXPECT_TRUE(ledger_->ListValidatorChanges(first - 1)->empty());

  const uint64_t effective = first + admin::kDefaultValidatorChangeDelay;
  while (State().height + 1 < effective) CommitTxs({});
  Govern(R"({"type":"set_validator_power","name":"v0","power":7})");
  const uint64_t second = State().height;
  CommitTxs({});
  changes = ledger_->ListValidatorChanges(State().height);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[1].height, second);
  for (const StateRecord& r : *changes) {
    ASSERT_TRUE(r.next_header.has_value());
    EXPECT_EQ(r.next_header->height, r.height + 1);
  }
  absl::StatusOr<std::vector<ValidatorEpoch>> epochs =
      FollowValidatorChanges(Suite(), chain_.genesis, *changes);
  ASSERT_TRUE(epochs.ok()) << epochs.status();
  ASSERT_EQ(epochs->size(), 3u);
  EXPECT_EQ((*epochs)[1].from_height, effective);
  EXPECT_EQ((*epochs)[1].validators[0].power, 5u);
  EXPECT_EQ((*epochs)[2].from_height,
            second + admin::kDefaultValidatorChangeDelay);
  EXPECT_EQ((*epochs)[2].validators[0].power, 7u);
  EXPECT_EQ(*epochs, *ledger_->ValidatorEpochs());

  // A change whose value was altered is refused, naming its height.
  std::vector<StateRecord> forged = *changes;
  forged[1].value.back() = ' ';
  absl::StatusOr<std::vector<ValidatorEpoch>> refused =
      FollowValidatorChanges(Suite(), chain_.genesis, forged);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("validator change at height ", second)));
}

// A chain without a consortium stays open, and has no admin records.
TEST(AdminAppOpenChainTest, WithoutConsortiumAnyKeyMayWrite) {
  TempDir dir;
  Chain chain;
  AppRegistry apps = AppRegistry::WithBuiltins();
  absl::StatusOr<std::unique_ptr<KvStore>> store =
      OpenRocksDbStore(RocksDbStoreOptions{dir.Sub("ledger"), true});
  ASSERT_TRUE(store.ok());
  Ledger::Options o;
  o.store = store->get();
  o.genesis = &chain.genesis;
  o.suite = &Suite();
  o.apps = &apps;
  absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(o);
  ASSERT_TRUE(ledger.ok());
  KeyPair anyone = Suite().GenerateKey();
  Bytes kv = chain.Tx(anyone, "set", {"k", "v"}, 1);
  Bytes gov = chain.AppTx(anyone, "admin", "propose",
                          {R"({"type":"remove_org","id":"a"})", "5"}, 2);
  Block b = chain.NextBlock(*(*ledger)->GetChainState(), {kv, gov});
  ASSERT_TRUE(
      (*ledger)->CommitBlock(EncodeBlock(b), chain.Certify(b.header)).ok());
  EXPECT_EQ((*ledger)->GetTx(Chain::HashOf(kv))->receipt.code, ExecCode::kOk);
  EXPECT_EQ((*ledger)->GetTx(Chain::HashOf(gov))->receipt.code,
            ExecCode::kUnauthorized);
  EXPECT_FALSE((*ledger)->GetState("admin", "config")->found);
}

}  // namespace
}  // namespace consortia::storage
