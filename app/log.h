// Logging (STYLE.md 34): one line per call, prefixed "[r<rank>/<size>]" (plus " s<stage>" once
// stages exist). STRATA_LOG prints on every rank, STRATA_LOG0 on rank 0 only. Levels: error,
// warn, info, debug; STRATA_LOG_LEVEL (default info) and STRATA_LOG_SUBSYS (comma list, default
// all) filter what prints. Errors and warnings go to stderr, the rest to stdout, flushed.
#pragma once

#include <fmt/format.h>

#include <string>

namespace strata::app {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// Whether a message of `level` from `subsys` ("app", "solver", "comm", "kernels") prints.
bool log_enabled(LogLevel level, const char* subsys);
// Writes one line with the rank prefix; rank0_only drops it on other ranks.
void log_line(LogLevel level, bool rank0_only, const std::string& text);

}  // namespace strata::app

#define STRATA_LOG_IMPL(level, rank0, subsys, ...)                     \
  do {                                                                 \
    if (::strata::app::log_enabled(level, subsys))                     \
      ::strata::app::log_line(level, rank0, fmt::format(__VA_ARGS__)); \
  } while (0)
#define STRATA_LOG(level, ...) \
  STRATA_LOG_IMPL(::strata::app::LogLevel::level, false, "app", __VA_ARGS__)
#define STRATA_LOG0(level, ...) \
  STRATA_LOG_IMPL(::strata::app::LogLevel::level, true, "app", __VA_ARGS__)
