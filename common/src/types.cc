#include "consortia/types.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/codec.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"

// Wire layouts (codec.h primitives; "str"/"bytes" are varint-length
// prefixed, "hash" is 32 raw bytes, "list<T>" is a varint count then T's):
//   Transaction: str chain_id, u64 nonce, varint valid_until, bytes sender,
//                str app, str method, list<str> args, bytes signature
//   TxSignBytes: str "consortia/tx/v1", then the Transaction fields above
//                without the signature
//   BlockHeader: str chain_id, varint height, varint time_ms, bytes proposer,
//                hash prev_hash, hash tx_root, hash state_root,
//                hash receipts_root
//   Block:       BlockHeader, list<bytes> txs
//   Vote:        u8 type, varint height, varint32 round, hash block_hash,
//                varint32 validator_index, bytes signature
//   VoteSignBytes: str "consortia/vote/v1", str chain_id, then the Vote
//                fields above without the signature
//   CommitCertificate: varint height, varint32 round, hash block_hash,
//                list<(varint32 validator_index, bytes signature)>
//   Receipt:     hash tx_hash, varint32 code, str log

namespace consortia {
namespace {

constexpr std::string_view kTxDomainTag = "consortia/tx/v1";
constexpr std::string_view kVoteDomainTag = "consortia/vote/v1";

// Debian's Abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0), which std::string_view does not convert to implicitly.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Propagates a non-OK status from an expression.
#define CONSORTIA_RETURN_IF_ERROR(expr)                   \
  do {                                                    \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

// A varint that must fit in 32 bits.
absl::Status GetVarint32(Decoder* d, uint32_t* v, absl::string_view field) {
  const size_t start = d->offset();
  uint64_t x = 0;
  CONSORTIA_RETURN_IF_ERROR(d->GetVarint(&x));
  if (x > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " ", x, " does not fit in 32 bits at offset ", start));
  }
  *v = static_cast<uint32_t>(x);
  return absl::OkStatus();
}

absl::Status InputTooLarge(absl::string_view what, size_t size, size_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " of ", size, " bytes exceeds the limit of ", limit));
}

// Every field of a transaction but the signature.
void EncodeTxBody(const Transaction& tx, Encoder* e) {
  e->PutString(tx.chain_id);
  e->PutU64(tx.nonce);
  e->PutVarint(tx.valid_until);
  e->PutBytes(tx.sender);
  e->PutString(tx.app);
  e->PutString(tx.method);
  e->PutVarint(tx.args.size());
  for (const std::string& a : tx.args) e->PutString(a);
}

void EncodeVoteBody(const Vote& v, Encoder* e) {
  e->PutU8(static_cast<uint8_t>(v.type));
  e->PutVarint(v.height);
  e->PutVarint(v.round);
  e->PutHash(v.block_hash);
  e->PutVarint(v.validator_index);
}

}  // namespace

// ---------------------------------------------------------------------------
// Transaction

Bytes EncodeTx(const Transaction& tx) {
  Encoder e;
  EncodeTxBody(tx, &e);
  e.PutBytes(tx.signature);
  return e.Take();
}

absl::StatusOr<Transaction> DecodeTx(ByteView data) {
  if (data.size() > kMaxTxBytes) {
    return InputTooLarge("transaction", data.size(), kMaxTxBytes);
  }
  Decoder d(data);
  Transaction tx;
  CONSORTIA_RETURN_IF_ERROR(d.GetString(&tx.chain_id, kMaxChainIdBytes));
  CONSORTIA_RETURN_IF_ERROR(d.GetU64(&tx.nonce));
  CONSORTIA_RETURN_IF_ERROR(d.GetVarint(&tx.valid_until));
  CONSORTIA_RETURN_IF_ERROR(d.GetBytes(&tx.sender, kMaxPublicKeyBytes));
  CONSORTIA_RETURN_IF_ERROR(d.GetString(&tx.app, kMaxAppBytes));
  CONSORTIA_RETURN_IF_ERROR(d.GetString(&tx.method, kMaxMethodBytes));
  uint64_t n = 0;
  CONSORTIA_RETURN_IF_ERROR(d.GetCount(&n, kMaxArgs));
  tx.args.resize(n);
  for (std::string& a : tx.args) {
    CONSORTIA_RETURN_IF_ERROR(d.GetString(&a, kMaxArgBytes));
  }
  CONSORTIA_RETURN_IF_ERROR(d.GetBytes(&tx.signature, kMaxSignatureBytes));
  CONSORTIA_RETURN_IF_ERROR(d.ExpectEnd());
  return tx;
}

Bytes TxSignBytes(const Transaction& tx) {
  Encoder e;
  e.PutString(kTxDomainTag);
  EncodeTxBody(tx, &e);
  return e.Take();
}

