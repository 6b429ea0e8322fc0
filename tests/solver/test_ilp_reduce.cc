// Exact reductions and the memory frontier (solver/intra/ilp_reduce.h) against enumeration of
// every assignment, on seeded random strategy graphs with one memory row over all nodes (the
// intra-op pass's form) and with several liveness sets (solve_exact's general case).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "solver/intra/ilp_reduce.h"

using namespace strata::solver;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

IlpProblem random_problem(std::mt19937_64& rng, bool several_sets) {
  std::uniform_real_distribution<double> u01(0, 1);
  const auto uniform_int = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  IlpProblem p;
  const int n = uniform_int(2, 7);
  for (int i = 0; i < n; ++i) {
    IlpNode nd;
    for (int a = uniform_int(1, 4); a > 0; --a) {
      nd.cost_s.push_back(u01(rng) < 0.05 ? kForbidden : 1e-5 + 1e-3 * u01(rng));
      nd.memory_bytes.push_back(uniform_int(0, 12) * kMiB);
    }
    p.nodes.push_back(nd);
  }
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < std::min(n, i + 4); ++j) {
      if (j > i + 1 && u01(rng) > 0.35) continue;
      IlpEdge e{i, j, {}};
      if (u01(rng) < 0.2) std::swap(e.src, e.dst);
      const std::size_t size =
          p.nodes[std::size_t(i)].cost_s.size() * p.nodes[std::size_t(j)].cost_s.size();
      for (std::size_t t = 0; t < size; ++t) {
        const double x = u01(rng);
        e.cost_s.push_back(x < 0.04 ? kForbidden : x < 0.3 ? 0.0 : 1e-3 * u01(rng));
      }
      p.edges.push_back(e);
    }
  }
  std::vector<NodeIdx> all;
  for (int i = 0; i < n; ++i) all.push_back(i);
  p.liveness.push_back(all);
  if (several_sets) p.liveness.push_back({0, static_cast<NodeIdx>(n - 1)});
  double lo = 0, hi = 0;
  for (const IlpNode& nd : p.nodes) {
    lo += *std::min_element(nd.memory_bytes.begin(), nd.memory_bytes.end());
    hi += *std::max_element(nd.memory_bytes.begin(), nd.memory_bytes.end());
  }
  // From below the least footprint (infeasible) to above the largest (row inactive).
  p.memory_budget_bytes = std::round((lo - kMiB + (hi - lo + 2 * kMiB) * u01(rng)) / kMiB) * kMiB;
  return p;
}

void for_each_assignment(const IlpProblem& p,
                         const std::function<void(const std::vector<StrategyIdx>&)>& f) {
  std::vector<StrategyIdx> x(p.nodes.size(), 0);
  while (true) {
    f(x);
    std::size_t v = 0;
    for (; v < x.size(); ++v) {
      if (++x[v] < static_cast<StrategyIdx>(p.nodes[v].cost_s.size())) break;
      x[v] = 0;
    }
    if (v == x.size()) return;
  }
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(b), 1e-6); }

}  // namespace

TEST_CASE("ilp_reduce: solve_exact equals enumeration, with and without a budget", "[ilp]") {
  std::mt19937_64 rng(20261123);
  int feasible = 0, infeasible = 0, binding = 0;
  for (int t = 0; t < 300; ++t) {
    const IlpProblem p = random_problem(rng, t % 3 == 0);
    double best = kForbidden, best_free = kForbidden;
    for_each_assignment(p, [&](const std::vector<StrategyIdx>& x) {
      const double c = evaluate(p, x);
      best_free = std::min(best_free, c);
      if (memory_feasible(p, x)) best = std::min(best, c);
    });
    const IlpSolution s = solve_exact(p, IlpOptions{});
    INFO("case " << t << ": " << s.solver << " " << solve_status_name(s.status) << " "
                 << s.objective_s << " vs enumeration " << best);
    if (std::isinf(best)) {
      CHECK(s.status == SolveStatus::kInfeasible);
      ++infeasible;
      continue;
    }
    REQUIRE(s.status == SolveStatus::kOptimal);
    CHECK(memory_feasible(p, s.choice));
    CHECK(s.objective_s == evaluate(p, s.choice));
    CHECK(close(s.objective_s, best));
    ++feasible;
    binding += best > best_free * (1 + 1e-9);
  }
  CHECK(feasible >= 150);
  CHECK(infeasible >= 20);
  CHECK(binding >= 30);
}

