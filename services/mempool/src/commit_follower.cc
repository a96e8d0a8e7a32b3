#include "commit_follower.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "consortia/log.h"

namespace consortia::mempool {
namespace {

// CommitHistory::GetCommitted answers at most this many heights per call (fewer
// when their txs reach storage's limit: see Fetch).
constexpr uint64_t kMaxCommittedPerCall = 1000;

}  // namespace

CommitFollower::CommitFollower(const Options& options, Mempool* mempool,
                               CommitHistory* history, MempoolMetrics metrics)
    : options_(options),
      mempool_(mempool),
      history_(history),
      metrics_(std::move(metrics)) {}

CommitFollower::~CommitFollower() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CommitFollower::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void CommitFollower::OnEvent(ByteView payload, uint64_t missed) {
  absl::StatusOr<CommittedEvent> event = DecodeCommittedEvent(payload);
  if (!event.ok()) {
    metrics_.bad_events.Inc();
    spdlog::warn("dropping a block.committed event that does not decode: {}",
                 event.status().ToString());
    return;
  }
  if (missed > 0) {
    spdlog::info("missed {} block.committed events before height {}", missed,
                 event->height);
  }
  absl::MutexLock lock(&mu_);
  queue_.push_back(*std::move(event));
  // Dropped events come back as a gap filled from storage.
  while (queue_.size() > options_.max_queued_events) queue_.pop_front();
}

bool CommitFollower::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

absl::Status CommitFollower::Fetch(uint64_t from, uint64_t to,
                                   bool stop_at_tip) {
  // Each page may stop early (a limit of heights or txs per reply); it says
  // where, and the next call continues from there.
  for (uint64_t start = from; start <= to;) {
    const uint64_t end = std::min(to, start + (kMaxCommittedPerCall - 1));
    absl::StatusOr<CommittedPage> page = history_->GetCommitted(start, end);
    if (!page.ok()) return page.status();
    if (absl::Status s = CheckPage(start, end, *page); !s.ok()) {
      metrics_.bad_commit_pages.Inc();
      return s;
    }
    for (const CommittedEvent& e : page->events) Apply(e);
    if (page->next_height == start) {
      if (stop_at_tip) return absl::OkStatus();
      return absl::UnavailableError(
          absl::StrCat("storage has no commit events from height ", start,
                       " yet (wanted up to ", to, ")"));
    }
    start = page->next_height;
  }
  return absl::OkStatus();
}

absl::Status CommitFollower::CheckPage(uint64_t from, uint64_t to,
                                       const CommittedPage& page) {
  // Applying a page with a hole would skip heights for good: the mempool
  // would forget the txs committed there and could admit them again.
  if (page.next_height < from || page.next_height > to + 1 ||
      page.events.size() != page.next_height - from) {
    return absl::InternalError(absl::StrCat(
        "storage answered ", page.events.size(), " commit events up to ",
        "next height ", page.next_height, " for heights ", from, "..", to));
  }
  for (size_t i = 0; i < page.events.size(); ++i) {
    if (page.events[i].height != from + i) {
      return absl::InternalError(absl::StrCat(
          "storage answered a commit event of height ", page.events[i].height,
          " where height ", from + i, " was due"));
    }
  }
  return absl::OkStatus();
}

void CommitFollower::Apply(const CommittedEvent& event) {
  mempool_->members().Apply(event);
  mempool_->OnCommitted(event);
}

absl::StatusOr<uint64_t> CommitFollower::LoadMembers() {
  absl::flat_hash_set<std::string> keys;
  uint64_t height = 0;
  bool permissioned = false;
  Bytes cursor;
  for (bool first = true;; first = false) {
    absl::StatusOr<MemberPage> page =
        history_->ListMembers(cursor, options_.members_page);
    if (!page.ok()) return page.status();
    // Later pages may be of later heights: the events above the first
    // page's height bring whatever changed meanwhile.
    if (first) {
      height = page->height;
      permissioned = page->permissioned;
      // A governance vote may have grown the window since the genesis; it
      // never shrinks (docs/apps.md), so this one reaches back far enough.
      if (page->rules.has_value()) {
        mempool_->SetReplayWindow(page->rules->replay_window);
      }
    }
    for (const Bytes& k : page->public_keys) {
      keys.insert(std::string(AsString(k)));
    }
    if (!page->next_cursor.has_value()) break;
    if (!(cursor < *page->next_cursor)) {
      return absl::InternalError(
          "storage answered a member page whose cursor does not advance");
    }
    cursor = *std::move(page->next_cursor);
  }
  if (height == 0 && options_.genesis_members.has_value()) {
    permissioned = true;
    for (const Bytes& k : *options_.genesis_members) {
      keys.insert(std::string(AsString(k)));
    }
  }
  const size_t n = keys.size();
  mempool_->members().Load(height, permissioned, std::move(keys));
  spdlog::info("membership cache loaded: {} member keys as of height {}, {}", n,
               height, permissioned ? "permissioned" : "open chain");
  return height;
}

absl::Status CommitFollower::Rebuild() {
  absl::StatusOr<uint64_t> members_height = LoadMembers();
  if (!members_height.ok()) return members_height.status();
  absl::StatusOr<ChainTip> tip = history_->GetChainTip();
  if (!tip.ok()) return tip.status();
  const uint64_t height = tip->height;
  if (height > 0) {
    // The replay window, and every event the member set does not reflect.
    const uint64_t window = mempool_->replay_window();
    const uint64_t from = std::min(height > window ? height - window + 1 : 1,
                                   *members_height + 1);
    if (absl::Status s = Fetch(from, height); !s.ok()) return s;
    if (mempool_->applied_height() < height) {
      return absl::InternalError(
          absl::StrCat("storage returned commit events up to height ",
                       mempool_->applied_height(), ", expected ", height));
    }
  }
  return absl::OkStatus();
}

absl::Status CommitFollower::ApplyQueued() {
  while (true) {
    std::optional<CommittedEvent> event;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) return absl::OkStatus();
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    const uint64_t applied = mempool_->applied_height();
    if (event->height <= applied) continue;
    if (event->height > applied + 1) {
      metrics_.commit_gaps.Inc();
      spdlog::info("fetching commit events {}..{} from storage", applied + 1,
                   event->height - 1);
      if (absl::Status s = Fetch(applied + 1, event->height - 1); !s.ok()) {
        absl::MutexLock lock(&mu_);
        queue_.push_front(*std::move(event));
        return s;
      }
    }
    Apply(*event);
  }
}

