// The intra-op ILP (solver/intra/ilp.h): hand-checked tiny problems, forbidden choices and
// budgets, lp_solve vs CBC vs brute force (and the chain DP) on a few hundred seeded random
// strategy graphs, and one larger budgeted instance where CBC and lp_solve must agree.
// Costs are in seconds (1e-5 .. 1e-3), as the planner produces them; memory in whole MiB so
// budget comparisons are exact.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "solver/intra/ilp.h"

using namespace strata::solver;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kMs = 1e-3;
constexpr double kF = kForbidden;

IlpNode node(std::vector<double> cost_s, std::vector<double> memory_bytes = {}) {
  return IlpNode{std::move(cost_s), std::move(memory_bytes)};
}

IlpEdge edge(NodeIdx src, NodeIdx dst, std::vector<double> cost_s) {
  IlpEdge e;
  e.src = src;
  e.dst = dst;
  e.cost_s = std::move(cost_s);
  return e;
}

bool same_objective(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max({std::fabs(a), std::fabs(b), 1e-300});
}

// Every returned solution: forbidden nothing, memory kept, objective = evaluate().
void check_solution(const IlpProblem& p, const IlpSolution& s) {
  INFO(s.solver << " status " << solve_status_name(s.status) << " " << s.message);
  REQUIRE(s.status != SolveStatus::kError);
  if (s.status == SolveStatus::kOptimal || s.status == SolveStatus::kFeasible) {
    REQUIRE(s.choice.size() == p.nodes.size());
    CHECK(std::isfinite(s.objective_s));
    CHECK(s.objective_s == evaluate(p, s.choice));
    CHECK(memory_feasible(p, s.choice));
  } else {
    CHECK(s.choice.empty());
  }
}

// Two nodes, two strategies, one edge; costs in ms:
//   A: c = [1, 3]  m = [4, 2] MiB      B: c = [2, 1]  m = [4, 2] MiB
//   A->B: r = [[0, 5], [4, 0]]
// (0,0) = 1+2+0 = 3   (0,1) = 1+1+5 = 7   (1,0) = 3+2+4 = 9   (1,1) = 3+1+0 = 4
IlpProblem two_nodes() {
  IlpProblem p;
  p.nodes = {node({1 * kMs, 3 * kMs}, {4 * kMiB, 2 * kMiB}),
             node({2 * kMs, 1 * kMs}, {4 * kMiB, 2 * kMiB})};
  p.edges = {edge(0, 1, {0, 5 * kMs, 4 * kMs, 0})};
  p.liveness = {{0, 1}};
  return p;
}

// Chain X -> Y -> Z with forbidden entries; costs in ms:
//   X: c = [1, 2, F]   Y: c = [3, 1]   Z: c = [F, 5]  (Z is constant: only strategy 1 survives)
//   X->Y: r = [[0, F], [1, 0], [0, 0]]   Y->Z: r = [[F, 0], [F, 2]]
// Per-node cheapest (X0, Y1) is a forbidden pair. Allowed: (0,0,1) = 1+3+5+0+0 = 9,
// (1,0,1) = 2+3+5+1+0 = 11, (1,1,1) = 2+1+5+0+2 = 10. Optimum (0,0,1) = 9 ms.
IlpProblem forbidden_chain() {
  IlpProblem p;
  p.nodes = {node({1 * kMs, 2 * kMs, kF}), node({3 * kMs, 1 * kMs}), node({kF, 5 * kMs})};
  p.edges = {edge(0, 1, {0, kF, 1 * kMs, 0, 0, 0}), edge(1, 2, {kF, 0, kF, 2 * kMs})};
  return p;
}

const std::vector<std::string> kMipSolvers = {"lp_solve", "cbc", "brute_force"};

IlpSolution run(const IlpProblem& p, const std::string& solver, double time_limit_s = 10) {
  IlpOptions o;
  o.solver = solver;
  o.time_limit_s = time_limit_s;
  return solve_ilp(p, o);
}

// ---- random strategy graphs

enum class Budget { kNone, kBinding, kInfeasible };