Hash32 TxHash(const CryptoSuite& suite, const Transaction& tx) {
  return suite.Hash(TxSignBytes(tx));
}

EncodedTx EncodeTxAndHash(const CryptoSuite& suite, const Transaction& tx) {
  Encoder e;
  EncodeTxBody(tx, &e);
  const size_t body = e.size();
  e.PutBytes(tx.signature);
  EncodedTx out;
  out.raw = e.Take();
  // TxSignBytes is the tag, then the same body: hash the two parts in place.
  Encoder tag;
  tag.PutString(kTxDomainTag);
  out.hash = suite.Hash({tag.data(), ByteView(out.raw.data(), body)});
  return out;
}

std::optional<std::string> TxFieldProblem(const CryptoSuite& suite,
                                          const Transaction& t) {
  if (t.sender.size() != suite.public_key_size()) {
    return absl::StrCat("sender key is ", t.sender.size(), " bytes; ",
                        std::string(suite.name()), " keys are ",
                        suite.public_key_size());
  }
  if (t.signature.empty() || t.signature.size() > suite.max_signature_size()) {
    return absl::StrCat("signature is ", t.signature.size(), " bytes; ",
                        std::string(suite.name()), " signatures are 1 to ",
                        suite.max_signature_size());
  }
  if (t.app.empty()) return std::string("app is empty");
  if (t.method.empty()) return std::string("method is empty");
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Block

namespace {
// TestOnlyBlockCodecCalls.
std::atomic<uint64_t> block_encodes{0};
std::atomic<uint64_t> block_decodes{0};
}  // namespace

BlockCodecCalls TestOnlyBlockCodecCalls() {
  return BlockCodecCalls{block_encodes.load(std::memory_order_relaxed),
                         block_decodes.load(std::memory_order_relaxed)};
}

void EncodeHeader(const BlockHeader& h, Encoder* e) {
  e->PutString(h.chain_id);
  e->PutVarint(h.height);
  e->PutVarint(h.time_ms);
  e->PutBytes(h.proposer);
  e->PutHash(h.prev_hash);
  e->PutHash(h.tx_root);
  e->PutHash(h.state_root);
  e->PutHash(h.receipts_root);
}

absl::Status DecodeHeader(Decoder* d, BlockHeader* h) {
  BlockHeader out;
  CONSORTIA_RETURN_IF_ERROR(d->GetString(&out.chain_id, kMaxChainIdBytes));
  CONSORTIA_RETURN_IF_ERROR(d->GetVarint(&out.height));
  CONSORTIA_RETURN_IF_ERROR(d->GetVarint(&out.time_ms));
  CONSORTIA_RETURN_IF_ERROR(d->GetBytes(&out.proposer, kMaxPublicKeyBytes));
  CONSORTIA_RETURN_IF_ERROR(d->GetHash(&out.prev_hash));
  CONSORTIA_RETURN_IF_ERROR(d->GetHash(&out.tx_root));
  CONSORTIA_RETURN_IF_ERROR(d->GetHash(&out.state_root));
  CONSORTIA_RETURN_IF_ERROR(d->GetHash(&out.receipts_root));
  *h = std::move(out);
  return absl::OkStatus();
}

Hash32 BlockHash(const CryptoSuite& suite, const BlockHeader& h) {
  Encoder e;
  EncodeHeader(h, &e);
  return suite.Hash(e.data());
}

Bytes EncodeBlock(const Block& b) {
  block_encodes.fetch_add(1, std::memory_order_relaxed);
  Encoder e;
  EncodeHeader(b.header, &e);
  e.PutVarint(b.txs.size());
  for (const Bytes& tx : b.txs) e.PutBytes(tx);
  return e.Take();
}

absl::StatusOr<Block> DecodeBlock(ByteView data) {
  block_decodes.fetch_add(1, std::memory_order_relaxed);
  if (data.size() > kMaxBlockBytes) {
    return InputTooLarge("block", data.size(), kMaxBlockBytes);
  }
  Decoder d(data);
  Block b;
  CONSORTIA_RETURN_IF_ERROR(DecodeHeader(&d, &b.header));
  uint64_t n = 0;
  CONSORTIA_RETURN_IF_ERROR(d.GetCount(&n, kMaxBlockTxs));
  // Each tx stays opaque bytes here: the block is valid as an encoding even
  // if a tx inside it is not (execution reports that per tx). Appended one
  // by one, so memory grows with what was actually read.
  for (uint64_t i = 0; i < n; ++i) {
    Bytes tx;
    CONSORTIA_RETURN_IF_ERROR(d.GetBytes(&tx, kMaxTxBytes));
    b.txs.push_back(std::move(tx));
  }
  CONSORTIA_RETURN_IF_ERROR(d.ExpectEnd());
  return b;
}

// ---------------------------------------------------------------------------
// Votes and certificates

Bytes EncodeVote(const Vote& v) {
  Encoder e;
  EncodeVoteBody(v, &e);
  e.PutBytes(v.signature);
  return e.Take();
}

absl::StatusOr<Vote> DecodeVote(ByteView data) {
  Decoder d(data);
  Vote v;
  uint8_t type = 0;
  CONSORTIA_RETURN_IF_ERROR(d.GetU8(&type));
  if (type != static_cast<uint8_t>(VoteType::kPrevote) &&
      type != static_cast<uint8_t>(VoteType::kPrecommit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown vote type ", type, " at offset 0"));
  }
  v.type = static_cast<VoteType>(type);
  CONSORTIA_RETURN_IF_ERROR(d.GetVarint(&v.height));
  CONSORTIA_RETURN_IF_ERROR(GetVarint32(&d, &v.round, "round"));
  CONSORTIA_RETURN_IF_ERROR(d.GetHash(&v.block_hash));
  CONSORTIA_RETURN_IF_ERROR(
      GetVarint32(&d, &v.validator_index, "validator index"));
  CONSORTIA_RETURN_IF_ERROR(d.GetBytes(&v.signature, kMaxSignatureBytes));
  CONSORTIA_RETURN_IF_ERROR(d.ExpectEnd());
  return v;
}

Bytes VoteSignBytes(std::string_view chain_id, const Vote& v) {
  Encoder e;
  e.PutString(kVoteDomainTag);
  e.PutString(chain_id);
  EncodeVoteBody(v, &e);
  return e.Take();
}

Bytes EncodeCertificate(const CommitCertificate& c) {
  Encoder e;
  e.PutVarint(c.height);
  e.PutVarint(c.round);
  e.PutHash(c.block_hash);
  e.PutVarint(c.sigs.size());
  for (const CommitSig& s : c.sigs) {
    e.PutVarint(s.validator_index);
    e.PutBytes(s.signature);
  }
  return e.Take();
}

absl::StatusOr<CommitCertificate> DecodeCertificate(ByteView data) {
  Decoder d(data);
  CommitCertificate c;
  CONSORTIA_RETURN_IF_ERROR(d.GetVarint(&c.height));
  CONSORTIA_RETURN_IF_ERROR(GetVarint32(&d, &c.round, "round"));
  CONSORTIA_RETURN_IF_ERROR(d.GetHash(&c.block_hash));
  uint64_t n = 0;
  // Each signature takes at least an index byte and a length byte.
  CONSORTIA_RETURN_IF_ERROR(d.GetCount(&n, kMaxValidators, 2));
  c.sigs.resize(n);
  for (size_t i = 0; i < c.sigs.size(); ++i) {
    const size_t start = d.offset();
    CONSORTIA_RETURN_IF_ERROR(
        GetVarint32(&d, &c.sigs[i].validator_index, "validator index"));
    if (i > 0 && c.sigs[i].validator_index <= c.sigs[i - 1].validator_index) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate signers not strictly increasing (validator ",
          c.sigs[i].validator_index, " after ", c.sigs[i - 1].validator_index,
          ") at offset ", start));
    }
    CONSORTIA_RETURN_IF_ERROR(
        d.GetBytes(&c.sigs[i].signature, kMaxSignatureBytes));
  }
  CONSORTIA_RETURN_IF_ERROR(d.ExpectEnd());
  return c;
}

