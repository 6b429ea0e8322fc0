// libFuzzer target: bytes -> a framed plan (the MPI broadcast) or plan JSON. std::invalid_argument
// is the expected outcome for junk; anything that decodes must re-encode identically and render
// as a table and an SVG. A crash, hang, leak or round-trip mismatch is a bug.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "solver/plan/plan.h"
#include "solver/plan/report.h"
#include "solver/plan/simulator.h"
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace strata::solver;
  Plan plan;
  try {
    plan = unframe_plan(data, size);
  } catch (const std::invalid_argument&) {
    try {
      plan = decode_plan_json(std::string(reinterpret_cast<const char*>(data), size));
    } catch (const std::invalid_argument&) {
      return 0;
    }
  }
  const std::string enc = encode_plan_json(plan);
  if (encode_plan_json(decode_plan_json(enc)) != enc) std::abort();
  plan_table(plan);
  try {
    plan_svg(plan, simulate_plan(plan));
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
