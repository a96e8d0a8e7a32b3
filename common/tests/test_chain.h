// A small certified chain for the tests of common/ that need real blocks,
// certificates and proof bundles (service_api_test.cc, proof_bundle_test.cc),
// and a check that a decoder refuses damaged input.
#ifndef CONSORTIA_COMMON_TESTS_TEST_CHAIN_H_
#define CONSORTIA_COMMON_TESTS_TEST_CHAIN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/proof_bundle.h"
#include "consortia/types.h"
#include "gtest/gtest.h"

namespace consortia::testing {

inline constexpr char kChain[] = "testnet";

inline Hash32 HashOf(std::string_view s) {
  return Ed25519Sha256().Hash(AsBytes(s));
}

// ------------------------------------------------------------ a small chain

// Four validators with deterministic keys, a client, and block 1 (three
// txs) followed by block 2 that carries block 1's receipts root.
class Chain {
 public:
  Chain() : suite_(Ed25519Sha256()) {
    for (int i = 0; i < 4; ++i) {
      validators_.push_back(Key(static_cast<uint8_t>(i + 1)));
      genesis_.validators.push_back(
          {absl::StrCat("v", i), validators_.back().public_key, 1});
    }
    genesis_.chain_id = kChain;
    genesis_.crypto_suite = std::string(suite_.name());
    client_ = Key(100);
    outsider_ = Key(200);

    for (uint64_t nonce = 1; nonce <= 3; ++nonce) {
      Transaction tx;
      tx.chain_id = kChain;
      tx.nonce = nonce;
      tx.valid_until = 100;
      tx.sender = client_.public_key;
      tx.app = "kv";
      tx.method = "set";
      tx.args = {"key", absl::StrCat("value", nonce)};
      tx.signature = *suite_.Sign(client_.secret_key, TxSignBytes(tx));
      txs_.push_back(tx);
      block1_.txs.push_back(EncodeTx(tx));
      Receipt r;
      r.tx_hash = TxHash(suite_, tx);
      r.log = "ok";
      receipts_.push_back(r);
      encoded_receipts_.push_back(EncodeReceipt(r));
    }
    BlockHeader& h1 = block1_.header;
    h1.chain_id = kChain;
    h1.height = 1;
    h1.time_ms = 1700000000000;
    h1.proposer = validators_[0].public_key;
    h1.tx_root = MerkleRoot(suite_, block1_.txs);

    h2_.chain_id = kChain;
    h2_.height = 2;
    h2_.time_ms = h1.time_ms + 1000;
    h2_.proposer = validators_[1].public_key;
    h2_.prev_hash = BlockHash(suite_, h1);
    h2_.tx_root = MerkleRoot(suite_, std::vector<Bytes>{});
    h2_.receipts_root = MerkleRoot(suite_, encoded_receipts_);
  }

  KeyPair Key(uint8_t seed) const {
    return *suite_.KeyFromSeed(Bytes(32, seed));
  }

  // A certificate for header signed by the given validators, each with its
  // own key unless `signing_keys` overrides it.
  CommitCertificate Certify(const BlockHeader& h, std::vector<uint32_t> signers,
                            const KeyPair* forged_key = nullptr) const {
    CommitCertificate c;
    c.height = h.height;
    c.round = 0;
    c.block_hash = BlockHash(suite_, h);
    for (uint32_t i : signers) {
      Vote v;
      v.type = VoteType::kPrecommit;
      v.height = h.height;
      v.round = 0;
      v.block_hash = c.block_hash;
      v.validator_index = i;
      const KeyPair& key = (forged_key != nullptr && i == signers.front())
                               ? *forged_key
                               : validators_[i];
      c.sigs.push_back(
          {i, *suite_.Sign(key.secret_key, VoteSignBytes(kChain, v))});
    }
    return c;
  }

  // The proof bundle of tx `index` of block 1.
  TxRecord Record(uint32_t index) const {
    TxRecord r;
    r.raw_tx = block1_.txs[index];
    r.height = 1;
    r.index = index;
    r.receipt = receipts_[index];
    r.inclusion = *MerkleProve(suite_, block1_.txs, index);
    r.header = block1_.header;
    r.cert = Certify(block1_.header, {0, 1, 2});
    r.receipt_proof = *MerkleProve(suite_, encoded_receipts_, index);
    r.next_header = h2_;
    r.next_cert = Certify(h2_, {1, 2, 3});
    return r;
  }

  const CryptoSuite& suite() const { return suite_; }
  const Genesis& genesis() const { return genesis_; }
  const Block& block1() const { return block1_; }
  const BlockHeader& h2() const { return h2_; }
  const KeyPair& outsider() const { return outsider_; }
  Hash32 tx_hash(int i) const { return TxHash(suite_, txs_[i]); }

 private:
  const CryptoSuite& suite_;
  Genesis genesis_;
  std::vector<KeyPair> validators_;
  KeyPair client_;
  KeyPair outsider_;
  std::vector<Transaction> txs_;
  std::vector<Receipt> receipts_;
  std::vector<Bytes> encoded_receipts_;
  Block block1_;
  BlockHeader h2_;
};

// Every strict prefix of a valid encoding, and the encoding with a byte
// appended, is rejected with InvalidArgument.
template <typename DecodeFn>
void ExpectRejectsTruncationAndTrailing(const Bytes& wire, DecodeFn decode) {
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(decode(ByteView(wire.data(), n)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "prefix of " << n << " of " << wire.size() << " bytes";
  }
  Bytes longer = wire;
  longer.push_back(0);
  EXPECT_EQ(decode(longer).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTS_TEST_CHAIN_H_
