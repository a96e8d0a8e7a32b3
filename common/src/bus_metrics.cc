#include "consortia/bus_metrics.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace consortia {
namespace {

class PrometheusBusMetrics final : public BusMetrics {
 public:
  PrometheusBusMetrics(MetricsRegistry& r, std::string_view service) {
    const std::string prefix =
        absl::StrCat("consortia_", std::string(service), "_bus_");
    const std::string dropped = prefix + "dropped_total";
    const std::string dropped_help =
        "Bus messages refused or dropped, by reason";
    malformed_ = r.GetCounter(dropped, dropped_help, {{"reason", "malformed"}});
    unknown_type_ =
        r.GetCounter(dropped, dropped_help, {{"reason", "unknown_type"}});
    late_reply_ =
        r.GetCounter(dropped, dropped_help, {{"reason", "late_reply"}});
    oversized_ = r.GetCounter(dropped, dropped_help, {{"reason", "oversized"}});
    timeouts_ = r.GetCounter(prefix + "timeouts_total",
                             "Bus requests without a reply before their "
                             "deadline");
    lost_ = r.GetCounter(prefix + "requests_lost_total",
                         "Bus requests in flight when their connection "
                         "closed");
    missed_ = r.GetCounter(prefix + "events_missed_total",
                           "Bus events a subscriber missed (sequence gaps)");
    disconnects_ = r.GetCounter(
        prefix + "client_disconnects_total",
        "Connections to this service's bus servers that closed (clients "
        "leaving, or cut off for an oversized frame or a protocol error)");
  }

  void MalformedDropped() override { malformed_.Inc(); }
  void UnknownTypeDropped() override { unknown_type_.Inc(); }
  void RequestTimedOut() override { timeouts_.Inc(); }
  void EventGap(uint64_t missed) override {
    missed_.Inc(static_cast<double>(missed));
  }
  void LateReplyDropped() override { late_reply_.Inc(); }
  void RequestsLostToDisconnect(uint64_t n) override {
    lost_.Inc(static_cast<double>(n));
  }
  void OversizedDropped() override { oversized_.Inc(); }
  void ClientDisconnected() override { disconnects_.Inc(); }

 private:
  Counter malformed_, unknown_type_, late_reply_, oversized_, timeouts_, lost_,
      missed_, disconnects_;
};

}  // namespace

std::unique_ptr<BusMetrics> NewBusMetrics(MetricsRegistry& registry,
                                          std::string_view service) {
  return std::make_unique<PrometheusBusMetrics>(registry, service);
}

}  // namespace consortia