// ---------------------------------------------------------------------------
// Receipts

std::string_view ExecCodeName(ExecCode c) {
  switch (c) {
    case ExecCode::kOk:
      return "ok";
    case ExecCode::kUnknownApp:
      return "unknown_app";
    case ExecCode::kUnknownMethod:
      return "unknown_method";
    case ExecCode::kBadArgs:
      return "bad_args";
    case ExecCode::kNotOwner:
      return "not_owner";
    case ExecCode::kDuplicate:
      return "duplicate";
    case ExecCode::kExpired:
      return "expired";
    case ExecCode::kNotFound:
      return "not_found";
    case ExecCode::kUnauthorized:
      return "unauthorized";
    case ExecCode::kInvalidState:
      return "invalid_state";
    case ExecCode::kExists:
      return "exists";
  }
  return "unknown";
}

Bytes EncodeReceipt(const Receipt& r) {
  Encoder e;
  e.PutHash(r.tx_hash);
  e.PutVarint(static_cast<uint32_t>(r.code));
  e.PutString(r.log);
  return e.Take();
}

absl::StatusOr<Receipt> DecodeReceipt(ByteView data) {
  Decoder d(data);
  Receipt r;
  CONSORTIA_RETURN_IF_ERROR(d.GetHash(&r.tx_hash));
  const size_t code_offset = d.offset();
  uint32_t code = 0;
  CONSORTIA_RETURN_IF_ERROR(GetVarint32(&d, &code, "exec code"));
  // Only known codes: a decoded receipt always has a name and re-encodes to
  // the same bytes.
  if (code > static_cast<uint32_t>(ExecCode::kExists)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown exec code ", code, " at offset ", code_offset));
  }
  r.code = static_cast<ExecCode>(code);
  CONSORTIA_RETURN_IF_ERROR(d.GetString(&r.log, kMaxLogBytes));
  CONSORTIA_RETURN_IF_ERROR(d.ExpectEnd());
  return r;
}

