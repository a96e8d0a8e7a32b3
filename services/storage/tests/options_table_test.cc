// The README's option table is the declarations' (consortia/options.h):
// this fails when a CONSORTIA_OPTION changes and the README does not. Run
// with CONSORTIA_UPDATE_OPTION_TABLES=1 to rewrite the table.
#include "consortia/options.h"
#include "consortia/storage/storage_service.h"
#include "gtest/gtest.h"

namespace consortia {
namespace {

TEST(OptionsTableTest, ReadmeTableMatchesTheDeclarations) {
  absl::Status s = CheckOptionsTableInTree(
      CONSORTIA_SOURCE_DIR, "services/storage/README.md", "storage");
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(OptionsTableTest, StructDefaultsAreTheDeclaredDefaults) {
  // FromFlags() with every flag at its default: the declarations' defaults.
  EXPECT_TRUE(storage::StorageOptions{} ==
              storage::StorageOptions::FromFlags());
}

}  // namespace
}  // namespace consortia
