#include "keys.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"

namespace consortia::storage::keys {
namespace {

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void AppendU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint64_t ReadBigEndian(std::string_view v) {
  uint64_t out = 0;
  for (char c : v) out = (out << 8) | static_cast<uint8_t>(c);
  return out;
}

std::string WithHeight(char prefix, uint64_t height) {
  std::string k(1, prefix);
  AppendU64(&k, height);
  return k;
}

// Sized once: a key grown from one byte to 33 is allocated twice.
std::string WithHash(char prefix, const Hash32& hash) {
  std::string k;
  k.reserve(1 + hash.size());
  k.push_back(prefix);
  k.append(reinterpret_cast<const char*>(hash.data()), hash.size());
  return k;
}

// Bound on a stored receipt list: one receipt per tx of a block.
constexpr size_t kMaxReceiptBytes = 32 + 10 + 10 + kMaxLogBytes;

}  // namespace

std::string LatestHeight() {
  return std::string(1, kMetaPrefix) + "latest_height";
}
std::string ChainId() { return std::string(1, kMetaPrefix) + "chain_id"; }
std::string Block(uint64_t height) { return WithHeight(kBlockPrefix, height); }
std::string Cert(uint64_t height) { return WithHeight(kCertPrefix, height); }
std::string Header(uint64_t height) {
  return WithHeight(kHeaderPrefix, height);
}
std::string BlockHash(const Hash32& hash) {
  return WithHash(kBlockHashPrefix, hash);
}
std::string Tx(const Hash32& hash) { return WithHash(kTxPrefix, hash); }
std::string Receipts(uint64_t height) {
  return WithHeight(kReceiptsPrefix, height);
}
std::string Roots(uint64_t height) { return WithHeight(kRootsPrefix, height); }

std::string StateFormat() {
  return std::string(1, kMetaPrefix) + "state_format";
}
std::string PrunedThrough() {
  return std::string(1, kMetaPrefix) + "state_pruned_through";
}

std::string State(std::string_view app, std::string_view key) {
  std::string k(1, kStatePrefix);
  k.push_back(static_cast<char>(static_cast<uint8_t>(app.size())));
  k.append(app);
  k.append(key);
  return k;
}

absl::StatusOr<AppKey> ParseState(std::string_view k) {
  if (k.size() < 2 || k[0] != kStatePrefix) {
    return absl::InvalidArgumentError("not a state key");
  }
  const size_t app_len = static_cast<uint8_t>(k[1]);
  if (k.size() < 2 + app_len) {
    return absl::InvalidArgumentError("state key shorter than its app name");
  }
  return AppKey{k.substr(2, app_len), k.substr(2 + app_len)};
}

std::string TxCount(uint64_t height) {
  return WithHeight(kTxCountPrefix, height);
}
std::string Admission(uint64_t height) {
  return WithHeight(kAdmissionPrefix, height);
}
std::string ValidatorChange(uint64_t height) {
  return WithHeight(kValidatorChangePrefix, height);
}
std::string ValidatorChangeHeights() {
  return std::string(1, kMetaPrefix) + "validator_change_heights";
}
std::string EncodeHeights(const std::vector<uint64_t>& heights) {
  std::string out;
  out.reserve(8 * heights.size());
  for (uint64_t h : heights) out += EncodeU64(h);
  return out;
}
absl::StatusOr<std::vector<uint64_t>> DecodeHeights(std::string_view v) {
  if (v.size() % 8 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a list of heights of ", v.size(), " bytes"));
  }
  std::vector<uint64_t> out;
  for (size_t i = 0; i < v.size(); i += 8) {
    absl::StatusOr<uint64_t> h = DecodeU64(v.substr(i, 8));
    if (!h.ok()) return h.status();
    if (!out.empty() && *h <= out.back()) {
      return absl::InvalidArgumentError("heights not ascending");
    }
    out.push_back(*h);
  }
  return out;
}
std::string Node(const Hash32& hash) { return WithHash(kNodePrefix, hash); }
std::string PruneList(uint64_t version) {
  return WithHeight(kPrunePrefix, version);
}

absl::StatusOr<uint64_t> ParsePruneList(std::string_view k) {
  if (k.size() != 1 + 8 || k[0] != kPrunePrefix) {
    return absl::InvalidArgumentError("not a prune list key");
  }
  return ReadBigEndian(k.substr(1, 8));
}

std::string EncodeU32(uint32_t v) {
  std::string out;
  AppendU32(&out, v);
  return out;
}

absl::StatusOr<uint32_t> DecodeU32(std::string_view v) {
  if (v.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected 4 bytes, got ", v.size()));
  }
  return static_cast<uint32_t>(ReadBigEndian(v));
}

std::string EncodeU64(uint64_t v) {
  std::string out;
  AppendU64(&out, v);
  return out;
}

absl::StatusOr<uint64_t> DecodeU64(std::string_view v) {
  if (v.size() != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an 8-byte height, got ", v.size(), " bytes"));
  }
  return ReadBigEndian(v);
}

std::string EncodeTxLocation(const TxLocation& loc) {
  std::string out;
  AppendU64(&out, loc.height);
  AppendU32(&out, loc.index);
  return out;
}

absl::StatusOr<TxLocation> DecodeTxLocation(std::string_view v) {
  if (v.size() != 12) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a 12-byte tx location, got ", v.size()));
  }
  TxLocation loc;
  loc.height = ReadBigEndian(v.substr(0, 8));
  loc.index = static_cast<uint32_t>(ReadBigEndian(v.substr(8, 4)));
  return loc;
}

