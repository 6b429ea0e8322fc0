// Pipeline schedules (solver/plan/schedule.h): GPipe and 1F1B for S = 1..4 stages and B = 1..8
// micro-batches run every forward and backward exactly once per stage, respect the cross-stage
// dependencies when simulated, and hold exactly the in-flight micro-batches the stage DP's memory
// model assumes (inter/stage_dp.h in_flight_microbatches). Exact action lists for small cases.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "solver/inter/stage_dp.h"
#include "solver/plan/schedule.h"
#include "solver/plan/simulator.h"

using namespace strata::solver;

namespace {

// "F0 F1 B0 ..." for one stage's actions; "O" for the optimizer.
std::string render(const std::vector<Action>& actions) {
  std::string out;
  for (const Action& a : actions) {
    if (!out.empty()) out += " ";
    if (a.kind == ActionKind::kOptimizer) {
      out += "O";
    } else {
      out += (a.kind == ActionKind::kForward ? "F" : "B") + std::to_string(a.micro_batch);
    }
  }
  return out;
}

SimulationInput unit_input(std::int64_t stages) {
  const auto n = static_cast<std::size_t>(stages);
  return {std::vector<double>(n, 1.0), std::vector<double>(n, 2.0), std::vector<double>(n, 0.5),
          std::vector<double>(n, 1.0)};
}

}  // namespace

TEST_CASE("1F1B action lists match PipeDream-flush", "[plan][schedule]") {
  // S = 4, B = 6: stage s warms up with min(3 - s, 6) forwards.
  const PipelineSchedule p = one_f_one_b_schedule(4, 6);
  CHECK(p.name == "1f1b");
  CHECK(render(p.stages[0]) == "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 O");
  CHECK(render(p.stages[1]) == "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5 O");
  CHECK(render(p.stages[2]) == "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5 O");
  CHECK(render(p.stages[3]) == "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 O");
  // Fewer micro-batches than stages: warm-up capped at B.
  const PipelineSchedule q = one_f_one_b_schedule(4, 2);
  CHECK(render(q.stages[0]) == "F0 F1 B0 B1 O");
  CHECK(render(q.stages[2]) == "F0 F1 B0 B1 O");
  CHECK(render(q.stages[3]) == "F0 B0 F1 B1 O");
}

TEST_CASE("GPipe runs all forwards, then backwards in reverse order", "[plan][schedule]") {
  const PipelineSchedule p = gpipe_schedule(3, 4);
  CHECK(p.name == "gpipe");
  for (const auto& stage : p.stages) CHECK(render(stage) == "F0 F1 F2 F3 B3 B2 B1 B0 O");
}

