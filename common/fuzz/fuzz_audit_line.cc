// libFuzzer target for the audit log's line checker (consortia/
// audit_chain.h): any bytes, split into lines, go through the verifier;
// nothing may crash, and a line that checks must keep checking once
// re-sealed after the chain's start.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "consortia/audit_chain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  AuditChainVerifier v;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    absl::StatusOr<AuditSeal> seal = CheckAuditLine(line);
    if (seal.ok() && (seal->hash.size() != 64 || seal->prev.size() != 64)) {
      std::abort();
    }
    v.Add(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  // Sealing any object keeps it checkable.
  const std::string line = SealAuditLine("{\"x\":1}", AuditChainStart());
  if (!CheckAuditLine(line).ok()) std::abort();
  return 0;
}
