// libFuzzer target for the state proof decoders: the bare proof
// (state_proof.h) and the state record bundle that `consortia verify` reads
// from an untrusted api (proof_bundle.h). Whatever decodes must re-encode to
// exactly the input bytes, and checking it must not crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "consortia/proof_bundle.h"
#include "consortia/service_api.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"

namespace {

using consortia::Bytes;
using consortia::ByteView;

void ExpectSameBytes(const char* what, ByteView in, const Bytes& again) {
  if (again.size() != in.size() ||
      (!in.empty() && std::memcmp(again.data(), in.data(), in.size()) != 0)) {
    std::fprintf(stderr, "%s: decoded value re-encodes to other bytes\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;
  const ByteView in(data, size);
  const CryptoSuite& suite = Ed25519Sha256();

  if (absl::StatusOr<StateProof> p = DecodeStateProof(in); p.ok()) {
    ExpectSameBytes("state proof", in, EncodeStateProof(*p));
    const Hash32 path = StateKeyPath(suite, "kv", "fuzz");
    const Hash32 root = StateProofRoot(suite, path, *p);
    // The proof leads to its own root, so only the leaf decides.
    (void)VerifyStateProof(suite, root, path, std::nullopt, *p);
    if (p->leaf.has_value()) {
      (void)VerifyStateProof(suite, root, p->leaf->path, p->leaf->value_hash,
                             *p);
    }
  }
  if (absl::StatusOr<StateRecord> r = DecodeStateRecord(in); r.ok()) {
    ExpectSameBytes("state record", in, EncodeStateRecord(*r));
    Genesis genesis;
    genesis.chain_id = "fuzz";
    genesis.crypto_suite = std::string(suite.name());
    (void)VerifyStateRecord(suite, genesis, "kv", "fuzz", *r, true);
  }
  // Evidence records (storage -> api) share this target: same codec family.
  if (absl::StatusOr<EvidenceRecord> e = DecodeEvidenceRecord(in); e.ok()) {
    ExpectSameBytes("evidence record", in, EncodeEvidenceRecord(*e));
  }
  return 0;
}