struct RandomCase {
  IlpProblem problem;
  bool chain_only = false;
  Budget budget = Budget::kNone;
};

RandomCase random_case(std::mt19937_64& rng, bool chain_only, Budget budget) {
  std::uniform_real_distribution<double> u01(0, 1);
  auto uniform_int = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  RandomCase rc;
  rc.chain_only = chain_only;
  rc.budget = budget;
  IlpProblem& p = rc.problem;
  const int n = uniform_int(3, 8);
  for (int i = 0; i < n; ++i) {
    IlpNode nd;
    const int k = uniform_int(1, 4);
    for (int a = 0; a < k; ++a) {
      nd.cost_s.push_back(u01(rng) < 0.08 ? kF : (1e-5 + 1e-3 * u01(rng)));
      nd.memory_bytes.push_back(uniform_int(1, 16) * kMiB);
    }
    p.nodes.push_back(nd);
  }
  auto add_edge = [&](int src, int dst, bool may_swap) {
    if (may_swap && u01(rng) < 0.2) std::swap(src, dst);  // either direction must work
    IlpEdge e;
    e.src = src;
    e.dst = dst;
    const std::size_t size =
        p.nodes[std::size_t(src)].cost_s.size() * p.nodes[std::size_t(dst)].cost_s.size();
    for (std::size_t t = 0; t < size; ++t) {
      const double x = u01(rng);
      e.cost_s.push_back(x < 0.06 ? kF : x < 0.35 ? 0.0 : 1e-3 * u01(rng));
    }
    p.edges.push_back(e);
  };
  for (int i = 0; i + 1 < n; ++i) {
    add_edge(i, i + 1, true);
    // Sometimes a second edge the other way between the same pair (one per ordered pair).
    if (u01(rng) < 0.1) add_edge(p.edges.back().dst, p.edges.back().src, false);
  }
  if (!chain_only) {
    for (int i = 0; i < n; ++i) {
      for (int j = i + 2; j < std::min(n, i + 5); ++j) {
        if (u01(rng) < 0.3) add_edge(i, j, true);
      }
    }
  }
  if (budget != Budget::kNone) {
    // Sliding windows of 2-4 live nodes, plus one random set.
    const int w = uniform_int(2, std::min(4, n));
    for (int i = 0; i + w <= n; i += uniform_int(1, 2)) {
      std::vector<NodeIdx> set;
      for (int j = i; j < i + w; ++j) set.push_back(j);
      p.liveness.push_back(set);
    }
    std::vector<NodeIdx> extra;
    for (int i = 0; i < n; ++i) {
      if (u01(rng) < 0.5) extra.push_back(i);
    }
    if (!extra.empty() && u01(rng) < 0.2) extra.push_back(extra.front());  // counted twice
    p.liveness.push_back(extra);
    // lo: the largest minimum footprint of any set; hi: the largest maximum one.
    double lo = 0, hi = 0;
    for (const auto& set : p.liveness) {
      double s_lo = 0, s_hi = 0;
      for (NodeIdx i : set) {
        const auto& m = p.nodes[std::size_t(i)].memory_bytes;
        s_lo += *std::min_element(m.begin(), m.end());
        s_hi += *std::max_element(m.begin(), m.end());
      }
      lo = std::max(lo, s_lo), hi = std::max(hi, s_hi);
    }
    p.memory_budget_bytes = budget == Budget::kInfeasible
                                ? lo - kMiB
                                : std::round((lo + (hi - lo) * 0.5 * u01(rng)) / kMiB) * kMiB;
  }
  return rc;
}

// ---- a larger Alpa-like instance (TOOLCHAIN.md section 4's "structured skipmem")

