#include "consortia/options.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "consortia/config.h"
#include "nlohmann/json.hpp"

namespace consortia {
namespace {

constexpr char kTableEnd[] = "<!-- /options -->";

// The registry: filled during static initialisation (single-threaded), read
// afterwards. A deque keeps the returned references valid.
struct Registry {
  std::mutex mu;
  std::deque<OptionSpec> specs;
};

Registry& GetRegistry() {
  static Registry* r = new Registry();
  return *r;
}

int OwnerRank(std::string_view owner) {
  static constexpr std::string_view kOrder[] = {"node", "storage", "mempool",
                                                "consensus", "api"};
  for (size_t i = 0; i < std::size(kOrder); ++i) {
    if (kOrder[i] == owner) return static_cast<int>(i);
  }
  return static_cast<int>(std::size(kOrder));
}

bool IsIntegerType(std::string_view type) {
  return type.find("int") != std::string_view::npos;
}

std::string BoundText(const std::optional<int64_t>& b) {
  return b ? absl::StrCat(*b) : "";
}

std::string TableStart(std::string_view owner) {
  return absl::StrCat("<!-- options:", std::string(owner), " -->");
}

// A cell of a markdown table: no newlines, escaped pipes.
std::string Cell(const std::string& text) {
  return absl::StrReplaceAll(text, {{"|", "\\|"}, {"\n", " "}});
}

}  // namespace

std::string OptionSpec::DefaultValue() const {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  return flag == nullptr ? "" : flag->DefaultValue();
}

std::string OptionSpec::EnvVar() const {
  return absl::StrCat("CONSORTIA_", absl::AsciiStrToUpper(name));
}

const OptionSpec& RegisterOption(OptionSpec spec) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.specs.push_back(std::move(spec));
  return r.specs.back();
}

std::vector<const OptionSpec*> DeclaredOptions() {
  Registry& r = GetRegistry();
  std::vector<const OptionSpec*> out;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    for (const OptionSpec& s : r.specs) out.push_back(&s);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const OptionSpec* a, const OptionSpec* b) {
                     const int ra = OwnerRank(a->owner);
                     const int rb = OwnerRank(b->owner);
                     if (ra != rb) return ra < rb;
                     return ra == OwnerRank("") && a->owner < b->owner;
                   });
  return out;
}

std::vector<const OptionSpec*> DeclaredOptions(std::string_view owner) {
  std::vector<const OptionSpec*> out;
  for (const OptionSpec* s : DeclaredOptions()) {
    if (s->owner == owner) out.push_back(s);
  }
  return out;
}

absl::Status CheckOptionRange(const OptionSpec& spec, int64_t value, int64_t lo,
                              int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", spec.name, "=", value, " is out of bounds [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckOptionBounds(const OptionSpec& spec, int64_t value) {
  return CheckOptionRange(
      spec, value, spec.min.value_or(std::numeric_limits<int64_t>::min()),
      spec.max.value_or(std::numeric_limits<int64_t>::max()));
}

absl::Status CheckOptionBounds(const OptionSpec& spec, uint64_t value) {
  if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", spec.name, "=", value, " is out of bounds [",
                     BoundText(spec.min), ", ", BoundText(spec.max), "]"));
  }
  return CheckOptionBounds(spec, static_cast<int64_t>(value));
}

