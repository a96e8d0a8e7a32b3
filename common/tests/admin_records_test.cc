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

}  // namespace
}  // namespace consortia::admin