// ---------------------------------------------------------------------------
// Genesis

namespace {

using json_internal::JsonTypeName;
using nlohmann::json;

absl::Status GenesisError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("genesis: field '", field, "' ", problem));
}

// Checks that `obj` has exactly the keys in `known`.
absl::Status CheckKeys(const json& obj, absl::string_view prefix,
                       std::initializer_list<const char*> known) {
  for (const auto& [key, value] : obj.items()) {
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (!found) return GenesisError(absl::StrCat(prefix, key), "is unknown");
  }
  for (const char* k : known) {
    if (!obj.contains(k)) {
      return GenesisError(absl::StrCat(prefix, k), "is missing");
    }
  }
  return absl::OkStatus();
}

absl::Status GetJsonString(const json& v, absl::string_view field,
                           std::string* out) {
  if (!v.is_string()) {
    return GenesisError(
        field, absl::StrCat("must be a string, got ", JsonTypeName(v)));
  }
  *out = v.get<std::string>();
  return absl::OkStatus();
}

absl::Status GetJsonU64(const json& v, absl::string_view field, uint64_t* out) {
  if (!v.is_number_unsigned()) {
    return GenesisError(field, absl::StrCat("must be an unsigned integer, got ",
                                            JsonTypeName(v)));
  }
  *out = v.get<uint64_t>();
  return absl::OkStatus();
}

absl::Status RuleInRange(const json& rules, const char* name, uint64_t lo,
                         uint64_t hi, uint64_t* out) {
  if (!rules.contains(name)) return absl::OkStatus();  // the default stays
  const std::string field = absl::StrCat("chain_rules.", name);
  CONSORTIA_RETURN_IF_ERROR(GetJsonU64(rules.at(name), field, out));
  if (*out < lo || *out > hi) {
    return GenesisError(
        field, absl::StrCat("must be ", lo, " to ", hi, ", got ", *out));
  }
  return absl::OkStatus();
}

absl::Status RulesFromJson(const json& j, ChainRules* rules) {
  if (!j.is_object()) {
    return GenesisError("chain_rules", absl::StrCat("must be an object, got ",
                                                    JsonTypeName(j)));
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "max_block_txs" && key != "max_block_bytes" &&
        key != "replay_window" && key != "block_time_precision_ms" &&
        key != "block_time_message_delay_ms") {
      return GenesisError(absl::StrCat("chain_rules.", key), "is unknown");
    }
  }
  uint64_t txs = rules->max_block_txs;
  CONSORTIA_RETURN_IF_ERROR(
      RuleInRange(j, "max_block_txs", 1, kMaxBlockTxs, &txs));
  rules->max_block_txs = static_cast<uint32_t>(txs);
  CONSORTIA_RETURN_IF_ERROR(RuleInRange(j, "max_block_bytes", kMaxTxBytes,
                                        kMaxBlockBytes,
                                        &rules->max_block_bytes));
  CONSORTIA_RETURN_IF_ERROR(RuleInRange(j, "replay_window", 1, kMaxReplayWindow,
                                        &rules->replay_window));
  CONSORTIA_RETURN_IF_ERROR(RuleInRange(j, "block_time_precision_ms", 1,
                                        kMaxBlockTimeBoundMs,
                                        &rules->block_time_precision_ms));
  return RuleInRange(j, "block_time_message_delay_ms", 1, kMaxBlockTimeBoundMs,
                     &rules->block_time_message_delay_ms);
}

// The roles of one member: a non-empty array of distinct role names,
// returned sorted.
absl::Status RolesFromJson(const json& v, absl::string_view field,
                           std::vector<admin::Role>* roles) {
  if (!v.is_array() || v.empty()) {
    return GenesisError(field,
                        absl::StrCat("must be a non-empty array, got ",
                                     v.is_array() ? "[]" : JsonTypeName(v)));
  }
  for (const json& r : v) {
    std::string name;
    CONSORTIA_RETURN_IF_ERROR(GetJsonString(r, field, &name));
    absl::StatusOr<admin::Role> role = admin::ParseRole(name);
    if (!role.ok()) return GenesisError(field, role.status().message());
    if (std::find(roles->begin(), roles->end(), *role) != roles->end()) {
      return GenesisError(field, absl::StrCat("repeats role '", name, "'"));
    }
    roles->push_back(*role);
  }
  std::sort(roles->begin(), roles->end());
  return absl::OkStatus();
}

