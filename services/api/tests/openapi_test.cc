// services/api/openapi.json, the api's contract: the document built into the
// binary is the file, it is OpenAPI 3.1, and it has an operation for every
// route of src/api_routes.cc. (tools/openapi/lint.sh lints it; the contract
// test, tests/e2e/openapi_contract_test.cc, checks real answers against it.)
#include "openapi.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>

#include "api_routes.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace consortia::api {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(CONSORTIA_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in.good()) << "cannot read " << relative;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(OpenApiTest, TheBuiltInDocumentIsTheSourceFile) {
  EXPECT_EQ(std::string(OpenApiDocument()),
            ReadSource("services/api/openapi.json"))
      << "rebuild: the embedded document is stale";
}

TEST(OpenApiTest, IsAnOpenApi31Document) {
  nlohmann::json doc = nlohmann::json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << "services/api/openapi.json is not JSON";
  EXPECT_EQ(doc.value("openapi", "").rfind("3.1.", 0), 0u);
  EXPECT_TRUE(doc.contains("paths"));
  EXPECT_TRUE(doc["components"]["securitySchemes"].contains("apiKey"));
}

TEST(OpenApiTest, HasAnOperationForEveryRoute) {
  nlohmann::json doc = nlohmann::json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_TRUE(doc.is_object());
  for (const RouteSpec& r : ApiRoutes()) {
    std::string method(r.method);
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    EXPECT_TRUE(doc["paths"].contains(r.path) &&
                doc["paths"][r.path].contains(method))
        << "services/api/openapi.json has no operation " << r.method << " "
        << r.path;
  }
}

}  // namespace
}  // namespace consortia::api
