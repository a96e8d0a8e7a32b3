#include "views.h"

#include <string>

#include "consortia/tx_json.h"
#include "nlohmann/json.hpp"
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
                         const TxRecord& record) {
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
  return Dump(j);
}

std::string BlockRecordView(const CryptoSuite& suite,
                            const BlockRecord& record) {
  Json hashes = Json::array();
  for (const Bytes& raw : record.block.txs) {
    absl::StatusOr<Transaction> tx = DecodeTx(raw);
    if (tx.ok()) {
      hashes.push_back(Hex(TxHash(suite, *tx)));
    } else {
      spdlog::error("api: tx of block {} does not decode: {}",
                    record.block.header.height, tx.status().ToString());
      hashes.push_back(nullptr);
    }
  }
  Json raw;
  raw["encoding"] = kBlockRecordEncoding;
  raw["hex"] = ToHex(EncodeBlockRecord(record));

  Json j;
  j["height"] = record.block.header.height;
  j["block_hash"] = Hex(record.block_hash);
  j["header"] = HeaderJson(record.block.header);
  j["tx_count"] = record.block.txs.size();
  j["tx_hashes"] = std::move(hashes);
  j["certificate"] =
      record.cert.has_value() ? CertificateJson(*record.cert) : Json(nullptr);
  j["raw"] = std::move(raw);
  return Dump(j);
}

std::string StateView(std::string_view app, std::string_view key,
                      const StateRecord& record) {
  Json j;
  j["app"] = std::string(app);
  if (IsUtf8(key)) {
    j["key"] = std::string(key);
    j["key_encoding"] = "utf-8";
  } else {
    j["key"] = ToHex(AsBytes(key));
    j["key_encoding"] = "hex";
  }
  std::string_view value = AsString(record.value);
  if (IsUtf8(value)) {
    j["value"] = std::string(value);
    j["value_encoding"] = "utf-8";
  } else {
    j["value"] = ToHex(record.value);
    j["value_encoding"] = "hex";
  }
  j["owner"] = ToHex(record.owner);
  j["height"] = record.height;
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
