#include "consortia/invoice_records.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia::invoice {
namespace {

using nlohmann::json;

Hash32 Filled(uint8_t b) {
  Hash32 h;
  h.fill(b);
  return h;
}

InvoiceRecord Sample() {
  InvoiceRecord r;
  r.issuer_org = "org-a";
  r.number = "INV-42.v_1";
  r.issuer_key = Bytes{0xaa, 0x01};
  r.buyer_org = "org-b";
  r.amount_cents = kMaxCents;
  r.tax_cents = 0;
  r.currency = "CNY";
  r.items_hash = Filled(0x11);
  r.status = Status::kAccepted;
  r.history.push_back(Step{Status::kIssued, 10, 1700000010000, "org-a",
                           Bytes{0xaa, 0x01}, Filled(0x22), ""});
  r.history.push_back(Step{Status::kAccepted, 12, 1700000012000, "org-b",
                           Bytes{0xbb}, Filled(0x33), "ok \xe2\x9c\x93"});
  return r;
}

TEST(InvoiceRecordsTest, RecordAndSummaryRoundTripAsSortedJson) {
  const InvoiceRecord r = Sample();
  const std::string text = EncodeInvoice(r);
  EXPECT_EQ(
      text.rfind(R"({"amount_cents":1000000000000000,"buyer_org":"org-b",)", 0),
      0u)
      << text;
  absl::StatusOr<InvoiceRecord> back = DecodeInvoice(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(EncodeInvoice(*back), text);

  const BuyerIndexEntry e = SummaryOf(r);
  EXPECT_EQ(e.height, 12u);
  EXPECT_EQ(e.status, Status::kAccepted);
  EXPECT_EQ(EncodeBuyerIndexEntry(e),
            R"({"amount_cents":1000000000000000,"currency":"CNY","height":12,)"
            R"("issuer_org":"org-a","number":"INV-42.v_1","status":"accepted",)"
            R"("tax_cents":0})");
  absl::StatusOr<BuyerIndexEntry> e_back =
      DecodeBuyerIndexEntry(EncodeBuyerIndexEntry(e));
  ASSERT_TRUE(e_back.ok()) << e_back.status();
  EXPECT_EQ(*e_back, e);
}

TEST(InvoiceRecordsTest, Keys) {
  EXPECT_EQ(InvoiceKey("org-a", "INV-1"), "inv/org-a/INV-1");
  EXPECT_EQ(IssuerPrefix("org-a"), "inv/org-a/");
  EXPECT_EQ(BuyerIndexKey("org-b", "org-a", "INV-1"),
            "buyer/org-b/org-a/INV-1");
  EXPECT_EQ(BuyerPrefix("org-b"), "buyer/org-b/");
}

TEST(InvoiceRecordsTest, StatusNamesParseBack) {
  for (Status s : {Status::kIssued, Status::kAccepted, Status::kRejected,
                   Status::kReimbursed, Status::kVoided}) {
    absl::StatusOr<Status> back = ParseStatus(StatusName(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(ParseStatus("Issued").ok());
}

TEST(InvoiceRecordsTest, ParseCentsAcceptsOnlyCanonicalDecimalUpToTheLimit) {
  EXPECT_EQ(*ParseCents("0"), 0u);
  EXPECT_EQ(*ParseCents("1"), 1u);
  EXPECT_EQ(*ParseCents("1234500"), 1234500u);
  EXPECT_EQ(*ParseCents("1000000000000000"), kMaxCents);
  EXPECT_EQ(*ParseCents("999999999999999"), kMaxCents - 1);
  for (const char* bad :
       {"", "00", "01", "-1", "+1", "1.5", "1e3", " 1", "1 ", "0x10",
        "1000000000000001", "9999999999999999", "18446744073709551616",
        "99999999999999999999999999", "１"}) {
    EXPECT_FALSE(ParseCents(bad).ok()) << bad;
  }
  EXPECT_NE(
      ParseCents("1000000000000001").status().message().find("over the limit"),
      std::string::npos);
  EXPECT_NE(ParseCents("012").status().message().find("leading zero"),
            std::string::npos);
}

TEST(InvoiceRecordsTest, ArgumentChecks) {
  EXPECT_TRUE(CheckInvoiceNumber("A").ok());
  EXPECT_TRUE(CheckInvoiceNumber(std::string(64, '9')).ok());
  EXPECT_TRUE(CheckInvoiceNumber("inv_2026.03-7").ok());
  for (std::string bad :
       {std::string(), std::string(65, 'a'), std::string("a/b"),
        std::string("a b"), std::string("\xff"), std::string("a\0b", 3)}) {
    EXPECT_FALSE(CheckInvoiceNumber(bad).ok()) << bad;
  }
  EXPECT_TRUE(CheckCurrency("CNY").ok());
  for (const char* bad : {"", "cny", "CN", "CNYX", "C1Y", "CNý"}) {
    EXPECT_FALSE(CheckCurrency(bad).ok()) << bad;
  }
  const std::string lower(64, 'a');
  const std::string upper(64, 'A');
  ASSERT_TRUE(ParseHashHex(lower).ok());
  EXPECT_EQ(*ParseHashHex(lower), *ParseHashHex(upper));
  EXPECT_FALSE(ParseHashHex(std::string(62, 'a')).ok());
  EXPECT_FALSE(ParseHashHex(std::string(66, 'a')).ok());
  EXPECT_FALSE(ParseHashHex(std::string(63, 'a') + "g").ok());
  EXPECT_TRUE(CheckNote("").ok());
  EXPECT_TRUE(CheckNote(std::string(kMaxNoteBytes, 'x')).ok());
  EXPECT_TRUE(CheckNote("税额错误").ok());
  EXPECT_FALSE(CheckNote(std::string(kMaxNoteBytes + 1, 'x')).ok());
  for (const char* bad :
       {"\xff", "\xc0\x80", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    EXPECT_FALSE(CheckNote(bad).ok()) << bad;
  }
}

// Each field of a valid record, replaced by something the encoder never
// writes, is refused; so is a missing, an extra and a repeated field.
TEST(InvoiceRecordsTest, DecoderRefusesEachMalformedField) {
  const json good = json::parse(EncodeInvoice(Sample()));
  std::vector<std::pair<std::string, json>> bad_fields = {
      {"issuer_org", "Org A"},
      {"issuer_org", 1},
      {"number", ""},
      {"number", "a/b"},
      {"issuer_key", ""},
      {"issuer_key", "AA01"},
      {"issuer_key", "zz"},
      {"buyer_org", ""},
      {"amount_cents", -1},
      {"amount_cents", 1.5},
      {"amount_cents", "100"},
      {"amount_cents", kMaxCents + 1},
      {"tax_cents", kMaxCents + 1},
      {"currency", "cny"},
      {"items_hash", std::string(62, 'a')},
      {"items_hash", std::string(64, 'A')},
      {"status", "paid"},
      {"status", "issued"},  // not the history's last step
      {"history", json::array()},
      {"history", "x"},
  };
  for (const auto& [field, value] : bad_fields) {
    json j = good;
    j[field] = value;
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok()) << field << " = " << value;
  }
  std::vector<std::pair<std::string, json>> bad_steps = {
      {"step", "paid"},
      {"height", -1},
      {"time_ms", "1"},
      {"org", "-x"},
      {"key", ""},
      {"tx", "00"},
      {"tx", std::string(64, 'G')},
      {"note", std::string(300, 'x')},
      {"note", 7},
  };
  for (const auto& [field, value] : bad_steps) {
    json j = good;
    j["history"][1][field] = value;
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok()) << field << " = " << value;
  }
  {
    json j = good;
    j["history"][0]["step"] = "accepted";  // must begin with issued
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok());
  }
  for (const auto& [field, value] : good.items()) {
    json j = good;
    j.erase(field);
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok()) << "without " << field;
  }
  for (const auto& [field, value] : good["history"][0].items()) {
    json j = good;
    j["history"][0].erase(field);
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok()) << "step without " << field;
  }
  {
    json j = good;
    j["extra"] = 1;
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok());
    j = good;
    j["history"][0]["extra"] = 1;
    EXPECT_FALSE(DecodeInvoice(j.dump()).ok());
  }
  std::string twice = good.dump();
  twice.insert(1, R"("number":"OTHER",)");
  EXPECT_FALSE(DecodeInvoice(twice).ok());
  EXPECT_FALSE(DecodeInvoice("").ok());
  EXPECT_FALSE(DecodeInvoice("[]").ok());
  EXPECT_FALSE(DecodeInvoice(good.dump() + "x").ok());
}

TEST(InvoiceRecordsTest, SummaryDecoderRefusesEachMalformedField) {
  const json good = json::parse(EncodeBuyerIndexEntry(SummaryOf(Sample())));
  std::vector<std::pair<std::string, json>> bad_fields = {
      {"issuer_org", "A"}, {"number", ""},
      {"status", "paid"},  {"amount_cents", kMaxCents + 1},
      {"tax_cents", -5},   {"currency", "yen"},
      {"height", "12"},
  };
  for (const auto& [field, value] : bad_fields) {
    json j = good;
    j[field] = value;
    EXPECT_FALSE(DecodeBuyerIndexEntry(j.dump()).ok()) << field;
  }
  for (const auto& [field, value] : good.items()) {
    json j = good;
    j.erase(field);
    EXPECT_FALSE(DecodeBuyerIndexEntry(j.dump()).ok()) << "without " << field;
  }
  json j = good;
  j["extra"] = 0;
  EXPECT_FALSE(DecodeBuyerIndexEntry(j.dump()).ok());
}

}  // namespace
}  // namespace consortia::invoice
