// Helpers for the storage tests: temp dirs, a 1-validator genesis with real
// ed25519 keys, signed kv txs, and blocks with valid commit certificates.
#ifndef CONSORTIA_SERVICES_STORAGE_TESTS_TEST_UTIL_H_
#define CONSORTIA_SERVICES_STORAGE_TESTS_TEST_UTIL_H_

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "consortia/bus.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "gtest/gtest.h"

namespace consortia::storage::testing {

// A fresh directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "consortia-storage-XXXXXX")
            .string();
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }

 private:
  std::string path_;
};

// A bus client of a storage service, and the remote interfaces storage
// serves (which use the client, so they are declared, and destroyed, after
// it).
struct StorageClients {
  std::unique_ptr<BusClient> bus;
  std::unique_ptr<LedgerApi> ledger;
  std::unique_ptr<CommitHistory> history;
  std::unique_ptr<BlockSource> blocks;
  std::unique_ptr<ChainQueries> chain;
  std::unique_ptr<StateQueries> state;
};

inline absl::StatusOr<StorageClients> ConnectStorage(
    zmq::context_t& ctx, const std::string& endpoint) {
  absl::StatusOr<std::unique_ptr<BusClient>> bus =
      ConnectBusClient(ctx, endpoint, "test");
  if (!bus.ok()) return bus.status();
  StorageClients c;
  c.bus = *std::move(bus);
  c.ledger = MakeRemoteLedger(c.bus.get(), absl::Seconds(30));
  c.history = MakeRemoteCommitHistory(c.bus.get(), absl::Seconds(30));
  c.blocks = MakeRemoteBlockSource(c.bus.get(), absl::Seconds(30));
  c.chain = MakeRemoteChainQueries(c.bus.get(), absl::Seconds(30));
  c.state = MakeRemoteStateQueries(c.bus.get(), absl::Seconds(30));
  return c;
}

// A name no other test in this process (or another process) uses.
inline std::string UniqueName(const std::string& what) {
  static std::atomic<int> counter{0};
  return absl::StrCat(what, "-", getpid(), "-", counter.fetch_add(1));
}

inline const CryptoSuite& Suite() { return Ed25519Sha256(); }

struct Chain {
  Genesis genesis;
  KeyPair validator;

  Chain() {
    validator = Suite().GenerateKey();
    genesis.chain_id = "storage-test";
    genesis.crypto_suite = "ed25519-sha256";
    genesis.genesis_time_ms = 1700000000000;
    genesis.validators.push_back(Validator{"v0", validator.public_key, 1});
  }

  // A kv tx signed by `key`.
  Bytes Tx(const KeyPair& key, std::string method,
           std::vector<std::string> args, uint64_t nonce,
           uint64_t valid_until = 1000) const {
    return AppTx(key, "kv", std::move(method), std::move(args), nonce,
                 valid_until);
  }

  // A tx of `app` signed by `key`.
  Bytes AppTx(const KeyPair& key, std::string app, std::string method,
              std::vector<std::string> args, uint64_t nonce,
              uint64_t valid_until = 1000) const {
    Transaction tx;
    tx.chain_id = genesis.chain_id;
    tx.nonce = nonce;
    tx.valid_until = valid_until;
    tx.sender = key.public_key;
    tx.app = std::move(app);
    tx.method = std::move(method);
    tx.args = std::move(args);
    absl::StatusOr<Bytes> sig = Suite().Sign(key.secret_key, TxSignBytes(tx));
    EXPECT_TRUE(sig.ok()) << sig.status();
    if (sig.ok()) tx.signature = *sig;
    return EncodeTx(tx);
  }

  static Hash32 HashOf(const Bytes& raw) {
    absl::StatusOr<Transaction> tx = DecodeTx(raw);
    EXPECT_TRUE(tx.ok()) << tx.status();
    return tx.ok() ? TxHash(Suite(), *tx) : Hash32{};
  }

  // The block that extends `state` with `txs`.
  Block NextBlock(const ChainState& state, std::vector<Bytes> txs) const {
    Block b;
    b.header.chain_id = genesis.chain_id;
    b.header.height = state.height + 1;
    b.header.time_ms = genesis.genesis_time_ms + 1000 * b.header.height;
    b.header.proposer = validator.public_key;
    b.header.prev_hash = state.last_block_hash;
    b.header.tx_root = MerkleRoot(Suite(), txs);
    b.header.state_root = state.state_root;
    b.header.receipts_root = state.receipts_root;
    b.txs = std::move(txs);
    return b;
  }

  // A certificate for `header` signed by `signer` (the validator by default).
  CommitCertificate Certify(const BlockHeader& header,
                            const KeyPair* signer = nullptr) const {
    return CertifyBy(header, {signer != nullptr ? signer : &validator});
  }

  // A certificate for `header` with a precommit of signers[i] as validator
  // i (a null entry signs nothing).
  CommitCertificate CertifyBy(
      const BlockHeader& header,
      const std::vector<const KeyPair*>& signers) const {
    CommitCertificate c;
    c.height = header.height;
    c.round = 0;
    c.block_hash = BlockHash(Suite(), header);
    for (size_t i = 0; i < signers.size(); ++i) {
      if (signers[i] == nullptr) continue;
      Vote v;
      v.type = VoteType::kPrecommit;
      v.height = header.height;
      v.round = 0;
      v.block_hash = c.block_hash;
      v.validator_index = static_cast<uint32_t>(i);
      absl::StatusOr<Bytes> sig = Suite().Sign(
          signers[i]->secret_key, VoteSignBytes(genesis.chain_id, v));
      EXPECT_TRUE(sig.ok()) << sig.status();
      c.sigs.push_back(
          CommitSig{static_cast<uint32_t>(i), sig.ok() ? *sig : Bytes{}});
    }
    return c;
  }
};

}  // namespace consortia::storage::testing

#endif  // CONSORTIA_SERVICES_STORAGE_TESTS_TEST_UTIL_H_
