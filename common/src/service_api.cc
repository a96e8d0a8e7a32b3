// What service_api.h's interfaces define themselves: the names of the
// admission verdicts, and the default bodies of the optional methods. The
// rest lives in its own room: the messages and their codecs in
// service_messages.cc, the proof bundles in proof_bundle.cc, the remote
// clients in service_remote.cc and the server dispatch in service_serve.cc.
#include "consortia/service_api.h"

#include "absl/status/status.h"

namespace consortia {

std::string_view AdmissionName(Admission a) {
  switch (a) {
    case Admission::kAccepted:
      return "accepted";
    case Admission::kAlreadyPending:
      return "already_pending";
    case Admission::kMalformed:
      return "malformed";
    case Admission::kTooLarge:
      return "too_large";
    case Admission::kWrongChain:
      return "wrong_chain";
    case Admission::kExpired:
      return "expired";
    case Admission::kTooFarAhead:
      return "too_far_ahead";
    case Admission::kAlreadyCommitted:
      return "already_committed";
    case Admission::kBadSignature:
      return "bad_signature";
    case Admission::kPoolFull:
      return "pool_full";
    case Admission::kSenderLimit:
      return "sender_limit";
  }
  return "unknown";
}

absl::StatusOr<std::vector<ProposalTxCheck>> MempoolApi::CheckProposal(
    const std::vector<Bytes>&, uint64_t) {
  return absl::UnimplementedError("this mempool does not check proposals");
}

// ------------------------------------------------------- query defaults

absl::StatusOr<StateRecord> QueryApi::GetStateAt(const std::string&,
                                                 const std::string&, uint64_t) {
  return absl::UnimplementedError("GetStateAt is not implemented here");
}

absl::StatusOr<BlockRecord> QueryApi::GetBlockByHash(const Hash32&) {
  return absl::UnimplementedError("GetBlockByHash is not implemented here");
}

absl::StatusOr<std::vector<BlockSummary>> QueryApi::ListBlocks(uint64_t,
                                                               uint32_t) {
  return absl::UnimplementedError("ListBlocks is not implemented here");
}

absl::StatusOr<StatePage> QueryApi::ScanState(const std::string&,
                                              const std::string&,
                                              const std::string&, uint32_t) {
  return absl::UnimplementedError("ScanState is not implemented here");
}

absl::StatusOr<std::vector<BlockRecord>> QueryApi::GetBlocks(uint64_t, uint32_t,
                                                             uint64_t) {
  return absl::UnimplementedError("GetBlocks is not implemented here");
}

absl::StatusOr<std::vector<EvidenceRecord>> QueryApi::ListEvidence(uint64_t,
                                                                   uint32_t) {
  return absl::UnimplementedError("ListEvidence is not implemented here");
}

absl::StatusOr<std::vector<uint64_t>> QueryApi::CommittedHeights(
    const std::vector<Hash32>&) {
  return absl::UnimplementedError("CommittedHeights is not implemented here");
}

absl::Status LedgerApi::RecordEvidence(const std::vector<EvidenceRecord>&) {
  return absl::UnimplementedError("RecordEvidence is not implemented here");
}

}  // namespace consortia
