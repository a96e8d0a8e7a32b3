#include "sim/sim_crypto.h"

#include <algorithm>

#include "absl/status/status.h"

namespace consortia::consensus::tendermint::sim {

Hash32 InsecureSimSuite::Hash(std::initializer_list<ByteView> parts) const {
  return Ed25519Sha256().Hash(parts);
}

KeyPair InsecureSimSuite::GenerateKey() const {
  const KeyPair random = Ed25519Sha256().GenerateKey();
  const Hash32 seed = Hash({ByteView(random.secret_key)});
  return *KeyFromSeed(seed);
}

absl::StatusOr<KeyPair> InsecureSimSuite::KeyFromSeed(ByteView seed) const {
  if (seed.size() != 32) {
    return absl::InvalidArgumentError("sim key seed must be 32 bytes");
  }
  const Hash32 k = Hash({AsBytes("simkey"), seed});
  KeyPair kp;
  kp.public_key.assign(k.begin(), k.end());
  kp.secret_key = kp.public_key;
  return kp;
}

absl::StatusOr<Bytes> InsecureSimSuite::Sign(ByteView secret_key,
                                             ByteView message) const {
  if (secret_key.size() != 32) {
    return absl::InvalidArgumentError("sim secret key must be 32 bytes");
  }
  const Hash32 s = Hash({secret_key, message});
  return Bytes(s.begin(), s.end());
}

bool InsecureSimSuite::Verify(ByteView public_key, ByteView message,
                              ByteView signature) const {
  if (public_key.size() != 32 || signature.size() != 32) return false;
  const Hash32 s = Hash({public_key, message});
  return std::equal(s.begin(), s.end(), signature.begin());
}

const InsecureSimSuite& SimSuite() {
  static const InsecureSimSuite* const suite = new InsecureSimSuite();
  return *suite;
}

}  // namespace consortia::consensus::tendermint::sim
