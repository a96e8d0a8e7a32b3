// The JSON form of a transaction, used only at the API edge and by clients.
//
//   {
//     "chain_id": "localnet",
//     "nonce": "42",                 // decimal string or number (u64)
//     "valid_until": 1000,           // u64
//     "sender": "<hex public key>",
//     "app": "kv",
//     "method": "set",
//     "args": ["key", "value"],     // UTF-8 strings
//     "signature": "<hex signature over TxSignBytes>"
//   }
//
// Unknown fields are rejected so that a typo never silently changes what was
// signed.
#ifndef CONSORTIA_COMMON_TX_JSON_H_
#define CONSORTIA_COMMON_TX_JSON_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"

namespace consortia {

// InvalidArgument naming the offending field for: malformed JSON, a missing or
// unknown field, a wrong type, bad hex, a number out of range, an arg that is
// not valid UTF-8, or any encoding limit of types.h exceeded.
absl::StatusOr<Transaction> TxFromJson(std::string_view json);
// TxFromJson's tx, encoded and hashed (EncodeTxAndHash): the encoding that
// checks the size limit is the one returned, so the tx is encoded once. The
// same errors as TxFromJson.
absl::StatusOr<EncodedTx> EncodeTxFromJson(std::string_view json,
                                           const CryptoSuite& suite);
std::string TxToJson(const Transaction& tx);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_TX_JSON_H_
