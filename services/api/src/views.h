// The JSON bodies of the read routes, built from storage's records. Hashes,
// keys and signatures are lower-case hex; byte strings that are not UTF-8
// text are hex with an explicit encoding field.
#ifndef CONSORTIA_API_VIEWS_H_
#define CONSORTIA_API_VIEWS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consortia/crypto_suite.h"
#include "consortia/http_server.h"
#include "consortia/service_api.h"
#include "consortia/types.h"

namespace consortia::api {

// Encoding names of the raw records carried in the responses (hex of the
// canonical encoding of proof_bundle.h); `consortia verify` checks the first.
inline constexpr char kTxRecordEncoding[] = "consortia-txrecord-v1";
inline constexpr char kBlockRecordEncoding[] = "consortia-blockrecord-v1";
// EncodeStateRecord: a state value or its absence, with its proof.
inline constexpr char kStateRecordEncoding[] = "consortia-staterecord-v1";
// Consensus's encoding of an equivocation: two signed votes or proposals.
inline constexpr char kEvidenceEncoding[] = "consortia-evidence-v1";

// Every view below that carries a proof takes `validator_changes`, the
// validator-set changes committed below the answer's height
// (ChainQueries::ListValidatorChanges): when there is at least one, the
// answer gains "validator_changes", the hex of each one's EncodeStateRecord
// in height order, which a verifier follows from the genesis
// (FollowValidatorChanges, proof_bundle.h) before it checks the proof. A
// chain whose set never changed answers without the field.

// GET /v1/txs/{hash}: tx_hash, height, index, tx, receipt, block_hash,
// header, inclusion, proof[, validator_changes].
std::string TxRecordView(
    const CryptoSuite& suite, const Hash32& tx_hash, const TxRecord& record,
    const std::vector<StateRecord>& validator_changes = {});
// GET /v1/blocks/...: height, block_hash, header, tx_count, tx_hashes,
// certificate (null if storage has none), raw[, validator_changes]. With
// `redact_invoice_txs` (--api_invoice_reads=parties, a reader without scope
// audit) a block with txs of app invoice answers `raw` null (it holds every
// tx's body) and `redacted_txs`, the positions of those txs; what stays (the
// header, the certificate, every tx hash) still proves the block.
// `*redacted` (when given) is set to the number of txs withheld.
std::string BlockRecordView(
    const CryptoSuite& suite, const BlockRecord& record,
    const std::vector<StateRecord>& validator_changes = {},
    bool redact_invoice_txs = false, size_t* redacted = nullptr);
// GET /v1/state/{app}/{key}: app, key, key_encoding, value, value_encoding
// ("utf-8" or "hex"), owner, height, state_root, certified (whether the
// record carries the next header and certificate), proof {encoding, hex}
// [, validator_changes]. With `with_record` (the /v1/apps routes), also
// `record`: the value, which the native apps write as a JSON object, decoded
// (null if it is not JSON).
std::string StateView(std::string_view app, std::string_view key,
                      const StateRecord& record, bool with_record = false,
                      const std::vector<StateRecord>& validator_changes = {});
// The 404 for a key without a value: the state-not-found problem+json body
// with the proof of absence as extension members (app, key, key_encoding,
// height, state_root, certified, proof[, validator_changes]).
HttpResponse StateAbsentResponse(
    std::string_view app, std::string_view key, const StateRecord& record,
    const std::vector<StateRecord>& validator_changes = {});
// GET /v1/blocks?from&limit: blocks [{height, block_hash, header,
// tx_count}], next_from (the `from` of the next page, or null when this
// page is empty: nothing committed from `from` yet).
std::string BlockListView(const std::vector<BlockSummary>& blocks,
                          std::optional<uint64_t> next_from);
// GET /v1/evidence?from&limit: evidence [{seq, kind, height, round,
// validator_index, message: {encoding, hex}}], next_from (null when this
// page is empty: no record from `from`).
std::string EvidenceListView(const std::vector<EvidenceRecord>& records,
                             std::optional<uint64_t> next_from);
// GET /v1/state/{app}?prefix&cursor&limit: app, height, items [{key,
// key_encoding, value, value_encoding, owner}], next_cursor (hex, or null
// when the scan is complete). With `with_records`, each item also has
// `record` (as StateView).
std::string StatePageView(std::string_view app, const StatePage& page,
                          bool with_records = false);

// True iff s is well-formed UTF-8 (no overlong forms, no surrogates, at most
// U+10FFFF).
bool IsUtf8(std::string_view s);

}  // namespace consortia::api

#endif  // CONSORTIA_API_VIEWS_H_
