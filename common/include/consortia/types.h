// Core ledger types and their canonical encodings. Encode* writes with the one
// Encoder; Decode* reads with the one Decoder and returns InvalidArgument for
// malformed input, any field over its limit, or trailing bytes.
#ifndef CONSORTIA_COMMON_TYPES_H_
#define CONSORTIA_COMMON_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/admin_records.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"

namespace consortia {

class Encoder;
class Decoder;

// Hard limits of the encoding itself. Operators can set tighter admission
// limits in the mempool; nothing larger can ever be decoded.
inline constexpr size_t kMaxChainIdBytes = 64;
inline constexpr size_t kMaxAppBytes = 32;
inline constexpr size_t kMaxMethodBytes = 32;
inline constexpr size_t kMaxArgs = 16;
inline constexpr size_t kMaxArgBytes = 64 * 1024;
inline constexpr size_t kMaxPublicKeyBytes = 128;
inline constexpr size_t kMaxSignatureBytes = 128;
inline constexpr size_t kMaxTxBytes = 256 * 1024;
inline constexpr size_t kMaxBlockTxs = 100000;
inline constexpr size_t kMaxBlockBytes = 64 * 1024 * 1024;
inline constexpr size_t kMaxValidators = 1024;
// The most voting power a validator set may hold in all (consensus sums
// powers in 64 bits with room to spare).
inline constexpr uint64_t kMaxTotalVotingPower = uint64_t{1} << 60;
inline constexpr size_t kMaxLogBytes = 4096;

// A signed client transaction.
struct Transaction {
  std::string chain_id;
  uint64_t nonce = 0;             // chosen by the client; makes the hash unique
  uint64_t valid_until = 0;       // last height at which it may be committed
  Bytes sender;                   // public key of the signer
  std::string app;                // "kv", "notary", "invoice", "admin"
  std::string method;             // app-specific, e.g. "set"
  std::vector<std::string> args;  // app-specific byte strings
  Bytes signature;                // over TxSignBytes()

  bool operator==(const Transaction&) const = default;
};

Bytes EncodeTx(const Transaction& tx);
absl::StatusOr<Transaction> DecodeTx(ByteView data);
// The bytes the sender signs: a domain tag "consortia/tx/v1" and the encoding
// of every field but the signature.
Bytes TxSignBytes(const Transaction& tx);
// The identity of a transaction: Hash(TxSignBytes). It leaves the signature
// out, so re-signing (SM2 signatures are randomized) cannot make a replay look
// new.
Hash32 TxHash(const CryptoSuite& suite, const Transaction& tx);
// A tx's encoding and its hash, made together.
struct EncodedTx {
  Bytes raw;    // EncodeTx(tx)
  Hash32 hash;  // TxHash(suite, tx)
};
// EncodeTx and TxHash at the cost of one encoding: the hash is taken over
// the fields as they stand in `raw` (the signed bytes are the encoding
// without its trailing signature, behind the domain tag). For a path that
// needs both, such as the api's submit.
EncodedTx EncodeTxAndHash(const CryptoSuite& suite, const Transaction& tx);
// What is wrong with a decoded tx's fields for `suite` (a sender key of the
// wrong size, a signature of no or too many bytes, an empty app or method),
// or nullopt. Part of a block's validity: the mempool and a validator that
// checks a proposal itself apply the same rule.
std::optional<std::string> TxFieldProblem(const CryptoSuite& suite,
                                          const Transaction& t);

struct BlockHeader {
  std::string chain_id;
  uint64_t height = 0;
  uint64_t time_ms = 0;  // proposer's clock, Unix milliseconds
  Bytes proposer;        // proposer's public key
  Hash32 prev_hash{};    // hash of block height-1 (zero at height 1)
  Hash32 tx_root{};      // Merkle root over the encoded txs of this block
  // Deferred execution (as in Tendermint): the state root and receipts root
  // after executing block height-1 (zero at height 1).
  Hash32 state_root{};
  Hash32 receipts_root{};

  bool operator==(const BlockHeader&) const = default;
};

void EncodeHeader(const BlockHeader& h, Encoder* e);
absl::Status DecodeHeader(Decoder* d, BlockHeader* h);
Hash32 BlockHash(const CryptoSuite& suite, const BlockHeader& h);

struct Block {
  BlockHeader header;
  std::vector<Bytes> txs;  // canonical encodings of Transaction

