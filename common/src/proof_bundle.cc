// Proof bundles (proof_bundle.h): their canonical encodings, and their
// verification against the genesis. Links no ZeroMQ.
#include "consortia/proof_bundle.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/admin_records.h"
#include "consortia/codec.h"
#include "consortia/merkle.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"
#include "wire_decode.h"

namespace consortia {

using wire_decode::Context;
using wire_decode::DecodeWith;
using wire_decode::GetNested;
using wire_decode::GetNestedBlock;
using wire_decode::GetNestedCertificate;

namespace {

absl::Status NoEpochs() {
  return absl::InvalidArgumentError(
      "no validator set given (the genesis's comes first)");
}

}  // namespace

// ------------------------------------------------------- codecs

namespace {

// The end of a tx or state record: block height + 1's header and
// certificate, each optional. Layout: bool has_next_header [header], bool
// has_next_cert [bytes cert].
void PutNextBlock(const std::optional<BlockHeader>& header,
                  const std::optional<CommitCertificate>& cert, Encoder* e) {
  e->PutBool(header.has_value());
  if (header.has_value()) EncodeHeader(*header, e);
  e->PutBool(cert.has_value());
  if (cert.has_value()) e->PutBytes(EncodeCertificate(*cert));
}

absl::Status GetNextBlock(Decoder* d, std::optional<BlockHeader>* header,
                          std::optional<CommitCertificate>* cert) {
  bool has;
  WIRE_RETURN_IF_ERROR(d->GetBool(&has));
  if (has) {
    BlockHeader next;
    WIRE_RETURN_IF_ERROR(DecodeHeader(d, &next));
    *header = std::move(next);
  }
  WIRE_RETURN_IF_ERROR(d->GetBool(&has));
  if (has) {
    CommitCertificate next_cert;
    WIRE_RETURN_IF_ERROR(GetNestedCertificate(d, &next_cert));
    *cert = std::move(next_cert);
  }
  return absl::OkStatus();
}

}  // namespace

// Layout: bytes raw_tx, u64 height, u32 index, bytes receipt, proof
// inclusion, header, bytes cert, proof receipt_proof, bool has_next_header
// [header], bool has_next_cert [bytes cert].
Bytes EncodeTxRecord(const TxRecord& r) {
  Encoder e;
  e.PutBytes(r.raw_tx);
  e.PutU64(r.height);
  e.PutU32(r.index);
  e.PutBytes(EncodeReceipt(r.receipt));
  EncodeMerkleProof(r.inclusion, &e);
  EncodeHeader(r.header, &e);
  e.PutBytes(EncodeCertificate(r.cert));
  EncodeMerkleProof(r.receipt_proof, &e);
  PutNextBlock(r.next_header, r.next_cert, &e);
  return e.Take();
}

absl::StatusOr<TxRecord> DecodeTxRecord(ByteView data) {
  return DecodeWith<TxRecord>(
      "tx record", data, [](Decoder* d, TxRecord* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetBytes(&r->raw_tx, kMaxTxBytes));
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->height));
        WIRE_RETURN_IF_ERROR(d->GetU32(&r->index));
        WIRE_RETURN_IF_ERROR(GetNested(d, wire_decode::kMaxEncodedReceiptBytes,
                                       DecodeReceipt, &r->receipt));
        WIRE_RETURN_IF_ERROR(DecodeMerkleProof(d, &r->inclusion));
        WIRE_RETURN_IF_ERROR(DecodeHeader(d, &r->header));
        WIRE_RETURN_IF_ERROR(GetNestedCertificate(d, &r->cert));
        WIRE_RETURN_IF_ERROR(DecodeMerkleProof(d, &r->receipt_proof));
        return GetNextBlock(d, &r->next_header, &r->next_cert);
      });
}

// Layout: bytes block, hash block_hash, bool has_cert [bytes cert].
Bytes EncodeBlockRecord(const BlockRecord& r) {
  Encoder e;
  e.PutBytes(EncodeBlock(r.block));
  e.PutHash(r.block_hash);
  e.PutBool(r.cert.has_value());
  if (r.cert.has_value()) e.PutBytes(EncodeCertificate(*r.cert));
  return e.Take();
}

