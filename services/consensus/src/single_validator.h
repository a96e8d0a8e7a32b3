// The proposer loop of a one-validator chain.
#ifndef CONSORTIA_CONSENSUS_SRC_SINGLE_VALIDATOR_H_
#define CONSORTIA_CONSENSUS_SRC_SINGLE_VALIDATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "block_builder.h"
#include "certificate.h"
#include "clock.h"
#include "consensus_metrics.h"
#include "consortia/config.h"
#include "consortia/consensus/consensus_service.h"
#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "tendermint/state_machine.h"

namespace consortia::consensus {

// Produces the blocks of a chain whose genesis has exactly one validator,
// this node, on its own thread:
//   1. reads the ChainState from storage, retrying until it answers;
//   2. every block_poll_interval, reaps up to max_block_txs / max_block_bytes
//      (the options', or the chain rules' of the height when lower) from the
//      mempool, building on the current height;
//   3. if txs came, or empty_block_interval passed since the last block,
//      builds the next block, signs its precommit, and has storage commit
//      block + certificate;
//   4. on success adopts the roots storage returned; on any error logs it and
//      starts again from a fresh ChainState, so no height is ever skipped.
//
// Thread-safe: Ready(), height() and Stop() may be called from any thread.
class SingleValidator {
 public:
  // FailedPrecondition when the genesis does not have exactly one validator
  // ("this build runs one validator; genesis has N") or it is not `key`;
  // InvalidArgument when the key is not of the genesis suite or cannot sign.
  // The pointers must outlive the validator.
  static absl::StatusOr<std::unique_ptr<SingleValidator>> Create(
      const ConsensusOptions& options, const Genesis& genesis,
      const CryptoSuite& suite, const NodeKey& key, MempoolApi* mempool,
      LedgerApi* ledger, const Clock* clock, ConsensusMetrics metrics = {});

  // Stops the loop and joins the thread.
  ~SingleValidator();

  SingleValidator(const SingleValidator&) = delete;
  SingleValidator& operator=(const SingleValidator&) = delete;

  // Starts the loop's thread. Call once.
  void Start();
  // Asks the loop to stop and joins it. Idempotent.
  void Stop();

  // True once the chain state was read from storage.
  bool Ready() const;
  // The last height this validator saw committed.
  uint64_t height() const;

 private:
  SingleValidator(const ConsensusOptions& options, const Genesis& genesis,
                  const CryptoSuite& suite, const NodeKey& key,
                  std::unique_ptr<tendermint::MessageSigner> signer,
                  MempoolApi* mempool, LedgerApi* ledger, const Clock* clock,
                  ConsensusMetrics metrics);

  void Loop();
  // One round of the loop; returns how long to wait before the next.
  absl::Duration Step();
  // Waits up to d; false when stopping.
  bool Sleep(absl::Duration d);
  // Logs an error, at most every few seconds per kind when it repeats.
  void LogError(const char* what, const absl::Status& s);

  const ConsensusOptions options_;
  const std::string chain_id_;
  // The rules of a height whose chain state names none (test fakes).
  const ChainRules genesis_rules_;
  const CryptoSuite& suite_;
  MempoolApi* const mempool_;
  LedgerApi* const ledger_;
  const Clock* const clock_;
  ConsensusMetrics metrics_;
  const BlockBuilder builder_;
  // Signs the precommit of each block with the node key (a KeySigner).
  const std::unique_ptr<tendermint::MessageSigner> signer_;

  // Loop thread only.
  std::optional<ChainState> state_;
  absl::Time last_block_at_;
  std::optional<absl::Time> last_commit_real_;
  absl::Time last_error_log_ = absl::InfinitePast();
  uint64_t suppressed_errors_ = 0;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t height_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_SINGLE_VALIDATOR_H_
