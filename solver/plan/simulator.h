// Event simulator of one training iteration of a pipeline (DESIGN.md section 6, 8 item 7): every
// stage runs its schedule's actions in order, each as soon as the stage is free and its input
// has arrived. It prices a schedule exactly where the stage DP's closed form is an
// approximation, and its timeline is what the plan SVG draws. Pure C++, deterministic.
#pragma once

#include <cstdint>
#include <vector>

#include "solver/plan/plan.h"
#include "solver/plan/schedule.h"

namespace strata::solver {

// Per-stage durations, in seconds. All vectors have one entry per stage.
struct SimulationInput {
  std::vector<double> forward_s;   // forward of one micro-batch
  std::vector<double> backward_s;  // backward (+ recomputed forward) of one micro-batch
  // Latency of the boundary between stage s and s+1, paid by the activation (forward) and by its
  // gradient (backward). The transfer occupies neither stage (it overlaps compute). The last
  // entry is unused.
  std::vector<double> transfer_s;
  std::vector<double> tail_s;  // the optimizer action: gradient sync + update, once
};

struct TimedAction {
  Action action;
  double start_s = 0, end_s = 0;
};

struct StageTimeline {
  std::vector<TimedAction> actions;  // in schedule order
  double busy_s = 0;                 // sum of action durations
  double idle_s = 0;  // iteration_s - busy_s: the stage's bubble (including waiting at the end)
};

struct SimulationResult {
  double iteration_s = 0;  // when the last stage's optimizer ends
  std::vector<StageTimeline> stages;
};

// Dependencies (besides each stage's own order):
//   forward m on s   starts >= end of forward m on s-1  + transfer_s[s-1]
//   backward m on s  starts >= end of backward m on s+1 + transfer_s[s]
//                           (on the last stage: after its own forward m, by schedule order)
// Every action starts at the earliest time both hold (the stage free, the input arrived).
// Closed forms (tests): equal stages f, b, zero transfer: GPipe and 1F1B take
// (B + S - 1)(f + b) + tail. The stage DP's iteration time sum_i t_i + (B-1) max_i t_i + tail
// (Alpa's formula, t_i = f_i + b_i) equals GPipe exactly when the slowest stage is slowest in
// both forward and backward; otherwise GPipe takes sum f + sum b + (B-1)(max f + max b) + tail,
// more than the formula (so the formula is a lower bound for GPipe). With unequal stages 1F1B
// lands on either side of the formula: interleaving lets a stage fill its bubbles with another
// micro-batch's backward (on random 2-5 stage cases it ranges from 0.75x to slightly above).
// A transfer latency c per boundary adds 2 (S-1) c to GPipe; the DP charges it inside t_i.
// 1F1B's steady state waits on forward-backward round trips, so with large c it can be slower
// than GPipe (with c = 0 it never was on 50k random cases).
// Throws std::invalid_argument when the input's sizes do not match the schedule, a duration is
// negative or not finite, or the schedule deadlocks (an action waits on one that never runs).
SimulationResult simulate_pipeline(const PipelineSchedule& schedule, const SimulationInput& input);

// The simulator's input from a plan's stage predictions: forward_s / backward_s / transfer_s /
// tail_s as recorded; when forward_s and backward_s are both 0, the stage's
// time_per_microbatch_s minus transfer_s is split 1 : 2 (a backward costs about two forwards).
SimulationInput simulation_input(const Plan& plan);

// make_schedule(plan.schedule, stages, plan.micro_batches) simulated on simulation_input(plan).
SimulationResult simulate_plan(const Plan& plan);

}  // namespace strata::solver
