// libFuzzer target for the admin app's state records and its action JSON
// (consortia/admin_records.h): the same bytes go to every decoder; whatever
// one accepts must survive Encode -> Decode unchanged; nothing may crash or
// throw.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "consortia/admin_records.h"

namespace {

template <typename T, typename Decode, typename Encode>
void RoundTrip(std::string_view text, Decode decode, Encode encode,
               const char* what) {
  absl::StatusOr<T> first = decode(text);
  if (!first.ok()) return;
  const std::string again = encode(*first);
  absl::StatusOr<T> back = decode(again);
  if (!back.ok() || !(*back == *first) || encode(*back) != again) {
    std::fprintf(stderr, "%s round trip failed: %s\n", what, again.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia::admin;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  RoundTrip<OrgRecord>(text, DecodeOrg, EncodeOrg, "org");
  RoundTrip<MemberRecord>(text, DecodeMember, EncodeMember, "member");
  RoundTrip<OrgListRecord>(text, DecodeOrgList, EncodeOrgList, "org list");
  RoundTrip<OrgMembersRecord>(text, DecodeOrgMembers, EncodeOrgMembers,
                              "org members");
  RoundTrip<ConfigRecord>(text, DecodeConfig, EncodeConfig, "config");
  RoundTrip<Action>(text, DecodeAction, EncodeAction, "action");
  RoundTrip<ProposalRecord>(text, DecodeProposal, EncodeProposal, "proposal");
  RoundTrip<ValidatorChangeRecord>(text, DecodeValidatorChange,
                                   EncodeValidatorChange, "validator change");
  return 0;
}
