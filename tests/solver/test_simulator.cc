// Pipeline simulator (solver/plan/simulator.h): a hand-computed GPipe timeline, the closed form
// (B + S - 1)(f + b) + tail for equal stages under GPipe and 1F1B, the relation to the stage DP's
// formula sum t + (B-1) max t + tail (Alpa's approximation) for unequal stages, transfer
// latency, busy/idle accounting, deadlock detection, input checks and plan-driven simulation.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "solver/plan/schedule.h"
#include "solver/plan/simulator.h"

using namespace strata::solver;

namespace {

SimulationInput make_input(const std::vector<double>& f, const std::vector<double>& b,
                           double transfer, double tail) {
  return {f, b, std::vector<double>(f.size(), transfer), std::vector<double>(f.size(), tail)};
}

// The stage DP's iteration time (inter/stage_dp.h): sum t + (B - 1) max t + max tail.
double dp_formula(const SimulationInput& in, std::int64_t B) {
  double sum = 0, most = 0, tail = 0;
  for (std::size_t i = 0; i < in.forward_s.size(); ++i) {
    const double t = in.forward_s[i] + in.backward_s[i];
    sum += t;
    most = std::max(most, t);
    tail = std::max(tail, in.tail_s[i]);
  }
  return sum + static_cast<double>(B - 1) * most + tail;
}

}  // namespace

TEST_CASE("GPipe timeline, S=2 B=2, by hand", "[plan][simulator]") {
  // f = 1, b = 2, no transfer, tail 0.5:
  //   stage 0: F0 [0,1]  F1 [1,2]                      B1 [5,7] B0 [7,9] O [9,9.5]
  //   stage 1:           F0 [1,2] F1 [2,3] B1 [3,5] B0 [5,7]              O [7,7.5]
  // iteration 9.5 = (B + S - 1)(f + b) + tail = 3 * 3 + 0.5.
  const SimulationResult r =
      simulate_pipeline(gpipe_schedule(2, 2), make_input({1, 1}, {2, 2}, 0, 0.5));
  CHECK(r.iteration_s == 9.5);
  const auto& s0 = r.stages[0].actions;
  const auto& s1 = r.stages[1].actions;
  REQUIRE(s0.size() == 5);
  REQUIRE(s1.size() == 5);
  CHECK((s0[0].start_s == 0 && s0[0].end_s == 1));
  CHECK((s0[1].start_s == 1 && s0[1].end_s == 2));
  CHECK((s1[0].start_s == 1 && s1[0].end_s == 2));
  CHECK((s1[1].start_s == 2 && s1[1].end_s == 3));
  CHECK((s1[2].action.micro_batch == 1 && s1[2].start_s == 3 && s1[2].end_s == 5));
  CHECK((s1[3].start_s == 5 && s1[3].end_s == 7));
  CHECK((s0[2].action.micro_batch == 1 && s0[2].start_s == 5 && s0[2].end_s == 7));
  CHECK((s0[3].start_s == 7 && s0[3].end_s == 9));
  CHECK((s0[4].action.kind == ActionKind::kOptimizer && s0[4].end_s == 9.5));
  CHECK(s1[4].end_s == 7.5);
  // Busy = B (f + b) + tail = 6.5 on both; idle = 9.5 - 6.5 = 3 = (S - 1)(f + b).
  CHECK(r.stages[0].busy_s == 6.5);
  CHECK(r.stages[1].idle_s == 3);
}

