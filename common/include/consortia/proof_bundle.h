// Proof bundles: a committed block, tx or state value together with what a
// client needs to check it offline, trusting nothing but the genesis. Storage
// builds them, the bus carries them (service_api.h), the api returns them
// (hex) and `consortia verify` checks them.
//
// This is a library of its own, consortia_proof_bundle, which links no
// ZeroMQ: a client library (or the CLI's verify path) can decode and verify
// bundles with it alone. The configure step (cmake/NoZmq.cmake) and the
// ctest proof_bundle_links_no_zmq (common/tests/) check that it stays so.
#ifndef CONSORTIA_COMMON_PROOF_BUNDLE_H_
#define CONSORTIA_COMMON_PROOF_BUNDLE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"

namespace consortia {

// A committed block, with its certificate once storage has it.
struct BlockRecord {
  Block block;
  Hash32 block_hash{};
  std::optional<CommitCertificate> cert;
};

// A committed tx with what a client needs to check it offline.
struct TxRecord {
  Bytes raw_tx;
  uint64_t height = 0;
  uint32_t index = 0;
  Receipt receipt;
  MerkleProof inclusion;  // raw_tx in header.tx_root
  BlockHeader header;
  CommitCertificate cert;
  // receipt among its block's receipts; always set (the receipts exist as
  // soon as the block is executed), checkable once next_header exists.
  MerkleProof receipt_proof;  // receipt in next_header.receipts_root
  std::optional<BlockHeader> next_header;
  std::optional<CommitCertificate> next_cert;
};

// A state value (or its absence) with what a client needs to check it
// offline: the proof leads to state_root, the root after block `height`,
// which the header of block height + 1 carries (deferred execution).
struct StateRecord {
  bool found = false;
  Bytes value;
  Bytes owner;          // public key of the record's owner (kv app)
  uint64_t height = 0;  // state as of after executing this block
  Hash32 state_root{};  // the state tree's root after block `height`
  // Of (app, key)'s record in state_root: its presence with this value and
  // owner when found, else its absence (state_proof.h).
  StateProof proof{};
  // Block height + 1's header and certificate, once that block is
  // committed: they certify state_root. Absent for the latest state, whose
  // next block does not exist yet; ask again for this height once it does
  // (GetStateAt), or take them from GetCertifiedBlock(height + 1).
  std::optional<BlockHeader> next_header{};
  std::optional<CommitCertificate> next_cert{};
};

// ---------------------------------------------------------------- codecs
// Canonical encodings; they are also the payloads of the bus replies that
// carry these records (service_api.h), byte for byte. Decoders return
// InvalidArgument for malformed input, any length over its bound, or
// trailing bytes.

// A TxRecord's canonical encoding is also its offline proof bundle: the api
// returns it (hex) with every committed tx, and `consortia verify` decodes it
// and checks it with VerifyTxRecord, trusting nothing but the genesis.
Bytes EncodeTxRecord(const TxRecord& r);
absl::StatusOr<TxRecord> DecodeTxRecord(ByteView data);

Bytes EncodeBlockRecord(const BlockRecord& r);
absl::StatusOr<BlockRecord> DecodeBlockRecord(ByteView data);

// A StateRecord's canonical encoding is its offline proof bundle, as a
// TxRecord's is. Layout: bool found, bytes value, bytes owner, u64 height,
// hash state_root, state proof, bool has_next_header [header], bool
// has_next_cert [bytes cert].
Bytes EncodeStateRecord(const StateRecord& r);
absl::StatusOr<StateRecord> DecodeStateRecord(ByteView data);

// ---------------------------------------------------------- verification
// Pure functions of their arguments: thread-safe.

// OK iff raw_tx decodes and hashes to `expected_hash` (when not zero), its
// signature verifies for its sender key, the inclusion proof leads to
// header.tx_root, cert is a valid commit certificate
// of header for the genesis validators, and, when next_header is present,
// next_header.prev_hash is header's hash, next_cert certifies next_header and
// the receipt proof leads to next_header.receipts_root. InvalidArgument or
// PermissionDenied (bad signatures) with the reason otherwise.
absl::Status VerifyTxRecord(const CryptoSuite& suite, const Genesis& genesis,
                            const TxRecord& r, const Hash32& expected_hash);

// OK iff the record's proof shows, in record.state_root, the record of
// (app, key) with this value and owner when found, or no record when not;
// and, when next_header is present (it must be whenever require_certified),
// next_header is block height + 1, carries state_root, and next_cert is a
// valid commit certificate of it for the genesis validators.
// InvalidArgument or PermissionDenied (bad signatures) with the reason
// otherwise; FailedPrecondition when require_certified and next_header is
// absent (ask again once block height + 1 exists).
absl::Status VerifyStateRecord(const CryptoSuite& suite, const Genesis& genesis,
                               std::string_view app, std::string_view key,
                               const StateRecord& r, bool require_certified);

// OK iff block_hash is the header's hash, the header is of the genesis's
// chain, tx_root is the Merkle root of the block's txs, and the certificate
// is present and a valid commit certificate of the header for the genesis
// validators. InvalidArgument or PermissionDenied with the reason otherwise.
absl::Status VerifyBlockRecord(const CryptoSuite& suite, const Genesis& genesis,
                               const BlockRecord& r);

// ------------------------------------------------- validator-set changes
// Governance changes the validator set (the admin app, docs/apps.md
// "Validator-set changes"): block H's txs rewrite the admin record
// "validators/pending" (admin::ValidatorChangeRecord) and the new set signs
// from its effective_height (>= H + 2) on. A verifier that trusts only the
// genesis follows the changes in height order: each one is a StateRecord of
// (admin, validators/pending) at height H (the state after block H), with
// its proof and block H + 1's header and certificate, which the set in force
// before the change signs. Storage keeps these records forever and the api
// hands them out with every answer it proves (ListValidatorChanges,
// storage_queries.h; "validator_changes" in docs/api.md).

// The validator sets of the chain from its genesis through `changes` (in
// increasing height): the genesis's from height 1, then one epoch per change
// from its effective_height. Each change must be a certified record of
// (admin, validators/pending) at its height H (VerifyStateRecord with
// require_certified, its certificate checked against the set in force at
// H + 1), present, decoding as a ValidatorChangeRecord committed at H, made
// while no other change was pending (H at or above the previous epoch's
// from_height, and above the previous change's height), effective above
// H + 1, whose `previous` is the set in force (names, keys and powers, in
// order). InvalidArgument, PermissionDenied or FailedPrecondition naming the
// change's height and what is wrong otherwise. A change left out is seen
// only when a later change's `previous`, or a certificate checked against
// the epochs, does not match.
absl::StatusOr<std::vector<ValidatorEpoch>> FollowValidatorChanges(
    const CryptoSuite& suite, const Genesis& genesis,
    const std::vector<StateRecord>& changes);

// The genesis's set alone (a chain without changes).
std::vector<ValidatorEpoch> GenesisEpochs(const Genesis& genesis);

// VerifyTxRecord, VerifyStateRecord and VerifyBlockRecord with each
// certificate checked against the set in force at its block's height
// (ValidatorsAt(epochs, height); epochs as FollowValidatorChanges returns
// them, non-empty). The forms above are these with GenesisEpochs(genesis).
absl::Status VerifyTxRecord(const CryptoSuite& suite, const Genesis& genesis,
                            const std::vector<ValidatorEpoch>& epochs,
                            const TxRecord& r, const Hash32& expected_hash);
absl::Status VerifyStateRecord(const CryptoSuite& suite, const Genesis& genesis,
                               const std::vector<ValidatorEpoch>& epochs,
                               std::string_view app, std::string_view key,
                               const StateRecord& r, bool require_certified);
absl::Status VerifyBlockRecord(const CryptoSuite& suite, const Genesis& genesis,
                               const std::vector<ValidatorEpoch>& epochs,
                               const BlockRecord& r);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_PROOF_BUNDLE_H_
