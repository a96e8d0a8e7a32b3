// The body and the answer of POST /v1/txs:batch: {"txs":[tx, ...]} in, one
// result per tx out, in order. The txs themselves are decoded exactly as the
// body of POST /v1/txs is (EncodeTxFromJson, consortia/tx_json.h), from the
// very bytes the client sent; the mempool's verdicts are mapped by
// src/problem.cc as for POST /v1/txs.
#ifndef CONSORTIA_API_TX_BATCH_H_
#define CONSORTIA_API_TX_BATCH_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "consortia/http_server.h"

namespace consortia::api {

// The txs of a batch body, each the text of one element of its "txs" array
// (a view into `body`: what POST /v1/txs would have been sent). The body must
// be a JSON object whose only field is "txs", an array of 1 to `max_txs`
// elements; an element that is not a valid tx is not checked here (its own
// result says why). InvalidArgument (400 invalid-batch) when the body is not
// such an object (not JSON, another field, no or an empty array),
// OutOfRange (413 batch-too-large) when the array holds more than `max_txs`
// elements. Never recurses into the elements, so any nesting is safe.
absl::StatusOr<std::vector<std::string_view>> SplitTxBatch(
    std::string_view body, size_t max_txs);

// One tx's answer within a batch: the tx's hash (hex; empty when it did not
// decode) and the answer POST /v1/txs would have given it (202 or 200 with
// {"tx_hash","status":"pending"}, or problem+json).
struct BatchTxAnswer {
  std::string tx_hash;
  HttpResponse response;
};

// The 200 body {"results":[...]}: per tx, in order,
// {"tx_hash":"hex","status":"pending"} for a 200 or 202 answer, else
// {"tx_hash":"hex","problem":{type,title,status,detail}} (no tx_hash when
// the tx did not decode).
std::string BatchResultsJson(const std::vector<BatchTxAnswer>& answers);

}  // namespace consortia::api

#endif  // CONSORTIA_API_TX_BATCH_H_