TEST_CASE("equal stages: (B + S - 1)(f + b) + tail for GPipe and 1F1B, as the DP formula",
          "[plan][simulator]") {
  const double f = 1.5, b = 2.25, tail = 0.75;  // binary fractions: sums are exact
  for (const std::string name : {"gpipe", "1f1b"}) {
    for (std::int64_t S = 1; S <= 4; ++S) {
      for (std::int64_t B = 1; B <= 8; ++B) {
        INFO(name << " S=" << S << " B=" << B);
        const auto n = static_cast<std::size_t>(S);
        const SimulationInput in =
            make_input(std::vector<double>(n, f), std::vector<double>(n, b), 0, tail);
        const SimulationResult r = simulate_pipeline(make_schedule(name, S, B), in);
        const double expect = static_cast<double>(B + S - 1) * (f + b) + tail;
        CHECK(r.iteration_s == Approx(expect).epsilon(1e-12));
        CHECK(r.iteration_s == Approx(dp_formula(in, B)).epsilon(1e-12));
        for (const StageTimeline& st : r.stages) {
          CHECK(st.busy_s == Approx(static_cast<double>(B) * (f + b) + tail));
        }
        // The first stage ends last: its bubble is exactly (S - 1)(f + b).
        CHECK(r.stages[0].idle_s == Approx(static_cast<double>(S - 1) * (f + b)).margin(1e-12));
      }
    }
  }
}

TEST_CASE("unequal stages: GPipe vs the DP's approximation", "[plan][simulator]") {
  SECTION("same split everywhere: GPipe equals sum t + (B-1) max t + tail") {
    // t = {3, 6, 3}, f = t/3, b = 2t/3: the slowest stage is slowest both ways.
    const SimulationInput in = make_input({1, 2, 1}, {2, 4, 2}, 0, 1);
    for (std::int64_t B = 1; B <= 8; ++B) {
      INFO("B=" << B);
      // 12 + (B - 1) * 6 + 1
      CHECK(simulate_pipeline(gpipe_schedule(3, B), in).iteration_s ==
            Approx(13.0 + 6.0 * static_cast<double>(B - 1)));
      CHECK(dp_formula(in, B) == Approx(13.0 + 6.0 * static_cast<double>(B - 1)));
    }
  }
  SECTION("different bottlenecks: GPipe pays (B-1)(max f + max b), more than the formula") {
    // f = {1, 2}, b = {4, 2}: t = {5, 4}. GPipe = sum f + sum b + (B-1)(2 + 4) = 9 + 6 (B-1);
    // the formula says 9 + 5 (B-1).
    const SimulationInput in = make_input({1, 2}, {4, 2}, 0, 0);
    for (std::int64_t B = 1; B <= 8; ++B) {
      INFO("B=" << B);
      const double bm1 = static_cast<double>(B - 1);
      CHECK(simulate_pipeline(gpipe_schedule(2, B), in).iteration_s == Approx(9 + 6 * bm1));
      CHECK(dp_formula(in, B) == Approx(9 + 5 * bm1));
    }
  }
  SECTION("random stages: the formula bounds GPipe below; 1F1B no slower without transfers") {
    // (With transfer latency 1F1B can be slower than GPipe: its steady state waits on round
    // trips. Checked on 100k random cases while writing this test; not asserted here.)
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(0.1, 3.0);
    for (int trial = 0; trial < 300; ++trial) {
      const std::int64_t S = 1 + static_cast<std::int64_t>(rng() % 5);
      const std::int64_t B = 1 + static_cast<std::int64_t>(rng() % 8);
      std::vector<double> f, b;
      for (std::int64_t s = 0; s < S; ++s) {
        f.push_back(u(rng));
        b.push_back(u(rng));
      }
      const SimulationInput in = make_input(f, b, 0, 0.5);
      const double gpipe = simulate_pipeline(gpipe_schedule(S, B), in).iteration_s;
      const double ofob = simulate_pipeline(one_f_one_b_schedule(S, B), in).iteration_s;
      INFO("trial " << trial << " S=" << S << " B=" << B);
      CHECK(gpipe >= dp_formula(in, B) - 1e-9);
      CHECK(ofob <= gpipe + 1e-9);
    }
  }
}

