// What service_api.h defines itself: the names of the admission verdicts
// (its interfaces have no default bodies). The rest lives in its own room:
// the messages and their codecs in service_messages.cc, the proof bundles in
// proof_bundle.cc, the remote clients in service_remote.cc and the server
// dispatch in service_serve.cc.
#include "consortia/service_api.h"

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
    case Admission::kUnregisteredSender:
      return "unregistered_sender";
  }
  return "unknown";
}

}  // namespace consortia