std::string DumpOptionsJson() {
  nlohmann::json out = nlohmann::json::array();
  for (const OptionSpec* s : DeclaredOptions()) {
    const std::string def = s->DefaultValue();
    nlohmann::json default_value = def;
    if (s->type == "bool") {
      default_value = def == "true";
    } else if (IsIntegerType(s->type)) {
      int64_t i = 0;
      uint64_t u = 0;
      if (absl::SimpleAtoi(def, &i)) {
        default_value = i;
      } else if (absl::SimpleAtoi(def, &u)) {
        default_value = u;
      }
    }
    out.push_back({
        {"name", s->name},
        {"owner", s->owner},
        {"type", s->type},
        {"default", default_value},
        {"min", s->min ? nlohmann::json(*s->min) : nlohmann::json(nullptr)},
        {"max", s->max ? nlohmann::json(*s->max) : nlohmann::json(nullptr)},
        {"help", s->help},
        {"env", s->EnvVar()},
    });
  }
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

std::string OptionsHelpText() {
  std::string out;
  std::string owner;
  for (const OptionSpec* s : DeclaredOptions()) {
    if (s->owner != owner || out.empty()) {
      owner = s->owner;
      absl::StrAppend(&out, "\n", owner == "node" ? "node-wide" : owner,
                      " options:\n");
    }
    absl::StrAppend(&out, "  --", s->name, " (", s->type, ", default \"",
                    s->DefaultValue(), "\"");
    if (s->min || s->max) {
      absl::StrAppend(&out, ", ", BoundText(s->min), "..", BoundText(s->max));
    }
    absl::StrAppend(&out, ", env ", s->EnvVar(), ")\n      ", s->help, "\n");
  }
  absl::StrAppend(&out,
                  "\n  --help prints this; --dump_options prints the options "
                  "as JSON; --helpfull lists every flag linked in.\n");
  return out;
}

std::string OptionsMarkdownTable(std::string_view owner) {
  std::string out =
      "| flag | env | default | min | max | meaning |\n"
      "|---|---|---|---|---|---|\n";
  for (const OptionSpec* s : DeclaredOptions(owner)) {
    const std::string def = s->DefaultValue();
    absl::StrAppend(&out, "| `--", s->name, "` | `", s->EnvVar(), "` | ",
                    def.empty() ? "(empty)" : absl::StrCat("`", def, "`"),
                    " | ", BoundText(s->min), " | ", BoundText(s->max), " | ",
                    Cell(s->help), " |\n");
  }
  return out;
}

absl::Status CheckOptionsTable(const std::string& path, std::string_view owner,
                               bool update) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  const std::string start = TableStart(owner);
  const size_t begin = text->find(start);
  const size_t end = begin == std::string::npos
                         ? std::string::npos
                         : text->find(kTableEnd, begin + start.size());
  if (begin == std::string::npos || end == std::string::npos) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has no \"", start, "\" ... \"", kTableEnd, "\" block"));
  }
  const std::string want = absl::StrCat("\n", OptionsMarkdownTable(owner));
  const size_t from = begin + start.size();
  const std::string have = text->substr(from, end - from);
  if (have == want) return absl::OkStatus();
  if (update) {
    std::string updated = *text;
    updated.replace(from, end - from, want);
    absl::Status s = WriteFileAtomic(path, updated);
    if (s.ok()) chmod(path.c_str(), 0644);  // WriteFileAtomic makes 0600
    return s;
  }
  // Name the first row that differs.
  std::vector<std::string> have_rows = absl::StrSplit(have, '\n');
  std::vector<std::string> want_rows = absl::StrSplit(want, '\n');
  size_t i = 0;
  while (i < have_rows.size() && i < want_rows.size() &&
         have_rows[i] == want_rows[i]) {
    ++i;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      path, ": the ", std::string(owner),
      " options table differs from the declarations (CONSORTIA_OPTION in "
      "config.cc) at row ",
      i, ":\n  README:   ", i < have_rows.size() ? have_rows[i] : "(none)",
      "\n  declared: ", i < want_rows.size() ? want_rows[i] : "(none)",
      "\nRun the test with CONSORTIA_UPDATE_OPTION_TABLES=1 to rewrite "
      "the table."));
}

absl::Status CheckOptionsTableInTree(const std::string& source_dir,
                                     const std::string& relative_path,
                                     std::string_view owner) {
  if (DeclaredOptions(owner).empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no options of \"", std::string(owner), "\" linked in"));
  }
  const char* update = std::getenv("CONSORTIA_UPDATE_OPTION_TABLES");
  return CheckOptionsTable(source_dir + "/" + relative_path, owner,
                           update != nullptr && std::string(update) == "1");
}

}  // namespace consortia
