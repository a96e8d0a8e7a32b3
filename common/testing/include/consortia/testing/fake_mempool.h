// A mempool in memory, for the tests of every service that calls one (the
// api submits, consensus reaps and checks proposals, common/ tests the bus
// around it). Part of the test-only library consortia_test_fakes
// (common/testing/README.md).
#ifndef CONSORTIA_COMMON_TESTING_FAKE_MEMPOOL_H_
#define CONSORTIA_COMMON_TESTING_FAKE_MEMPOOL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "consortia/bytes.h"
#include "consortia/service_api.h"

namespace consortia::testing {

// What it does by default:
//   Submit        answers every tx with the submit code (kAccepted unless
//                 set), and kMalformed "empty tx" for an empty one; tx_hash
//                 is TxHash when the tx decodes, else the hash of its bytes.
//                 Accepted txs become pending. An empty batch (the api's
//                 readiness probe) answers an empty list and is not recorded.
//   Reap          pending txs in arrival order, within max_txs and max_bytes.
//   CheckProposal vouches for every tx (kAccepted, with its hash as above)
//                 but an empty one (kMalformed, zero hash), as a mempool that
//                 admitted them would.
// The hooks below change that; each says which calls it affects.
// Thread-safe.
class FakeMempool : public MempoolApi {
 public:
  // ---------------------------------------------------------------- hooks
  // Every call fails Unavailable while down (a mempool that is gone).
  void SetDown(bool down);
  // Submit's code for every non-empty tx; its detail is "fake: <name>".
  void SetSubmitCode(Admission code);
  // A non-OK status fails every non-empty Submit with it (OK restores).
  void FailSubmits(absl::Status status);
  // The first non-empty Submit waits until Release() (a mempool that hangs).
  void HoldFirstBatch();
  void Release();
  // Submit answers one result fewer than it was given txs (a broken mempool).
  void AnswerOneResultShort();
  // Reap with a committed_height above h answers Unavailable "commit events
  // not caught up" (the real mempool's answer when its commit events lag).
  // Default: never.
  void SetCaughtUpTo(uint64_t h);
  // A non-OK status fails every CheckProposal with it (OK restores): a
  // mempool that gives no verdict.
  void FailChecks(absl::Status status);

  // Txs become pending as if submitted and accepted, or leave (committed).
  void Add(std::vector<Bytes> txs);
  void Remove(const std::vector<Bytes>& txs);

  // ------------------------------------------------------------ observers
  // The non-empty batches Submit was given, in order (held and failed ones
  // too).
  std::vector<std::vector<Bytes>> batches() const;
  // Waits (at most 30 s) until n non-empty batches arrived.
  bool WaitForBatches(size_t n);
  int reaps() const;   // Reap calls
  int checks() const;  // CheckProposal calls

  // ------------------------------------------------------------ MempoolApi
  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override;
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override;
  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t height) override;

 private:
  mutable absl::Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  Admission submit_code_ ABSL_GUARDED_BY(mu_) = Admission::kAccepted;
  absl::Status submit_failure_ ABSL_GUARDED_BY(mu_);
  bool hold_first_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  bool short_answer_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t caught_up_to_ ABSL_GUARDED_BY(mu_) =
      std::numeric_limits<uint64_t>::max();
  absl::Status check_failure_ ABSL_GUARDED_BY(mu_);
  std::deque<Bytes> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<Bytes>> batches_ ABSL_GUARDED_BY(mu_);
  int reaps_ ABSL_GUARDED_BY(mu_) = 0;
  int checks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTING_FAKE_MEMPOOL_H_