IlpProblem large_instance(int n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  // Layouts R, S0, S1, S01 with shard degrees 1, 2, 2, 4; resharding factor [from][to]:
  // slicing is free, gathers and all-to-alls cost a fraction of the tensor.
  const double degree[4] = {1, 2, 2, 4};
  const double fac[4][4] = {
      {0, 0, 0, 0}, {0.5, 0, 0.75, 0.25}, {0.5, 0.75, 0, 0.25}, {0.75, 0.5, 0.5, 0}};
  IlpProblem p;
  std::vector<std::vector<int>> layouts(static_cast<std::size_t>(n));
  std::vector<double> tensor_s(static_cast<std::size_t>(n));
  double sum_min = 0, sum_max = 0;
  for (int i = 0; i < n; ++i) {
    const double flops_s = 1e-3 * (0.5 + u01(rng));
    tensor_s[std::size_t(i)] = 1e-3 * (0.5 + u01(rng));
    const double bytes = std::round(64 * (0.5 + u01(rng))) * kMiB;
    IlpNode nd;
    double lo = 1e300, hi = 0;
    for (int a = 0; a < k; ++a) {
      const int l = a % 4;
      layouts[std::size_t(i)].push_back(l);
      // Sharding saves compute and memory but pays collectives, so the unbudgeted optimum
      // keeps many tensors replicated and the budget has work to do.
      const double comm = l == 0 ? 0 : tensor_s[std::size_t(i)] * (0.3 + 0.9 * u01(rng));
      nd.cost_s.push_back(flops_s / degree[l] * (0.9 + 0.2 * u01(rng)) + comm);
      nd.memory_bytes.push_back(bytes / degree[l]);
      lo = std::min(lo, bytes / degree[l]), hi = std::max(hi, bytes / degree[l]);
    }
    sum_min += lo, sum_max += hi;
    p.nodes.push_back(nd);
  }
  auto add_edge = [&](int i, int j) {
    IlpEdge e;
    e.src = i;
    e.dst = j;
    for (int a = 0; a < k; ++a) {
      for (int b = 0; b < k; ++b) {
        e.cost_s.push_back(
            tensor_s[std::size_t(i)] *
            fac[layouts[std::size_t(i)][std::size_t(a)]][layouts[std::size_t(j)][std::size_t(b)]]);
      }
    }
    p.edges.push_back(e);
  };
  for (int i = 0; i + 1 < n; ++i) {
    add_edge(i, i + 1);
    for (int j = i + 2; j < std::min(n, i + 7); ++j) {
      if (u01(rng) < 0.3 / 5) add_edge(i, j);
    }
  }
  std::vector<NodeIdx> all;
  for (int i = 0; i < n; ++i) all.push_back(i);
  p.liveness = {all};
  p.memory_budget_bytes = std::round((sum_min + 0.05 * (sum_max - sum_min)) / kMiB) * kMiB;
  return p;
}

}  // namespace

TEST_CASE("ilp: status names", "[ilp]") {
  CHECK(std::string(solve_status_name(SolveStatus::kOptimal)) == "optimal");
  CHECK(std::string(solve_status_name(SolveStatus::kFeasible)) == "feasible");
  CHECK(std::string(solve_status_name(SolveStatus::kInfeasible)) == "infeasible");
  CHECK(std::string(solve_status_name(SolveStatus::kTimeout)) == "timeout");
  CHECK(std::string(solve_status_name(SolveStatus::kError)) == "error");
}

TEST_CASE("ilp: evaluate and memory_feasible by hand", "[ilp]") {
  IlpProblem p = two_nodes();
  CHECK(evaluate(p, {0, 0}) == Approx(3 * kMs));
  CHECK(evaluate(p, {0, 1}) == Approx(7 * kMs));
  CHECK(evaluate(p, {1, 0}) == Approx(9 * kMs));
  CHECK(evaluate(p, {1, 1}) == Approx(4 * kMs));
  CHECK_THROWS_AS(evaluate(p, {0}), std::invalid_argument);
  CHECK_THROWS_AS(evaluate(p, {0, 2}), std::invalid_argument);
  CHECK(memory_feasible(p, {0, 0}));  // no budget
  p.memory_budget_bytes = 6 * kMiB;
  CHECK_FALSE(memory_feasible(p, {0, 0}));  // 4 + 4 = 8 MiB
  CHECK(memory_feasible(p, {0, 1}));        // 4 + 2 = 6 MiB: the budget itself is allowed
  const IlpProblem f = forbidden_chain();
  CHECK(evaluate(f, {0, 1, 1}) == kForbidden);  // X0 with Y1
  CHECK(evaluate(f, {0, 0, 0}) == kForbidden);  // Z0
  CHECK(evaluate(f, {0, 0, 1}) == Approx(9 * kMs));
}