absl::StatusOr<BlockRecord> DecodeBlockRecord(ByteView data) {
  return DecodeWith<BlockRecord>(
      "block record", data, [](Decoder* d, BlockRecord* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(GetNestedBlock(d, &r->block));
        WIRE_RETURN_IF_ERROR(d->GetHash(&r->block_hash));
        bool has;
        WIRE_RETURN_IF_ERROR(d->GetBool(&has));
        if (has) {
          CommitCertificate cert;
          WIRE_RETURN_IF_ERROR(GetNestedCertificate(d, &cert));
          r->cert = std::move(cert);
        }
        return absl::OkStatus();
      });
}

Bytes EncodeStateRecord(const StateRecord& r) {
  Encoder e;
  e.PutBool(r.found);
  e.PutBytes(r.value);
  e.PutBytes(r.owner);
  e.PutU64(r.height);
  e.PutHash(r.state_root);
  EncodeStateProof(r.proof, &e);
  PutNextBlock(r.next_header, r.next_cert, &e);
  return e.Take();
}

absl::StatusOr<StateRecord> DecodeStateRecord(ByteView data) {
  return DecodeWith<StateRecord>(
      "state record", data, [](Decoder* d, StateRecord* r) -> absl::Status {
        WIRE_RETURN_IF_ERROR(d->GetBool(&r->found));
        WIRE_RETURN_IF_ERROR(
            d->GetBytes(&r->value, wire_decode::kMaxStateValueBytes));
        WIRE_RETURN_IF_ERROR(d->GetBytes(&r->owner, kMaxPublicKeyBytes));
        WIRE_RETURN_IF_ERROR(d->GetU64(&r->height));
        WIRE_RETURN_IF_ERROR(d->GetHash(&r->state_root));
        WIRE_RETURN_IF_ERROR(DecodeStateProof(d, &r->proof));
        return GetNextBlock(d, &r->next_header, &r->next_cert);
      });
}

// ------------------------------------------------------- verification
//
// How the roots are built (storage builds them the same way):
//   - header.tx_root is the Merkle root over the block's txs as they are
//     stored in Block::txs, i.e. each leaf is the raw canonical encoding of
//     one Transaction;
//   - the receipts root (carried by the next header, deferred execution) is
//     the Merkle root over EncodeReceipt(receipt) of the block's receipts, one
//     per tx and in the same order, so a tx and its receipt share an index.

std::vector<ValidatorEpoch> GenesisEpochs(const Genesis& genesis) {
  return {ValidatorEpoch{1, genesis.validators}};
}

absl::Status VerifyTxRecord(const CryptoSuite& suite, const Genesis& genesis,
                            const TxRecord& r, const Hash32& expected_hash) {
  return VerifyTxRecord(suite, genesis, GenesisEpochs(genesis), r,
                        expected_hash);
}

absl::Status VerifyTxRecord(const CryptoSuite& suite, const Genesis& genesis,
                            const std::vector<ValidatorEpoch>& epochs,
                            const TxRecord& r, const Hash32& expected_hash) {
  if (epochs.empty()) return NoEpochs();
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("crypto suite ", std::string(suite.name()),
                     " is not the chain's (", genesis.crypto_suite, ")"));
  }
  absl::StatusOr<Transaction> tx = DecodeTx(r.raw_tx);
  if (!tx.ok()) return Context("raw_tx", tx.status());
  Hash32 tx_hash = TxHash(suite, *tx);
  if (!IsZero(expected_hash) && tx_hash != expected_hash) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tx hash is ", ToHex(tx_hash), ", expected ", ToHex(expected_hash)));
  }
  if (tx->chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError("tx belongs to another chain");
  }
  // What was signed: a proof of inclusion shows nothing about who sent the
  // tx unless its signature verifies.
  if (!suite.Verify(tx->sender, TxSignBytes(*tx), tx->signature)) {
    return absl::PermissionDeniedError(
        "the tx's signature does not verify for its sender key");
  }

  // The tx is in the block.
  if (r.header.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError("header belongs to another chain");
  }
  if (r.header.height != r.height) {
    return absl::InvalidArgumentError(
        absl::StrCat("record height ", r.height, " differs from header height ",
                     r.header.height));
  }
  if (r.inclusion.index != r.index) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof is for index ", r.inclusion.index,
                     ", record says ", r.index));
  }
  if (!MerkleVerify(suite, r.header.tx_root, r.raw_tx, r.inclusion)) {
    return absl::InvalidArgumentError(
        "inclusion proof does not lead to the header's tx root");
  }

  // The block is final.
  if (absl::Status s = VerifyCertificate(suite, genesis,
                                         ValidatorsAt(epochs, r.header.height),
                                         r.header, r.cert);
      !s.ok()) {
    return s;
  }

  if (!r.next_header.has_value()) {
    if (r.next_cert.has_value()) {
      return absl::InvalidArgumentError(
          "next_cert is present without next_header");
    }
    return absl::OkStatus();
  }

  // The receipt: proven against the receipts root of the next header, which
  // must follow this block and be final itself.
  const BlockHeader& next = *r.next_header;
  if (next.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError("next header belongs to another chain");
  }
  if (next.height != r.header.height + 1) {
    return absl::InvalidArgumentError(absl::StrCat("next header has height ",
                                                   next.height, ", expected ",
                                                   r.header.height + 1));
  }
  if (next.prev_hash != BlockHash(suite, r.header)) {
    return absl::InvalidArgumentError(
        "next header's prev_hash is not the block's hash");
  }
  if (!r.next_cert.has_value()) {
    return absl::InvalidArgumentError("next_header comes without next_cert");
  }
  if (absl::Status s =
          VerifyCertificate(suite, genesis, ValidatorsAt(epochs, next.height),
                            next, *r.next_cert);
      !s.ok()) {
    return s;
  }
  if (r.receipt.tx_hash != tx_hash) {
    return absl::InvalidArgumentError("receipt is for another tx");
  }
  if (r.receipt_proof.index != r.index ||
      r.receipt_proof.leaf_count != r.inclusion.leaf_count) {
    return absl::InvalidArgumentError(
        "receipt proof is not at the tx's position");
  }
  if (!MerkleVerify(suite, next.receipts_root, EncodeReceipt(r.receipt),
                    r.receipt_proof)) {
    return absl::InvalidArgumentError(
        "receipt proof does not lead to the next header's receipts root");
  }
  return absl::OkStatus();
}

