// Log filtering and the rank prefix. The environment is read once.
#include "app/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "comm/mpi_session.h"

namespace strata::app {
namespace {

LogLevel level_from_env() {
  const char* text = std::getenv("STRATA_LOG_LEVEL");
  if (!text) return LogLevel::kInfo;
  if (!std::strcmp(text, "error")) return LogLevel::kError;
  if (!std::strcmp(text, "warn")) return LogLevel::kWarn;
  if (!std::strcmp(text, "debug")) return LogLevel::kDebug;
  return LogLevel::kInfo;
}

}  // namespace

bool log_enabled(LogLevel level, const char* subsys) {
  static const LogLevel max_level = level_from_env();
  static const char* subsystems = std::getenv("STRATA_LOG_SUBSYS");
  if (level > max_level) return false;
  if (level <= LogLevel::kWarn || !subsystems || !*subsystems) return true;
  return std::strstr(subsystems, subsys) != nullptr;
}

void log_line(LogLevel level, bool rank0_only, const std::string& text) {
  const int rank = comm::world_rank_or_zero();
  if (rank0_only && rank != 0) return;
  const int size = comm::world_size_or_one();
  std::FILE* stream = level <= LogLevel::kWarn ? stderr : stdout;
  const char* tag = level == LogLevel::kError  ? "error: "
                    : level == LogLevel::kWarn ? "warning: "
                                               : "";
  if (size > 1) {
    std::fprintf(stream, "[r%d/%d] %s%s\n", rank, size, tag, text.c_str());
  } else {
    std::fprintf(stream, "%s%s\n", tag, text.c_str());
  }
  std::fflush(stream);
}

}  // namespace strata::app
