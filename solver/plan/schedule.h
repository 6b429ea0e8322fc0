// Pipeline schedules as plain data (DESIGN.md section 6; ALPA_FACTS.md 3.1): for S stages and B
// micro-batches, each stage's ordered list of actions. The simulator prices it and the runtime
// executes it, so both follow the very same order. Pure C++, deterministic.
// Invariants (check_schedule): each stage runs every forward and every backward exactly once, a
// backward after its own forward, and one optimizer action last.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::solver {

enum class ActionKind : std::uint8_t { kForward, kBackward, kOptimizer };
const char* action_kind_name(ActionKind kind);  // "forward", "backward", "optimizer"

struct Action {
  ActionKind kind = ActionKind::kForward;
  std::int64_t micro_batch = 0;  // 0..B-1; -1 for the optimizer
  bool operator==(const Action& o) const { return kind == o.kind && micro_batch == o.micro_batch; }
  bool operator!=(const Action& o) const { return !(*this == o); }
};

struct PipelineSchedule {
  std::string name;                         // "gpipe" or "1f1b"
  std::int64_t num_stages = 0;              // S
  std::int64_t micro_batches = 0;           // B
  std::vector<std::vector<Action>> stages;  // per stage s: its actions, in execution order
};

// GPipe: on every stage the B forwards (0..B-1), then the B backwards in reverse order
// (B-1..0, Alpa's mirrored clocks: the last micro-batch's activations are the freshest, and the
// last stage turns around without waiting), then the optimizer. Every stage holds all B
// micro-batches' activations at once.
PipelineSchedule gpipe_schedule(std::int64_t num_stages, std::int64_t micro_batches);

// 1F1B (PipeDream-flush, Alpa's default): on stage s, w = min(S - s - 1, B) warm-up forwards
// (0..w-1); then for k = 0..B-w-1 the forward of w+k and the backward of k; then the cool-down
// backwards B-w..B-1; then the optimizer. Backwards run in micro-batch order; stage s holds at
// most min(B, S - s) micro-batches' activations.
PipelineSchedule one_f_one_b_schedule(std::int64_t num_stages, std::int64_t micro_batches);

// By name: "gpipe" or "1f1b". Throws std::invalid_argument for another name, num_stages < 1,
// micro_batches < 1, or more than 2^24 actions in all.
PipelineSchedule make_schedule(const std::string& name, std::int64_t num_stages,
                               std::int64_t micro_batches);

// The most micro-batches whose activations stage `stage` holds at once (forwards run minus
// backwards run, maximised over the action list). Equals inter/stage_dp.h's
// in_flight_microbatches: 1F1B min(B, S - s), GPipe B. Throws std::out_of_range for a bad stage.
std::int64_t max_in_flight(const PipelineSchedule& schedule, std::int64_t stage);

// Throws std::invalid_argument naming the stage and action when the invariants at the top of
// this file do not hold. (That the stages can run together without deadlock is what
// simulate_pipeline checks.)
void check_schedule(const PipelineSchedule& schedule);

}  // namespace strata::solver