TEST_CASE("transfer latency: GPipe adds 2 (S - 1) c", "[plan][simulator]") {
  const double f = 1, b = 2, c = 0.25;
  for (std::int64_t S = 1; S <= 4; ++S) {
    for (std::int64_t B = 1; B <= 8; ++B) {
      const auto n = static_cast<std::size_t>(S);
      const SimulationInput in =
          make_input(std::vector<double>(n, f), std::vector<double>(n, b), c, 0);
      const double bmS = static_cast<double>(B + S - 1);
      INFO("S=" << S << " B=" << B);
      CHECK(simulate_pipeline(gpipe_schedule(S, B), in).iteration_s ==
            Approx(bmS * (f + b) + 2 * static_cast<double>(S - 1) * c));
      // 1F1B's steady state waits on round trips, so it is no faster than without transfers.
      CHECK(simulate_pipeline(one_f_one_b_schedule(S, B), in).iteration_s >=
            bmS * (f + b) + 2 * static_cast<double>(S - 1) * c - 1e-9);
    }
  }
}

TEST_CASE("simulate_pipeline detects deadlocks and bad input", "[plan][simulator]") {
  // Stage 0 wants backward 0 before forward 1, but stage 1 runs F0 F1 before B0: stage 1 waits
  // for forward 1, stage 0 for backward 0.
  PipelineSchedule p = gpipe_schedule(2, 2);
  p.stages[0] = {{ActionKind::kForward, 0},
                 {ActionKind::kBackward, 0},
                 {ActionKind::kForward, 1},
                 {ActionKind::kBackward, 1},
                 {ActionKind::kOptimizer, -1}};
  p.stages[1] = {{ActionKind::kForward, 0},
                 {ActionKind::kForward, 1},
                 {ActionKind::kBackward, 0},
                 {ActionKind::kBackward, 1},
                 {ActionKind::kOptimizer, -1}};
  CHECK_THROWS_WITH(simulate_pipeline(p, make_input({1, 1}, {1, 1}, 0, 0)),
                    Catch::Contains("deadlocks"));

  const PipelineSchedule ok = gpipe_schedule(2, 2);
  CHECK_THROWS_AS(simulate_pipeline(ok, make_input({1}, {1}, 0, 0)), std::invalid_argument);
  CHECK_THROWS_AS(simulate_pipeline(ok, make_input({1, -1}, {1, 1}, 0, 0)), std::invalid_argument);
  CHECK_THROWS_AS(simulate_pipeline(ok, make_input({1, 1}, {1, 1}, 0, std::nan(""))),
                  std::invalid_argument);
}

TEST_CASE("simulate_plan splits time per micro-batch 1 : 2 when no split is recorded",
          "[plan][simulator]") {
  Plan plan;
  plan.micro_batches = 4;
  plan.global_batch = 8;
  plan.schedule = "1f1b";
  for (int s = 0; s < 2; ++s) {
    PlanStage st;
    st.predicted.time_per_microbatch_s = 3.5;  // 0.5 transfer + f 1 + b 2
    st.predicted.transfer_s = 0.5;
    st.predicted.tail_s = 0.25;
    plan.stages.push_back(st);
  }
  const SimulationInput in = simulation_input(plan);
  CHECK(in.forward_s == std::vector<double>{1, 1});
  CHECK(in.backward_s == std::vector<double>{2, 2});
  plan.stages[1].predicted.forward_s = 1.5;  // recorded split wins
  plan.stages[1].predicted.backward_s = 1.5;
  CHECK(simulation_input(plan).forward_s == std::vector<double>{1, 1.5});
  plan.stages[1].predicted.forward_s = 0;
  plan.stages[1].predicted.backward_s = 0;
  // Equal stages with transfers c = 0.5 under 1F1B: at least (B + S - 1)(f + b) + 2 c + tail.
  const SimulationResult r = simulate_plan(plan);
  CHECK(r.stages.size() == 2);
  CHECK(r.iteration_s >= 5 * 3.0 + 2 * 0.5 + 0.25 - 1e-12);
}
