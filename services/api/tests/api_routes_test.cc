// The route table of src/api_routes.cc: how it matches paths, and that the
// documentation lists exactly the routes it declares (services/api/README.md
// and docs/api.md, each in a table whose rows start with the method).
#include "api_routes.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace consortia::api {
namespace {

// s cut at every `sep` (empty pieces included).
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Parts(std::string_view path) {
  if (path.empty() || path[0] != '/') return {};
  return Split(path.substr(1), '/');
}

const RouteSpec* Match(std::string_view path) {
  return MatchRoute(Parts(path));
}

TEST(ApiRoutesTest, EachTemplateMatchesItselfAndNoOtherRoute) {
  std::set<std::string> paths;
  for (const RouteSpec& r : ApiRoutes()) {
    EXPECT_TRUE(paths.insert(r.path).second) << r.path << " twice";
    const RouteSpec* m = Match(r.path);
    ASSERT_NE(m, nullptr) << r.path;
    EXPECT_EQ(m, &r) << r.path << " matched " << m->path;
  }
}

TEST(ApiRoutesTest, MatchesConcretePaths) {
  auto id = [](std::string_view path) {
    const RouteSpec* m = Match(path);
    return m == nullptr ? std::string("none") : std::string(m->path);
  };
  EXPECT_EQ(id("/v1/txs"), "/v1/txs");
  EXPECT_EQ(id("/v1/txs:batch"), "/v1/txs:batch");
  EXPECT_EQ(id("/v1/txs/abc"), "/v1/txs/{hash}");
  EXPECT_EQ(id("/v1/txs/"), "/v1/txs/{hash}");  // the handler refuses ""
  EXPECT_EQ(id("/v1/blocks/latest"), "/v1/blocks/{height}");
  EXPECT_EQ(id("/v1/blocks/by-hash"), "/v1/blocks/{height}");
  EXPECT_EQ(id("/v1/blocks/by-hash/ab"), "/v1/blocks/by-hash/{hash}");
  EXPECT_EQ(id("/v1/state/kv"), "/v1/state/{app}");
  EXPECT_EQ(id("/v1/state/kv/a"), "/v1/state/{app}/{key}");
  EXPECT_EQ(id("/v1/state/kv/a/b/c"), "/v1/state/{app}/{key}");
  EXPECT_EQ(id("/v1/state/kv/"), "/v1/state/{app}/{key}");
  EXPECT_EQ(id("/healthz"), "/healthz");
  EXPECT_EQ(id("/v1/evidence"), "/v1/evidence");
  EXPECT_EQ(id("/explorer"), "/explorer");
  EXPECT_EQ(id("/explorer/"), "/explorer/{file}");
  EXPECT_EQ(id("/explorer/app.js"), "/explorer/{file}");
  EXPECT_EQ(id("/v1/apps/invoice/invoices/a/1"),
            "/v1/apps/invoice/invoices/{issuer}/{number}");
  EXPECT_EQ(id("/v1/apps/invoice/invoices"), "/v1/apps/invoice/invoices");
  EXPECT_EQ(id("/v1/apps/admin/members/ab"),
            "/v1/apps/admin/members/{public_key}");
  for (std::string_view unknown : {"",
                                   "/",
                                   "/v1",
                                   "/v1/",
                                   "/healthz/x",
                                   "/v2/txs",
                                   "/v1/txs/a/b",
                                   "/v1/txs:batch/x",
                                   "/v1/txs:batches",
                                   "/v1/state",
                                   "/v1/blocks/by-hash/a/b",
                                   "/v1/evidence/1",
                                   "/readyz/",
                                   "/explorer/a/b",
                                   "/metrics",
                                   "/v1/apps",
                                   "/v1/apps/invoice",
                                   "/v1/apps/kv/x",
                                   "/v1/apps/invoice/invoices/a",
                                   "/v1/apps/invoice/invoices/a/1/2",
                                   "/v1/apps/notary/documents"}) {
    EXPECT_EQ(id(unknown), "none") << unknown;
  }
}

std::string ReadDoc(const std::string& relative) {
  std::ifstream in(std::string(CONSORTIA_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in.good()) << "cannot read " << relative;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One documented route: a table row "| METHOD | `path`, `path` | ... |".
struct DocRoute {
  std::string method;
  std::string path;  // without its query (`?from=H`, `[?height=H]`)
};

// The routes a document's tables list: every row whose first cell is an
// HTTP method, with each back-quoted path of its second cell.
std::vector<DocRoute> DocumentedRoutes(const std::string& doc) {
  std::vector<DocRoute> out;
  for (std::string_view line : Split(doc, '\n')) {
    if (line.empty() || line[0] != '|') continue;
    std::vector<std::string_view> cells = Split(line.substr(1), '|');
    if (cells.size() < 2) continue;
    const std::string method(Trim(cells[0]));
    if (method != "GET" && method != "POST" && method != "PUT" &&
        method != "DELETE" && method != "PATCH") {
      continue;
    }
    std::vector<std::string_view> quoted = Split(cells[1], '`');
    for (size_t i = 1; i < quoted.size(); i += 2) {
      std::string_view path = quoted[i];
      path = path.substr(0, std::min(path.find('?'), path.find("[?")));
      out.push_back({method, std::string(path)});
    }
  }
  return out;
}

class ApiRoutesDocTest : public testing::TestWithParam<const char*> {};

TEST_P(ApiRoutesDocTest, ListsEveryRouteTheApiServes) {
  const std::vector<DocRoute> documented =
      DocumentedRoutes(ReadDoc(GetParam()));
  for (const RouteSpec& r : ApiRoutes()) {
    bool found = false;
    for (const DocRoute& d : documented) {
      found = found || (d.method == r.method && d.path == r.path);
    }
    EXPECT_TRUE(found) << GetParam() << " has no table row \"| " << r.method
                       << " | `" << r.path << "` |\"";
  }
}

TEST_P(ApiRoutesDocTest, ListsOnlyRoutesTheApiServes) {
  const std::vector<DocRoute> documented =
      DocumentedRoutes(ReadDoc(GetParam()));
  EXPECT_FALSE(documented.empty()) << GetParam() << " lists no route";
  for (const DocRoute& d : documented) {
    const RouteSpec* m = Match(d.path);
    EXPECT_TRUE(m != nullptr && d.method == m->method)
        << GetParam() << " lists " << d.method << " " << d.path
        << ", which the api does not serve";
  }
}

INSTANTIATE_TEST_SUITE_P(Docs, ApiRoutesDocTest,
                         testing::Values("services/api/README.md",
                                         "docs/api.md"));

}  // namespace
}  // namespace consortia::api
