#include "consortia/genesis_file.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "consortia/config.h"

namespace consortia {

absl::StatusOr<Genesis> LoadGenesis(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    // ReadFile's message names the path already.
    return absl::Status(text.status().code(),
                        absl::StrCat("genesis: ", text.status().message()));
  }
  absl::StatusOr<Genesis> genesis = ParseGenesisJson(*text);
  if (!genesis.ok()) {
    // ParseGenesisJson's messages begin with "genesis: "; the path takes the
    // place of that colon, so that no message says "genesis" twice.
    absl::string_view why = genesis.status().message();
    absl::ConsumePrefix(&why, "genesis: ");
    return absl::Status(genesis.status().code(),
                        absl::StrCat("genesis ", path, ": ", why));
  }
  return genesis;
}

}  // namespace consortia