TEST_CASE("ilp: validate names the bad field", "[ilp]") {
  auto throws_with = [](const IlpProblem& p, const std::string& what) {
    try {
      validate(p);
    } catch (const std::invalid_argument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(what) != std::string::npos);
      return;
    }
    FAIL("validate did not throw for: " << what);
  };
  CHECK_NOTHROW(validate(two_nodes()));
  IlpProblem p = two_nodes();
  p.nodes[1].cost_s.clear();
  throws_with(p, "node 1");
  p = two_nodes();
  p.nodes[0].memory_bytes.pop_back();
  throws_with(p, "node 0");
  p = two_nodes();
  p.nodes[0].cost_s[1] = std::nan("");
  throws_with(p, "node 0");
  p = two_nodes();
  p.edges[0].cost_s.pop_back();
  throws_with(p, "edge 0");
  p = two_nodes();
  p.edges[0].dst = 2;
  throws_with(p, "edge 0");
  p = two_nodes();
  p.edges.push_back(p.edges[0]);
  throws_with(p, "edge 1");
  p = two_nodes();
  p.edges[0].dst = 0;
  throws_with(p, "edge 0");
  p = two_nodes();
  p.liveness = {{0, 5}};
  throws_with(p, "liveness set 0");
  p = two_nodes();
  p.memory_budget_bytes = 6 * kMiB;
  p.nodes[1].memory_bytes.clear();
  throws_with(p, "node 1");
  IlpOptions o;
  o.solver = "gurobi";
  CHECK_THROWS_AS(solve_ilp(two_nodes(), o), std::invalid_argument);
}

TEST_CASE("ilp: two nodes, every solver, with and without budget", "[ilp]") {
  IlpProblem p = two_nodes();
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp", "auto"}) {
    const IlpSolution s = run(p, solver);
    check_solution(p, s);
    CHECK(s.status == SolveStatus::kOptimal);
    CHECK(s.choice == std::vector<StrategyIdx>{0, 0});  // 3 ms
    CHECK(s.objective_s == Approx(3 * kMs));
  }
  // Budget 6 MiB rules out (0,0) (8 MiB); (1,1) = 4 ms uses 4 MiB.
  p.memory_budget_bytes = 6 * kMiB;
  for (const std::string& solver : kMipSolvers) {
    const IlpSolution s = run(p, solver);
    check_solution(p, s);
    CHECK(s.status == SolveStatus::kOptimal);
    CHECK(s.choice == std::vector<StrategyIdx>{1, 1});
    CHECK(s.objective_s == Approx(4 * kMs));
  }
  CHECK_THROWS_AS(run(p, "chain_dp"), std::invalid_argument);  // budget needs a MIP
  // Budget 3 MiB: the smallest footprint is 2 + 2 = 4 MiB.
  p.memory_budget_bytes = 3 * kMiB;
  for (const std::string& solver : kMipSolvers) {
    const IlpSolution s = run(p, solver);
    check_solution(p, s);
    CHECK(s.status == SolveStatus::kInfeasible);
  }
}