void CommitFollower::Loop() {
  // Rebuild the replay window, retrying until storage answers.
  uint64_t attempts = 0;
  while (true) {
    absl::Status s = Rebuild();
    if (s.ok()) break;
    if (attempts++ % 25 == 0) {
      spdlog::warn("waiting for storage to rebuild the replay window: {}",
                   s.ToString());
    }
    if (!Sleep(options_.retry_interval)) return;
  }
  mempool_->SetReady();
  spdlog::info("replay window rebuilt up to height {}; mempool ready",
               mempool_->applied_height());

  while (true) {
    bool idle = false;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() { return stopping_ || !queue_.empty(); };
      idle = !mu_.AwaitWithTimeout(absl::Condition(&wake), options_.idle_check);
      if (stopping_) return;
    }
    absl::Status s = ApplyQueued();
    if (s.ok() && idle) {
      // No event came: if a Reap waits for a height beyond what was applied,
      // its event was lost; fetch it.
      const uint64_t applied = mempool_->applied_height();
      const uint64_t wanted = mempool_->wanted_height();
      if (wanted > applied) {
        metrics_.commit_gaps.Inc();
        // Up to storage's tip: what it has not committed yet will come as
        // an event.
        s = Fetch(applied + 1, wanted, /*stop_at_tip=*/true);
      }
    }
    if (!s.ok()) {
      spdlog::warn("cannot fetch missed commit events from storage: {}",
                   s.ToString());
      if (!Sleep(options_.retry_interval)) return;
    }
  }
}

}  // namespace consortia::mempool
