#include "consortia/audit_chain.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

// A chain of n sealed lines.
std::vector<std::string> Chain(int n) {
  std::vector<std::string> lines;
  std::string prev = AuditChainStart();
  for (int i = 0; i < n; ++i) {
    nlohmann::json rec = {{"time", "2025-03-01T09:00:00Z"},
                          {"org", "acme"},
                          {"key_id", "0123456789ab"},
                          {"tx_hashes", {std::string(64, 'a' + i % 6)}},
                          {"outcome", "accepted"},
                          {"n", i}};
    std::string line = SealAuditLine(rec.dump(), prev);
    prev = CheckAuditLine(line)->hash;
    lines.push_back(line);
  }
  return lines;
}

// Verifies lines; returns the first bad line (0 when all are good).
uint64_t FirstBad(const std::vector<std::string>& lines) {
  AuditChainVerifier v;
  for (const std::string& l : lines) {
    if (!v.Add(l)) break;
  }
  return v.bad_line();
}

TEST(AuditChainTest, SealedLinesAreJsonWithPrevAndHashLast) {
  std::vector<std::string> lines = Chain(3);
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["outcome"], "accepted");
    EXPECT_EQ(j["prev"].get<std::string>().size(), 64u);
    EXPECT_EQ(j["prev"],
              i == 0 ? AuditChainStart() : CheckAuditLine(lines[i - 1])->hash);
    EXPECT_NE(lines[i].find(",\"prev\":"), std::string::npos);
    EXPECT_EQ(lines[i].find('\n'), std::string::npos);
  }
  EXPECT_EQ(FirstBad(lines), 0u);
}

TEST(AuditChainTest, EditedLineIsDetectedAtThatLine) {
  std::vector<std::string> lines = Chain(6);
  std::string& l = lines[3];
  l.replace(l.find("accepted"), 8, "rejected");
  EXPECT_EQ(FirstBad(lines), 4u);
}

TEST(AuditChainTest, EditedAndRehashedLineIsDetectedAtTheNext) {
  std::vector<std::string> lines = Chain(6);
  // Re-seal line 3 (index 2) with different content but the right prev.
  nlohmann::json j = nlohmann::json::parse(lines[2]);
  std::string prev = j["prev"];
  j.erase("prev");
  j.erase("hash");
  j["outcome"] = "rejected";
  lines[2] = SealAuditLine(j.dump(), prev);
  ASSERT_TRUE(CheckAuditLine(lines[2]).ok());
  AuditChainVerifier v;
  for (const std::string& line : lines) {
    if (!v.Add(line)) break;
  }
  EXPECT_EQ(v.bad_line(), 4u);
  EXPECT_NE(v.reason().find("prev does not match line 3"), std::string::npos)
      << v.reason();
}

TEST(AuditChainTest, DeletedLineIsDetectedWhereItWas) {
  std::vector<std::string> lines = Chain(6);
  lines.erase(lines.begin() + 2);  // line 3
  EXPECT_EQ(FirstBad(lines), 3u);
  std::vector<std::string> first = Chain(4);
  first.erase(first.begin());
  EXPECT_EQ(FirstBad(first), 1u);
}

TEST(AuditChainTest, ReorderedLinesAreDetectedAtTheFirstMoved) {
  std::vector<std::string> lines = Chain(6);
  std::swap(lines[3], lines[4]);  // lines 4 and 5
  EXPECT_EQ(FirstBad(lines), 4u);
}

TEST(AuditChainTest, InsertedLineIsDetected) {
  std::vector<std::string> lines = Chain(4);
  std::vector<std::string> other = Chain(2);
  lines.insert(lines.begin() + 2, other[1]);
  EXPECT_EQ(FirstBad(lines), 3u);
}

TEST(AuditChainTest, MalformedLinesAreRefused) {
  EXPECT_FALSE(CheckAuditLine("").ok());
  EXPECT_FALSE(CheckAuditLine("{}").ok());
  EXPECT_FALSE(CheckAuditLine("not json").ok());
  std::string line = Chain(1)[0];
  // A repeated field (JSON that could show one value and hash another).
  std::string dup = "{\"outcome\":\"x\"," + line.substr(1);
  EXPECT_FALSE(CheckAuditLine(dup).ok());
  EXPECT_FALSE(CheckAuditLine(line.substr(0, line.size() - 1)).ok());
}

TEST(AuditChainTest, VerifiesAFileAndReportsTheBadLine) {
  char tmpl[] = "/tmp/audit_chain_testXXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string path = tmpl;
  std::vector<std::string> lines = Chain(5);
  auto write = [&](const std::vector<std::string>& ls, bool last_newline) {
    std::ofstream out(path, std::ios::trunc | std::ios::binary);
    for (size_t i = 0; i < ls.size(); ++i) {
      out << ls[i];
      if (i + 1 < ls.size() || last_newline) out << "\n";
    }
  };
  write(lines, true);
  absl::StatusOr<AuditReport> r = VerifyAuditLogFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->lines, 5u);
  EXPECT_EQ(r->head, CheckAuditLine(lines[4])->hash);

  // A torn last line (no newline).
  write(lines, false);
  r = VerifyAuditLogFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->bad_line, 5u);
  EXPECT_NE(r->reason.find("incomplete"), std::string::npos);

  std::vector<std::string> edited = lines;
  edited[1][10] = edited[1][10] == 'x' ? 'y' : 'x';
  write(edited, true);
  r = VerifyAuditLogFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->bad_line, 2u);

  // An empty log is a good (empty) chain.
  write({}, true);
  r = VerifyAuditLogFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->lines, 0u);
  std::remove(path.c_str());
  EXPECT_TRUE(absl::IsNotFound(VerifyAuditLogFile(path).status()));
}

}  // namespace
}  // namespace consortia
