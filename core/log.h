// Process-wide logging on spdlog. Every binary calls InitLogging once with the
// --log-level flag; libraries log through the CLINRL_LOG_* macros below.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace clinrl {

// Valid levels: trace, debug, info, warn, error, off. Logs go to stderr so
// that a command's stdout stays machine-readable (JSON, tables).
void InitLogging(const std::string& level);

// The level names InitLogging accepts, for CLI help and validation.
const char* LogLevelNames();

}  // namespace clinrl

#define CLINRL_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define CLINRL_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define CLINRL_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define CLINRL_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define CLINRL_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