TEST_CASE("ilp: forbidden choices are removed, never chosen", "[ilp]") {
  const IlpProblem p = forbidden_chain();
  REQUIRE(is_chain(p));
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp"}) {
    const IlpSolution s = run(p, solver);
    check_solution(p, s);
    CHECK(s.status == SolveStatus::kOptimal);
    CHECK(s.choice == std::vector<StrategyIdx>{0, 0, 1});  // 9 ms
    CHECK(s.objective_s == Approx(9 * kMs));
  }
  // Z is constant after the reduction, so the MIP has s for X (2) and Y (2) and e for the 3
  // allowed X->Y pairs: 7 binaries.
  CHECK(run(p, "lp_solve").variables == 7);

  // Forbid the pair (X0, Y0) too: X0 has no partner left, X becomes constant (X1), and
  // (1,0,1) = 11 vs (1,1,1) = 10 ms.
  IlpProblem q = p;
  q.edges[0].cost_s[0] = kF;
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp"}) {
    const IlpSolution s = run(q, solver);
    check_solution(q, s);
    CHECK(s.choice == std::vector<StrategyIdx>{1, 1, 1});
    CHECK(s.objective_s == Approx(10 * kMs));
  }
  // Y -> Z forbids Y1 as well now: Y1 -> Z1 forbidden leaves X1 Y0 Z1 = 11 ms, all constants.
  q.edges[1].cost_s[3] = kF;
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp"}) {
    const IlpSolution s = run(q, solver);
    check_solution(q, s);
    CHECK(s.choice == std::vector<StrategyIdx>{1, 0, 1});
    CHECK(s.objective_s == Approx(11 * kMs));
  }
  CHECK(run(q, "cbc").variables == 0);
  // And with X1 -> Y0 forbidden nothing is left: infeasible, for every solver.
  q.edges[0].cost_s[2] = kF;
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp"}) {
    const IlpSolution s = run(q, solver);
    check_solution(q, s);
    CHECK(s.status == SolveStatus::kInfeasible);
  }
  // A node whose every strategy is forbidden.
  IlpProblem dead = two_nodes();
  dead.nodes[1].cost_s = {kF, kF};
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp"}) {
    CHECK(run(dead, solver).status == SolveStatus::kInfeasible);
  }
}

TEST_CASE("ilp: skip edge and a binding budget, by hand", "[ilp]") {
  // Three nodes, two strategies each, all memory 1 or 3 MiB; costs in ms:
  //   c0 = [1, 2]  m0 = [3, 1]     c1 = [1, 2]  m1 = [3, 1]     c2 = [1, 1]  m2 = [3, 1]
  //   0->1: [[0, 1], [1, 0]]   1->2: [[0, 1], [1, 0]]   0->2 (skip): [[0, 2], [2, 0]]
  // Unbudgeted: (0,0,0) = 3 ms. With budget 5 MiB on {0,1,2} at most one node may take its
  // 3 MiB strategy: (0,1,1) = 1+2+1 + 1+0+2 = 7, (1,0,1) = 2+1+1 + 1+1+0 = 6,
  // (1,1,0) = 2+2+1 + 0+1+2 = 8, (1,1,1) = 2+2+1 + 0+0+0 = 5 -> optimum (1,1,1) = 5 ms.
  IlpProblem p;
  p.nodes = {node({1 * kMs, 2 * kMs}, {3 * kMiB, 1 * kMiB}),
             node({1 * kMs, 2 * kMs}, {3 * kMiB, 1 * kMiB}),
             node({1 * kMs, 1 * kMs}, {3 * kMiB, 1 * kMiB})};
  p.edges = {edge(0, 1, {0, kMs, kMs, 0}), edge(1, 2, {0, kMs, kMs, 0}),
             edge(0, 2, {0, 2 * kMs, 2 * kMs, 0})};
  p.liveness = {{0, 1, 2}};
  CHECK_FALSE(is_chain(p));
  for (const std::string& solver : kMipSolvers) {
    const IlpSolution s = run(p, solver);
    check_solution(p, s);
    CHECK(s.choice == std::vector<StrategyIdx>{0, 0, 0});
    CHECK(s.objective_s == Approx(3 * kMs));
  }
  p.memory_budget_bytes = 5 * kMiB;
  for (const std::string& solver : kMipSolvers) {
    const IlpSolution s = run(p, solver);
    check_solution(p, s);
    CHECK(s.choice == std::vector<StrategyIdx>{1, 1, 1});
    CHECK(s.objective_s == Approx(5 * kMs));
  }
  // (d) 2 MiB: even (1,1,1) needs 3 MiB.
  p.memory_budget_bytes = 2 * kMiB;
  for (const std::string& solver : kMipSolvers) {
    CHECK(run(p, solver).status == SolveStatus::kInfeasible);
  }
}

