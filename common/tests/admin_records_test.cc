#include "consortia/admin_records.h"

#include <string>

#include "gtest/gtest.h"

namespace consortia::admin {
namespace {

TEST(AdminRecordsTest, OrgAndMemberRoundTripAsSortedJson) {
  OrgRecord org{"tax-bureau", "Shenzhen Tax Bureau", 0};
  EXPECT_EQ(
      EncodeOrg(org),
      R"({"added_height":0,"id":"tax-bureau","name":"Shenzhen Tax Bureau"})");
  absl::StatusOr<OrgRecord> org_back = DecodeOrg(EncodeOrg(org));
  ASSERT_TRUE(org_back.ok()) << org_back.status();
  EXPECT_EQ(*org_back, org);

  MemberRecord m{
      Bytes{1, 2, 0xab}, "tax-bureau", {Role::kAdmin, Role::kIssuer}, 7};
  absl::StatusOr<MemberRecord> m_back = DecodeMember(EncodeMember(m));
  ASSERT_TRUE(m_back.ok()) << m_back.status();
  EXPECT_EQ(*m_back, m);
  EXPECT_TRUE(m_back->Has(Role::kIssuer));
  EXPECT_FALSE(m_back->Has(Role::kAuditor));
  EXPECT_EQ(MemberKey(m.public_key), "member/0102ab");
  EXPECT_EQ(OrgKey("a"), "org/a");
}

TEST(AdminRecordsTest, DecodersRefuseWhatTheEncoderNeverWrites) {
  const char* bad_orgs[] = {
      "",
      "[]",
      R"({"id":"a","name":"A"})",
      R"({"added_height":0,"id":"a","name":"A","x":1})",
      R"({"added_height":-1,"id":"a","name":"A"})",
      R"({"added_height":0,"id":"A b","name":"A"})",
      R"({"added_height":0,"id":"-a","name":"A"})",
      R"({"added_height":0,"id":"a","name":""})",
      R"({"added_height":0,"id":"a","id":"b","name":"A"})",
  };
  for (const char* text : bad_orgs) {
    EXPECT_FALSE(DecodeOrg(text).ok()) << text;
  }
  const char* bad_members[] = {
      R"({"added_height":0,"org":"a","public_key":"01","roles":[]})",
      R"({"added_height":0,"org":"a","public_key":"","roles":["admin"]})",
      R"({"added_height":0,"org":"a","public_key":"zz","roles":["admin"]})",
      R"({"added_height":0,"org":"a","public_key":"01","roles":["king"]})",
      R"({"added_height":0,"org":"a","public_key":"01","roles":["issuer","admin"]})",
      R"({"added_height":0,"org":"a","public_key":"01","roles":["admin","admin"]})",
      R"({"added_height":0,"org":"a","public_key":"01","roles":"admin"})",
  };
  for (const char* text : bad_members) {
    EXPECT_FALSE(DecodeMember(text).ok()) << text;
  }
  absl::StatusOr<MemberRecord> king = DecodeMember(bad_members[3]);
  EXPECT_NE(king.status().message().find("unknown role 'king'"),
            std::string::npos);
}

TEST(AdminRecordsTest, RoleNamesParseBack) {
  for (Role r : {Role::kAdmin, Role::kIssuer, Role::kAuditor, Role::kMember}) {
    absl::StatusOr<Role> back = ParseRole(RoleName(r));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, r);
  }
  EXPECT_FALSE(ParseRole("Admin").ok());
}

TEST(AdminRecordsTest, GovernanceRecordsRoundTrip) {
  const Bytes key(32, 0xab);
  OrgListRecord list{{"a", "b-2"}};
  EXPECT_EQ(EncodeOrgList(list), R"({"ids":["a","b-2"]})");
  EXPECT_EQ(*DecodeOrgList(EncodeOrgList(list)), list);
  OrgMembersRecord members{"a", {Bytes{1}, key}};
  EXPECT_EQ(*DecodeOrgMembers(EncodeOrgMembers(members)), members);
  ConfigRecord config{60, 3, 5000, 8388608, 1000};
  EXPECT_EQ(EncodeConfig(config),
            R"({"approval_percent":60,"max_block_bytes":8388608,)"
            R"("max_block_txs":5000,"replay_window":1000,)"
            R"("validator_change_delay":3})");
  EXPECT_EQ(*DecodeConfig(EncodeConfig(config)), config);

  Action add;
  add.type = ActionType::kAddMember;
  add.public_key = key;
  add.org = "a";
  add.roles = {Role::kAdmin, Role::kMember};
  ProposalRecord p{std::string(64, 'c'),  add, "a", {"a", "b-2"}, 5, 15,
                   ProposalStatus::kOpen, 0};
  absl::StatusOr<ProposalRecord> back = DecodeProposal(EncodeProposal(p));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(p.StatusAt(15), ProposalStatus::kOpen);
  EXPECT_EQ(p.StatusAt(16), ProposalStatus::kExpired);
  p.status = ProposalStatus::kExecuted;
  p.executed_height = 9;
  EXPECT_EQ(*DecodeProposal(EncodeProposal(p)), p);
  EXPECT_EQ(p.StatusAt(99), ProposalStatus::kExecuted);

  ValidatorChangeRecord change{{{"v0", key, 1}, {"v1", Bytes(32, 1), 2}},
                               {{"v0", key, 1}},
                               12,
                               9,
                               std::string(64, 'c')};
  absl::StatusOr<ValidatorChangeRecord> vback =
      DecodeValidatorChange(EncodeValidatorChange(change));
  ASSERT_TRUE(vback.ok()) << vback.status();
  EXPECT_EQ(*vback, change);
}

TEST(AdminRecordsTest, ActionJsonIsStrict) {
  const std::string key(64, 'a');
  absl::StatusOr<Action> a =
      DecodeAction(R"({"type":"add_member","public_key":")" + key +
                   R"(","org":"bank-a","roles":["member","admin"]})");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->roles, (std::vector<Role>{Role::kAdmin, Role::kMember}));
  EXPECT_EQ(*DecodeAction(EncodeAction(*a)), *a);
  for (const char* good : {
           R"({"type":"add_org","id":"org-e","name":"E"})",
           R"({"type":"remove_org","id":"org-e"})",
           R"({"type":"set_approval_percent","value":99})",
           R"({"type":"set_rule","name":"validator_change_delay","value":5})",
           R"({"type":"remove_validator","name":"v0"})",
           R"({"type":"set_validator_power","name":"v0","power":3})",
       }) {
    absl::StatusOr<Action> ok = DecodeAction(good);
    ASSERT_TRUE(ok.ok()) << good << ": " << ok.status();
    EXPECT_EQ(*DecodeAction(EncodeAction(*ok)), *ok) << good;
  }
  const struct {
    const char* json;
    const char* says;
  } bad[] = {
      {R"({"type":"crown","id":"x"})", "unknown type 'crown'"},
      {R"({"id":"x"})", "'type'"},
      {R"({"type":"add_org","id":"x"})", "'name' is missing"},
      {R"({"type":"add_org","id":"x","name":"X","extra":1})", "'extra'"},
      {R"({"type":"add_org","id":"X","name":"X"})", "'id'"},
      {R"({"type":"remove_org","id":"x","id":"y"})", "appears twice"},
      {R"({"type":"set_approval_percent","value":49})", "50 to 99"},
      {R"({"type":"set_approval_percent","value":"60"})", "'value'"},
      {R"({"type":"set_rule","name":"gas","value":1})", "unknown rule 'gas'"},
      {R"({"type":"set_validator_power","name":"v0","power":0})", "at least 1"},
      {R"({"type":"remove_validator","name":""})", "'name'"},
      {R"({"type":"remove_member","public_key":"ABCD"})", "lower-case hex"},
      {R"({"type":"set_roles","public_key":"ab","roles":["admin","admin"]})",
       "appears twice"},
      {R"({"type":"set_roles","public_key":"ab","roles":[]})", "non-empty"},
      {R"([1])", "not an object"},
      {R"({"type":"add_org",)", "malformed"},
  };
  for (const auto& b : bad) {
    absl::StatusOr<Action> r = DecodeAction(b.json);
    ASSERT_FALSE(r.ok()) << b.json;
    EXPECT_NE(r.status().message().find(b.says), std::string::npos)
        << b.json << ": " << r.status();
  }
  // Records refuse what the encoders never write.
  EXPECT_FALSE(DecodeOrgList(R"({"ids":["b","a"]})").ok());
  EXPECT_FALSE(DecodeOrgMembers(R"({"members":["02","01"],"org":"a"})").ok());
  EXPECT_FALSE(DecodeConfig(R"({"approval_percent":60,"max_block_bytes":1,)"
                            R"("max_block_txs":1,"replay_window":1,)"
                            R"("validator_change_delay":1})")
                   .ok());
  EXPECT_FALSE(
      DecodeProposal(R"({"action":{"id":"d","type":"remove_org"},"approvals":)"
                     R"(["a"],"created_height":1,"executed_height":0,)"
                     R"("expires_height":2,"id":"ab","proposer_org":"a",)"
                     R"("status":"open"})")
          .ok());
  EXPECT_FALSE(DecodeValidatorChange(
                   R"({"committed_height":3,"effective_height":3,)"
                   R"("previous":[{"name":"v","power":1,"public_key":"01"}],)"
                   R"("proposal":"","validators":[{"name":"v","power":1,)"
                   R"("public_key":"01"}]})")
                   .ok());
}

}  // namespace
}  // namespace consortia::admin
