// A deliberately INSECURE crypto suite for the consensus simulation: the
// public key equals the secret key and a signature is SHA-256(key || message).
// It keeps the protocol's checks (a signature binds one key to one message,
// a changed byte fails verification) at a fraction of ed25519's cost, so that
// thousands of seeded runs fit in a test budget. Test code only: anyone who
// sees a public key can sign with it.
#ifndef CONSORTIA_CONSENSUS_TESTS_SIM_SIM_CRYPTO_H_
#define CONSORTIA_CONSENSUS_TESTS_SIM_SIM_CRYPTO_H_

#include <string_view>

#include "consortia/crypto_suite.h"

namespace consortia::consensus::tendermint::sim {

inline constexpr std::string_view kInsecureSimSuiteName = "sim-sha256-insecure";

// Stateless and thread-safe.
class InsecureSimSuite final : public CryptoSuite {
 public:
  std::string_view name() const override { return kInsecureSimSuiteName; }
  size_t public_key_size() const override { return 32; }
  size_t max_signature_size() const override { return 32; }
  Hash32 Hash(std::initializer_list<ByteView> parts) const override;
  KeyPair GenerateKey() const override;
  // The key pair of a 32-byte seed: both halves are SHA-256("simkey" || seed).
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override;
  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override;
  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override;
};

const InsecureSimSuite& SimSuite();

}  // namespace consortia::consensus::tendermint::sim

#endif  // CONSORTIA_CONSENSUS_TESTS_SIM_SIM_CRYPTO_H_
