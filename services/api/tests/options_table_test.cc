// The README's option table is the declarations' (consortia/options.h):
// this fails when a CONSORTIA_OPTION changes and the README does not. Run
// with CONSORTIA_UPDATE_OPTION_TABLES=1 to rewrite the table.
#include "consortia/api/api_service.h"
#include "consortia/options.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

TEST(OptionsTableTest, ReadmeTableMatchesTheDeclarations) {
  absl::Status s = CheckOptionsTableInTree(CONSORTIA_SOURCE_DIR,
                                           "services/api/README.md", "api");
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(OptionsTableTest, StructDefaultsAreTheDeclaredDefaults) {
  // FromFlags() with every flag at its default: the declarations' defaults.
  EXPECT_TRUE(api::ApiOptions{} == api::ApiOptions::FromFlags());
}

}  // namespace
}  // namespace consortia