TEST_CASE("schedules for S=1..4, B=1..8 are complete, valid and match the DP's in-flight count",
          "[plan][schedule]") {
  for (const std::string name : {"gpipe", "1f1b"}) {
    for (std::int64_t S = 1; S <= 4; ++S) {
      for (std::int64_t B = 1; B <= 8; ++B) {
        INFO(name << " S=" << S << " B=" << B);
        const PipelineSchedule p = make_schedule(name, S, B);
        REQUIRE(p.num_stages == S);
        REQUIRE(p.micro_batches == B);
        REQUIRE(p.stages.size() == static_cast<std::size_t>(S));
        REQUIRE_NOTHROW(check_schedule(p));
        for (std::int64_t s = 0; s < S; ++s) {
          const auto& actions = p.stages[static_cast<std::size_t>(s)];
          // Every forward and backward exactly once, a backward after its forward, optimizer last.
          std::vector<int> fwd(static_cast<std::size_t>(B), 0), bwd(static_cast<std::size_t>(B), 0);
          for (std::size_t i = 0; i < actions.size(); ++i) {
            const Action& a = actions[i];
            if (a.kind == ActionKind::kOptimizer) {
              CHECK(i + 1 == actions.size());
              continue;
            }
            const auto m = static_cast<std::size_t>(a.micro_batch);
            if (a.kind == ActionKind::kForward) ++fwd[m];
            if (a.kind == ActionKind::kBackward) {
              CHECK(fwd[m] == 1);
              ++bwd[m];
            }
          }
          CHECK(actions.size() == static_cast<std::size_t>(2 * B + 1));
          for (std::int64_t m = 0; m < B; ++m) {
            CHECK(fwd[static_cast<std::size_t>(m)] == 1);
            CHECK(bwd[static_cast<std::size_t>(m)] == 1);
          }
          // In-flight activations equal the stage DP's memory model.
          CHECK(max_in_flight(p, s) == in_flight_microbatches(name, s, S, B));
          CHECK(max_in_flight(p, s) == (name == "gpipe" ? B : std::min(B, S - s)));
        }
        // Cross-stage order: the simulation finishes (no deadlock) and every action starts after
        // its input: forward m on s after forward m on s-1 (+ transfer), backward m on s after
        // backward m on s+1 (+ transfer).
        const SimulationInput in = unit_input(S);
        SimulationResult r;
        REQUIRE_NOTHROW(r = simulate_pipeline(p, in));
        auto end_of = [&](std::int64_t s, ActionKind kind, std::int64_t m) {
          for (const TimedAction& t : r.stages[static_cast<std::size_t>(s)].actions) {
            if (t.action.kind == kind && t.action.micro_batch == m) return t.end_s;
          }
          FAIL("action not simulated");
          return 0.0;
        };
        for (std::int64_t s = 0; s < S; ++s) {
          const auto& timeline = r.stages[static_cast<std::size_t>(s)].actions;
          REQUIRE(timeline.size() == p.stages[static_cast<std::size_t>(s)].size());
          for (std::size_t i = 0; i < timeline.size(); ++i) {
            const TimedAction& t = timeline[i];
            CHECK(t.action == p.stages[static_cast<std::size_t>(s)][i]);
            if (i > 0) CHECK(t.start_s >= timeline[i - 1].end_s);
            if (t.action.kind == ActionKind::kForward && s > 0) {
              CHECK(t.start_s >= end_of(s - 1, ActionKind::kForward, t.action.micro_batch) + 0.5);
            }
            if (t.action.kind == ActionKind::kBackward && s + 1 < S) {
              CHECK(t.start_s >= end_of(s + 1, ActionKind::kBackward, t.action.micro_batch) + 0.5);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("make_schedule and max_in_flight reject bad arguments", "[plan][schedule]") {
  CHECK_THROWS_AS(make_schedule("zigzag", 2, 2), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule("1f1b", 0, 2), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule("gpipe", 2, 0), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule("gpipe", 1 << 20, 1 << 20), std::invalid_argument);
  CHECK_THROWS_AS(max_in_flight(gpipe_schedule(2, 2), 2), std::out_of_range);
  CHECK(std::string(action_kind_name(ActionKind::kBackward)) == "backward");
}

TEST_CASE("check_schedule rejects broken action lists", "[plan][schedule]") {
  const PipelineSchedule good = one_f_one_b_schedule(2, 3);
  {
    PipelineSchedule p = good;  // backward before its forward
    std::swap(p.stages[1][0], p.stages[1][1]);
    CHECK_THROWS_WITH(check_schedule(p), Catch::Contains("before its forward"));
  }
  {
    PipelineSchedule p = good;  // optimizer missing
    p.stages[0].pop_back();
    CHECK_THROWS_AS(check_schedule(p), std::invalid_argument);
  }
  {
    PipelineSchedule p = good;  // a forward run twice
    p.stages[0][1] = p.stages[0][0];
    CHECK_THROWS_WITH(check_schedule(p), Catch::Contains("runs twice"));
  }
  {
    PipelineSchedule p = good;  // micro-batch out of range
    p.stages[0][0].micro_batch = 7;
    CHECK_THROWS_WITH(check_schedule(p), Catch::Contains("out of range"));
  }
  {
    PipelineSchedule p = good;  // optimizer in the middle
    std::swap(p.stages[0].back(), p.stages[0][2]);
    CHECK_THROWS_WITH(check_schedule(p), Catch::Contains("last action"));
  }
  {
    PipelineSchedule p = good;  // a stage missing
    p.stages.pop_back();
    CHECK_THROWS_AS(check_schedule(p), std::invalid_argument);
  }
}