absl::Status ConsortiumFromJson(const json& j, const CryptoSuite& suite,
                                Consortium* c) {
  if (!j.is_object()) {
    return GenesisError(
        "consortium", absl::StrCat("must be an object, got ", JsonTypeName(j)));
  }
  CONSORTIA_RETURN_IF_ERROR(
      CheckKeys(j, "consortium.", {"approval_percent", "orgs"}));
  uint64_t percent = 0;
  CONSORTIA_RETURN_IF_ERROR(GetJsonU64(
      j.at("approval_percent"), "consortium.approval_percent", &percent));
  if (percent < admin::kMinApprovalPercent ||
      percent > admin::kMaxApprovalPercent) {
    return GenesisError(
        "consortium.approval_percent",
        absl::StrCat("must be ", admin::kMinApprovalPercent, " to ",
                     admin::kMaxApprovalPercent, ", got ", percent));
  }
  c->approval_percent = static_cast<uint32_t>(percent);
  const json& orgs = j.at("orgs");
  if (!orgs.is_array()) {
    return GenesisError(
        "consortium.orgs",
        absl::StrCat("must be an array, got ", JsonTypeName(orgs)));
  }
  if (orgs.empty() || orgs.size() > kMaxGenesisOrgs) {
    return GenesisError(
        "consortium.orgs",
        absl::StrCat("must hold 1 to ", kMaxGenesisOrgs, " entries"));
  }
  std::set<std::string> ids;
  std::set<Bytes> keys;
  for (size_t i = 0; i < orgs.size(); ++i) {
    const std::string prefix = absl::StrCat("consortium.orgs[", i, "]");
    const json& o = orgs[i];
    if (!o.is_object()) {
      return GenesisError(
          prefix, absl::StrCat("must be an object, got ", JsonTypeName(o)));
    }
    CONSORTIA_RETURN_IF_ERROR(
        CheckKeys(o, prefix + ".", {"id", "name", "members"}));
    ConsortiumOrg org;
    const std::string id_field = prefix + ".id";
    CONSORTIA_RETURN_IF_ERROR(GetJsonString(o.at("id"), id_field, &org.id));
    if (absl::Status s = admin::CheckOrgId(org.id); !s.ok()) {
      return GenesisError(id_field, s.message());
    }
    if (!ids.insert(org.id).second) {
      return GenesisError(
          id_field, absl::StrCat("repeats organisation id '", org.id, "'"));
    }
    const std::string name_field = prefix + ".name";
    CONSORTIA_RETURN_IF_ERROR(
        GetJsonString(o.at("name"), name_field, &org.name));
    if (org.name.empty() || org.name.size() > admin::kMaxOrgNameBytes) {
      return GenesisError(
          name_field,
          absl::StrCat("must be 1 to ", admin::kMaxOrgNameBytes, " bytes"));
    }
    const json& members = o.at("members");
    const std::string members_field = prefix + ".members";
    if (!members.is_array() || members.empty()) {
      return GenesisError(members_field, "must be a non-empty array");
    }
    bool has_admin = false;
    for (size_t k = 0; k < members.size(); ++k) {
      const std::string mprefix = absl::StrCat(members_field, "[", k, "]");
      const json& m = members[k];
      if (!m.is_object()) {
        return GenesisError(
            mprefix, absl::StrCat("must be an object, got ", JsonTypeName(m)));
      }
      CONSORTIA_RETURN_IF_ERROR(
          CheckKeys(m, mprefix + ".", {"public_key", "roles"}));
      ConsortiumMember member;
      const std::string key_field = mprefix + ".public_key";
      std::string key_hex;
      CONSORTIA_RETURN_IF_ERROR(
          GetJsonString(m.at("public_key"), key_field, &key_hex));
      absl::StatusOr<Bytes> key = FromHex(key_hex);
      if (!key.ok()) return GenesisError(key_field, key.status().message());
      if (key->size() != suite.public_key_size()) {
        return GenesisError(
            key_field,
            absl::StrCat("must be ", suite.public_key_size(), " bytes for ",
                         Absl(suite.name()), ", got ", key->size()));
      }
      if (!keys.insert(*key).second) {
        return GenesisError(key_field,
                            "repeats a key already named as a member");
      }
      if (keys.size() > kMaxGenesisMembers) {
        return GenesisError(
            key_field, absl::StrCat("is over the limit of ", kMaxGenesisMembers,
                                    " member keys"));
      }
      member.public_key = *std::move(key);
      CONSORTIA_RETURN_IF_ERROR(
          RolesFromJson(m.at("roles"), mprefix + ".roles", &member.roles));
      has_admin =
          has_admin || std::find(member.roles.begin(), member.roles.end(),
                                 admin::Role::kAdmin) != member.roles.end();
      org.members.push_back(std::move(member));
    }
    if (!has_admin) {
      return GenesisError(members_field,
                          absl::StrCat("of organisation '", org.id,
                                       "' must include a member with role "
                                       "admin"));
    }
    c->orgs.push_back(std::move(org));
  }
  return absl::OkStatus();
}

