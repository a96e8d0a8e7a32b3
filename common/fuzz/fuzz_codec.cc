// libFuzzer target for the canonical decoders. Every decoder sees every
// input; whatever decodes must re-encode to exactly the input bytes, since a
// canonical codec gives each value one encoding (a second encoding of the
// same tx would be a second tx hash for the same content).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "consortia/codec.h"
#include "consortia/merkle.h"
#include "consortia/tx_json.h"
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

  if (absl::StatusOr<Transaction> tx = DecodeTx(in); tx.ok()) {
    ExpectSameBytes("tx", in, EncodeTx(*tx));
    (void)TxHash(suite, *tx);
    (void)TxToJson(*tx);  // must not throw on arbitrary bytes
  }
  if (absl::StatusOr<Block> b = DecodeBlock(in); b.ok()) {
    ExpectSameBytes("block", in, EncodeBlock(*b));
    (void)BlockHash(suite, b->header);
    (void)MerkleRoot(suite, b->txs);
    for (const Bytes& tx : b->txs) {
      if (absl::StatusOr<Transaction> t = DecodeTx(tx); t.ok()) {
        ExpectSameBytes("tx in block", tx, EncodeTx(*t));
      }
    }
  }
  if (absl::StatusOr<Vote> v = DecodeVote(in); v.ok()) {
    ExpectSameBytes("vote", in, EncodeVote(*v));
  }
  if (absl::StatusOr<CommitCertificate> c = DecodeCertificate(in); c.ok()) {
    ExpectSameBytes("certificate", in, EncodeCertificate(*c));
  }
  if (absl::StatusOr<Receipt> r = DecodeReceipt(in); r.ok()) {
    ExpectSameBytes("receipt", in, EncodeReceipt(*r));
  }
  {
    Decoder d(in);
    MerkleProof p;
    if (DecodeMerkleProof(&d, &p).ok() && d.ExpectEnd().ok()) {
      Encoder e;
      EncodeMerkleProof(p, &e);
      ExpectSameBytes("merkle proof", in, e.data());
      (void)MerkleVerify(suite, Hash32{}, in, p);
    }
  }
  return 0;
}
