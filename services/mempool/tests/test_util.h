// Helpers shared by the mempool's tests: signed transactions with real
// ed25519 keys, and a wait for a condition. (The fake of storage's commit
// history is the shared one: consortia/testing/fake_storage_queries.h.)
#ifndef CONSORTIA_MEMPOOL_TESTS_TEST_UTIL_H_
#define CONSORTIA_MEMPOOL_TESTS_TEST_UTIL_H_

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consortia/crypto_suite.h"
#include "consortia/process.h"
#include "consortia/types.h"
#include "gtest/gtest.h"

namespace consortia::mempool::testing {

inline constexpr char kChainId[] = "testnet";

// Polls cond until it holds or 30 s pass.
template <typename F>
bool WaitFor(F cond) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

inline Transaction MakeTx(const KeyPair& key, uint64_t nonce,
                          uint64_t valid_until,
                          const std::string& chain_id = kChainId,
                          const std::string& value = "v") {
  Transaction tx;
  tx.chain_id = chain_id;
  tx.nonce = nonce;
  tx.valid_until = valid_until;
  tx.sender = key.public_key;
  tx.app = "kv";
  tx.method = "set";
  tx.args = {"key" + std::to_string(nonce), value};
  absl::StatusOr<Bytes> sig =
      Ed25519Sha256().Sign(key.secret_key, TxSignBytes(tx));
  EXPECT_TRUE(sig.ok()) << sig.status();
  if (sig.ok()) tx.signature = *sig;
  return tx;
}

inline Bytes SignedTx(const KeyPair& key, uint64_t nonce, uint64_t valid_until,
                      const std::string& chain_id = kChainId,
                      const std::string& value = "v") {
  return EncodeTx(MakeTx(key, nonce, valid_until, chain_id, value));
}

inline Hash32 HashOf(const Bytes& raw) {
  absl::StatusOr<Transaction> tx = DecodeTx(raw);
  EXPECT_TRUE(tx.ok()) << tx.status();
  return tx.ok() ? TxHash(Ed25519Sha256(), *tx) : Hash32{};
}

inline CommittedTx Committed(const Bytes& raw) {
  absl::StatusOr<Transaction> tx = DecodeTx(raw);
  EXPECT_TRUE(tx.ok()) << tx.status();
  return CommittedTx{HashOf(raw), tx.ok() ? tx->valid_until : 0};
}

// Ed25519Sha256 that counts its Verify calls, to tell a cache hit from a
// check. Thread-safe.
class CountingSuite : public CryptoSuite {
 public:
  using CryptoSuite::Hash;
  std::string_view name() const override { return base().name(); }
  size_t public_key_size() const override { return base().public_key_size(); }
  size_t max_signature_size() const override {
    return base().max_signature_size();
  }
  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    return base().Hash(parts);
  }
  KeyPair GenerateKey() const override { return base().GenerateKey(); }
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    return base().KeyFromSeed(seed);
  }
  absl::StatusOr<Bytes> Sign(ByteView secret_key,
                             ByteView message) const override {
    return base().Sign(secret_key, message);
  }
  bool Verify(ByteView public_key, ByteView message,
              ByteView signature) const override {
    verifies_.fetch_add(1);
    return base().Verify(public_key, message, signature);
  }

  int verifies() const { return verifies_.load(); }

 private:
  static const CryptoSuite& base() { return Ed25519Sha256(); }
  mutable std::atomic<int> verifies_{0};
};

// A free loopback port for a PeerNet endpoint (see PickFreePort).
inline uint16_t ListenPort() {
  absl::StatusOr<uint16_t> p = PickFreePort();
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : 0;
}

}  // namespace consortia::mempool::testing

#endif  // CONSORTIA_MEMPOOL_TESTS_TEST_UTIL_H_
