// Options declared once. Each option of a binary is one CONSORTIA_OPTION
// line in the config.cc of the module that owns it: its owner (the section of
// the docs it belongs to), type, name, default, bounds and help. From that one
// declaration come
//   - the Abseil flag --<name> (and the environment variable
//     CONSORTIA_<NAME IN UPPER CASE>, see ParseFlagsAndEnv in config.h),
//   - the bounds check of the owner's Validate() (CheckOptionBounds),
//   - `<binary> --help` and `<binary> --dump_options` (JSON), and
//   - the option table of the owner's README (OptionsMarkdownTable; a unit
//     test per owner fails when the README's table differs, and rewrites it
//     when run with CONSORTIA_UPDATE_OPTION_TABLES=1).
// Bounds relating two options (the pool's byte limit at least its largest
// tx) are checked by hand in Validate() after the declared bounds, and the
// help text says so.
#ifndef CONSORTIA_COMMON_OPTIONS_H_
#define CONSORTIA_COMMON_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"

namespace consortia {

// One declared option. Bounds are inclusive and apply to the flag's value
// (a duration flag named *_ms is bounded in milliseconds); a string or bool
// option has none.
struct OptionSpec {
  std::string owner;  // "node" (every binary), "api", "mempool", ...
  std::string name;   // the flag name, without dashes
  std::string type;   // the C++ type of the flag: "int32_t", "std::string", ...
  std::optional<int64_t> min;
  std::optional<int64_t> max;
  std::string help;
  std::string DefaultValue() const;  // as text, from the Abseil flag
  std::string EnvVar() const;        // CONSORTIA_<NAME>
};

// Registers a declaration (called by CONSORTIA_OPTION at static
// initialisation) and returns it; it lives as long as the process.
const OptionSpec& RegisterOption(OptionSpec spec);

// Every option linked into this binary: "node" first, then by owner, each
// owner's in declaration order.
std::vector<const OptionSpec*> DeclaredOptions();
// The options of one owner, in declaration order.
std::vector<const OptionSpec*> DeclaredOptions(std::string_view owner);

// OK when value is within the declared bounds, else InvalidArgument
// "--<name>=<value> is out of bounds [<min>, <max>]".
absl::Status CheckOptionBounds(const OptionSpec& spec, int64_t value);
absl::Status CheckOptionBounds(const OptionSpec& spec, uint64_t value);
// The same message for a bound that depends on another option.
absl::Status CheckOptionRange(const OptionSpec& spec, int64_t value, int64_t lo,
                              int64_t hi);

// What --dump_options prints: a JSON array of {name, owner, type, default,
// min, max, help, env} (default as a JSON string, number or bool; min/max
// null when unbounded).
std::string DumpOptionsJson();
// What --help prints after the usage line: every option, grouped by owner.
std::string OptionsHelpText();
// The markdown table of one owner's options, as the READMEs carry it
// between "<!-- options:OWNER -->" and "<!-- /options -->".
std::string OptionsMarkdownTable(std::string_view owner);
// OK when the file at `path` carries OptionsMarkdownTable(owner) between
// its markers; FailedPrecondition naming the first differing row otherwise
// (with `update`, the file is rewritten to carry it, and OK returned).
absl::Status CheckOptionsTable(const std::string& path, std::string_view owner,
                               bool update);
// CheckOptionsTable for the file `relative_path` of the source tree at
// `source_dir`, updating it when CONSORTIA_UPDATE_OPTION_TABLES=1 is set
// (what each owner's options_table_test.cc calls).
absl::Status CheckOptionsTableInTree(const std::string& source_dir,
                                     const std::string& relative_path,
                                     std::string_view owner);

}  // namespace consortia

// Declares option `name` of `owner` (a string literal): an Abseil flag of
// `type` with `default_value` and `help`, bounded to [lo, hi] (integers).
#define CONSORTIA_OPTION(owner, type, name, default_value, lo, hi, help) \
  ABSL_FLAG(type, name, default_value, help);                            \
  [[maybe_unused]] static const ::consortia::OptionSpec& OPTION_##name = \
      ::consortia::RegisterOption(                                       \
          {owner, #name, #type, int64_t{lo}, int64_t{hi}, help})

// The same for an option without numeric bounds (strings, bools).
#define CONSORTIA_OPTION_UNBOUNDED(owner, type, name, default_value, help) \
  ABSL_FLAG(type, name, default_value, help);                              \
  [[maybe_unused]] static const ::consortia::OptionSpec& OPTION_##name =   \
      ::consortia::RegisterOption(                                         \
          {owner, #name, #type, std::nullopt, std::nullopt, help})

#endif  // CONSORTIA_COMMON_OPTIONS_H_
