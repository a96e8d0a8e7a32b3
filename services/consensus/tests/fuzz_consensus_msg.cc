// libFuzzer target for the Tendermint message decoder and the state machine
// behind it.
//
// 1. The whole input as one message, and as evidence (two messages):
//    whatever decodes must re-encode to exactly the input bytes (one
//    encoding per value).
// 2. The input as a list of length-prefixed chunks, each a message (or, when
//    it starts with 0xFF, a timeout), fed in order to a validator's state
//    machine. The suite here accepts every signature, so that the fuzzer
//    reaches the rules instead of stopping at signature checks; the machine
//    must never crash, and every decision it makes must carry precommits of
//    more than two thirds of the power.
//
//   cmake -DCONSORTIA_FUZZ=ON (CXX=clang++-14); ./bin/fuzz_consensus_msg
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "consortia/codec.h"
#include "inline_answers.h"
#include "tendermint/state_machine.h"

namespace {

using namespace consortia;                         // NOLINT
using namespace consortia::consensus::tendermint;  // NOLINT

// Accepts every signature. Fuzzing only.
class AcceptAllSuite final : public CryptoSuite {
 public:
  std::string_view name() const override { return "fuzz-accept-all"; }
  size_t public_key_size() const override { return 32; }
  size_t max_signature_size() const override { return 64; }
  Hash32 Hash(std::initializer_list<ByteView> parts) const override {
    return Ed25519Sha256().Hash(parts);
  }
  KeyPair GenerateKey() const override { return KeyPair{Bytes(32), Bytes(32)}; }
  absl::StatusOr<KeyPair> KeyFromSeed(ByteView seed) const override {
    return KeyPair{Bytes(seed.begin(), seed.end()),
                   Bytes(seed.begin(), seed.end())};
  }
  absl::StatusOr<Bytes> Sign(ByteView, ByteView) const override {
    return Bytes(64, 0);
  }
  bool Verify(ByteView, ByteView, ByteView) const override { return true; }
};

class NullSigner final : public MessageSigner {
 public:
  absl::StatusOr<Bytes> SignVote(const Vote&, ByteView) override {
    return Bytes(64, 0);
  }
  absl::StatusOr<Bytes> SignProposal(const Proposal&, ByteView) override {
    return Bytes(64, 0);
  }
};

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "%s\n", what);
    std::abort();
  }
}

void RoundTrip(ByteView in) {
  // Evidence (two messages) must round-trip the same way.
  if (absl::StatusOr<Evidence> e = DecodeEvidence(in); e.ok()) {
    const Bytes again = EncodeEvidence(*e);
    Check(again.size() == in.size() &&
              std::memcmp(again.data(), in.data(), in.size()) == 0,
          "decoded evidence re-encodes to other bytes");
  }
  absl::StatusOr<Message> m = DecodeMessage(in);
  if (!m.ok()) return;
  const Bytes again = EncodeMessage(*m);
  Check(
      again.size() == in.size() &&
          (in.empty() || std::memcmp(again.data(), in.data(), in.size()) == 0),
      "decoded consensus message re-encodes to other bytes");
}

void Drive(ByteView in) {
  static const AcceptAllSuite* const suite = new AcceptAllSuite();
  static const Genesis* const genesis = [] {
    auto* g = new Genesis();
    g->chain_id = "fuzznet";
    g->crypto_suite = "fuzz-accept-all";
    for (int i = 0; i < 4; ++i) {
      g->validators.push_back(Validator{"v", Bytes(32, static_cast<uint8_t>(i)),
                                        static_cast<uint64_t>(1 + i % 2)});
    }
    return g;
  }();
  NullSigner signer;
  auto sm = StateMachine::Create(*genesis, *suite, 0, &signer);
  Check(sm.ok(), "state machine setup failed");
  InlineAnswers m(
      *std::move(sm),
      [](uint64_t h, uint32_t) -> absl::StatusOr<Block> {
        Block b;
        b.header.chain_id = "fuzznet";
        b.header.height = h;
        // The Merkle root of no txs is the digest of nothing.
        b.header.tx_root = suite->Hash(std::initializer_list<ByteView>{});
        return b;
      },
      [](const Block& b) { return b.header.time_ms % 7 != 3; });
  Check(m.StartHeight(1).ok(), "start failed");

  Decoder d(in);
  for (int steps = 0; steps < 64 && d.remaining() > 0; ++steps) {
    Bytes chunk;
    if (!d.GetBytes(&chunk, 1 << 16).ok()) break;
    Actions actions;
    if (!chunk.empty() && chunk[0] == 0xFF) {
      Decoder t(ByteView(chunk).subspan(1));
      uint8_t step = 0;
      uint32_t round = 0;
      if (!t.GetU8(&step).ok() || !t.GetU32(&round).ok()) continue;
      actions = m.OnTimeout(m.height(), round, static_cast<Step>(step % 3));
    } else {
      absl::StatusOr<Message> msg = DecodeMessage(chunk);
      if (!msg.ok()) continue;
      actions = m.OnMessage(*msg);
    }
    for (const Action& a : actions) {
      const auto* decide = std::get_if<DecideAction>(&a);
      if (decide == nullptr) continue;
      Check(VerifyCertificate(*suite, *genesis, decide->block.header,
                              decide->certificate)
                .ok(),
            "decision without a two-thirds certificate");
      Check(m.StartHeight(decide->height + 1).ok(), "next height failed");
    }
  }
  (void)m.GossipMessages();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView in(data, size);
  RoundTrip(in);
  Drive(in);
  return 0;
}