TEST_CASE("ilp: auto dispatch", "[ilp]") {
  IlpOptions o;
  CHECK(solve_ilp(forbidden_chain(), o).solver == "chain_dp");
  IlpProblem p = two_nodes();
  p.memory_budget_bytes = 6 * kMiB;
  CHECK(solve_ilp(p, o).solver == "lp_solve");
  o.lp_solve_max_variables = 0;
  const IlpSolution s = solve_ilp(p, o);
  CHECK(s.solver == "cbc");
  CHECK(s.objective_s == Approx(4 * kMs));
  // Empty problem: one (empty) assignment of cost 0.
  for (const char* solver : {"lp_solve", "cbc", "brute_force", "chain_dp", "auto"}) {
    const IlpSolution e = run(IlpProblem{}, solver);
    CHECK(e.status == SolveStatus::kOptimal);
    CHECK(e.objective_s == 0);
  }
}

TEST_CASE("ilp: random graphs, lp_solve = CBC = brute force (= chain DP)", "[ilp]") {
  std::mt19937_64 rng(20240611);
  int optimal = 0, infeasible = 0, binding = 0, with_forbidden = 0, chain_dp_checked = 0,
      elimination_checked = 0;
  constexpr int kCases = 240;
  for (int t = 0; t < kCases; ++t) {
    const bool chain_only = t % 4 == 0;
    const Budget budget = t % 4 == 2   ? Budget::kBinding
                          : t % 8 == 3 ? Budget::kInfeasible
                                       : Budget::kNone;
    const RandomCase rc = random_case(rng, chain_only, budget);
    const IlpProblem& p = rc.problem;
    INFO("case " << t << ": " << p.nodes.size() << " nodes, " << p.edges.size() << " edges, budget "
                 << p.memory_budget_bytes / kMiB << " MiB");
    const IlpSolution bf = solve_brute_force(p);
    check_solution(p, bf);
    for (const char* solver : {"lp_solve", "cbc", "auto"}) {
      const IlpSolution s = run(p, solver);
      check_solution(p, s);
      INFO(solver << ": " << s.objective_s << " vs brute force " << bf.objective_s);
      REQUIRE(s.status == bf.status);
      if (bf.status == SolveStatus::kOptimal) CHECK(same_objective(s.objective_s, bf.objective_s));
    }
    if (budget == Budget::kNone) {
      const IlpSolution ve = run(p, "variable_elimination");
      check_solution(p, ve);
      REQUIRE(ve.status == bf.status);
      if (bf.status == SolveStatus::kOptimal) CHECK(same_objective(ve.objective_s, bf.objective_s));
      ++elimination_checked;
    }
    if (rc.chain_only && budget == Budget::kNone) {
      const IlpSolution dp = solve_chain_dp(p);
      check_solution(p, dp);
      REQUIRE(dp.status == bf.status);
      if (bf.status == SolveStatus::kOptimal) CHECK(same_objective(dp.objective_s, bf.objective_s));
      ++chain_dp_checked;
    }
    optimal += bf.status == SolveStatus::kOptimal;
    infeasible += bf.status == SolveStatus::kInfeasible;
    if (budget == Budget::kInfeasible) CHECK(bf.status == SolveStatus::kInfeasible);
    bool forbidden = false;
    for (const auto& n : p.nodes)
      forbidden |=
          std::any_of(n.cost_s.begin(), n.cost_s.end(), [](double c) { return std::isinf(c); });
    for (const auto& e : p.edges)
      forbidden |=
          std::any_of(e.cost_s.begin(), e.cost_s.end(), [](double c) { return std::isinf(c); });
    with_forbidden += forbidden;
    if (budget == Budget::kBinding && bf.status == SolveStatus::kOptimal) {
      IlpProblem free = p;
      free.memory_budget_bytes = 0;
      binding += solve_brute_force(free).objective_s < bf.objective_s;
    }
  }
  std::printf(
      "ilp random: %d cases, %d optimal, %d infeasible, %d with a binding budget, "
      "%d with forbidden entries, %d checked by chain DP, %d by variable elimination\n",
      kCases, optimal, infeasible, binding, with_forbidden, chain_dp_checked, elimination_checked);
  // The generator must exercise every path it is meant to.
  CHECK(optimal >= 150);
  CHECK(infeasible >= 30);
  CHECK(binding >= 20);
  CHECK(with_forbidden >= 100);
  CHECK(chain_dp_checked >= 50);
  CHECK(elimination_checked >= 120);
}

