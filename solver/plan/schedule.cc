// GPipe and 1F1B action lists (schedule.h) and their checks. The lists are built directly from
// the closed forms of ALPA_FACTS.md 3.1 rather than from Alpa's clock tables: the runtime only
// needs each stage's order, and the cross-stage timing is the simulator's business.
// Pure C++, deterministic.
#include "solver/plan/schedule.h"

#include <algorithm>
#include <stdexcept>

namespace strata::solver {
namespace {

constexpr std::int64_t kMaxActions = std::int64_t{1} << 24;

void check_sizes(const char* who, std::int64_t num_stages, std::int64_t micro_batches) {
  if (num_stages < 1 || micro_batches < 1 || num_stages > kMaxActions ||
      micro_batches > kMaxActions || num_stages * (2 * micro_batches + 1) > kMaxActions) {
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(num_stages) +
                                " stages x " + std::to_string(micro_batches) +
                                " micro-batches (need >= 1 each, at most 2^24 actions)");
  }
}

Action forward(std::int64_t m) { return {ActionKind::kForward, m}; }
Action backward(std::int64_t m) { return {ActionKind::kBackward, m}; }
Action optimizer() { return {ActionKind::kOptimizer, -1}; }

}  // namespace

const char* action_kind_name(ActionKind kind) {
  switch (kind) {
    case ActionKind::kForward:
      return "forward";
    case ActionKind::kBackward:
      return "backward";
    case ActionKind::kOptimizer:
      return "optimizer";
  }
  return "?";
}

PipelineSchedule gpipe_schedule(std::int64_t num_stages, std::int64_t micro_batches) {
  check_sizes("gpipe_schedule", num_stages, micro_batches);
  PipelineSchedule schedule{"gpipe", num_stages, micro_batches, {}};
  schedule.stages.resize(static_cast<std::size_t>(num_stages));
  for (auto& actions : schedule.stages) {
    actions.reserve(static_cast<std::size_t>(2 * micro_batches + 1));
    for (std::int64_t m = 0; m < micro_batches; ++m) actions.push_back(forward(m));
    for (std::int64_t m = micro_batches - 1; m >= 0; --m) actions.push_back(backward(m));
    actions.push_back(optimizer());
  }
  return schedule;
}

PipelineSchedule one_f_one_b_schedule(std::int64_t num_stages, std::int64_t micro_batches) {
  check_sizes("one_f_one_b_schedule", num_stages, micro_batches);
  PipelineSchedule schedule{"1f1b", num_stages, micro_batches, {}};
  schedule.stages.resize(static_cast<std::size_t>(num_stages));
  for (std::int64_t s = 0; s < num_stages; ++s) {
    auto& actions = schedule.stages[static_cast<std::size_t>(s)];
    actions.reserve(static_cast<std::size_t>(2 * micro_batches + 1));
    const std::int64_t warmup = std::min(num_stages - s - 1, micro_batches);
    for (std::int64_t m = 0; m < warmup; ++m) actions.push_back(forward(m));  // warm-up
    for (std::int64_t k = 0; k < micro_batches - warmup; ++k) {               // steady
      actions.push_back(forward(warmup + k));
      actions.push_back(backward(k));
    }
    for (std::int64_t m = micro_batches - warmup; m < micro_batches; ++m) {  // cool-down
      actions.push_back(backward(m));
    }
    actions.push_back(optimizer());
  }
  return schedule;
}

PipelineSchedule make_schedule(const std::string& name, std::int64_t num_stages,
                               std::int64_t micro_batches) {
  if (name == "gpipe") return gpipe_schedule(num_stages, micro_batches);
  if (name == "1f1b") return one_f_one_b_schedule(num_stages, micro_batches);
  throw std::invalid_argument("make_schedule: schedule '" + name + "' is not 1f1b or gpipe");
}

std::int64_t max_in_flight(const PipelineSchedule& schedule, std::int64_t stage) {
  if (stage < 0 || stage >= static_cast<std::int64_t>(schedule.stages.size())) {
    throw std::out_of_range("max_in_flight: stage " + std::to_string(stage) + " of " +
                            std::to_string(schedule.stages.size()));
  }
  std::int64_t held = 0, most = 0;
  for (const Action& a : schedule.stages[static_cast<std::size_t>(stage)]) {
    if (a.kind == ActionKind::kForward) most = std::max(most, ++held);
    if (a.kind == ActionKind::kBackward) --held;
  }
  return most;
}

void check_schedule(const PipelineSchedule& schedule) {
  const std::int64_t b = schedule.micro_batches;
  if (schedule.num_stages < 1 || b < 1 ||
      static_cast<std::int64_t>(schedule.stages.size()) != schedule.num_stages) {
    throw std::invalid_argument("check_schedule: " + std::to_string(schedule.stages.size()) +
                                " action lists for " + std::to_string(schedule.num_stages) +
                                " stages and " + std::to_string(b) + " micro-batches");
  }
  for (std::size_t s = 0; s < schedule.stages.size(); ++s) {
    const auto& actions = schedule.stages[s];
    const auto bad = [&](std::size_t i, const std::string& why) {
      throw std::invalid_argument("check_schedule: stage " + std::to_string(s) + " action " +
                                  std::to_string(i) + ": " + why);
    };
    std::vector<char> forwarded(static_cast<std::size_t>(b), 0);
    std::vector<char> backwarded(static_cast<std::size_t>(b), 0);
    for (std::size_t i = 0; i < actions.size(); ++i) {
      const Action& a = actions[i];
      if (a.kind == ActionKind::kOptimizer) {
        if (i + 1 != actions.size()) bad(i, "the optimizer must be the last action");
        continue;
      }
      if (a.micro_batch < 0 || a.micro_batch >= b) bad(i, "micro-batch out of range");
      const auto m = static_cast<std::size_t>(a.micro_batch);
      if (a.kind == ActionKind::kForward) {
        if (forwarded[m]) bad(i, "forward " + std::to_string(m) + " runs twice");
        forwarded[m] = 1;
      } else {
        if (!forwarded[m]) bad(i, "backward " + std::to_string(m) + " before its forward");
        if (backwarded[m]) bad(i, "backward " + std::to_string(m) + " runs twice");
        backwarded[m] = 1;
      }
    }
    if (actions.empty() || actions.back().kind != ActionKind::kOptimizer) {
      bad(actions.size(), "no optimizer action at the end");
    }
    if (static_cast<std::int64_t>(actions.size()) != 2 * b + 1) {
      bad(actions.size(), "not every micro-batch has one forward and one backward");
    }
  }
}

}  // namespace strata::solver
