// libFuzzer target for the sm2-sm3 suite's own decoding: the 64-byte r || s
// signature form and the 65-byte public key form, which the suite checks
// before OpenSSL sees them. The input is split as public key (65 bytes),
// signature (64), message (the rest), each possibly shorter. Verify never
// crashes and never accepts a signature that Sm2SignatureWellFormed refuses;
// a key made from the input's first 32 bytes signs the message and the
// signature verifies, and fails once one bit of it is flipped.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "consortia/crypto_suite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using consortia::ByteView;
  const consortia::CryptoSuite& suite = consortia::Sm2Sm3();
  const size_t key_len = std::min<size_t>(size, 65);
  const size_t sig_len = std::min<size_t>(size - key_len, 64);
  const ByteView key(data, key_len);
  const ByteView sig(data + key_len, sig_len);
  const ByteView msg(data + key_len + sig_len, size - key_len - sig_len);

  const bool ok = suite.Verify(key, msg, sig);
  if (ok && !consortia::Sm2SignatureWellFormed(sig)) std::abort();

  if (size >= 32 && data[0] == 0x5a) {  // the expensive path, now and then
    absl::StatusOr<consortia::KeyPair> kp =
        suite.KeyFromSeed(ByteView(data, 32));
    if (!kp.ok()) std::abort();
    absl::StatusOr<consortia::Bytes> s = suite.Sign(kp->secret_key, msg);
    if (!s.ok() || !suite.Verify(kp->public_key, msg, *s)) std::abort();
    consortia::Bytes bad = *s;
    bad[size % bad.size()] ^= static_cast<uint8_t>(1u << (size % 8));
    if (suite.Verify(kp->public_key, msg, bad)) std::abort();
  }
  return 0;
}
