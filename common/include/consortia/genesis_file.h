// The genesis file, as every binary reads it: the services at start-up, the
// CLI (submit, verify, localnet) and the test binaries. One function, so that
// every reader checks the same things and words its errors alike.
#ifndef CONSORTIA_COMMON_GENESIS_FILE_H_
#define CONSORTIA_COMMON_GENESIS_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "consortia/types.h"

namespace consortia {

// Reads the genesis file at `path` and parses it strictly (ParseGenesisJson:
// every field present and in range, a known crypto suite, 1 or more
// validators with distinct keys of the suite's size, chain rules in range).
// Every error message begins with "genesis " and names the file once:
//   - the file cannot be read: ReadFile's code (NotFound, PermissionDenied,
//     Internal) with "genesis: cannot open <path>: <reason>";
//   - it is not a valid genesis: InvalidArgument with
//     "genesis <path>: <what is wrong, naming the field>".
// Thread-safe (reads the file once, keeps nothing).
absl::StatusOr<Genesis> LoadGenesis(const std::string& path);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_GENESIS_FILE_H_
