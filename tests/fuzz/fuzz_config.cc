// Fuzz target: bytes -> strata::app::parse_config. InputError is the expected outcome; anything
// else escaping, a crash, a leak or a hang is a bug. Comment lines "#set key=value" in the input
// also go in as --set overrides, so the fuzzer reaches that path too. A config that parses must
// write back (config_to_yaml) and re-parse to the same settings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/errors.h"

namespace {

std::vector<std::string> set_lines(const std::string& text) {
  std::vector<std::string> sets;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (text.compare(pos, 5, "#set ") == 0) sets.push_back(text.substr(pos + 5, end - pos - 5));
    pos = end + 1;
  }
  return sets;
}

void check_problems(const strata::app::InputError& e) {
  // Every problem is one non-empty line.
  if (e.problems().empty()) std::abort();
  for (const auto& p : e.problems()) {
    if (p.empty() || p.find('\n') != std::string::npos) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace strata::app;
  const std::string text(reinterpret_cast<const char*>(data), size);
  RunConfig config;
  try {
    config = parse_config(text, "fuzz.yaml", "/base", set_lines(text));
  } catch (const InputError& e) {
    check_problems(e);
    return 0;
  }
  // Outside the try: an InputError here means config_to_yaml wrote something parse_config
  // rejects, which is a bug.
  const std::string yaml = config_to_yaml(config);
  const RunConfig back = parse_config(yaml, "fuzz.yaml", "/base", {});
  if (!same_settings(config, back)) std::abort();
  if (config_to_yaml(back) != yaml) std::abort();
  return 0;
}
