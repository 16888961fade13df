#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/error.h"

namespace clinrl {

const char* LogLevelNames() { return "trace, debug, info, warn, error, off"; }

void InitLogging(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str maps anything unknown to `off`; only accept that when asked.
  if (parsed == spdlog::level::off && level != "off") {
    throw ConfigError(fmt::format("--log-level: got '{}', expected one of: {}",
                                  level, LogLevelNames()));
  }
  auto logger = spdlog::get("clinrl");
  if (!logger) {
    logger = spdlog::stderr_color_mt("clinrl");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
  }
  spdlog::set_level(parsed);
}

}  // namespace clinrl
