#include "views.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "consortia/invoice_records.h"
#include "consortia/tx_json.h"
#include "nlohmann/json.hpp"
#include "problem.h"
#include "spdlog/spdlog.h"

namespace consortia::api {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  // Strings that came from storage may not be UTF-8: replace, never throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Hex(const Hash32& h) { return ToHex(ByteView(h)); }

Json HeaderJson(const BlockHeader& h) {
  Json j;
  j["chain_id"] = h.chain_id;
  j["height"] = h.height;
  j["time_ms"] = h.time_ms;
  j["proposer"] = ToHex(h.proposer);
  j["prev_hash"] = Hex(h.prev_hash);
  j["tx_root"] = Hex(h.tx_root);
  j["state_root"] = Hex(h.state_root);
  j["receipts_root"] = Hex(h.receipts_root);
  return j;
}

Json CertificateJson(const CommitCertificate& c) {
  Json sigs = Json::array();
  for (const CommitSig& s : c.sigs) {
    Json js;
    js["validator_index"] = s.validator_index;
    js["signature"] = ToHex(s.signature);
    sigs.push_back(std::move(js));
  }
  Json j;
  j["height"] = c.height;
  j["round"] = c.round;
  j["block_hash"] = Hex(c.block_hash);
  j["signatures"] = std::move(sigs);
  return j;
}

Json ProofJson(const MerkleProof& p) {
  Json path = Json::array();
  for (const Hash32& h : p.path) path.push_back(Hex(h));
  Json j;
  j["index"] = p.index;
  j["leaf_count"] = p.leaf_count;
  j["path"] = std::move(path);
  return j;
}

// `name` as text when it is UTF-8, else as hex, with `name`_encoding saying
// which.
void PutBytesField(Json* j, const std::string& name, ByteView bytes) {
  std::string_view text = AsString(bytes);
  if (IsUtf8(text)) {
    (*j)[name] = std::string(text);
    (*j)[name + "_encoding"] = "utf-8";
  } else {
    (*j)[name] = ToHex(bytes);
    (*j)[name + "_encoding"] = "hex";
  }
}

// An app's record: its value parsed as JSON, null when it is not JSON.
Json RecordJson(ByteView value) {
  std::string_view text = AsString(value);
  Json j = Json::parse(text.begin(), text.end(), nullptr,
                       /*allow_exceptions=*/false);
  return j.is_discarded() ? Json(nullptr) : j;
}

// height, state_root, certified and the proof bundle of a state record.
void PutStateProof(Json* j, const StateRecord& record) {
  Json proof;
  proof["encoding"] = kStateRecordEncoding;
  proof["hex"] = ToHex(EncodeStateRecord(record));
  (*j)["height"] = record.height;
  (*j)["state_root"] = Hex(record.state_root);
  (*j)["certified"] =
      record.next_header.has_value() && record.next_cert.has_value();
  (*j)["proof"] = std::move(proof);
}

// "validator_changes": the hex of each change's bundle, only when there is
// at least one.
void PutValidatorChanges(Json* j, const std::vector<StateRecord>& changes) {
  if (changes.empty()) return;
  Json list = Json::array();
  for (const StateRecord& r : changes) {
    list.push_back(ToHex(EncodeStateRecord(r)));
  }
  (*j)["validator_changes"] = std::move(list);
}

// A tx as its JSON object; null (and a log line) if storage holds bytes that
// do not decode, which would be storage's bug, not the client's.
Json TxJson(ByteView raw) {
  absl::StatusOr<Transaction> tx = DecodeTx(raw);
  if (!tx.ok()) {
    spdlog::error("api: stored tx does not decode: {}", tx.status().ToString());
    return nullptr;
  }
  Json j = Json::parse(TxToJson(*tx), nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json(nullptr) : j;
}

}  // namespace

std::string TxRecordView(const CryptoSuite& suite, const Hash32& tx_hash,
                         const TxRecord& record,
                         const std::vector<StateRecord>& validator_changes) {
  Json receipt;
  receipt["code"] = static_cast<uint32_t>(record.receipt.code);
  receipt["code_name"] = std::string(ExecCodeName(record.receipt.code));
  receipt["log"] = record.receipt.log;

  Json proof;
  proof["encoding"] = kTxRecordEncoding;
  proof["hex"] = ToHex(EncodeTxRecord(record));

  Json j;
  j["tx_hash"] = Hex(tx_hash);
  j["height"] = record.height;
  j["index"] = record.index;
  j["tx"] = TxJson(record.raw_tx);
  j["receipt"] = std::move(receipt);
  j["block_hash"] = Hex(BlockHash(suite, record.header));
  j["header"] = HeaderJson(record.header);
  j["inclusion"] = ProofJson(record.inclusion);
  j["proof"] = std::move(proof);
  PutValidatorChanges(&j, validator_changes);
  return Dump(j);
}

std::string BlockRecordView(const CryptoSuite& suite, const BlockRecord& record,
                            const std::vector<StateRecord>& validator_changes,
                            bool redact_invoice_txs, size_t* redacted) {
  Json hashes = Json::array();
  Json withheld = Json::array();
  for (size_t i = 0; i < record.block.txs.size(); ++i) {
    absl::StatusOr<Transaction> tx = DecodeTx(record.block.txs[i]);
    if (tx.ok()) {
      hashes.push_back(Hex(TxHash(suite, *tx)));
      if (redact_invoice_txs && tx->app == invoice::kAppName) {
        withheld.push_back(i);
      }
    } else {
      spdlog::error("api: tx of block {} does not decode: {}",
                    record.block.header.height, tx.status().ToString());
      hashes.push_back(nullptr);
    }
  }
  if (redacted != nullptr) *redacted = withheld.size();
  Json raw;
  if (withheld.empty()) {
    raw["encoding"] = kBlockRecordEncoding;
    raw["hex"] = ToHex(EncodeBlockRecord(record));
  }

  Json j;
  j["height"] = record.block.header.height;
  j["block_hash"] = Hex(record.block_hash);
  j["header"] = HeaderJson(record.block.header);
  j["tx_count"] = record.block.txs.size();
  j["tx_hashes"] = std::move(hashes);
  j["certificate"] =
      record.cert.has_value() ? CertificateJson(*record.cert) : Json(nullptr);
  j["raw"] = std::move(raw);  // null when txs are withheld
  if (!withheld.empty()) j["redacted_txs"] = std::move(withheld);
  PutValidatorChanges(&j, validator_changes);
  return Dump(j);
}

std::string StateView(std::string_view app, std::string_view key,
                      const StateRecord& record, bool with_record,
                      const std::vector<StateRecord>& validator_changes) {
  Json j;
  j["app"] = std::string(app);
  PutBytesField(&j, "key", AsBytes(key));
  PutBytesField(&j, "value", record.value);
  j["owner"] = ToHex(record.owner);
  if (with_record) j["record"] = RecordJson(record.value);
  PutStateProof(&j, record);
  PutValidatorChanges(&j, validator_changes);
  return Dump(j);
}

HttpResponse StateAbsentResponse(
    std::string_view app, std::string_view key, const StateRecord& record,
    const std::vector<StateRecord>& validator_changes) {
  HttpResponse r = ApiProblem(
      ApiError::kStateNotFound,
      absl::StrCat("no value for this key in ", std::string(app), " at height ",
                   record.height, "; proof of absence attached"));
  Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return r;  // keep the plain problem
  j["app"] = std::string(app);
  PutBytesField(&j, "key", AsBytes(key));
  PutStateProof(&j, record);
  PutValidatorChanges(&j, validator_changes);
  r.body = Dump(j);
  return r;
}

std::string BlockListView(const std::vector<BlockSummary>& blocks,
                          std::optional<uint64_t> next_from) {
  Json list = Json::array();
  for (const BlockSummary& b : blocks) {
    Json j;
    j["height"] = b.header.height;
    j["block_hash"] = Hex(b.block_hash);
    j["header"] = HeaderJson(b.header);
    j["tx_count"] = b.tx_count;
    list.push_back(std::move(j));
  }
  Json j;
  j["blocks"] = std::move(list);
  j["next_from"] = next_from.has_value() ? Json(*next_from) : Json(nullptr);
  return Dump(j);
}

std::string EvidenceListView(const std::vector<EvidenceRecord>& records,
                             std::optional<uint64_t> next_from) {
  Json list = Json::array();
  for (const EvidenceRecord& r : records) {
    Json j;
    j["seq"] = r.seq;
    j["kind"] = r.kind;
    j["height"] = r.height;
    j["round"] = r.round;
    j["validator_index"] = r.validator_index;
    j["message"] = {{"encoding", kEvidenceEncoding}, {"hex", ToHex(r.message)}};
    list.push_back(std::move(j));
  }
  Json j;
  j["evidence"] = std::move(list);
  j["next_from"] = next_from.has_value() ? Json(*next_from) : Json(nullptr);
  return Dump(j);
}

std::string StatePageView(std::string_view app, const StatePage& page,
                          bool with_records) {
  Json items = Json::array();
  for (const StateItem& item : page.items) {
    Json j;
    PutBytesField(&j, "key", AsBytes(item.key));
    PutBytesField(&j, "value", item.value);
    j["owner"] = ToHex(item.owner);
    if (with_records) j["record"] = RecordJson(item.value);
    items.push_back(std::move(j));
  }
  Json j;
  j["app"] = std::string(app);
  j["height"] = page.height;
  j["items"] = std::move(items);
  j["next_cursor"] = page.next_cursor.has_value()
                         ? Json(ToHex(AsBytes(*page.next_cursor)))
                         : Json(nullptr);
  return Dump(j);
}

bool IsUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace consortia::api
