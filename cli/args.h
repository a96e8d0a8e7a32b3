// Command-line parsing for the consortia CLI: `--name value`, `--name=value`
// and boolean `--name`, mixed with positional arguments; after `--` every
// argument is positional.
#ifndef CONSORTIA_CLI_ARGS_H_
#define CONSORTIA_CLI_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace consortia::cli {

class Args {
 public:
  // bool_flags take no value. InvalidArgument for a flag not in known or
  // bool_flags, or a missing value.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::set<std::string>& known,
                                    const std::set<std::string>& bool_flags);

  std::string Get(const std::string& name, const std::string& def = "") const;
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // InvalidArgument("--name is required") when absent.
  absl::StatusOr<std::string> Require(const std::string& name) const;
  absl::StatusOr<uint64_t> GetU64(const std::string& name, uint64_t def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_ARGS_H_
