#include "events.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/invoice_records.h"
#include "consortia/types.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace consortia::api {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(std::string(s), &v)) return std::nullopt;
  return v;
}

// The height whose events come next after `pos`.
uint64_t NextHeight(const EventId& pos) {
  return pos.index == kBlockDone ? pos.height + 1 : pos.height;
}

}  // namespace

std::string FormatEventId(const EventId& id) {
  return absl::StrCat(id.height, "-", id.index);
}

std::optional<EventId> ParseEventId(std::string_view s) {
  size_t dash = s.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::optional<uint64_t> h = ParseDecimal(s.substr(0, dash));
  std::optional<uint64_t> i = ParseDecimal(s.substr(dash + 1));
  if (!h.has_value() || !i.has_value()) return std::nullopt;
  return EventId{*h, *i};
}

bool EventFilter::Matches(std::string_view tx_app, std::string_view tx_method,
                          std::string_view sender_hex) const {
  return (app.empty() || app == tx_app) &&
         (method.empty() || method == tx_method) &&
         (sender.empty() || sender == sender_hex);
}

std::string SseFrame(std::string_view id, std::string_view event,
                     std::string_view data) {
  std::string out;
  out.reserve(id.size() + event.size() + data.size() + 24);
  if (!id.empty()) {
    out.append("id: ").append(id).append("\n");
  }
  out.append("event: ").append(event).append("\ndata: ").append(data);
  out.append("\n\n");
  return out;
}

std::string CutoffFrame(std::string_view reason,
                        std::string_view resume_after) {
  Json j;
  j["reason"] = std::string(reason);
  j["resume_after"] = std::string(resume_after);
  return SseFrame("", "cutoff", Dump(j));
}

std::vector<StreamEvent> EventsOfBlock(const CryptoSuite& suite,
                                       const BlockWithReceipts& b) {
  const BlockHeader& h = b.block.header;
  std::vector<StreamEvent> out;
  out.reserve(b.block.txs.size() + 1);
  {
    Json j;
    j["height"] = h.height;
    j["hash"] = ToHex(ByteView(b.block_hash));
    j["time"] = absl::FormatTime(absl::RFC3339_full,
                                 absl::FromUnixMillis(static_cast<int64_t>(
                                     std::min<uint64_t>(h.time_ms, INT64_MAX))),
                                 absl::UTCTimeZone());
    j["time_ms"] = h.time_ms;
    j["tx_count"] = b.block.txs.size();
    j["proposer"] = ToHex(h.proposer);
    StreamEvent e;
    e.id = {h.height, 0};
    e.frame = SseFrame(FormatEventId(e.id), "block", Dump(j));
    out.push_back(std::move(e));
  }
  for (size_t i = 0; i < b.block.txs.size(); ++i) {
    StreamEvent e;
    e.id = {h.height, i + 1};
    e.is_tx = true;
    Json j;
    j["height"] = h.height;
    j["index"] = i;
    absl::StatusOr<Transaction> tx = DecodeTx(b.block.txs[i]);
    if (tx.ok()) {
      e.app = tx->app;
      e.method = tx->method;
      e.sender = ToHex(tx->sender);
      j["tx_hash"] = ToHex(ByteView(TxHash(suite, *tx)));
    } else {
      spdlog::error("api: tx {} of block {} does not decode: {}", i, h.height,
                    tx.status().ToString());
      j["tx_hash"] = nullptr;
    }
    j["app"] = e.app;
    j["method"] = e.method;
    j["sender"] = e.sender;
    Json result;
    if (i < b.receipts.size()) {
      const Receipt& r = b.receipts[i];
      result["code"] = static_cast<uint32_t>(r.code);
      result["code_name"] = std::string(ExecCodeName(r.code));
      result["log"] = r.log;
    }
    j["result"] = std::move(result);
    e.frame = SseFrame(FormatEventId(e.id), "tx", Dump(j));
    if (e.app == invoice::kAppName) {
      // The log names the invoice, its parties and amounts.
      j["result"]["log"] = "";
      j["result"]["log_redacted"] = true;
      e.redacted_frame = SseFrame(FormatEventId(e.id), "tx", Dump(j));
    }
    out.push_back(std::move(e));
  }
  return out;
}

// ---------------------------------------------------------------- EventHub

