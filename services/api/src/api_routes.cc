#include "api_routes.h"

#include <array>

namespace consortia::api {
namespace {

constexpr std::array<RouteSpec, 23> kRoutes = {{
    {RouteId::kHealthz, "GET", "/healthz"},
    {RouteId::kReadyz, "GET", "/readyz"},
    {RouteId::kOpenApi, "GET", "/v1/openapi.json"},
    {RouteId::kSubmit, "POST", "/v1/txs"},
    // One literal segment "txs:batch" (the Google API style of a custom
    // method); it is not a {hash} of /v1/txs/{hash}, which has one more.
    {RouteId::kSubmitBatch, "POST", "/v1/txs:batch"},
    {RouteId::kGetTx, "GET", "/v1/txs/{hash}"},
    {RouteId::kListBlockSummaries, "GET", "/v1/blocks"},
    {RouteId::kGetCertifiedBlock, "GET", "/v1/blocks/{height}"},
    {RouteId::kGetCertifiedBlockByHash, "GET", "/v1/blocks/by-hash/{hash}"},
    {RouteId::kListEvidence, "GET", "/v1/evidence"},
    {RouteId::kEvents, "GET", "/v1/events"},
    {RouteId::kScanState, "GET", "/v1/state/{app}"},
    {RouteId::kGetState, "GET", "/v1/state/{app}/{key}",
     /*last_takes_rest=*/true},
    {RouteId::kGetInvoice, "GET",
     "/v1/apps/invoice/invoices/{issuer}/{number}"},
    {RouteId::kListInvoices, "GET", "/v1/apps/invoice/invoices"},
    {RouteId::kGetDocument, "GET", "/v1/apps/notary/documents/{hash}"},
    {RouteId::kListOrgs, "GET", "/v1/apps/admin/orgs"},
    {RouteId::kListMembers, "GET", "/v1/apps/admin/members"},
    {RouteId::kGetMember, "GET", "/v1/apps/admin/members/{public_key}"},
    {RouteId::kListProposals, "GET", "/v1/apps/admin/proposals"},
    {RouteId::kGetProposal, "GET", "/v1/apps/admin/proposals/{id}"},
    {RouteId::kExplorer, "GET", "/explorer"},
    {RouteId::kExplorerFile, "GET", "/explorer/{file}"},
}};

bool IsPlaceholder(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool Matches(const RouteSpec& route,
             const std::vector<std::string_view>& parts) {
  std::string_view rest(route.path);
  rest.remove_prefix(1);  // every template starts with '/'
  for (size_t i = 0;; ++i) {
    const size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    const bool placeholder = IsPlaceholder(segment);
    if (last && placeholder && route.last_takes_rest) return i < parts.size();
    if (i >= parts.size()) return false;
    if (!placeholder && parts[i] != segment) return false;
    if (last) return i + 1 == parts.size();
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace

std::span<const RouteSpec> ApiRoutes() { return kRoutes; }

const RouteSpec* MatchRoute(const std::vector<std::string_view>& parts) {
  for (const RouteSpec& route : kRoutes) {
    if (Matches(route, parts)) return &route;
  }
  return nullptr;
}

}  // namespace consortia::api
