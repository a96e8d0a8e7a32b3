// The ledger's key layout in the KvStore, and the encodings of the values
// that are not already canonical ledger types. The README documents the same
// table; heights are big-endian so that a prefix scan walks them in order.
//
//   M<name>                      meta: "latest_height" (u64 BE), "chain_id"
//   B<height:8 BE>               EncodeBlock(block), the bytes CommitBlock
//                                was given (ledger_commit.cc)
//   C<height:8 BE>               EncodeCertificate(cert)
//   D<height:8 BE>               EncodeHeader(header) (so proofs and checks
//                                need not decode a whole block)
//   H<block hash:32>             height (8 BE)
//   T<tx hash:32>                height (8 BE) || index in block (4 BE)
//   R<height:8 BE>               the block's receipts (EncodeReceiptList)
//   O<height:8 BE>               state_root (32) || receipts_root (32) after
//                                executing that block
//   S<app len:1><app><key>       EncodeStateEntry(value, owner): the latest
//                                state, flat (execution reads, prefix scans)
//   K<height:8 BE>               the block's tx count (u32 BE), for block lists
//   N<node hash:32>              a node of the state tree (smt.h): 0x00 ||
//                                path || value record for a leaf, 0x01 ||
//                                left || right || child kinds for a node,
//                                then the version (u64 BE) that wrote it
//   P<version:8 BE>              the hashes (32 bytes each, concatenated) of
//                                the nodes that left the tree at version,
//                                deleted once that version falls out of the
//                                versions kept; absent when none left
//   E<seq:8 BE>                  EncodeEvidenceRecord: evidence of an
//                                equivocating validator (evidence.cc)
//   F<message hash:32>           its seq (8 BE), so a record is kept once
//   A<height:8 BE>               EncodeAdmission: the member keys the block
//                                registered or unregistered and whether the
//                                chain is permissioned after it, and the
//                                chain rules when the block changed them
//                                (the commit event's member_changes,
//                                permissioned and rules); absent when the
//                                block changed none of them and the chain is
//                                not permissioned after it
//   V<height:8 BE>               EncodeStateRecord: the admin app's
//                                "validators/pending" record as block
//                                `height` left it, with its proof, for each
//                                block whose txs changed the validator set
//                                (validator_changes.cc); kept forever, so a
//                                verifier can follow the sets from genesis;
//                                "M validator_change_heights" lists them
// and the meta records "M state_format" = "smt-v2" (written with block 1)
// and "M state_pruned_through" (u64 BE): the P lists of versions up to it
// are processed (so pruning seeks past them instead of walking tombstones).
// (smt-v1 kept one X<hash> mark and one P<version><hash> key per retired
// node; 'X' is reserved for it and never written now.)
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_KEYS_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/bytes.h"
#include "consortia/storage_queries.h"
#include "consortia/types.h"