std::string EncodeRoots(const StoredRoots& r) {
  std::string out;
  out.append(reinterpret_cast<const char*>(r.state_root.data()), 32);
  out.append(reinterpret_cast<const char*>(r.receipts_root.data()), 32);
  return out;
}

absl::StatusOr<StoredRoots> DecodeRoots(std::string_view v) {
  if (v.size() != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected 64 bytes of roots, got ", v.size()));
  }
  StoredRoots r;
  std::copy(v.begin(), v.begin() + 32, r.state_root.begin());
  std::copy(v.begin() + 32, v.end(), r.receipts_root.begin());
  return r;
}

std::string EncodeReceiptList(const std::vector<Bytes>& receipts) {
  Encoder e;
  e.PutVarint(receipts.size());
  for (const Bytes& r : receipts) e.PutBytes(r);
  return std::string(AsString(e.data()));
}

absl::StatusOr<std::vector<Bytes>> DecodeReceiptList(std::string_view v) {
  Decoder d(AsBytes(v));
  uint64_t n = 0;
  if (absl::Status s = d.GetCount(&n, kMaxBlockTxs, 1); !s.ok()) return s;
  std::vector<Bytes> out(n);
  for (Bytes& r : out) {
    if (absl::Status s = d.GetBytes(&r, kMaxReceiptBytes); !s.ok()) return s;
  }
  if (absl::Status s = d.ExpectEnd(); !s.ok()) return s;
  return out;
}

std::string EncodeAdmission(const AdmissionRecord& r) {
  Encoder e;
  e.PutBool(r.permissioned);
  e.PutVarint(r.member_changes.size());
  for (const MemberChange& c : r.member_changes) {
    e.PutBytes(c.public_key);
    e.PutBool(c.registered);
  }
  if (r.rules.has_value()) {
    e.PutBool(true);
    EncodeChainRules(*r.rules, &e);
  }
  return std::string(AsString(e.data()));
}

absl::StatusOr<AdmissionRecord> DecodeAdmission(std::string_view v) {
  Decoder d(AsBytes(v));
  AdmissionRecord r;
  if (absl::Status s = d.GetBool(&r.permissioned); !s.ok()) return s;
  uint64_t n = 0;
  if (absl::Status s = d.GetCount(&n, kMaxMemberChanges, 3); !s.ok()) return s;
  r.member_changes.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    MemberChange c;
    if (absl::Status s = d.GetBytes(&c.public_key, kMaxMemberKeyBytes);
        !s.ok()) {
      return s;
    }
    if (c.public_key.empty() ||
        (!r.member_changes.empty() &&
         !(r.member_changes.back().public_key < c.public_key))) {
      return absl::InvalidArgumentError(
          "member keys empty or not in strictly ascending order");
    }
    if (absl::Status s = d.GetBool(&c.registered); !s.ok()) return s;
    r.member_changes.push_back(std::move(c));
  }
  if (d.remaining() > 0) {
    bool present = false;
    if (absl::Status s = d.GetBool(&present); !s.ok()) return s;
    if (!present) {
      return absl::InvalidArgumentError(
          "admission record: absent rules are written as nothing");
    }
    ChainRules rules;
    if (absl::Status s = DecodeChainRules(&d, &rules); !s.ok()) return s;
    r.rules = rules;
  }
  if (absl::Status s = d.ExpectEnd(); !s.ok()) return s;
  return r;
}

std::string EncodeHeaderValue(const BlockHeader& h) {
  Encoder e;
  EncodeHeader(h, &e);
  return std::string(AsString(e.data()));
}

absl::StatusOr<BlockHeader> DecodeHeaderValue(std::string_view v) {
  Decoder d(AsBytes(v));
  BlockHeader h;
  if (absl::Status s = DecodeHeader(&d, &h); !s.ok()) return s;
  if (absl::Status s = d.ExpectEnd(); !s.ok()) return s;
  return h;
}

std::string EncodeStateEntry(const StateEntry& e) {
  return std::string(AsString(EncodeStateValue(e.value, e.owner)));
}

absl::StatusOr<StateEntry> DecodeStateEntry(std::string_view v) {
  Decoder d(AsBytes(v));
  StateEntry e;
  if (absl::Status s = d.GetBytes(&e.value, kMaxTxBytes); !s.ok()) return s;
  if (absl::Status s = d.GetBytes(&e.owner, kMaxPublicKeyBytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = d.ExpectEnd(); !s.ok()) return s;
  return e;
}

}  // namespace consortia::storage::keys
