// consortia: the command-line client and local network launcher.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"

namespace {

constexpr char kUsage[] = R"(usage: consortia <command> [options]

Keys and genesis
  keygen  --out FILE [--suite ed25519-sha256]        new key pair (JSON file,
                                                    mode 0600; never
                                                    overwrites FILE)
  genesis --chain-id ID --out FILE KEYFILE...       genesis with these validators

Transactions and queries (--api URL, default http://127.0.0.1:26657)
  submit  --genesis FILE --key FILE --app APP --method M [--valid-for N]
          [--nonce N] [--wait] [--dry-run] ARG...    build, sign and submit a tx
                                                    for the genesis's chain
  get tx HASH | get block HEIGHT|latest | get state APP KEY
  verify  --genesis FILE TXHASH                     check a tx's proof offline:
                                                    only the genesis is trusted
  verify  --genesis FILE --state APP KEY [--timeout S]
                                                    check a state value (or its
                                                    absence) the same way

Local network
  localnet [--dir DIR] [--api-port N] [--base-port N] [--validators N]
           [--single-process]
          start N validator nodes on 127.0.0.1 (default 4, or as many as
          DIR's existing genesis has; keys, genesis and
          peers file are created in DIR on first use; node i serves its API
          on api-port + i); Ctrl-C stops every process
  localnet [--dir DIR] --stop                       stop the one running from DIR
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" ||
      std::string(argv[1]) == "help") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  using namespace consortia::cli;
  if (cmd == "keygen") return KeygenCommand(args);
  if (cmd == "genesis") return GenesisCommand(args);
  if (cmd == "submit") return SubmitCommand(args);
  if (cmd == "get") return GetCommand(args);
  if (cmd == "verify") return VerifyCommand(args);
  if (cmd == "localnet") return LocalnetCommand(args, argv[0]);
  std::fprintf(stderr, "consortia: unknown command '%s'\n\n%s", cmd.c_str(),
               kUsage);
  return 2;
}
