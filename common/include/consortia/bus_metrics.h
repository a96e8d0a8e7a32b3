// BusMetrics exported to Prometheus, for a service to pass to its bus
// sockets (StartBusServer, ConnectBusClient, StartPublisher,
// StartSubscriber). With service "storage", the series are:
//   consortia_storage_bus_dropped_total{reason}  messages refused or dropped:
//       reason="malformed"     undecodable frames or envelopes
//       reason="unknown_type"  requests of a type the service does not serve
//       reason="late_reply"    replies that came after their deadline
//       reason="oversized"     over BusOptions::max_message_bytes (a request
//                              not sent, a reply replaced by an error, an
//                              event not published, an inproc message
//                              dropped)
//   consortia_storage_bus_timeouts_total          requests without a reply
//                                                 before their deadline
//   consortia_storage_bus_requests_lost_total     requests in flight when
//                                                 their connection closed
//   consortia_storage_bus_events_missed_total     events a subscriber missed
//                                                 (sequence gaps)
//   consortia_storage_bus_client_disconnects_total  connections to this
//       service's bus servers that closed (ipc/tcp): clients leaving, or cut
//       off by ZeroMQ for an oversized frame or a protocol error.
#ifndef CONSORTIA_COMMON_BUS_METRICS_H_
#define CONSORTIA_COMMON_BUS_METRICS_H_

#include <memory>
#include <string_view>

#include "consortia/bus.h"
#include "consortia/metrics.h"

namespace consortia {

// The series above, registered in `registry` (which must outlive the
// result). `service` is the lower-case service name ("api", "mempool",
// "consensus", "storage", or "node" for the single process). Thread-safe.
std::unique_ptr<BusMetrics> NewBusMetrics(MetricsRegistry& registry,
                                          std::string_view service);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_BUS_METRICS_H_