// A stream's place. `pos`: every event up to it has been dealt with (sent,
// or filtered out). While !live, only its history task touches pos and
// last_sent; once live, only the tail thread (under mu_).
struct EventHub::Sub {
  std::shared_ptr<HttpStream> stream;
  EventFilter filter;
  bool redact_invoices = false;
  bool positioned = false;  // false: live only, waiting for the first tip
  EventId pos;
  std::optional<EventId> last_sent;
  bool live = false;  // guarded by mu_
  bool busy = false;  // a history task is queued or running; guarded by mu_
  std::atomic<bool> done{false};  // cut off

  std::string ResumeAfter() const {
    return FormatEventId(last_sent.value_or(pos));
  }
};

EventHub::EventHub(ChainQueries* chain, const CryptoSuite* suite,
                   EventHubOptions opts, ApiMetrics* metrics)
    : chain_(chain),
      suite_(suite),
      opts_(opts),
      metrics_(metrics),
      history_(std::make_unique<ThreadPool>(
          std::max<size_t>(1, opts.history_threads))),
      tail_([this] { TailLoop(); }) {}

EventHub::~EventHub() { Stop(); }

bool EventHub::stopping() const {
  absl::MutexLock l(&mu_);
  return stop_;
}

void EventHub::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (tail_.joinable()) tail_.join();
  history_.reset();  // queued history tasks see stop_ and return
  std::list<std::shared_ptr<Sub>> subs;
  {
    absl::MutexLock l(&mu_);
    subs.swap(subs_);
  }
  for (const std::shared_ptr<Sub>& sub : subs) Cutoff(sub.get(), "shutdown");
}

void EventHub::Add(std::shared_ptr<HttpStream> stream,
                   std::optional<EventId> after, EventFilter filter,
                   bool redact_invoices) {
  auto sub = std::make_shared<Sub>();
  sub->stream = std::move(stream);
  sub->filter = std::move(filter);
  sub->redact_invoices = redact_invoices;
  if (after.has_value()) {
    sub->positioned = true;
    sub->pos = *after;
  }
  absl::MutexLock l(&mu_);
  if (stop_) {
    Cutoff(sub.get(), "shutdown");
    return;
  }
  if (!after.has_value() && initialized_) {
    sub->positioned = true;
    sub->pos = {live_height_, kBlockDone};
    sub->live = true;
  }
  subs_.push_back(sub);
  if (sub->positioned && !sub->live) ScheduleHistory(sub);
}

void EventHub::ScheduleHistory(const std::shared_ptr<Sub>& sub) {
  if (sub->busy || sub->live || !sub->positioned || !history_) return;
  sub->busy = true;
  if (!history_->TryRun([this, sub] { History(sub); })) sub->busy = false;
}

void EventHub::Cutoff(Sub* sub, const char* reason) {
  if (sub->done.exchange(true)) return;
  sub->stream->Close(CutoffFrame(reason, sub->ResumeAfter()));
  metrics_->StreamCutoff(reason);
}

bool EventHub::Deliver(Sub* sub, const std::vector<StreamEvent>& events) {
  if (sub->done.load()) return false;
  size_t n = 0;
  for (const StreamEvent& e : events) {
    if (e.id > sub->pos &&
        (!e.is_tx || sub->filter.Matches(e.app, e.method, e.sender))) {
      ++n;
    }
  }
  if (n > 0 && sub->stream->queued() + n > opts_.max_lag) {
    Cutoff(sub, "too_slow");
    return false;
  }
  size_t sent = 0;
  size_t redacted = 0;
  for (const StreamEvent& e : events) {
    if (e.id <= sub->pos) continue;
    if (!e.is_tx || sub->filter.Matches(e.app, e.method, e.sender)) {
      const bool redact = sub->redact_invoices && !e.redacted_frame.empty();
      if (!sub->stream->Send(redact ? e.redacted_frame : e.frame)) {
        metrics_->StreamEvents(sent);
        if (redacted > 0) metrics_->InvoiceReadRefused(true, redacted);
        Cutoff(sub, "too_slow");
        return false;
      }
      sub->last_sent = e.id;
      ++sent;
      if (redact) ++redacted;
    }
    sub->pos = e.id;
  }
  if (redacted > 0) metrics_->InvoiceReadRefused(true, redacted);
  if (!events.empty()) {
    sub->pos =
        std::max(sub->pos, EventId{events.front().id.height, kBlockDone});
  }
  metrics_->StreamEvents(sent);
  return true;
}