TEST_CASE("ilp_reduce: the memory frontier is the lower convex hull, each vertex optimal",
          "[ilp]") {
  std::mt19937_64 rng(7);
  int multi_vertex = 0;
  for (int t = 0; t < 250; ++t) {
    const IlpProblem p = random_problem(rng, false);
    const std::vector<FrontierPoint> hull = memory_frontier(p, IlpOptions{}, 1000);
    std::vector<std::pair<double, double>> points;  // (memory, cost) of finite assignments
    for_each_assignment(p, [&](const std::vector<StrategyIdx>& x) {
      const double c = evaluate(p, x);
      if (std::isfinite(c)) points.push_back({total_memory_bytes(p, x), c});
    });
    INFO("case " << t << ": " << hull.size() << " vertices, " << points.size() << " assignments");
    if (points.empty()) {
      CHECK(hull.empty());
      continue;
    }
    REQUIRE(!hull.empty());
    multi_vertex += hull.size() > 1;
    // Handing over the lambda-0 solve the caller already has changes nothing.
    const IlpSolution least = solve_weighted(p, 0, IlpOptions{});
    const std::vector<FrontierPoint> given = memory_frontier(p, IlpOptions{}, 1000, &least);
    REQUIRE(given.size() == hull.size());
    for (std::size_t i = 0; i < hull.size(); ++i) {
      CHECK(given[i].memory_bytes == hull[i].memory_bytes);
      CHECK(given[i].solution.objective_s == hull[i].solution.objective_s);
    }
    for (std::size_t i = 0; i < hull.size(); ++i) {
      const FrontierPoint& h = hull[i];
      REQUIRE(h.solution.status == SolveStatus::kOptimal);
      CHECK(h.memory_bytes == total_memory_bytes(p, h.solution.choice));
      CHECK(h.solution.objective_s == evaluate(p, h.solution.choice));
      if (i > 0) {  // decreasing memory, increasing cost
        CHECK(h.memory_bytes < hull[i - 1].memory_bytes);
        CHECK(h.solution.objective_s > hull[i - 1].solution.objective_s);
      }
      // Optimal under a budget of its own memory, and at every weight of its interval.
      double best_within = kForbidden;
      for (const auto& [m, c] : points) {
        if (m <= h.memory_bytes) best_within = std::min(best_within, c);
      }
      CHECK(close(h.solution.objective_s, best_within));
      for (double lambda : {h.lambda_lo, h.lambda_s_per_byte}) {
        double best_weighted = kForbidden;
        for (const auto& [m, c] : points) best_weighted = std::min(best_weighted, c + lambda * m);
        CHECK(close(h.solution.objective_s + lambda * h.memory_bytes, best_weighted));
      }
    }
    // Complete: no assignment below the hull, and its ends are the least cost / least memory.
    double least_cost = kForbidden, least_memory = kForbidden;
    for (const auto& [m, c] : points) {
      least_cost = std::min(least_cost, c), least_memory = std::min(least_memory, m);
      for (std::size_t i = 0; i + 1 < hull.size(); ++i) {
        const FrontierPoint &a = hull[i], &b = hull[i + 1];
        if (m > a.memory_bytes || m < b.memory_bytes) continue;
        const double f = (m - b.memory_bytes) / (a.memory_bytes - b.memory_bytes);
        const double line =
            b.solution.objective_s + f * (a.solution.objective_s - b.solution.objective_s);
        CHECK(c >= line - 1e-9 * line);
      }
    }
    CHECK(close(hull.front().solution.objective_s, least_cost));
    // The lean end is exact when the least-memory strategies combine without a forbidden pair
    // (always, in the intra-op pass, which removes forbidden choices before the ILP).
    std::vector<StrategyIdx> leanest;
    for (const IlpNode& nd : p.nodes) {
      leanest.push_back(static_cast<StrategyIdx>(
          std::min_element(nd.memory_bytes.begin(), nd.memory_bytes.end()) -
          nd.memory_bytes.begin()));
    }
    if (std::isfinite(evaluate(p, leanest))) CHECK(hull.back().memory_bytes == least_memory);
  }
  CHECK(multi_vertex >= 100);
}

TEST_CASE("ilp_reduce: a frontier capped at three vertices keeps both ends", "[ilp]") {
  std::mt19937_64 rng(11);
  int capped = 0;
  for (int t = 0; t < 100; ++t) {
    const IlpProblem p = random_problem(rng, false);
    const std::vector<FrontierPoint> full = memory_frontier(p, IlpOptions{}, 1000);
    const std::vector<FrontierPoint> few = memory_frontier(p, IlpOptions{}, 3);
    REQUIRE(few.size() == std::min<std::size_t>(full.size(), 3));
    if (full.size() <= 3) continue;
    ++capped;
    CHECK(few.front().memory_bytes == full.front().memory_bytes);
    CHECK(few.back().memory_bytes == full.back().memory_bytes);
  }
  CHECK(capped >= 5);
}
