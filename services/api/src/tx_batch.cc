#include "tx_batch.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace consortia::api {
namespace {

constexpr char kShape[] = R"(the body is {"txs":[tx, ...]})";
// Longest field name quoted back in a problem's detail.
constexpr size_t kMaxQuotedField = 64;

// Walks a text that nlohmann::json::accept has found to be valid JSON, so
// it checks nothing that accept checked. Iterative: nesting costs no stack.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  size_t pos() const { return i_; }
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void Next() { ++i_; }
  void SkipSpace() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }
  // From the opening quote to just after the closing one.
  void SkipString() {
    ++i_;
    while (s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
    ++i_;
  }
  // One value of any kind (at its first character).
  void SkipValue() {
    const char c = Peek();
    if (c == '"') {
      SkipString();
    } else if (c == '{' || c == '[') {
      size_t depth = 0;
      do {
        const char d = s_[i_];
        if (d == '"') {
          SkipString();
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') --depth;
        ++i_;
      } while (depth > 0);
    } else {  // a number, true, false or null
      while (i_ < s_.size() && !IsSpace(s_[i_]) && s_[i_] != ',' &&
             s_[i_] != '}' && s_[i_] != ']') {
        ++i_;
      }
    }
  }

 private:
  static bool IsSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<std::string_view>> SplitTxBatch(
    std::string_view body, size_t max_txs) {
  if (!nlohmann::json::accept(body)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the body is not valid JSON; ", kShape));
  }
  Scanner sc(body);
  sc.SkipSpace();
  if (sc.Peek() != '{') {
    return absl::InvalidArgumentError(
        absl::StrCat("the body is not a JSON object; ", kShape));
  }
  sc.Next();
  bool seen = false;
  std::vector<std::string_view> txs;
  while (true) {
    sc.SkipSpace();
    if (sc.Peek() == ',') {
      sc.Next();
      sc.SkipSpace();
    }
    if (sc.Peek() == '}') break;
    const size_t key_start = sc.pos();
    sc.SkipString();
    const std::string key =
        nlohmann::json::parse(body.substr(key_start, sc.pos() - key_start))
            .get<std::string>();
    sc.SkipSpace();
    sc.Next();  // ':'
    sc.SkipSpace();
    if (key != "txs") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown field \"", key.substr(0, kMaxQuotedField), "\"; ", kShape));
    }
    if (seen) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"txs\" is given twice; ", kShape));
    }
    seen = true;
    if (sc.Peek() != '[') {
      return absl::InvalidArgumentError(
          absl::StrCat("\"txs\" is not an array; ", kShape));
    }
    sc.Next();
    sc.SkipSpace();
    while (sc.Peek() != ']') {
      if (txs.size() == max_txs) {
        return absl::OutOfRangeError(
            absl::StrCat("the batch holds more than ", max_txs,
                         " transactions (--api_batch_max_txs); split it"));
      }
      const size_t start = sc.pos();
      sc.SkipValue();
      txs.push_back(body.substr(start, sc.pos() - start));
      sc.SkipSpace();
      if (sc.Peek() == ',') {
        sc.Next();
        sc.SkipSpace();
      }
    }
    sc.Next();  // ']'
  }
  if (!seen) {
    return absl::InvalidArgumentError(
        absl::StrCat("the field \"txs\" is missing; ", kShape));
  }
  if (txs.empty()) {
    return absl::InvalidArgumentError(
        "\"txs\" is empty: a batch holds at least one transaction");
  }
  return txs;
}

std::string BatchResultsJson(const std::vector<BatchTxAnswer>& answers) {
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const BatchTxAnswer& a : answers) {
    nlohmann::ordered_json r = nlohmann::ordered_json::object();
    if (!a.tx_hash.empty()) r["tx_hash"] = a.tx_hash;
    const int status = a.response.status;
    if (status == 200 || status == 202) {
      r["status"] = "pending";
    } else {
      nlohmann::ordered_json problem =
          nlohmann::ordered_json::parse(a.response.body, nullptr, false);
      if (!problem.is_object()) {
        problem = {{"status", status}};
      }
      r["problem"] = std::move(problem);
    }
    results.push_back(std::move(r));
  }
  nlohmann::ordered_json out;
  out["results"] = std::move(results);
  return out.dump();
}

}  // namespace consortia::api
