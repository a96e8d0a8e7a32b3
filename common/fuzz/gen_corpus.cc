// Writes the seed corpora of the fuzz targets: a few valid inputs per
// target, deterministic (fixed keys, ed25519 signatures are deterministic).
// Usage: consortia_fuzz_gen_corpus <common/fuzz/corpus directory>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/tx_json.h"
#include "consortia/types.h"

namespace {

using namespace consortia;

void Write(const std::filesystem::path& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

Transaction SignedTx(const KeyPair& kp, uint64_t nonce, std::string app,
                     std::string method, std::vector<std::string> args) {
  Transaction tx;
  tx.chain_id = "localnet";
  tx.nonce = nonce;
  tx.valid_until = 1000;
  tx.sender = kp.public_key;
  tx.app = std::move(app);
  tx.method = std::move(method);
  tx.args = std::move(args);
  tx.signature = *Ed25519Sha256().Sign(kp.secret_key, TxSignBytes(tx));
  return tx;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  const std::filesystem::path codec = root / "fuzz_codec";
  const std::filesystem::path json = root / "fuzz_tx_json";
  std::filesystem::create_directories(codec);
  std::filesystem::create_directories(json);

  const CryptoSuite& suite = Ed25519Sha256();
  const KeyPair kp = *suite.KeyFromSeed(Bytes(32, 7));
  const Transaction set = SignedTx(kp, 1, "kv", "set", {"color", "blue"});
  const Transaction issue = SignedTx(kp, uint64_t{1} << 60, "invoice", "issue",
                                     {"INV-2024-0001", "buyer", "1280.00"});

  // fuzz_codec: one valid input per decoder.
  Write(codec / "tx.bin", EncodeTx(set));
  Block block;
  block.header.chain_id = "localnet";
  block.header.height = 2;
  block.header.time_ms = 1700000000000;
  block.header.proposer = kp.public_key;
  block.header.prev_hash.fill(0x11);
  block.txs = {EncodeTx(set), EncodeTx(issue)};
  block.header.tx_root = MerkleRoot(suite, block.txs);
  Write(codec / "block.bin", EncodeBlock(block));
  Vote vote;
  vote.type = VoteType::kPrecommit;
  vote.height = 2;
  vote.round = 0;
  vote.block_hash = BlockHash(suite, block.header);
  vote.validator_index = 1;
  vote.signature = *suite.Sign(kp.secret_key, VoteSignBytes("localnet", vote));
  Write(codec / "vote.bin", EncodeVote(vote));
  CommitCertificate cert;
  cert.height = 2;
  cert.block_hash = vote.block_hash;
  cert.sigs = {{0, vote.signature}, {1, vote.signature}, {3, vote.signature}};
  Write(codec / "certificate.bin", EncodeCertificate(cert));
  Receipt receipt;
  receipt.tx_hash = TxHash(suite, set);
  receipt.code = ExecCode::kOk;
  receipt.log = "set color";
  Write(codec / "receipt.bin", EncodeReceipt(receipt));

  // fuzz_tx_json: the printed form, and hand-written variants.
  Write(json / "kv_set.json", AsBytes(TxToJson(set)));
  Write(json / "invoice_big_nonce.json", AsBytes(TxToJson(issue)));
  Write(json / "string_numbers.json",
        AsBytes(R"({"chain_id":"localnet","nonce":"42","valid_until":"1000",)"
                R"("sender":"00ff","app":"notary","method":"anchor",)"
                R"("args":["9f86d081884c7d65"],"signature":""})"));
  Write(json / "escapes.json",
        AsBytes("{\n  \"chain_id\": \"\\u5e02\",\n  \"nonce\": 0,\n"
                "  \"valid_until\": 18446744073709551615,\n"
                "  \"sender\": \"\", \"app\": \"kv\", \"method\": \"del\",\n"
                "  \"args\": [\"a\\u0000b\", \"\\ud83d\\ude00\", \"\"],\n"
                "  \"signature\": \"AB\"\n}\n"));
  return 0;
}