absl::StatusOr<Genesis> GenesisFromJson(const json& j) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "genesis: top level must be an object, got ", JsonTypeName(j)));
  }
  Genesis g;
  for (const auto& [key, value] : j.items()) {
    if (key != "chain_id" && key != "crypto_suite" &&
        key != "genesis_time_ms" && key != "validators" &&
        key != "chain_rules" && key != "consortium") {
      return GenesisError(key, "is unknown");
    }
  }
  for (const char* k :
       {"chain_id", "crypto_suite", "genesis_time_ms", "validators"}) {
    if (!j.contains(k)) return GenesisError(k, "is missing");
  }
  if (j.contains("chain_rules")) {
    CONSORTIA_RETURN_IF_ERROR(RulesFromJson(j.at("chain_rules"), &g.rules));
  }
  CONSORTIA_RETURN_IF_ERROR(
      GetJsonString(j.at("chain_id"), "chain_id", &g.chain_id));
  if (g.chain_id.empty() || g.chain_id.size() > kMaxChainIdBytes) {
    return GenesisError(
        "chain_id", absl::StrCat("must be 1 to ", kMaxChainIdBytes, " bytes"));
  }
  CONSORTIA_RETURN_IF_ERROR(
      GetJsonString(j.at("crypto_suite"), "crypto_suite", &g.crypto_suite));
  absl::StatusOr<const CryptoSuite*> suite = GetCryptoSuite(g.crypto_suite);
  if (!suite.ok()) {
    return GenesisError("crypto_suite", suite.status().message());
  }
  CONSORTIA_RETURN_IF_ERROR(GetJsonU64(j.at("genesis_time_ms"),
                                       "genesis_time_ms", &g.genesis_time_ms));

  const json& vals = j.at("validators");
  if (!vals.is_array()) {
    return GenesisError("validators", absl::StrCat("must be an array, got ",
                                                   JsonTypeName(vals)));
  }
  if (vals.empty() || vals.size() > kMaxValidators) {
    return GenesisError("validators", absl::StrCat("must hold 1 to ",
                                                   kMaxValidators, " entries"));
  }
  std::set<Bytes> keys;
  uint64_t total_power = 0;
  for (size_t i = 0; i < vals.size(); ++i) {
    const std::string prefix = absl::StrCat("validators[", i, "].");
    const json& v = vals[i];
    if (!v.is_object()) {
      return GenesisError(
          absl::StrCat("validators[", i, "]"),
          absl::StrCat("must be an object, got ", JsonTypeName(v)));
    }
    CONSORTIA_RETURN_IF_ERROR(
        CheckKeys(v, prefix, {"name", "public_key", "power"}));
    Validator val;
    CONSORTIA_RETURN_IF_ERROR(
        GetJsonString(v.at("name"), absl::StrCat(prefix, "name"), &val.name));
    std::string key_hex;
    const std::string key_field = absl::StrCat(prefix, "public_key");
    CONSORTIA_RETURN_IF_ERROR(
        GetJsonString(v.at("public_key"), key_field, &key_hex));
    absl::StatusOr<Bytes> key = FromHex(key_hex);
    if (!key.ok()) return GenesisError(key_field, key.status().message());
    if (key->size() != (*suite)->public_key_size()) {
      return GenesisError(
          key_field,
          absl::StrCat("must be ", (*suite)->public_key_size(), " bytes for ",
                       g.crypto_suite, ", got ", key->size()));
    }
    if (!keys.insert(*key).second) {
      return GenesisError(key_field, "repeats another validator's key");
    }
    val.public_key = *std::move(key);
    const std::string power_field = absl::StrCat(prefix, "power");
    CONSORTIA_RETURN_IF_ERROR(
        GetJsonU64(v.at("power"), power_field, &val.power));
    if (val.power < 1) return GenesisError(power_field, "must be at least 1");
    if (val.power > std::numeric_limits<uint64_t>::max() - total_power) {
      return GenesisError(power_field,
                          "makes the total power overflow 64 bits");
    }
    total_power += val.power;
    g.validators.push_back(std::move(val));
  }
  if (j.contains("consortium")) {
    Consortium c;
    CONSORTIA_RETURN_IF_ERROR(
        ConsortiumFromJson(j.at("consortium"), **suite, &c));
    g.consortium = std::move(c);
  }
  return g;
}

}  // namespace

