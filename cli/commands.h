// The subcommands of `consortia`. Each returns the process exit code: 0 on
// success, 1 when the operation failed, 2 for bad usage.
#ifndef CONSORTIA_CLI_COMMANDS_H_
#define CONSORTIA_CLI_COMMANDS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace consortia::cli {

// Creates `path` with `data`, mode 0600, durably. AlreadyExists (and
// nothing written) if `path` exists, even when it appears concurrently.
absl::Status WriteNewKeyFile(const std::string& path, std::string_view data);

int KeygenCommand(const std::vector<std::string>& args);
int GenesisCommand(const std::vector<std::string>& args);
int SubmitCommand(const std::vector<std::string>& args);
int GetCommand(const std::vector<std::string>& args);
int VerifyCommand(const std::vector<std::string>& args);
int LocalnetCommand(const std::vector<std::string>& args,
                    const std::string& self);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_COMMANDS_H_
