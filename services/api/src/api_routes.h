// The api's routes, declared once: the table below is what the handler
// matches requests against, the `route` label of its metrics and log lines,
// and what the route test compares with services/api/README.md and
// docs/api.md (a route added here must be documented there).
#ifndef CONSORTIA_API_API_ROUTES_H_
#define CONSORTIA_API_API_ROUTES_H_

#include <span>
#include <string_view>
#include <vector>

namespace consortia::api {

enum class RouteId {
  kSubmit,
  kSubmitBatch,
  kGetTx,
  kGetCertifiedBlock,
  kGetCertifiedBlockByHash,
  kListBlockSummaries,
  kGetState,
  kScanState,
  kListEvidence,
  kHealthz,
  kReadyz,
  kEvents,
  kOpenApi,
  kExplorer,
  kExplorerFile,
  // The native apps' typed reads (app_reads.h).
  kGetInvoice,
  kListInvoices,
  kGetDocument,
  kListOrgs,
  kListMembers,
  kGetMember,
  kListProposals,
  kGetProposal,
};

struct RouteSpec {
  RouteId id;
  const char* method;  // the only method the route accepts
  // The path template, which is also the route's label: literal segments,
  // and `{name}` for a segment of any text (empty too).
  const char* path;
  // The last `{name}` takes the rest of the path, one segment or more
  // (slashes included): `/v1/state/{app}/{key}`.
  bool last_takes_rest = false;
};

// Every route the api serves. No path matches two of them. Thread-safe
// (constant).
std::span<const RouteSpec> ApiRoutes();

// The route whose template matches a path split at its slashes (without the
// leading one: "/v1/txs" is {"v1", "txs"}), or nullptr. Thread-safe.
const RouteSpec* MatchRoute(const std::vector<std::string_view>& parts);

}  // namespace consortia::api

#endif  // CONSORTIA_API_API_ROUTES_H_