absl::Status VerifyStateRecord(const CryptoSuite& suite, const Genesis& genesis,
                               std::string_view app, std::string_view key,
                               const StateRecord& r, bool require_certified) {
  return VerifyStateRecord(suite, genesis, GenesisEpochs(genesis), app, key, r,
                           require_certified);
}

absl::Status VerifyStateRecord(const CryptoSuite& suite, const Genesis& genesis,
                               const std::vector<ValidatorEpoch>& epochs,
                               std::string_view app, std::string_view key,
                               const StateRecord& r, bool require_certified) {
  if (epochs.empty()) return NoEpochs();
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("crypto suite ", std::string(suite.name()),
                     " is not the chain's (", genesis.crypto_suite, ")"));
  }
  if (!r.found && (!r.value.empty() || !r.owner.empty())) {
    return absl::InvalidArgumentError(
        "the record says not found but carries a value");
  }
  const Hash32 path = StateKeyPath(suite, app, key);
  std::optional<Hash32> value_hash;
  if (r.found) value_hash = StateValueHash(suite, r.value, r.owner);
  if (absl::Status s =
          VerifyStateProof(suite, r.state_root, path, value_hash, r.proof);
      !s.ok()) {
    return s;
  }
  if (!r.next_header.has_value()) {
    if (r.next_cert.has_value()) {
      return absl::InvalidArgumentError("next_cert comes without next_header");
    }
    if (require_certified) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the state after block ", r.height, " is not certified yet: block ",
          r.height + 1, " does not exist"));
    }
    return absl::OkStatus();
  }
  const BlockHeader& next = *r.next_header;
  if (next.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("next header is for chain '", next.chain_id, "'"));
  }
  if (next.height != r.height + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "next header is block ", next.height, ", not ", r.height + 1));
  }
  if (next.state_root != r.state_root) {
    return absl::InvalidArgumentError(
        "the next header carries another state root");
  }
  if (!r.next_cert.has_value()) {
    return absl::InvalidArgumentError("next_header comes without next_cert");
  }
  return VerifyCertificate(suite, genesis, ValidatorsAt(epochs, next.height),
                           next, *r.next_cert);
}

absl::Status VerifyBlockRecord(const CryptoSuite& suite, const Genesis& genesis,
                               const BlockRecord& r) {
  return VerifyBlockRecord(suite, genesis, GenesisEpochs(genesis), r);
}