absl::StatusOr<std::vector<std::vector<StreamEvent>>> EventHub::ReadPage(
    uint64_t from, uint64_t to) {
  const uint32_t limit = static_cast<uint32_t>(
      std::min<uint64_t>(opts_.page_blocks, to - from + 1));
  absl::StatusOr<std::vector<BlockWithReceipts>> blocks =
      chain_->ReadBlocksWithReceipts(from, std::max<uint32_t>(limit, 1),
                                     opts_.page_bytes);
  if (!blocks.ok()) return blocks.status();
  std::vector<std::vector<StreamEvent>> out;
  uint64_t expect = from;
  for (const BlockWithReceipts& b : *blocks) {
    // Heights in order without holes, or the page ends there.
    if (b.block.header.height != expect || expect > to) break;
    out.push_back(EventsOfBlock(*suite_, b));
    ++expect;
  }
  return out;
}

void EventHub::History(std::shared_ptr<Sub> sub) {
  auto idle = [&] {
    absl::MutexLock l(&mu_);
    sub->busy = false;
  };
  while (true) {
    uint64_t from = 0;
    uint64_t to = 0;
    {
      absl::MutexLock l(&mu_);
      if (stop_ || sub->done.load() || sub->stream->closed() || !initialized_) {
        sub->busy = false;
        return;
      }
      from = NextHeight(sub->pos);
      if (from > live_height_) {
        // Caught up: from now on the tail delivers (heights above
        // live_height_, which it has not delivered to anyone yet).
        sub->live = true;
        sub->busy = false;
        return;
      }
      to = live_height_;
    }
    if (sub->stream->queued() > opts_.max_lag / 2) {
      idle();  // the client reads slowly: the tail resumes us later
      return;
    }
    absl::StatusOr<std::vector<std::vector<StreamEvent>>> page =
        ReadPage(std::max<uint64_t>(from, 1), to);
    if (!page.ok() || page->empty()) {
      if (!page.ok()) {
        metrics_->UpstreamError("storage");
        spdlog::debug("api: event history read failed: {}",
                      page.status().ToString());
      }
      idle();  // retried on the next tick
      return;
    }
    for (const std::vector<StreamEvent>& block : *page) {
      if (!Deliver(sub.get(), block)) {
        idle();
        return;
      }
    }
  }
}

void EventHub::Tick() {
  absl::StatusOr<ChainTip> tip = chain_->GetChainTip();
  if (!tip.ok()) return;
  uint64_t from = 0;
  uint64_t to = 0;
  {
    absl::MutexLock l(&mu_);
    subs_.remove_if([](const std::shared_ptr<Sub>& s) {
      return s->done.load() || (s->stream->closed() && !s->busy);
    });
    if (!initialized_) {
      initialized_ = true;
      live_height_ = tip->height;
      for (const std::shared_ptr<Sub>& s : subs_) {
        if (!s->positioned) {
          s->positioned = true;
          s->pos = {live_height_, kBlockDone};
          s->live = true;
        }
      }
    }
    bool any_live = false;
    for (const std::shared_ptr<Sub>& s : subs_) {
      if (s->live) {
        any_live = true;
      } else {
        ScheduleHistory(s);  // new, paused, or after a failed read
      }
    }
    if (tip->height <= live_height_) return;
    if (!any_live) {
      // Nobody to deliver to: streams that start later read from storage.
      live_height_ = tip->height;
      return;
    }
    from = live_height_ + 1;
    to = tip->height;
  }
  while (from <= to) {
    absl::StatusOr<std::vector<std::vector<StreamEvent>>> page =
        ReadPage(from, to);
    if (!page.ok()) {
      metrics_->UpstreamError("storage");
      spdlog::debug("api: event tail read failed: {}",
                    page.status().ToString());
      return;
    }
    if (page->empty()) return;
    absl::MutexLock l(&mu_);
    if (stop_) return;
    for (const std::shared_ptr<Sub>& s : subs_) {
      if (!s->live) continue;
      for (const std::vector<StreamEvent>& block : *page) {
        if (!Deliver(s.get(), block)) break;
      }
    }
    live_height_ = page->back().front().id.height;
    from = live_height_ + 1;
  }
}

void EventHub::Heartbeat() {
  absl::MutexLock l(&mu_);
  absl::Time now = absl::Now();
  if (now - last_heartbeat_ < opts_.heartbeat) return;
  last_heartbeat_ = now;
  for (const std::shared_ptr<Sub>& s : subs_) {
    if (!s->done.load()) s->stream->Send(kSseHeartbeat);
  }
}

void EventHub::TailLoop() {
  const absl::Duration wait = std::min(opts_.poll, opts_.heartbeat);
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), wait)) return;
    }
    Tick();
    Heartbeat();
  }
}

}  // namespace consortia::api