absl::Status CheckChainRules(const ChainRules& r) {
  auto check = [](const char* name, uint64_t v, uint64_t lo,
                  uint64_t hi) -> absl::Status {
    if (v >= lo && v <= hi) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "chain rule ", name, " must be ", lo, " to ", hi, ", got ", v));
  };
  CONSORTIA_RETURN_IF_ERROR(
      check("max_block_txs", r.max_block_txs, 1, kMaxBlockTxs));
  CONSORTIA_RETURN_IF_ERROR(
      check("max_block_bytes", r.max_block_bytes, kMaxTxBytes, kMaxBlockBytes));
  CONSORTIA_RETURN_IF_ERROR(
      check("replay_window", r.replay_window, 1, kMaxReplayWindow));
  CONSORTIA_RETURN_IF_ERROR(check("block_time_precision_ms",
                                  r.block_time_precision_ms, 1,
                                  kMaxBlockTimeBoundMs));
  return check("block_time_message_delay_ms", r.block_time_message_delay_ms, 1,
               kMaxBlockTimeBoundMs);
}

void EncodeChainRules(const ChainRules& r, Encoder* e) {
  e->PutU32(r.max_block_txs);
  e->PutU64(r.max_block_bytes);
  e->PutU64(r.replay_window);
  e->PutU64(r.block_time_precision_ms);
  e->PutU64(r.block_time_message_delay_ms);
}

absl::Status DecodeChainRules(Decoder* d, ChainRules* out) {
  ChainRules r;
  CONSORTIA_RETURN_IF_ERROR(d->GetU32(&r.max_block_txs));
  CONSORTIA_RETURN_IF_ERROR(d->GetU64(&r.max_block_bytes));
  CONSORTIA_RETURN_IF_ERROR(d->GetU64(&r.replay_window));
  CONSORTIA_RETURN_IF_ERROR(d->GetU64(&r.block_time_precision_ms));
  CONSORTIA_RETURN_IF_ERROR(d->GetU64(&r.block_time_message_delay_ms));
  CONSORTIA_RETURN_IF_ERROR(CheckChainRules(r));
  *out = r;
  return absl::OkStatus();
}

absl::StatusOr<ChainRules> RulesInForce(const ChainRules& genesis,
                                        const admin::ConfigRecord& config) {
  ChainRules r = genesis;
  if (config.max_block_txs > kMaxBlockTxs) {
    return absl::InvalidArgumentError(
        absl::StrCat("config record: max_block_txs ", config.max_block_txs,
                     " is over ", kMaxBlockTxs));
  }
  r.max_block_txs = static_cast<uint32_t>(config.max_block_txs);
  r.max_block_bytes = config.max_block_bytes;
  r.replay_window = config.replay_window;
  if (absl::Status s = CheckChainRules(r); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config record: ", s.message()));
  }
  return r;
}

absl::StatusOr<Genesis> ParseGenesisJson(std::string_view json_text) {
  absl::StatusOr<json> j = json_internal::ParseStrictJson(json_text, "genesis");
  if (!j.ok()) return j.status();
  // The accessors used above do not throw on the checked shapes; the catch
  // keeps any library exception inside this module all the same.
  try {
    return GenesisFromJson(*j);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("genesis: ", e.what()));
  }
}

absl::StatusOr<Consortium> ParseConsortiumJson(std::string_view json_text,
                                               std::string_view suite_name) {
  absl::StatusOr<const CryptoSuite*> suite = GetCryptoSuite(suite_name);
  if (!suite.ok()) return suite.status();
  absl::StatusOr<json> j =
      json_internal::ParseStrictJson(json_text, "consortium");
  if (!j.ok()) return j.status();
  try {
    Consortium c;
    CONSORTIA_RETURN_IF_ERROR(ConsortiumFromJson(*j, **suite, &c));
    return c;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("consortium: ", e.what()));
  }
}

