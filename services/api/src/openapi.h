// The api's OpenAPI 3.1 document (services/api/openapi.json), built into the
// binary by CMake (cmake/EmbedFile.cmake) and served at GET /v1/openapi.json.
// The contract test (tests/e2e/openapi_contract_test.cc) checks the api's
// answers against it.
#ifndef CONSORTIA_API_OPENAPI_H_
#define CONSORTIA_API_OPENAPI_H_

#include <string_view>

namespace consortia::api {

// The bytes of services/api/openapi.json as it was at build time.
// Thread-safe (constant).
std::string_view OpenApiDocument();

}  // namespace consortia::api

#endif  // CONSORTIA_API_OPENAPI_H_
