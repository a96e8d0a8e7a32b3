#include "args.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace consortia::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::set<std::string>& known,
                                 const std::set<std::string>& bool_flags) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {  // the end of the options: the rest is positional
      a.positional_.insert(a.positional_.end(), argv.begin() + i + 1,
                           argv.end());
      break;
    }
    if (!absl::StartsWith(arg, "--")) {
      a.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (bool_flags.count(name)) {
      a.values_[name] = has_value ? value : "true";
      continue;
    }
    if (!known.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option --", name));
    }
    if (!has_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("option --", name, " needs a value"));
      }
      value = argv[++i];
    }
    a.values_[name] = value;
  }
  return a;
}

std::string Args::Get(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

absl::StatusOr<std::string> Args::Require(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " is required"));
  }
  return it->second;
}

absl::StatusOr<uint64_t> Args::GetU64(const std::string& name,
                                      uint64_t def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, " must be a whole number, got '", it->second, "'"));
  }
  return v;
}

}  // namespace consortia::cli
