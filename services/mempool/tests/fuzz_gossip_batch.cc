// libFuzzer target for the mempool gossip batch decoder (gossip.h), which
// reads what other nodes send: it must never crash, and whatever decodes
// must re-encode to exactly the input bytes (one encoding per batch).
//
//   cmake -DCONSORTIA_FUZZ=ON (CXX=clang++-14); ./bin/fuzz_gossip_batch
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "gossip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace consortia;  // NOLINT
  const ByteView in(data, size);
  absl::StatusOr<std::vector<Bytes>> txs = mempool::DecodeGossipBatch(in);
  if (!txs.ok()) return 0;
  std::vector<std::shared_ptr<const Bytes>> shared;
  for (Bytes& tx : *txs) {
    shared.push_back(std::make_shared<const Bytes>(std::move(tx)));
  }
  const Bytes again = mempool::EncodeGossipBatch(shared);
  if (again.size() != size ||
      (size > 0 && std::memcmp(again.data(), data, size) != 0)) {
    std::fprintf(stderr, "decoded gossip batch re-encodes to other bytes\n");
    std::abort();
  }
  return 0;
}
