// libFuzzer target for the payload decoders of the bus messages between the
// services (service_messages.h): every request a service decodes from
// the bus and every reply a client decodes. The first input byte picks the
// decoder, the rest is the payload. A decoder never crashes, and whatever it
// accepts encodes to bytes that decode again and encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "consortia/service_api.h"
#include "service_messages.h"

namespace {

using consortia::Bytes;
using consortia::ByteView;
namespace sai = consortia::service_api_internal;

template <typename Decode, typename Encode>
void RoundTrip(const char* what, ByteView in, Decode decode, Encode encode) {
  auto v = decode(in);
  if (!v.ok()) return;
  const Bytes once = encode(*v);
  auto again = decode(ByteView(once));
  if (!again.ok()) {
    std::fprintf(stderr, "%s: its own encoding does not decode: %s\n", what,
                 again.status().ToString().c_str());
    std::abort();
  }
  if (encode(*again) != once) {
    std::fprintf(stderr, "%s: encoding is not stable\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;
  if (size == 0) return 0;
  const ByteView in(data + 1, size - 1);
  switch (data[0] % 30) {
    case 0:
      RoundTrip("submit request", in, sai::DecodeSubmitRequest,
                sai::EncodeSubmitRequest);
      break;
    case 1:
      RoundTrip("submit response", in, sai::DecodeSubmitResponse,
                sai::EncodeSubmitResponse);
      break;
    case 2:
      RoundTrip("reap request", in, sai::DecodeReapRequest,
                sai::EncodeReapRequest);
      break;
    case 3:
      RoundTrip("reap response", in, sai::DecodeReapResponse,
                sai::EncodeReapResponse);
      break;
    case 4:
      RoundTrip("check proposal request", in, sai::DecodeCheckProposalRequest,
                [](const sai::CheckProposalRequest& r) {
                  return sai::EncodeCheckProposalRequest(r.raw_txs, r.height);
                });
      break;
    case 5:
      RoundTrip("check proposal response", in, sai::DecodeCheckProposalResponse,
                sai::EncodeCheckProposalResponse);
      break;
    case 6:
      RoundTrip("chain state", in, sai::DecodeChainState,
                sai::EncodeChainState);
      break;
    case 7:
      RoundTrip("commit block request", in, sai::DecodeCommitBlockRequest,
                [](const sai::CommitBlockRequest& r) {
                  return sai::EncodeCommitBlockRequest(r.block, r.cert);
                });
      break;
    case 8:
      RoundTrip("commit result", in, sai::DecodeCommitResult,
                sai::EncodeCommitResult);
      break;
    case 9:
      RoundTrip("certified block request", in, sai::DecodeCertifiedBlockRequest,
                sai::EncodeCertifiedBlockRequest);
      break;
    case 10:
      RoundTrip("block record", in, DecodeBlockRecord, EncodeBlockRecord);
      break;
    case 11:
      RoundTrip("get tx request", in, sai::DecodeGetTxRequest,
                sai::EncodeGetTxRequest);
      break;
    case 12:
      RoundTrip("tx record", in, DecodeTxRecord, EncodeTxRecord);
      break;
    case 13:
      RoundTrip("get state request", in, sai::DecodeGetStateRequest,
                sai::EncodeGetStateRequest);
      break;
    case 14:
      RoundTrip("get state at request", in, sai::DecodeGetStateAtRequest,
                sai::EncodeGetStateAtRequest);
      break;
    case 15:
      RoundTrip("page request", in, sai::DecodePageRequest,
                sai::EncodePageRequest);
      break;
    case 16:
      RoundTrip("block summaries", in, sai::DecodeBlockSummaries,
                sai::EncodeBlockSummaries);
      break;
    case 17:
      RoundTrip("certified blocks request", in,
                sai::DecodeCertifiedBlocksRequest,
                sai::EncodeCertifiedBlocksRequest);
      break;
    case 18:
      RoundTrip("block records", in, sai::DecodeBlockRecords,
                sai::EncodeBlockRecords);
      break;
    case 19:
      RoundTrip("scan state request", in, sai::DecodeScanStateRequest,
                sai::EncodeScanStateRequest);
      break;
    case 20:
      RoundTrip("state page", in, sai::DecodeStatePage, sai::EncodeStatePage);
      break;
    case 21:
      RoundTrip("get committed request", in, sai::DecodeGetCommittedRequest,
                sai::EncodeGetCommittedRequest);
      break;
    case 22:
      RoundTrip("committed page", in, sai::DecodeCommittedPage,
                sai::EncodeCommittedPage);
      break;
    case 23:
      RoundTrip("evidence records", in, sai::DecodeEvidenceRecords,
                sai::EncodeEvidenceRecords);
      break;
    case 24:
      RoundTrip("chain tip", in, sai::DecodeChainTip, sai::EncodeChainTip);
      break;
    case 25:
      RoundTrip("committed event", in, DecodeCommittedEvent,
                EncodeCommittedEvent);
      break;
    case 26:
      RoundTrip("list members request", in, sai::DecodeListMembersRequest,
                sai::EncodeListMembersRequest);
      break;
    case 27:
      RoundTrip("member page", in, sai::DecodeMemberPage,
                sai::EncodeMemberPage);
      break;
    case 28:
      RoundTrip("validator changes request", in,
                sai::DecodeValidatorChangesRequest,
                sai::EncodeValidatorChangesRequest);
      break;
    case 29:
      RoundTrip("state records", in, sai::DecodeStateRecords,
                sai::EncodeStateRecords);
      break;
  }
  return 0;
}
