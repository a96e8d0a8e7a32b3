// The subcommands of `consortia`. Each returns the process exit code: 0 on
// success, 1 when the operation failed, 2 for bad usage.
#ifndef CONSORTIA_CLI_COMMANDS_H_
#define CONSORTIA_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace consortia::cli {

int KeygenCommand(const std::vector<std::string>& args);
int GenesisCommand(const std::vector<std::string>& args);
int SubmitCommand(const std::vector<std::string>& args);
int GetCommand(const std::vector<std::string>& args);
int VerifyCommand(const std::vector<std::string>& args);
int LocalnetCommand(const std::vector<std::string>& args,
                    const std::string& self);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_COMMANDS_H_
