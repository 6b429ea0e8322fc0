// The intra-operator sharding ILP as plain data, and its solvers (DESIGN.md section 4).
// Problem: pick one strategy per node; pay node costs plus an edge cost for each producer/consumer
// pair of choices; optionally keep the bytes of every liveness set under a per-device budget.
// Solvers: lp_solve (default), CBC (large memory-constrained problems), without a budget an
// exact DP for chains and variable elimination for graphs of small treewidth, and brute force
// (tests). Every solution is re-evaluated by evaluate().
// Pure C++: lp_solve and CBC headers are included only in their adapter .cc files.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace strata::solver {

using NodeIdx = std::int32_t;      // index into IlpProblem::nodes
using StrategyIdx = std::int32_t;  // index into a node's strategies

// A forbidden strategy or edge pair carries this cost; solvers remove such choices from the model
// instead of pricing them (huge coefficients next to millisecond costs wreck tolerances).
inline constexpr double kForbidden = std::numeric_limits<double>::infinity();

struct IlpNode {
  std::vector<double> cost_s;        // per strategy: compute + communication (seconds)
  std::vector<double> memory_bytes;  // per strategy: bytes counted in liveness sets (may be empty
                                     // when no budget is used)
};

struct IlpEdge {
  NodeIdx src = 0, dst = 0;
  std::vector<double> cost_s;  // row-major [src strategy][dst strategy]: resharding cost
};

struct IlpProblem {
  std::vector<IlpNode> nodes;
  std::vector<IlpEdge> edges;  // at most one edge per ordered (src, dst) pair
  // Memory: for every set L, sum over i in L of memory_bytes[i][choice[i]] <= budget.
  std::vector<std::vector<NodeIdx>> liveness;
  double memory_budget_bytes = 0;  // <= 0: no memory constraint
};

enum class SolveStatus : std::uint8_t {
  kOptimal,     // proven optimal (MIP gaps 0)
  kFeasible,    // a solution, optimality not proven (time limit hit)
  kInfeasible,  // no assignment satisfies the constraints (e.g. the memory budget)
  kTimeout,     // time limit hit without any solution
  kError,       // the solver failed
};
const char* solve_status_name(SolveStatus status);

struct IlpOptions {
  // "auto", "lp_solve", "cbc", "chain_dp", "variable_elimination", "brute_force"
  std::string solver = "auto";
  double time_limit_s = 60.0;
  // "auto": without a budget, chain_dp for a chain, else variable elimination when its planned
  // work is at most elimination_max_work; otherwise lp_solve while the problem has at most
  // lp_solve_max_variables binaries, CBC above (lp_solve's simplex stalls on large
  // memory-constrained problems, TOOLCHAIN.md section 4).
  std::int64_t lp_solve_max_variables = 20000;
  // Sums |S_w| x (table entries) over the elimination order: ~1 ns each, so the default
  // (2^24) declines orders that would take more than ~20 ms, where lp_solve is as quick.
  std::int64_t elimination_max_work = std::int64_t{1} << 24;
};

struct IlpSolution {
  SolveStatus status = SolveStatus::kError;
  std::vector<StrategyIdx> choice;  // one per node (empty unless optimal or feasible)
  double objective_s = kForbidden;  // evaluate(problem, choice)
  std::string solver;               // which solver produced it
  double wall_s = 0;                // whole call, reduction and model build included
  std::int64_t variables = 0;       // binaries in the model actually solved (0: DP, brute force)
  std::string message;              // why, when status is kError (empty otherwise)
};

// Objective of `choice`: sum of node and edge costs; kForbidden if any chosen cost is forbidden.
double evaluate(const IlpProblem& problem, const std::vector<StrategyIdx>& choice);
// Whether `choice` satisfies every liveness-set budget.
bool memory_feasible(const IlpProblem& problem, const std::vector<StrategyIdx>& choice);
// Throws std::invalid_argument naming the node or edge when sizes are inconsistent.
void validate(const IlpProblem& problem);

IlpSolution solve_ilp(const IlpProblem& problem, const IlpOptions& options);

// Individual solvers (solve_ilp dispatches to them).
IlpSolution solve_lp_solve(const IlpProblem& problem, double time_limit_s);
IlpSolution solve_cbc(const IlpProblem& problem, double time_limit_s);
// Edges only between consecutive nodes (i, i+1) and no budget: Viterbi, exact, O(N k^2).
// is_chain looks at the edges only (either direction between i and i+1 counts); solve_chain_dp
// throws std::invalid_argument unless is_chain holds and no memory constraint is active.
bool is_chain(const IlpProblem& problem);
IlpSolution solve_chain_dp(const IlpProblem& problem);
// No budget: min-sum variable elimination (ilp_elimination.cc), exact on any graph, in time
// exponential in its treewidth: nullopt, without solving, when the greedy order's work exceeds
// max_work. Throws std::invalid_argument when a memory budget is active.
std::optional<IlpSolution> try_variable_elimination(const IlpProblem& problem,
                                                    std::int64_t max_work);
// Enumerates every assignment (tests; throws std::invalid_argument above 2^22 assignments).
IlpSolution solve_brute_force(const IlpProblem& problem);

}  // namespace strata::solver