// Denser graphs than random_case's (every pair within distance 3 joined with probability 0.6,
// up to 6 strategies): treewidth ~3-5, beyond what the degree-2 eliminations of ilp_reduce.h
// remove. Variable elimination must reach lp_solve's optimum (MIP gaps 0) on each.
TEST_CASE("ilp: variable elimination = lp_solve on denser graphs", "[ilp]") {
  std::mt19937_64 rng(7031);
  std::uniform_real_distribution<double> u01(0, 1);
  int compared = 0;
  for (int t = 0; t < 40; ++t) {
    IlpProblem p;
    const int n = 12 + t % 14;
    for (int i = 0; i < n; ++i) {
      IlpNode nd;
      const int k = 2 + static_cast<int>(u01(rng) * 5);
      for (int a = 0; a < k; ++a) nd.cost_s.push_back(u01(rng) < 0.05 ? kF : 1e-3 * u01(rng));
      p.nodes.push_back(nd);
    }
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < std::min(n, i + 4); ++j) {
        if (j > i + 1 && u01(rng) > 0.6) continue;
        IlpEdge e;
        e.src = u01(rng) < 0.5 ? i : j;
        e.dst = e.src == i ? j : i;
        const std::size_t size =
            p.nodes[std::size_t(i)].cost_s.size() * p.nodes[std::size_t(j)].cost_s.size();
        for (std::size_t q = 0; q < size; ++q) {
          const double x = u01(rng);
          e.cost_s.push_back(x < 0.04 ? kF : x < 0.3 ? 0.0 : 1e-3 * u01(rng));
        }
        p.edges.push_back(e);
      }
    }
    INFO("case " << t << ": " << n << " nodes, " << p.edges.size() << " edges");
    const IlpSolution lps = run(p, "lp_solve");
    const IlpSolution ve = run(p, "variable_elimination");
    check_solution(p, lps);
    check_solution(p, ve);
    REQUIRE(ve.status == lps.status);
    if (lps.status == SolveStatus::kOptimal) {
      CHECK(same_objective(ve.objective_s, lps.objective_s));
      ++compared;
    }
  }
  CHECK(compared >= 30);
}

TEST_CASE("ilp: variable elimination declines orders above its work limit", "[ilp]") {
  // Node 0 joined to 1, 2, 3 (3 strategies each) and 1 - 2 - 3 in a path. Every node has two or
  // three neighbours, so the first elimination alone builds a table of at least 3 x 3 entries at
  // 3 sums each: 27 > 20 declines it; the whole order (27 + 27 + 9 + 3 = 66) fits in 1000.
  IlpProblem p;
  for (int i = 0; i < 4; ++i) p.nodes.push_back(node({1 * kMs, 2 * kMs, 3 * kMs}));
  for (const auto& [a, b] :
       std::vector<std::pair<int, int>>{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {2, 3}}) {
    p.edges.push_back(edge(a, b, std::vector<double>(9, 0.5 * kMs)));
  }
  // (0, 0, 0, 0): 4 x 1 + 5 x 0.5 = 6.5 ms
  CHECK_FALSE(try_variable_elimination(p, 20).has_value());
  const std::optional<IlpSolution> s = try_variable_elimination(p, 1000);
  REQUIRE(s.has_value());
  CHECK(s->status == SolveStatus::kOptimal);
  CHECK(s->objective_s == Approx(6.5 * kMs));
  IlpOptions o;
  o.elimination_max_work = 20;
  CHECK(solve_ilp(p, o).solver == "lp_solve");  // auto falls back to the MIP
  o.solver = "variable_elimination";
  const IlpSolution refused = solve_ilp(p, o);
  CHECK(refused.status == SolveStatus::kError);
  CHECK(refused.message.find("elimination_max_work") != std::string::npos);
  o.solver = "auto";
  o.elimination_max_work = 1000;
  CHECK(solve_ilp(p, o).solver == "variable_elimination");
  p.memory_budget_bytes = 1;  // no memory_bytes, no liveness: inactive, still fine
  CHECK(try_variable_elimination(p, 1000).has_value());
  p.nodes[0].memory_bytes = {1, 1, 1};
  p.liveness = {{0}};
  CHECK_THROWS_AS(try_variable_elimination(p, 1000), std::invalid_argument);
}

