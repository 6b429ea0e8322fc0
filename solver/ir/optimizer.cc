// Learning-rate schedules and no_decay name patterns (optimizer.h).
// The formulas are those of the header; step is 1-based and the lr of step s is the one its
// update uses. Pure C++.
#include "solver/ir/optimizer.h"

#include <cmath>
#include <stdexcept>

namespace strata::solver {
namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

double learning_rate(const OptimizerSpec& spec, std::int64_t step, std::int64_t total_steps) {
  if (step < 1) throw std::invalid_argument("learning_rate: step " + std::to_string(step) + " < 1");
  if (spec.schedule == "constant") return spec.lr;
  if (spec.schedule != "cosine") {
    throw std::invalid_argument("learning_rate: unknown schedule '" + spec.schedule +
                                "' (expected constant or cosine)");
  }
  const std::int64_t w = spec.warmup_steps < 0 ? 0 : spec.warmup_steps;
  const std::int64_t t = total_steps;
  // warm-up: lr * step / w
  if (step <= w) return spec.lr * static_cast<double>(step) / static_cast<double>(w);
  // past the end of a run with T <= w or step > T: the floor
  if (t <= w || step >= t) return spec.min_lr;
  // cosine: min_lr + (lr - min_lr) * (1 + cos(pi * (step - w) / (T - w))) / 2
  const double progress = static_cast<double>(step - w) / static_cast<double>(t - w);
  return spec.min_lr + (spec.lr - spec.min_lr) * (1.0 + std::cos(kPi * progress)) / 2.0;
}

// Glob with '*' only, by the greedy two-pointer method: on a mismatch, let the last '*' absorb
// one more character. O(|name| * |pattern|) worst case, no recursion.
bool matches_pattern(const std::string& name, const std::string& pattern) {
  std::size_t n = 0, p = 0;
  std::size_t star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace strata::solver