absl::Status VerifyBlockRecord(const CryptoSuite& suite, const Genesis& genesis,
                               const std::vector<ValidatorEpoch>& epochs,
                               const BlockRecord& r) {
  if (epochs.empty()) return NoEpochs();
  const BlockHeader& h = r.block.header;
  if (h.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("block header is for chain '", h.chain_id, "'"));
  }
  if (BlockHash(suite, h) != r.block_hash) {
    return absl::InvalidArgumentError(
        absl::StrCat("block ", h.height, "'s hash is not the header's hash"));
  }
  if (MerkleRoot(suite, r.block.txs) != h.tx_root) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", h.height, "'s txs do not lead to its header's tx root"));
  }
  if (!r.cert.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("block ", h.height, " comes without its certificate"));
  }
  return VerifyCertificate(suite, genesis, ValidatorsAt(epochs, h.height), h,
                           *r.cert);
}

// ------------------------------------------------- validator-set changes

namespace {

// "(N validators: name key-prefix power P, ...)", the first 8 of them.
std::string DescribeSet(const std::vector<Validator>& set) {
  constexpr size_t kShown = 8;
  std::string out = absl::StrCat("(", set.size(), " validators: ");
  for (size_t i = 0; i < set.size() && i < kShown; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", set[i].name, " ",
                    ToHex(set[i].public_key).substr(0, 16), ".. power ",
                    set[i].power);
  }
  return absl::StrCat(out, set.size() > kShown ? ", ...)" : ")");
}

bool SameSet(const std::vector<admin::ValidatorEntry>& entries,
             const std::vector<Validator>& set) {
  if (entries.size() != set.size()) return false;
  for (size_t i = 0; i < set.size(); ++i) {
    if (entries[i].name != set[i].name ||
        entries[i].public_key != set[i].public_key ||
        entries[i].power != set[i].power) {
      return false;
    }
  }
  return true;
}

// Why the change `r` cannot follow `epochs` (the sets so far), or its epoch.
absl::StatusOr<ValidatorEpoch> NextEpoch(
    const CryptoSuite& suite, const Genesis& genesis,
    const std::vector<ValidatorEpoch>& epochs, uint64_t last_change,
    const StateRecord& r) {
  const uint64_t h = r.height;
  if (h <= last_change) {
    return absl::InvalidArgumentError(absl::StrCat(
        "it is not above the change before it (height ", last_change,
        "): the changes must come in increasing height"));
  }
  if (h < epochs.back().from_height) {
    return absl::InvalidArgumentError(
        absl::StrCat("it was committed while the change to the set of height ",
                     epochs.back().from_height, " was pending"));
  }
  if (absl::Status s = VerifyStateRecord(suite, genesis, epochs,
                                         admin::kAppName, admin::kValidatorsKey,
                                         r, /*require_certified=*/true);
      !s.ok()) {
    return s;
  }
  if (!r.found) {
    return absl::InvalidArgumentError(
        "its proof shows no validators/pending record");
  }
  absl::StatusOr<admin::ValidatorChangeRecord> change =
      admin::DecodeValidatorChange(AsString(r.value));
  if (!change.ok()) return change.status();
  if (change->committed_height != h) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the record says it was committed at ", change->committed_height));
  }
  if (change->effective_height <= h + 1) {
    return absl::InvalidArgumentError(absl::StrCat("it takes effect at ",
                                                   change->effective_height,
                                                   ", before block ", h + 2));
  }
  const std::vector<Validator>& current = epochs.back().validators;
  if (!SameSet(change->previous, current)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "its previous set is not the set in force ", DescribeSet(current)));
  }
  ValidatorEpoch epoch;
  epoch.from_height = change->effective_height;
  unsigned __int128 total = 0;
  for (const admin::ValidatorEntry& e : change->validators) {
    epoch.validators.push_back(Validator{e.name, e.public_key, e.power});
    total += e.power;
  }
  if (total == 0 || total > kMaxTotalVotingPower) {
    return absl::InvalidArgumentError(
        "its new set's total voting power is out of bounds");
  }
  return epoch;
}

}  // namespace

absl::StatusOr<std::vector<ValidatorEpoch>> FollowValidatorChanges(
    const CryptoSuite& suite, const Genesis& genesis,
    const std::vector<StateRecord>& changes) {
  std::vector<ValidatorEpoch> epochs = GenesisEpochs(genesis);
  uint64_t last_change = 0;
  for (const StateRecord& r : changes) {
    absl::StatusOr<ValidatorEpoch> next =
        NextEpoch(suite, genesis, epochs, last_change, r);
    if (!next.ok()) {
      return absl::Status(next.status().code(),
                          absl::StrCat("validator change at height ", r.height,
                                       ": ", next.status().message()));
    }
    epochs.push_back(*std::move(next));
    last_change = r.height;
  }
  return epochs;
}

}  // namespace consortia
