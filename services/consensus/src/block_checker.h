// valid(v) for a proposed block: the consensus driver's answer to the state
// machine's ValidateBlockAction.
#ifndef CONSORTIA_CONSENSUS_SRC_BLOCK_CHECKER_H_
#define CONSORTIA_CONSENSUS_SRC_BLOCK_CHECKER_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "clock.h"
#include "consensus_metrics.h"
#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "tendermint/state_machine.h"

namespace consortia::consensus {

// Judges a block proposed at parent.height + 1. The verdict is a function of
// the block, the chain state after the parent (with the chain rules of the
// block's height, parent.next_rules, or the genesis's when absent) and the
// genesis only; it fails closed:
//   1. The header must extend the chain: height, previous hash, the state
//      and receipts roots after the parent (deferred execution), a time
//      after the parent's; and the block must keep the chain rules' limits
//      (the state machine already dropped proposals over them).
//      Otherwise kInvalid.
//   2. A time more than kMaxClockAheadMs ahead of this node's clock is
//      kUndecided: not a verdict on the block (clocks differ), so it is not
//      kept, and the block may pass in a later round.
//   3. Every tx: it decodes, its fields are sound (TxFieldProblem), its
//      chain id is the chain's, height <= valid_until <= height +
//      replay_window, its signature verifies, it appears once in the block,
//      and no earlier block committed it. The mempool's CheckProposal
//      vouches for all of it in one call (it has most signatures in its
//      cache); when the mempool gives no verdict (down, slow, restarting),
//      this node checks every tx itself: signatures on `verify_pool`, the
//      replay window with one BlockSource::CommittedHeights call to storage.
//      Any tx that fails: kInvalid.
//   4. When neither the mempool nor storage answers: kUndecided. "No
//      answer" is never "valid".
// Thread-safe: Check may run on several threads at once.
class BlockChecker {
 public:
  // A block time this far ahead of the local clock is undecided.
  static constexpr uint64_t kMaxClockAheadMs = 60'000;

  // Every pointer must outlive the checker; verify_pool may be nullptr
  // (verify on the calling thread).
  BlockChecker(const Genesis& genesis, const CryptoSuite& suite,
               MempoolApi* mempool, BlockSource* blocks,
               ThreadPool* verify_pool, const Clock* clock,
               ConsensusMetrics metrics);

  // Blocks the calling thread (a worker, never the driver thread) for up to
  // the mempool's and storage's bus deadlines.
  tendermint::BlockVerdict Check(const Block& block, const ChainState& parent);

 private:
  // Step 1; empty when the header and limits are sound, else why not.
  std::string HeaderProblem(const Block& block, const ChainState& parent) const;
  // Step 3 without the mempool.
  tendermint::BlockVerdict SelfCheck(const Block& block, uint64_t height,
                                     const ChainRules& rules);

  const Genesis genesis_;
  const CryptoSuite& suite_;
  MempoolApi* const mempool_;
  BlockSource* const blocks_;
  ThreadPool* const verify_pool_;
  const Clock* const clock_;
  ConsensusMetrics metrics_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_BLOCK_CHECKER_H_
