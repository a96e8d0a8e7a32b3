// The JSON bodies of the read routes, built from storage's records. Hashes,
// keys and signatures are lower-case hex; byte strings that are not UTF-8
// text are hex with an explicit encoding field.
#ifndef CONSORTIA_API_VIEWS_H_
#define CONSORTIA_API_VIEWS_H_

#include <string>
#include <string_view>

#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/types.h"

namespace consortia::api {

// Encoding names of the raw records carried in the responses (hex of the
// canonical encoding of service_api.h); `consortia verify` checks the first.
inline constexpr char kTxRecordEncoding[] = "consortia-txrecord-v1";
inline constexpr char kBlockRecordEncoding[] = "consortia-blockrecord-v1";

// GET /v1/txs/{hash}: tx_hash, height, index, tx, receipt, block_hash,
// header, inclusion, proof.
std::string TxRecordView(const CryptoSuite& suite, const Hash32& tx_hash,
                         const TxRecord& record);
// GET /v1/blocks/...: height, block_hash, header, tx_count, tx_hashes,
// certificate (null if storage has none), raw.
std::string BlockRecordView(const CryptoSuite& suite,
                            const BlockRecord& record);
// GET /v1/state/{app}/{key}: app, key, value, value_encoding ("utf-8" or
// "hex"), owner, height.
std::string StateView(std::string_view app, std::string_view key,
                      const StateRecord& record);

// True iff s is well-formed UTF-8 (no overlong forms, no surrogates, at most
// U+10FFFF).
bool IsUtf8(std::string_view s);

}  // namespace consortia::api

#endif  // CONSORTIA_API_VIEWS_H_
