// The event stream (GET /v1/events, docs/api.md "Follow the event stream"):
// Server-Sent Events of committed blocks and their txs, read from storage.
//
// One EventHub per api process. Its tail thread asks storage for the chain
// tip every `poll` interval; when the tip moved and some stream is live, it
// reads the new blocks with their receipts (ReadBlocksWithReceipts, a page of
// blocks per call, never a call per tx), turns each block into its events
// once, and hands them to every live stream. A stream that starts in the past
// (from_height, Last-Event-ID) first reads history itself, page by page on the
// hub's history threads, and joins the live streams once it has caught up to
// the height the tail last delivered: that hand-over happens under the hub's
// lock, so a stream sees every event once, in id order.
//
// No stream can slow another: events are queued on each stream (HttpStream,
// bounded), never written by the hub; a stream with more than max_lag events
// waiting is cut off (event "cutoff", reason "too_slow", resume_after its
// last id) and closed. Because events come from storage, an api restart loses
// nothing: a client resumes with the id it saw last.
#ifndef CONSORTIA_API_EVENTS_H_
#define CONSORTIA_API_EVENTS_H_

#include <compare>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api_metrics.h"
#include "consortia/crypto_suite.h"
#include "consortia/http_server.h"
#include "consortia/storage_queries.h"
#include "consortia/thread_pool.h"

namespace consortia::api {

// `<height>-<index>`: index 0 is the block event of that height, index i+1
// the tx at position i of the block. Ordered as (height, index).
struct EventId {
  uint64_t height = 0;
  uint64_t index = 0;
  auto operator<=>(const EventId&) const = default;
};

// The index past every event of a block: {h, kBlockDone} is "after the whole
// block h" (where a stream with from_height h + 1 starts).
inline constexpr uint64_t kBlockDone = UINT64_MAX;

std::string FormatEventId(const EventId& id);
// Strictly "<decimal>-<decimal>" (no sign, no spaces, at most 20 digits
// each); nullopt otherwise.
std::optional<EventId> ParseEventId(std::string_view s);

// Which tx events a stream wants (empty = any); block events always pass.
struct EventFilter {
  std::string app;
  std::string method;
  std::string sender;  // lower-case hex public key

  bool Matches(std::string_view app, std::string_view method,
               std::string_view sender_hex) const;
};

// One SSE message: "id: <id>\nevent: <event>\ndata: <data>\n\n" (no id line
// when id is empty). `data` must be one line (JSON without newlines).
std::string SseFrame(std::string_view id, std::string_view event,
                     std::string_view data);
// The heartbeat comment.
inline constexpr char kSseHeartbeat[] = ": heartbeat\n\n";
// event: cutoff, data {"reason":..., "resume_after": id}.
std::string CutoffFrame(std::string_view reason, std::string_view resume_after);

// One event, framed once and shared by every stream that gets it.
struct StreamEvent {
  EventId id;
  bool is_tx = false;
  std::string app, method, sender;  // of a tx, for filters
  std::string frame;
  // A tx of app invoice: the frame with the receipt's log withheld
  // (result.log "" and result.log_redacted true), for the streams of readers
  // without scope audit under --api_invoice_reads=parties. Empty otherwise.
  std::string redacted_frame;
};

// The events of one block, in id order: the block event, then one per tx.
std::vector<StreamEvent> EventsOfBlock(const CryptoSuite& suite,
                                       const BlockWithReceipts& block);

struct EventHubOptions {
  absl::Duration heartbeat = absl::Seconds(15);
  uint32_t max_lag = 10000;
  absl::Duration poll = absl::Milliseconds(200);
  // Threads reading history for streams that start in the past.
  size_t history_threads = 2;
  // One storage read: at most this many blocks and about this many bytes.
  uint32_t page_blocks = kMaxBlocksWithReceipts;
  uint64_t page_bytes = 4 << 20;
};

// Thread-safe.
class EventHub {
 public:
  EventHub(ChainQueries* chain, const CryptoSuite* suite, EventHubOptions opts,
           ApiMetrics* metrics);
  ~EventHub();  // Stop()

  // Serves `stream` from the event after `after` (nullopt: from the next
  // block the hub sees committed, i.e. live only). With `redact_invoices`
  // the stream gets invoice tx events as their redacted_frame (counted).
  void Add(std::shared_ptr<HttpStream> stream, std::optional<EventId> after,
           EventFilter filter, bool redact_invoices = false);
  // Cuts every stream off (event cutoff, reason "shutdown") and stops the
  // threads; later Adds are cut off at once. Idempotent.
  void Stop();
  bool stopping() const;

 private:
  struct Sub;

  void TailLoop();
  // One look at the tip: delivers new blocks to the live streams.
  void Tick();
  void Heartbeat();
  // Queues a history read for `sub` unless one is under way.
  void ScheduleHistory(const std::shared_ptr<Sub>& sub)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void History(std::shared_ptr<Sub> sub);
  // Sends the events of `events` after sub->pos that pass its filter. False
  // (and the stream cut off) when it is too far behind.
  bool Deliver(Sub* sub, const std::vector<StreamEvent>& events);
  void Cutoff(Sub* sub, const char* reason);
  absl::StatusOr<std::vector<std::vector<StreamEvent>>> ReadPage(uint64_t from,
                                                                 uint64_t to);

  ChainQueries* const chain_;
  const CryptoSuite* const suite_;
  const EventHubOptions opts_;
  ApiMetrics* const metrics_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Every event of heights <= live_height_ has reached the live streams.
  bool initialized_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t live_height_ ABSL_GUARDED_BY(mu_) = 0;
  std::list<std::shared_ptr<Sub>> subs_ ABSL_GUARDED_BY(mu_);
  absl::Time last_heartbeat_ ABSL_GUARDED_BY(mu_) = absl::Now();

  std::unique_ptr<ThreadPool> history_;
  std::thread tail_;  // last: starts after everything above exists
};

}  // namespace consortia::api

#endif  // CONSORTIA_API_EVENTS_H_
