#include "consortia/log.h"

#include <memory>

#include "spdlog/sinks/stdout_color_sinks.h"

namespace consortia {
namespace {

spdlog::level::level_enum ParseLevel(const std::string& level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  return spdlog::level::info;
}

}  // namespace

// Logs go to stderr, so that a tool's own output on stdout stays clean; a
// container runtime collects both.
void InitLogging(const std::string& service, const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(
      service, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + service + "] %v");
  logger->set_level(ParseLevel(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace consortia
