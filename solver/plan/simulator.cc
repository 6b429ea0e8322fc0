// The pipeline event simulator (simulator.h). Each stage's actions are in a fixed order, so the
// start times are a longest-path computation over a DAG: a work list of stages advances each
// stage while its next action's input is known, and a stage that advanced wakes its neighbours.
// Each action is timed once; if stages remain blocked with nothing to wake them, the schedule
// deadlocks. Pure C++, deterministic (the result does not depend on the work-list order).
#include "solver/plan/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <stdexcept>
#include <string>

namespace strata::solver {
namespace {

void check_durations(const std::vector<double>& v, std::size_t n, const char* name) {
  if (v.size() != n) {
    throw std::invalid_argument(std::string("simulate_pipeline: ") + name + " has " +
                                std::to_string(v.size()) + " entries for " + std::to_string(n) +
                                " stages");
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]) || v[i] < 0) {
      throw std::invalid_argument(std::string("simulate_pipeline: ") + name + "[" +
                                  std::to_string(i) + "] must be finite and >= 0");
    }
  }
}

}  // namespace

SimulationResult simulate_pipeline(const PipelineSchedule& schedule, const SimulationInput& input) {
  check_schedule(schedule);
  const auto S = static_cast<std::size_t>(schedule.num_stages);
  const auto B = static_cast<std::size_t>(schedule.micro_batches);
  check_durations(input.forward_s, S, "forward_s");
  check_durations(input.backward_s, S, "backward_s");
  check_durations(input.transfer_s, S, "transfer_s");
  check_durations(input.tail_s, S, "tail_s");

  constexpr double kUnknown = -1;  // end time of an action not yet simulated
  std::vector<std::vector<double>> fwd_end(S, std::vector<double>(B, kUnknown));
  std::vector<std::vector<double>> bwd_end(S, std::vector<double>(B, kUnknown));
  std::vector<std::size_t> next(S, 0);  // index of each stage's next action
  std::vector<double> free_at(S, 0.0);  // when each stage finishes its last timed action
  SimulationResult result;
  result.stages.resize(S);

  std::deque<std::size_t> work;
  for (std::size_t s = 0; s < S; ++s) work.push_back(s);
  while (!work.empty()) {
    const std::size_t s = work.front();
    work.pop_front();
    const auto& actions = schedule.stages[s];
    bool advanced = false;
    while (next[s] < actions.size()) {
      const Action& a = actions[next[s]];
      double ready = free_at[s];
      double duration = input.tail_s[s];
      if (a.kind != ActionKind::kOptimizer) {
        const auto m = static_cast<std::size_t>(a.micro_batch);
        if (a.kind == ActionKind::kForward) {
          duration = input.forward_s[s];
          if (s > 0) {
            if (fwd_end[s - 1][m] < 0) break;  // input not produced yet
            ready = std::max(ready, fwd_end[s - 1][m] + input.transfer_s[s - 1]);
          }
        } else {
          duration = input.backward_s[s];
          if (s + 1 < S) {
            if (bwd_end[s + 1][m] < 0) break;
            ready = std::max(ready, bwd_end[s + 1][m] + input.transfer_s[s]);
          }
        }
      }
      const double end = ready + duration;
      if (a.kind == ActionKind::kForward) fwd_end[s][static_cast<std::size_t>(a.micro_batch)] = end;
      if (a.kind == ActionKind::kBackward)
        bwd_end[s][static_cast<std::size_t>(a.micro_batch)] = end;
      result.stages[s].actions.push_back({a, ready, end});
      result.stages[s].busy_s += duration;
      free_at[s] = end;
      ++next[s];
      advanced = true;
    }
    if (advanced) {  // its outputs may unblock the neighbours
      if (s > 0) work.push_back(s - 1);
      if (s + 1 < S) work.push_back(s + 1);
    }
  }
  for (std::size_t s = 0; s < S; ++s) {
    if (next[s] < schedule.stages[s].size()) {
      const Action& a = schedule.stages[s][next[s]];
      throw std::invalid_argument("simulate_pipeline: schedule '" + schedule.name +
                                  "' deadlocks: stage " + std::to_string(s) + " waits forever at " +
                                  action_kind_name(a.kind) + " " + std::to_string(a.micro_batch));
    }
    result.iteration_s = std::max(result.iteration_s, free_at[s]);
  }
  for (StageTimeline& st : result.stages) st.idle_s = std::max(0.0, result.iteration_s - st.busy_s);
  return result;
}

SimulationInput simulation_input(const Plan& plan) {
  SimulationInput in;
  for (const PlanStage& s : plan.stages) {
    const StagePrediction& p = s.predicted;
    double f = p.forward_s, b = p.backward_s;
    if (f == 0 && b == 0) {
      const double compute = std::max(0.0, p.time_per_microbatch_s - p.transfer_s);
      f = compute / 3;
      b = compute - f;
    }
    in.forward_s.push_back(f);
    in.backward_s.push_back(b);
    in.transfer_s.push_back(p.transfer_s);
    in.tail_s.push_back(p.tail_s);
  }
  return in;
}

SimulationResult simulate_plan(const Plan& plan) {
  return simulate_pipeline(
      make_schedule(plan.schedule, static_cast<std::int64_t>(plan.stages.size()),
                    plan.micro_batches),
      simulation_input(plan));
}

}  // namespace strata::solver
