#include "consortia/notary_records.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia::notary {
namespace {

using nlohmann::json;

Hash32 Filled(uint8_t b) {
  Hash32 h;
  h.fill(b);
  return h;
}

DocRecord Sample() {
  DocRecord r;
  r.hash = Filled(0xab);
  r.owner_key = Bytes{0x01, 0x02};
  r.owner_org = "org-a";
  r.metadata = R"({"title":"合同 v2"})";
  r.anchored_height = 5;
  r.anchored_time_ms = 1700000005000;
  r.status = Status::kRevoked;
  r.history.push_back(Step{Status::kAnchored, 5, 1700000005000,
                           Bytes{0x01, 0x02}, Filled(0x10), ""});
  r.history.push_back(Step{Status::kRevoked, 9, 1700000009000, Bytes{0x03},
                           Filled(0x20), "superseded"});
  return r;
}

TEST(NotaryRecordsTest, RecordRoundTripsAsSortedJson) {
  const DocRecord r = Sample();
  const std::string text = EncodeDoc(r);
  EXPECT_EQ(text.rfind(
                R"({"anchored_height":5,"anchored_time_ms":1700000005000,)", 0),
            0u)
      << text;
  absl::StatusOr<DocRecord> back = DecodeDoc(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(EncodeDoc(*back), text);

  DocRecord open_chain = Sample();
  open_chain.owner_org = "";
  open_chain.metadata = "";
  open_chain.status = Status::kAnchored;
  open_chain.history.pop_back();
  absl::StatusOr<DocRecord> open_back = DecodeDoc(EncodeDoc(open_chain));
  ASSERT_TRUE(open_back.ok()) << open_back.status();
  EXPECT_EQ(*open_back, open_chain);
}

TEST(NotaryRecordsTest, KeyAndArgumentChecks) {
  std::string ab;
  for (int i = 0; i < 32; ++i) ab += "ab";
  EXPECT_EQ(DocKey(Filled(0xab)), "doc/" + ab);
  absl::StatusOr<Hash32> h = ParseDocHash(std::string(64, 'F'));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, Filled(0xff));
  EXPECT_FALSE(ParseDocHash("").ok());
  EXPECT_FALSE(ParseDocHash(std::string(63, 'f')).ok());
  EXPECT_FALSE(ParseDocHash(std::string(128, 'f')).ok());
  EXPECT_FALSE(ParseDocHash(std::string(63, 'f') + "x").ok());
  EXPECT_TRUE(CheckMetadata("").ok());
  EXPECT_TRUE(CheckMetadata(std::string(kMaxMetadataBytes, 'm')).ok());
  EXPECT_FALSE(CheckMetadata(std::string(kMaxMetadataBytes + 1, 'm')).ok());
  EXPECT_FALSE(CheckMetadata("\x80").ok());
  EXPECT_TRUE(CheckNote(std::string(kMaxNoteBytes, 'n')).ok());
  EXPECT_FALSE(CheckNote(std::string(kMaxNoteBytes + 1, 'n')).ok());
  for (Status s : {Status::kAnchored, Status::kRevoked}) {
    EXPECT_EQ(*ParseStatus(StatusName(s)), s);
  }
  EXPECT_FALSE(ParseStatus("deleted").ok());
}

TEST(NotaryRecordsTest, DecoderRefusesEachMalformedField) {
  const json good = json::parse(EncodeDoc(Sample()));
  std::vector<std::pair<std::string, json>> bad_fields = {
      {"hash", std::string(64, 'A')},
      {"hash", std::string(62, 'a')},
      {"owner_key", ""},
      {"owner_key", "0G"},
      {"owner_org", "Org A"},
      {"owner_org", 3},
      {"metadata", std::string(kMaxMetadataBytes + 1, 'm')},
      {"anchored_height", -1},
      {"anchored_height", 6},  // not the history's first step
      {"anchored_time_ms", 1.5},
      {"anchored_time_ms", 1},  // not the history's first step
      {"status", "deleted"},
      {"status", "anchored"},  // not the history's last step
      {"history", json::array()},
      {"history", json::object()},
  };
  for (const auto& [field, value] : bad_fields) {
    json j = good;
    j[field] = value;
    EXPECT_FALSE(DecodeDoc(j.dump()).ok()) << field << " = " << value;
  }
  std::vector<std::pair<std::string, json>> bad_steps = {
      {"step", "deleted"}, {"height", "9"},
      {"time_ms", -2},     {"key", "ABCD"},
      {"tx", ""},          {"note", std::string(kMaxNoteBytes + 1, 'n')},
  };
  for (const auto& [field, value] : bad_steps) {
    json j = good;
    j["history"][1][field] = value;
    EXPECT_FALSE(DecodeDoc(j.dump()).ok()) << field << " = " << value;
  }
  {
    json j = good;
    j["history"][0]["step"] = "revoked";
    EXPECT_FALSE(DecodeDoc(j.dump()).ok());
  }
  for (const auto& [field, value] : good.items()) {
    json j = good;
    j.erase(field);
    EXPECT_FALSE(DecodeDoc(j.dump()).ok()) << "without " << field;
  }
  for (const auto& [field, value] : good["history"][1].items()) {
    json j = good;
    j["history"][1].erase(field);
    EXPECT_FALSE(DecodeDoc(j.dump()).ok()) << "step without " << field;
  }
  json extra = good;
  extra["owner"] = "x";
  EXPECT_FALSE(DecodeDoc(extra.dump()).ok());
  std::string twice = good.dump();
  twice.insert(1, R"("metadata":"forged",)");
  EXPECT_FALSE(DecodeDoc(twice).ok());
  EXPECT_FALSE(DecodeDoc("null").ok());
}

}  // namespace
}  // namespace consortia::notary