namespace consortia::storage::keys {

inline constexpr char kMetaPrefix = 'M';
inline constexpr char kAdmissionPrefix = 'A';
inline constexpr char kBlockPrefix = 'B';
inline constexpr char kCertPrefix = 'C';
inline constexpr char kHeaderPrefix = 'D';
inline constexpr char kBlockHashPrefix = 'H';
inline constexpr char kTxPrefix = 'T';
inline constexpr char kReceiptsPrefix = 'R';
inline constexpr char kRootsPrefix = 'O';
inline constexpr char kStatePrefix = 'S';
inline constexpr char kTxCountPrefix = 'K';
inline constexpr char kNodePrefix = 'N';
inline constexpr char kStalePrefix = 'X';  // smt-v1 only; never written now
inline constexpr char kPrunePrefix = 'P';
inline constexpr char kEvidencePrefix = 'E';
inline constexpr char kEvidenceIndexPrefix = 'F';
inline constexpr char kValidatorChangePrefix = 'V';

// The state layout this code writes; a store with blocks but another (or no)
// format is refused at startup.
inline constexpr char kStateFormat[] = "smt-v2";

std::string LatestHeight();
std::string ChainId();
std::string Block(uint64_t height);
std::string Cert(uint64_t height);
std::string Header(uint64_t height);
std::string BlockHash(const Hash32& hash);
std::string Tx(const Hash32& hash);
std::string Receipts(uint64_t height);
std::string Roots(uint64_t height);
std::string StateFormat();
std::string PrunedThrough();
// app must be at most 255 bytes (types.h bounds it to kMaxAppBytes).
std::string State(std::string_view app, std::string_view key);
// The app and key of a State() key. InvalidArgument for any other key.
struct AppKey {
  std::string_view app;
  std::string_view key;
};
absl::StatusOr<AppKey> ParseState(std::string_view store_key);
std::string TxCount(uint64_t height);
std::string Admission(uint64_t height);
std::string ValidatorChange(uint64_t height);
// Meta "validator_change_heights": the heights of the V records, each u64
// BE, ascending (EncodeHeights).
std::string ValidatorChangeHeights();
std::string EncodeHeights(const std::vector<uint64_t>& heights);
absl::StatusOr<std::vector<uint64_t>> DecodeHeights(std::string_view v);
std::string Node(const Hash32& hash);
// The list of the state tree nodes retired at `version`.
std::string PruneList(uint64_t version);
// The version of a PruneList() key. InvalidArgument otherwise.
absl::StatusOr<uint64_t> ParsePruneList(std::string_view k);

std::string EncodeU64(uint64_t v);  // 8 bytes big-endian
// InvalidArgument unless exactly 8 bytes.
absl::StatusOr<uint64_t> DecodeU64(std::string_view v);
std::string EncodeU32(uint32_t v);  // 4 bytes big-endian
// InvalidArgument unless exactly 4 bytes.
absl::StatusOr<uint32_t> DecodeU32(std::string_view v);

struct TxLocation {
  uint64_t height = 0;
  uint32_t index = 0;
};
std::string EncodeTxLocation(const TxLocation& loc);
absl::StatusOr<TxLocation> DecodeTxLocation(std::string_view v);

struct StoredRoots {
  Hash32 state_root{};
  Hash32 receipts_root{};
};
std::string EncodeRoots(const StoredRoots& r);
absl::StatusOr<StoredRoots> DecodeRoots(std::string_view v);

// A list of already-encoded receipts (EncodeReceipt of each, in tx order).
std::string EncodeReceiptList(const std::vector<Bytes>& receipts);
absl::StatusOr<std::vector<Bytes>> DecodeReceiptList(std::string_view v);

std::string EncodeHeaderValue(const BlockHeader& h);
absl::StatusOr<BlockHeader> DecodeHeaderValue(std::string_view v);

// The admission record of a block (the A key): bool permissioned, varint
// count, then each change as bytes public_key, bool registered, keys
// non-empty and strictly ascending; then, only when the block changed the
// chain rules, a byte 1 and EncodeChainRules (records written before rules
// could change end after the changes). The decoder refuses anything else.
struct AdmissionRecord {
  bool permissioned = false;
  std::vector<MemberChange> member_changes;
  std::optional<ChainRules> rules;  // in force from the next height
  bool operator==(const AdmissionRecord&) const = default;
};
std::string EncodeAdmission(const AdmissionRecord& r);
absl::StatusOr<AdmissionRecord> DecodeAdmission(std::string_view v);

struct StateEntry {
  Bytes value;
  Bytes owner;  // public key of the record's owner
  bool operator==(const StateEntry&) const = default;
};
// The same bytes as consortia::EncodeStateValue (state_proof.h), so that the
// stored record is what the state tree hashes.
std::string EncodeStateEntry(const StateEntry& e);
absl::StatusOr<StateEntry> DecodeStateEntry(std::string_view v);

}  // namespace consortia::storage::keys

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_KEYS_H_