TEST_CASE("ilp: larger budgeted instance, CBC vs lp_solve", "[ilp][ilp_large]") {
  // 300 nodes x 8 strategies, chain + skip edges, one liveness set over the whole graph with a
  // budget 5% above the smallest footprint: ~27k binaries, beyond "auto"'s lp_solve threshold.
  // The limits are generous for CBC (correctness, not speed, is asserted here) and short for
  // lp_solve, whose simplex stalls on this kind of budgeted model (TOOLCHAIN.md section 4).
  const IlpProblem p = large_instance(300, 8, 7);
  IlpProblem free = p;
  free.memory_budget_bytes = 0;
  const IlpSolution cbc = solve_cbc(p, 120);
  check_solution(p, cbc);
  const IlpSolution lps = solve_lp_solve(p, 3);
  check_solution(p, lps);
  const IlpSolution cbc_free = solve_cbc(free, 120);
  check_solution(free, cbc_free);
  const IlpSolution lps_free = solve_lp_solve(free, 60);
  check_solution(free, lps_free);
  IlpOptions o;
  o.time_limit_s = 120;
  // Not a chain, so variable elimination (treewidth ~6 here); declined, a MIP too big for lp_solve.
  const IlpSolution eliminated = solve_ilp(free, o);
  o.elimination_max_work = 0;
  const IlpSolution automatic = solve_ilp(free, o);
  std::printf(
      "ilp large: %zu nodes, %zu edges, %lld binaries (wall times)\n"
      "  budgeted:   cbc %s %.9f s in %.2f s; lp_solve %s %.9f s in %.2f s\n"
      "  unbudgeted (auto -> %s; variable elimination %.9f s in %.3f s): cbc %s %.9f s in %.2f s; "
      "lp_solve %s %.9f s in %.2f s\n",
      p.nodes.size(), p.edges.size(), static_cast<long long>(cbc.variables),
      solve_status_name(cbc.status), cbc.objective_s, cbc.wall_s, solve_status_name(lps.status),
      lps.objective_s, lps.wall_s, automatic.solver.c_str(), eliminated.objective_s,
      eliminated.wall_s, solve_status_name(cbc_free.status), cbc_free.objective_s, cbc_free.wall_s,
      solve_status_name(lps_free.status), lps_free.objective_s, lps_free.wall_s);
  REQUIRE(cbc.status == SolveStatus::kOptimal);
  REQUIRE(cbc_free.status == SolveStatus::kOptimal);
  CHECK(cbc.variables > 20000);
  CHECK(automatic.solver == "cbc");
  CHECK(eliminated.solver == "variable_elimination");
  CHECK(same_objective(eliminated.objective_s, cbc_free.objective_s));
  CHECK(automatic.status == SolveStatus::kOptimal);
  CHECK(same_objective(automatic.objective_s, cbc_free.objective_s));
  CHECK(cbc_free.objective_s < cbc.objective_s);  // the budget binds
  if (lps.status == SolveStatus::kOptimal) CHECK(same_objective(lps.objective_s, cbc.objective_s));
  if (lps.status == SolveStatus::kFeasible) CHECK(lps.objective_s >= cbc.objective_s * (1 - 1e-9));
  // Without the budget the root LP is integral and lp_solve finishes too.
  CHECK(lps_free.status == SolveStatus::kOptimal);
  if (lps_free.status == SolveStatus::kOptimal) {
    CHECK(same_objective(lps_free.objective_s, cbc_free.objective_s));
  }
}
