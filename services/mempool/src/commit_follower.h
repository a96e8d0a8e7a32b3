// Keeps the mempool in step with storage's commits.
#ifndef CONSORTIA_MEMPOOL_SRC_COMMIT_FOLLOWER_H_
#define CONSORTIA_MEMPOOL_SRC_COMMIT_FOLLOWER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "consortia/service_api.h"
#include "mempool.h"
#include "mempool_metrics.h"

namespace consortia::mempool {

// Feeds block.committed events to a Mempool, in height order and without
// holes, on its own thread.
//
// On Start it loads the member set into the mempool's MembershipCache
// (CommitHistory::ListMembers, page by page, as of the first page's height)
// and the replay window in force there (the page's rules), then rebuilds the
// replay window: it asks storage for the latest height
// (CommitHistory::GetChainTip), fetches the commit events of the last
// replay_window heights (and of every height above the member set's, when
// that is older) with GetCommitted, applies them, and then calls
// Mempool::SetReady(). It retries until storage answers. Events that arrive
// meanwhile are queued. Every event, fetched or received, is applied to the
// membership cache first and then to the mempool.
//
// Afterwards, each event is applied in order; when an event's height skips
// (the subscriber missed some), the missing heights are fetched with
// GetCommitted and applied first. When a Reap waits for a height that no
// event brings (an event was lost and nothing followed), the follower fetches
// it from storage as well.
//
// Every fetch asks for at most 1000 heights per call and continues from the
// answer's next_height: storage's answer may stop early (a busy window holds
// more txs than one reply may carry), and the follower never applies a later
// height before every height below it.
//
// Thread-safe: OnEvent may be called from any thread (the subscriber's).
class CommitFollower {
 public:
  struct Options {
    // Pause between attempts while storage does not answer.
    absl::Duration retry_interval = absl::Milliseconds(200);
    // How long the follower waits for an event before checking whether a
    // Reap is waiting for a height that no event brought.
    absl::Duration idle_check = absl::Milliseconds(100);
    // Events queued beyond this are dropped (their heights are fetched
    // again later as a gap).
    size_t max_queued_events = 4096;
    // Member keys asked per ListMembers call (1..kMaxListMembers).
    uint32_t members_page = kMaxListMembers;
    // The genesis's consortium member keys, when it has one. Before storage
    // has executed block 1 (which writes them into state), the member set
    // it answers is empty and the chain looks open: these are the members
    // then, and the chain is permissioned from the start.
    std::optional<std::vector<Bytes>> genesis_members;
  };

  // `mempool` and `history` must outlive the follower.
  CommitFollower(const Options& options, Mempool* mempool,
                 CommitHistory* history, MempoolMetrics metrics = {});
  // Stops and joins the thread.
  ~CommitFollower();

  CommitFollower(const CommitFollower&) = delete;
  CommitFollower& operator=(const CommitFollower&) = delete;

  // Starts the thread (rebuild, then follow). Call once.
  void Start();

  // A block.committed payload from the subscriber; `missed` is the number of
  // events the subscriber knows it skipped. Never blocks for long.
  void OnEvent(ByteView payload, uint64_t missed);

 private:
  void Loop();
  absl::Status Rebuild();
  // Loads the whole member set into the mempool's cache; the height it is
  // of (the first page's).
  absl::StatusOr<uint64_t> LoadMembers();
  // Applies one event to the membership cache, then to the mempool.
  void Apply(const CommittedEvent& event);
  // Fetches and applies the commit events of heights [from, to], page by
  // page: each GetCommitted answer may stop early, and the next call starts
  // at its next_height. Unavailable when storage has not committed a height
  // of the range yet (what came before it is applied), or OK then when
  // stop_at_tip; Internal when a page breaks the contract (nothing of that
  // page is applied).
  absl::Status Fetch(uint64_t from, uint64_t to, bool stop_at_tip = false);
  // OK iff `page`, the answer for heights [from, to], holds exactly one event
  // per height from `from` to next_height - 1, with next_height <= to + 1.
  static absl::Status CheckPage(uint64_t from, uint64_t to,
                                const CommittedPage& page);
  // Applies queued events in order, filling gaps first.
  absl::Status ApplyQueued() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits up to d or until stop; returns false when stopping.
  bool Sleep(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  Mempool* const mempool_;
  CommitHistory* const history_;
  MempoolMetrics metrics_;

  absl::Mutex mu_;
  std::deque<CommittedEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace consortia::mempool

#endif  // CONSORTIA_MEMPOOL_SRC_COMMIT_FOLLOWER_H_