  bool operator==(const Block&) const = default;
};

// DecodeBlock accepts only canonical encodings (codec.h: shortest varints, no
// trailing bytes), so bytes that decode to a block are exactly
// EncodeBlock(that block): a service that received a block's bytes may keep
// or forward them instead of encoding the block again.
Bytes EncodeBlock(const Block& b);
absl::StatusOr<Block> DecodeBlock(ByteView data);

// Test hook: how many times EncodeBlock and DecodeBlock have run in this
// process (all threads, relaxed counters). Tests use it to check that a path
// does not encode or decode a block more often than it must; production code
// never reads it.
struct BlockCodecCalls {
  uint64_t encodes = 0;
  uint64_t decodes = 0;
};
BlockCodecCalls TestOnlyBlockCodecCalls();

enum class VoteType : uint8_t { kPrevote = 1, kPrecommit = 2 };

struct Vote {
  VoteType type = VoteType::kPrevote;
  uint64_t height = 0;
  uint32_t round = 0;
  Hash32 block_hash{};  // zero = nil
  uint32_t validator_index = 0;
  Bytes signature;  // over VoteSignBytes()

  bool operator==(const Vote&) const = default;
};

Bytes EncodeVote(const Vote& v);
absl::StatusOr<Vote> DecodeVote(ByteView data);
// Domain tag "consortia/vote/v1", chain id, and every field but the signature.
Bytes VoteSignBytes(std::string_view chain_id, const Vote& v);

struct CommitSig {
  uint32_t validator_index = 0;
  Bytes signature;  // a precommit for (height, round, block_hash)
  bool operator==(const CommitSig&) const = default;
};

// 2f+1 precommits that make a block final.
struct CommitCertificate {
  uint64_t height = 0;
  uint32_t round = 0;
  Hash32 block_hash{};
  std::vector<CommitSig> sigs;  // sorted by validator_index, no repeats
  bool operator==(const CommitCertificate&) const = default;
};

Bytes EncodeCertificate(const CommitCertificate& c);
absl::StatusOr<CommitCertificate> DecodeCertificate(ByteView data);

// Result code of executing one tx. 0 is success.
enum class ExecCode : uint32_t {
  kOk = 0,
  kUnknownApp = 1,
  kUnknownMethod = 2,
  kBadArgs = 3,
  kNotOwner = 4,
  kDuplicate = 5,  // the same tx hash was already committed
  kExpired = 6,    // valid_until < block height
  kNotFound = 7,
  kUnauthorized = 8,  // the sender's key, organisation or role may not do this
  kInvalidState = 9,  // the record's state forbids this step (e.g. reimbursed)
  kExists = 10,       // the record to create exists already
};
std::string_view ExecCodeName(ExecCode c);

struct Receipt {
  Hash32 tx_hash{};
  ExecCode code = ExecCode::kOk;
  std::string log;  // human-readable outcome, at most kMaxLogBytes
  bool operator==(const Receipt&) const = default;
};

Bytes EncodeReceipt(const Receipt& r);
absl::StatusOr<Receipt> DecodeReceipt(ByteView data);

struct Validator {
  std::string name;
  Bytes public_key;
  uint64_t power = 1;
  bool operator==(const Validator&) const = default;
};

// The replay window's bound (ChainRules::replay_window).
inline constexpr uint64_t kMaxReplayWindow = 1'000'000;
// Upper bound of the chain rules' block-time bounds (10 minutes).
inline constexpr uint64_t kMaxBlockTimeBoundMs = 600'000;

// The rules every validator judges a block by. They are part of the genesis,
// so that a block is valid or invalid on every node alike: no per-node
// option may make a validator accept what another refuses.
struct ChainRules {
  // Most txs in one block (1 .. kMaxBlockTxs).
  uint32_t max_block_txs = 5000;
  // Most encoded tx bytes in one block (kMaxTxBytes .. kMaxBlockBytes).
  uint64_t max_block_bytes = uint64_t{8} << 20;
  // A tx may be committed at height h only if h <= valid_until <= h +
  // replay_window, and its hash was not committed before (1 ..
  // kMaxReplayWindow). Committed hashes are unique within their window.
  uint64_t replay_window = 1000;
  // Proposer-based block time (docs/consensus.md, "Block time"; ADR 0007).
  // A fresh proposal (valid_round -1) gets a validator's prevote only if its
  // block time t is timely against the validator's clock at the moment the
  // proposal came in (received):
  //   received - (precision + message_delay(round)) <= t <= received +
  //   precision
  // where message_delay(round) = block_time_message_delay_ms * (10 + round)
  // / 10 (10 % more per round, so that a network slower than the rule
  // still gets a timely proposal in some round).
  // The most two honest clocks may differ (1 .. kMaxBlockTimeBoundMs).
  uint64_t block_time_precision_ms = 500;
  // The most a proposal may take to reach a validator in round 0 (1 ..
  // kMaxBlockTimeBoundMs).
  uint64_t block_time_message_delay_ms = 3000;
  bool operator==(const ChainRules&) const = default;
};

// InvalidArgument naming the first rule outside its bounds (above).
absl::Status CheckChainRules(const ChainRules& rules);
// The binary form: u32 max_block_txs, then u64 each of the others in the
// order above. The decoder refuses rules outside their bounds.
void EncodeChainRules(const ChainRules& rules, Encoder* e);
absl::Status DecodeChainRules(Decoder* d, ChainRules* rules);

// The rules in force after a block whose state holds `config`: the
// genesis's, with the three that governance changes (set_rule) taken from
// the record (docs/apps.md, "Chain rules"). InvalidArgument when the record
// holds a value outside its bounds (corrupt state).
absl::StatusOr<ChainRules> RulesInForce(const ChainRules& genesis,
                                        const admin::ConfigRecord& config);

// The founding organisations of a permissioned chain (the `admin` app,
// docs/apps.md): storage writes them into state as the app's records when
// it executes block 1, and from then on only their member keys may send
// txs. Governance changes them afterwards.
inline constexpr size_t kMaxGenesisOrgs = 256;
inline constexpr size_t kMaxGenesisMembers = 4096;  // over all organisations
struct ConsortiumMember {
  Bytes public_key;                // of the chain's suite
  std::vector<admin::Role> roles;  // sorted, distinct, at least one
  bool operator==(const ConsortiumMember&) const = default;
};
struct ConsortiumOrg {
  std::string id;                         // admin::CheckOrgId
  std::string name;                       // 1-128 bytes
  std::vector<ConsortiumMember> members;  // at least one with role admin
  bool operator==(const ConsortiumOrg&) const = default;
};
struct Consortium {
  // Governance executes a proposal once approvals * 100 > approval_percent
  // * organisations (50 .. 99).
  uint32_t approval_percent = 67;
  std::vector<ConsortiumOrg> orgs;  // 1 .. kMaxGenesisOrgs, distinct ids
  bool operator==(const Consortium&) const = default;
};

// The chain's starting point, shared by every node as a JSON file.
struct Genesis {
  std::string chain_id;
  std::string crypto_suite = "ed25519-sha256";
  uint64_t genesis_time_ms = 0;
  std::vector<Validator> validators;
  ChainRules rules;
  // Present: a permissioned chain. Absent: anyone with a key may send txs.
  std::optional<Consortium> consortium;
  bool operator==(const Genesis&) const = default;
};

// Genesis JSON: {"chain_id","crypto_suite","genesis_time_ms",
// "validators":[{"name","public_key"(hex),"power"}], "chain_rules":
// {"max_block_txs","max_block_bytes","replay_window",
// "block_time_precision_ms","block_time_message_delay_ms"}}. "chain_rules", and
// each field in it, is optional: a missing one takes ChainRules' default
// (older genesis files have none). An optional "consortium":
// {"approval_percent", "orgs":[{"id","name","members":[{"public_key"(hex),
// "roles":[...]}]}]}, every field in it required. InvalidArgument with the
// field name on any bad or missing field, or a rule out of its range; in the
// consortium also a member key of the wrong size, an unknown or repeated
// role, a key named twice (in one organisation or two), a repeated
// organisation id, or an organisation without an admin member.
// GenesisToJson writes "consortium" only when the genesis has one (a
// genesis without it serialises as before the section existed); roles come
// out sorted.
absl::StatusOr<Genesis> ParseGenesisJson(std::string_view json);
std::string GenesisToJson(const Genesis& g);
// The "consortium" section alone (a file an operator writes for `consortia
// localnet --consortium`), checked as ParseGenesisJson checks it for a chain
// of `crypto_suite`; its errors name the field as "genesis: consortium...".
absl::StatusOr<Consortium> ParseConsortiumJson(std::string_view json,
                                               std::string_view crypto_suite);

// The validators in force from a height on. A chain's validator sets are a
// list of these in increasing from_height, the first the genesis's (from
// height 1); governance adds the others (the admin app's validator changes,
// docs/apps.md "Validator-set changes").
struct ValidatorEpoch {
  uint64_t from_height = 1;
  std::vector<Validator> validators;
  bool operator==(const ValidatorEpoch&) const = default;
};
// The set in force at `height`: the last epoch whose from_height is at most
// height (the first one below its from_height). `epochs` is non-empty and
// sorted by from_height.
const std::vector<Validator>& ValidatorsAt(
    const std::vector<ValidatorEpoch>& epochs, uint64_t height);

// True iff cert has valid precommit signatures from validators holding more
// than two thirds of the total power, for header's hash and height. The
// first form checks against the genesis validators, the second against
// `validators`, the set in force at header.height (ValidatorsAt).
absl::Status VerifyCertificate(const CryptoSuite& suite, const Genesis& genesis,
                               const BlockHeader& header,
                               const CommitCertificate& cert);
absl::Status VerifyCertificate(const CryptoSuite& suite, const Genesis& genesis,
                               const std::vector<Validator>& validators,
                               const BlockHeader& header,
                               const CommitCertificate& cert);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_TYPES_H_