std::string GenesisToJson(const Genesis& g) {
  nlohmann::ordered_json j;
  j["chain_id"] = g.chain_id;
  j["crypto_suite"] = g.crypto_suite;
  j["genesis_time_ms"] = g.genesis_time_ms;
  j["validators"] = nlohmann::ordered_json::array();
  for (const Validator& v : g.validators) {
    nlohmann::ordered_json jv;
    jv["name"] = v.name;
    jv["public_key"] = ToHex(v.public_key);
    jv["power"] = v.power;
    j["validators"].push_back(std::move(jv));
  }
  j["chain_rules"]["max_block_txs"] = g.rules.max_block_txs;
  j["chain_rules"]["max_block_bytes"] = g.rules.max_block_bytes;
  j["chain_rules"]["replay_window"] = g.rules.replay_window;
  j["chain_rules"]["block_time_precision_ms"] = g.rules.block_time_precision_ms;
  j["chain_rules"]["block_time_message_delay_ms"] =
      g.rules.block_time_message_delay_ms;
  if (g.consortium.has_value()) {
    nlohmann::ordered_json& c = j["consortium"];
    c["approval_percent"] = g.consortium->approval_percent;
    c["orgs"] = nlohmann::ordered_json::array();
    for (const ConsortiumOrg& org : g.consortium->orgs) {
      nlohmann::ordered_json jo;
      jo["id"] = org.id;
      jo["name"] = org.name;
      jo["members"] = nlohmann::ordered_json::array();
      for (const ConsortiumMember& m : org.members) {
        std::vector<admin::Role> roles = m.roles;
        std::sort(roles.begin(), roles.end());
        nlohmann::ordered_json jm;
        jm["public_key"] = ToHex(m.public_key);
        jm["roles"] = nlohmann::ordered_json::array();
        for (admin::Role r : roles) {
          jm["roles"].push_back(std::string(admin::RoleName(r)));
        }
        jo["members"].push_back(std::move(jm));
      }
      c["orgs"].push_back(std::move(jo));
    }
  }
  // Names that are not valid UTF-8 (only possible for a Genesis built in
  // code) are written with U+FFFD instead of throwing.
  return j.dump(2, ' ', false,
                nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

// ---------------------------------------------------------------------------
// Commit certificates

const std::vector<Validator>& ValidatorsAt(
    const std::vector<ValidatorEpoch>& epochs, uint64_t height) {
  auto it = std::upper_bound(
      epochs.begin(), epochs.end(), height,
      [](uint64_t h, const ValidatorEpoch& e) { return h < e.from_height; });
  return it == epochs.begin() ? epochs.front().validators
                              : std::prev(it)->validators;
}

absl::Status VerifyCertificate(const CryptoSuite& suite, const Genesis& genesis,
                               const BlockHeader& header,
                               const CommitCertificate& cert) {
  return VerifyCertificate(suite, genesis, genesis.validators, header, cert);
}

absl::Status VerifyCertificate(const CryptoSuite& suite, const Genesis& genesis,
                               const std::vector<Validator>& validators,
                               const BlockHeader& header,
                               const CommitCertificate& cert) {
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate checked with suite ", Absl(suite.name()),
                     " but the chain uses ", genesis.crypto_suite));
  }
  if (header.chain_id != genesis.chain_id) {
    return absl::InvalidArgumentError(absl::StrCat("header is for chain '",
                                                   header.chain_id, "', not '",
                                                   genesis.chain_id, "'"));
  }
  if (cert.height != header.height) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate is for height ", cert.height,
                     ", header is at height ", header.height));
  }
  const Hash32 hash = BlockHash(suite, header);
  if (cert.block_hash != hash) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate is for block ", ToHex(cert.block_hash),
                     ", header hashes to ", ToHex(hash)));
  }
  // 128-bit sums: a genesis built in code is not bound by the parser's
  // overflow check.
  unsigned __int128 total = 0;
  for (const Validator& v : validators) total += v.power;
  if (total == 0) {
    return absl::InvalidArgumentError("the validator set has no voting power");
  }

  Vote vote;
  vote.type = VoteType::kPrecommit;
  vote.height = cert.height;
  vote.round = cert.round;
  vote.block_hash = cert.block_hash;
  unsigned __int128 signed_power = 0;
  for (size_t i = 0; i < cert.sigs.size(); ++i) {
    const CommitSig& s = cert.sigs[i];
    if (s.validator_index >= validators.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate signer ", s.validator_index,
          " is not a validator (there are ", validators.size(), ")"));
    }
    if (i > 0 && s.validator_index <= cert.sigs[i - 1].validator_index) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate signers not strictly increasing at validator ",
          s.validator_index));
    }
    const Validator& val = validators[s.validator_index];
    vote.validator_index = s.validator_index;
    if (!suite.Verify(val.public_key, VoteSignBytes(genesis.chain_id, vote),
                      s.signature)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad precommit signature from validator ",
                       s.validator_index, " (", val.name, ")"));
    }
    signed_power += val.power;
  }
  if (3 * signed_power <= 2 * total) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate signers hold ", static_cast<uint64_t>(signed_power),
        " of ", static_cast<uint64_t>(total),
        " voting power, not more than two thirds"));
  }
  return absl::OkStatus();
}

#undef CONSORTIA_RETURN_IF_ERROR

}  // namespace consortia
