// Exact reductions of an intra-op ILP (ilp.h) and the solves built on them (DESIGN.md section 4):
// dominated strategies removed, nodes with at most two neighbours eliminated by dynamic
// programming, the rest handed to solve_ilp. Also the memory/time frontier of a stage: the
// minimisers of cost + lambda x memory over lambda >= 0 (a Lagrangian relaxation of the memory
// row), each the exact optimum for a budget equal to its own memory. Pure C++.
#pragma once

#include <vector>

#include "solver/intra/ilp.h"

namespace strata::solver {

// Strategy b of node v is removed when another strategy a of v dominates it: c_v[a] <= c_v[b],
// r_vw[a][q] <= r_vw[b][q] for every edge (v, w) and strategy q of w, and (when the memory row
// is on) memory_v[a] <= memory_v[b]. The optimum is unchanged. kept[v] maps the reduced node's
// strategies to v's.
IlpProblem prune_dominated(const IlpProblem& full, std::vector<std::vector<StrategyIdx>>* kept);

// Bytes of `choice` summed over every node's memory_bytes: the intra-op ILP's single memory row
// (nodes without memory terms count 0).
double total_memory_bytes(const IlpProblem& problem, const std::vector<StrategyIdx>& choice);

// The optimum of `problem` (MIP gaps 0 in solve_ilp), through exact reductions:
//   1. prune_dominated;
//   2. no memory row: eliminate nodes of degree <= 2, solve what is left with solve_ilp (nothing
//      left: solver "elimination"), back-substitute;
//   3. a memory row: first step 2 without it. If that optimum fits, it is the constrained optimum
//      too (the least cost over a superset, lying in the subset); else the whole reduced problem
//      goes to solve_ilp (solver name suffixed "+budget").
// Choices index `problem`'s strategies; objective_s is re-evaluated on `problem`. Throws
// std::logic_error when the reductions change the objective (a bug).
IlpSolution solve_exact(const IlpProblem& problem, const IlpOptions& options);

// min over choices of cost + lambda x total_memory_bytes, memory row ignored (steps 1-2 above).
// objective_s is the cost alone (evaluate()). lambda >= 0, in seconds per byte.
IlpSolution solve_weighted(const IlpProblem& problem, double lambda_s_per_byte,
                           const IlpOptions& options);

// One vertex of the lower convex hull of {(memory(x), cost(x))}: optimal for every weight in
// [lambda_lo, lambda_hi] (lambda_hi infinite for the leanest), and so the exact optimum under a
// memory budget equal to its own memory_bytes (any x with memory <= m* has cost >= c* + lambda
// (m* - memory) >= c*). lambda_s_per_byte is the weight it was found at (0 for the first).
struct FrontierPoint {
  double lambda_s_per_byte = 0;
  double lambda_lo = 0, lambda_hi = 0;
  double memory_bytes = 0;
  IlpSolution solution;  // objective_s = cost
};

// One step of that parametric search between hull vertices A and B (memory m_A > m_B): the
// weight where they tie, lambda = (c_B - c_A) / (m_A - m_B), and whether the minimiser X found
// at that weight is a new vertex: strictly below the segment AB, its memory strictly between.
double tie_weight(double cost_a, double memory_a, double cost_b, double memory_b);
bool new_vertex(double cost_a, double memory_a, double memory_b, double lambda, double cost_x,
                double memory_x);

// The hull's vertices by decreasing memory (increasing cost), at most max_points (>= 2): the
// least-cost choice (lambda 0), the least-memory one (least cost among the choices that take a
// least-memory strategy at every node; when those only combine through a forbidden cost the lean
// end is left out and the frontier stops at the leanest vertex the weights below find),
// and between two known vertices A, B the minimiser X at the weight where they tie,
// lambda = (c_B - c_A) / (m_A - m_B), kept when it lies strictly below the segment AB (Eisner and
// Severance's parametric search: 2V - 1 weighted solves for V vertices). With max_points reached,
// the widest memory gaps are refined first. Empty when the problem has no finite assignment.
// least_cost: solve_weighted(problem, 0, options) when the caller already has it (saves a solve).
std::vector<FrontierPoint> memory_frontier(const IlpProblem& problem, const IlpOptions& options,
                                           int max_points, const IlpSolution* least_cost = nullptr);

}  // namespace strata::solver
