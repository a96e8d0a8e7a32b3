// What a native app's record says, in one line of words: for `consortia
// invoice|notary|gov show` and for `consortia verify` once the record is
// proven ("invoice INV-42 of org-a to org-b: issued at height 10, ...").
#ifndef CONSORTIA_CLI_APP_WORDS_H_
#define CONSORTIA_CLI_APP_WORDS_H_

#include <string>
#include <string_view>

namespace consortia::cli {

// `value` is the record's bytes as the app wrote them (a JSON object, docs/
// apps.md). A record of another app, or one that is not what its app
// writes, is shown as "APP/KEY = VALUE".
std::string DescribeRecord(std::string_view app, std::string_view key,
                           std::string_view value);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_APP_WORDS_H_
