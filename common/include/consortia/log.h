// Logging through spdlog: one line per event, with the service name, and the
// trace id when the event belongs to a request ("trace=0123abcd...").
#ifndef CONSORTIA_COMMON_LOG_H_
#define CONSORTIA_COMMON_LOG_H_

#include <string>

#include "spdlog/spdlog.h"

namespace consortia {

// Sets the default logger's pattern and level ("trace", "debug", "info",
// "warn", "error"); an unknown level falls back to "info". Call once from
// main().
void InitLogging(const std::string& service, const std::string& level);

}  // namespace consortia

#endif  // CONSORTIA_COMMON_LOG_H_
