// The intra-op sharding ILP (ilp.h, DESIGN.md section 4): validation, evaluation, the chain DP,
// brute force, and the MIP path shared by lp_solve and CBC (reduce forbidden choices, build the
// 0/1 program, solve, map back, re-evaluate). Pure C++: the solver libraries are reached only
// through ilp_mip.h's adapters. Deterministic: no unordered containers, ties go to the lowest
// strategy index, solver options are fixed.
#include "solver/intra/ilp.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

#include "solver/intra/ilp_mip.h"
#include "solver/intra/ilp_private.h"

namespace strata::solver {

using detail::budget_active;
using detail::cross_check;

namespace {

// Solver objective vs evaluate(): relative to the sum of |chosen terms|, the scale at which the
// two summation orders can differ in floating point.
constexpr double kObjectiveRtol = 1e-9;
// Memory pre-reduction drops a strategy only when it overshoots the budget by more than this
// (relative), so rounding in a differently ordered sum never removes a feasible choice; the MIP
// row and memory_feasible() stay exact.
constexpr double kMemoryReduceRtol = 1e-12;
constexpr std::int64_t kBruteForceMaxAssignments = std::int64_t{1} << 22;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double node_memory(const IlpNode& n, StrategyIdx s) {
  return n.memory_bytes.empty() ? 0.0 : n.memory_bytes[static_cast<std::size_t>(s)];
}

void check_cost(double c, const std::string& where) {
  // +inf is kForbidden; NaN and -inf would make every comparison meaningless.
  if (std::isnan(c) || c == -std::numeric_limits<double>::infinity()) {
    throw std::invalid_argument(where + ": cost is NaN or -inf");
  }
}

void check_choice(const IlpProblem& p, const std::vector<StrategyIdx>& choice) {
  if (choice.size() != p.nodes.size()) {
    throw std::invalid_argument("choice has " + std::to_string(choice.size()) + " entries for " +
                                std::to_string(p.nodes.size()) + " nodes");
  }
  for (std::size_t i = 0; i < choice.size(); ++i) {
    if (choice[i] < 0 || static_cast<std::size_t>(choice[i]) >= p.nodes[i].cost_s.size()) {
      throw std::invalid_argument("choice of node " + std::to_string(i) + " is out of range");
    }
  }
}

// evaluate(), plus the sum of |terms| that sets the tolerance of the objective cross-check.
double evaluate_with_abs(const IlpProblem& p, const std::vector<StrategyIdx>& choice,
                         double* abs_sum) {
  check_choice(p, choice);
  double total = 0, abs_total = 0;
  for (std::size_t i = 0; i < p.nodes.size(); ++i) {
    const double c = p.nodes[i].cost_s[static_cast<std::size_t>(choice[i])];
    total += c;
    abs_total += std::fabs(c);
  }
  for (const IlpEdge& e : p.edges) {
    const std::size_t k_dst = p.nodes[static_cast<std::size_t>(e.dst)].cost_s.size();
    const double c =
        e.cost_s[static_cast<std::size_t>(choice[static_cast<std::size_t>(e.src)]) * k_dst +
                 static_cast<std::size_t>(choice[static_cast<std::size_t>(e.dst)])];
    total += c;
    abs_total += std::fabs(c);
  }
  if (abs_sum != nullptr) *abs_sum = abs_total;
  return std::isinf(total) ? kForbidden : total;
}

IlpSolution infeasible_solution(const char* solver) {
  IlpSolution s;
  s.status = SolveStatus::kInfeasible;
  s.solver = solver;
  return s;
}

// ------------------------------------------------------------------ reduction of forbidden choices

// Which original strategies survive. alive[i][p] is false for a strategy that is forbidden, has no
// allowed partner on some edge, or cannot fit a liveness set even with every other node at its
// smallest footprint; removal iterates to a fixpoint because each drop can strand a neighbour.
struct Reduction {
  std::vector<std::vector<char>> alive;
  bool infeasible = false;
};

bool pair_allowed(const IlpProblem& p, const Reduction& r, const IlpEdge& e, std::size_t a,
                  std::size_t b) {
  const std::size_t k_dst = p.nodes[static_cast<std::size_t>(e.dst)].cost_s.size();
  return r.alive[static_cast<std::size_t>(e.src)][a] &&
         r.alive[static_cast<std::size_t>(e.dst)][b] && !std::isinf(e.cost_s[a * k_dst + b]);
}

// Liveness sets as (node, multiplicity), so a node listed twice counts twice, as in
// memory_feasible().
std::vector<std::vector<std::pair<NodeIdx, int>>> liveness_counts(const IlpProblem& p) {
  std::vector<std::vector<std::pair<NodeIdx, int>>> out;
  for (const auto& set : p.liveness) {
    std::vector<NodeIdx> sorted(set);
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::pair<NodeIdx, int>> counts;
    for (NodeIdx i : sorted) {
      if (!counts.empty() && counts.back().first == i) {
        ++counts.back().second;
      } else {
        counts.emplace_back(i, 1);
      }
    }
    if (!counts.empty()) out.push_back(std::move(counts));
  }
  return out;
}

Reduction reduce(const IlpProblem& p) {
  Reduction r;
  const std::size_t n = p.nodes.size();
  r.alive.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = p.nodes[i].cost_s;
    r.alive[i].resize(c.size());
    for (std::size_t a = 0; a < c.size(); ++a) r.alive[i][a] = !std::isinf(c[a]);
  }
  const auto sets = budget_active(p) ? liveness_counts(p) : decltype(liveness_counts(p)){};
  const double budget = p.memory_budget_bytes;

  // Worklist of edges to re-check: a drop at node i re-queues only the edges at i, so a long
  // cascade along a chain costs O(cascade) edge checks instead of one full sweep per step.
  std::vector<std::vector<std::size_t>> incident(n);
  for (std::size_t k = 0; k < p.edges.size(); ++k) {
    incident[static_cast<std::size_t>(p.edges[k].src)].push_back(k);
    incident[static_cast<std::size_t>(p.edges[k].dst)].push_back(k);
  }
  std::deque<std::size_t> queue;
  std::vector<char> queued(p.edges.size(), 1);
  for (std::size_t k = 0; k < p.edges.size(); ++k) queue.push_back(k);
  auto drop = [&](std::size_t i, std::size_t a) {
    r.alive[i][a] = 0;
    for (std::size_t k : incident[i]) {
      if (!queued[k]) queued[k] = 1, queue.push_back(k);
    }
  };

  for (bool dropped = true; dropped;) {
    while (!queue.empty()) {
      const IlpEdge& e = p.edges[queue.front()];
      queued[queue.front()] = 0;
      queue.pop_front();
      const auto src = static_cast<std::size_t>(e.src), dst = static_cast<std::size_t>(e.dst);
      const std::size_t k_src = p.nodes[src].cost_s.size(), k_dst = p.nodes[dst].cost_s.size();
      for (std::size_t a = 0; a < k_src; ++a) {
        if (!r.alive[src][a]) continue;
        bool partner = false;
        for (std::size_t b = 0; b < k_dst && !partner; ++b) partner = pair_allowed(p, r, e, a, b);
        if (!partner) drop(src, a);
      }
      for (std::size_t b = 0; b < k_dst; ++b) {
        if (!r.alive[dst][b]) continue;
        bool partner = false;
        for (std::size_t a = 0; a < k_src && !partner; ++a) partner = pair_allowed(p, r, e, a, b);
        if (!partner) drop(dst, b);
      }
    }
    dropped = false;
    for (const auto& set : sets) {
      // Smallest footprint of each member among its surviving strategies.
      std::vector<double> min_m(set.size(), std::numeric_limits<double>::infinity());
      double min_sum = 0;
      for (std::size_t t = 0; t < set.size(); ++t) {
        const auto i = static_cast<std::size_t>(set[t].first);
        for (std::size_t a = 0; a < r.alive[i].size(); ++a) {
          if (r.alive[i][a]) min_m[t] = std::min(min_m[t], node_memory(p.nodes[i], StrategyIdx(a)));
        }
        min_sum += set[t].second * min_m[t];
      }
      if (std::isinf(min_sum)) continue;  // some node is already empty: infeasible below
      for (std::size_t t = 0; t < set.size(); ++t) {
        const auto i = static_cast<std::size_t>(set[t].first);
        const double others = min_sum - set[t].second * min_m[t];
        for (std::size_t a = 0; a < r.alive[i].size(); ++a) {
          const double need = others + set[t].second * node_memory(p.nodes[i], StrategyIdx(a));
          if (r.alive[i][a] && need > budget * (1 + kMemoryReduceRtol)) {
            drop(i, a);
            dropped = true;
          }
        }
      }
    }
  }
  for (const auto& a : r.alive) {
    if (std::none_of(a.begin(), a.end(), [](char x) { return x != 0; })) r.infeasible = true;
  }
  return r;
}

// ------------------------------------------------------------------ the MIP

// The reduced problem as a 0/1 program, and how to read a solution back.
struct BuiltModel {
  detail::MipModel mip;
  bool infeasible = false;         // a memory row that no choice can satisfy
  double objective_scale = 1;      // seconds per model objective unit
  double offset_s = 0;             // cost of the constant nodes and constant-constant edges
  std::vector<StrategyIdx> fixed;  // per node: its strategy if constant, else -1
  std::vector<std::vector<StrategyIdx>> col_strategy;  // per node: original strategy of each s col
  std::vector<std::vector<std::int32_t>> s_col;        // per node: column of each s col
};

// Adds coef to column col of a row under construction (a node may sit in a liveness set twice).
void add_term(std::vector<std::pair<std::int32_t, double>>* terms, std::int32_t col, double coef) {
  terms->emplace_back(col, coef);
}

detail::MipRow make_row(std::vector<std::pair<std::int32_t, double>> terms, detail::RowSense sense,
                        double rhs) {
  std::sort(terms.begin(), terms.end());
  detail::MipRow row;
  row.sense = sense;
  row.rhs = rhs;
  for (const auto& [col, coef] : terms) {
    if (!row.cols.empty() && row.cols.back() == col) {
      row.coefs.back() += coef;
    } else {
      row.cols.push_back(col);
      row.coefs.push_back(coef);
    }
  }
  return row;
}

/* The model, after reduce() (Alpa's formulation, ALPA_FACTS.md 1.7, letters kept; (d) and (h) --
   Alpa's d-costs and alias pairs -- have no counterpart here).
   Let V be the nodes with more than one surviving strategy (the others are constants p0(i)),
   A_i the surviving strategies of i, and P_ij the allowed pairs of edge (i, j): both alive and
   the edge cost finite. Variables, all binary:
     s_i[p]    for i in V, p in A_i                  (one-hot strategy choice)
     e_ij[p,q] for (i, j) in E, i, j in V, (p, q) in P_ij   (linearises s_i[p] * s_j[q])
   (a) objective, in seconds before scaling:
         min  sum_{i in V} sum_p c'_i[p] s_i[p]
            + sum_{(i,j) in E, i,j in V} sum_{(p,q) in P_ij} r_ij[p,q] e_ij[p,q]
       where c'_i folds in the edges to constant neighbours: c'_i[p] = c_i[p] + the sum over
       edges (i, j) with j constant of r_ij[p, p0(j)] (likewise for edges (j, i)); constant
       nodes and constant-constant edges go into a fixed offset.
   (b) sum_p s_i[p] = 1                                   for i in V
   (c) sum_{i in L, i in V} sum_p m_i[p] s_i[p] <= M - sum_{i in L, i const} m_i[p0(i)]
                                                          for every liveness set L, when M > 0
       (rows divided by M; rows no choice can violate are left out)
   (e) sum_{p,q} e_ij[p,q] = 1: implied by (f) and (b), so not added
   (f) sum_q e_ij[p,q] = s_i[p]                           for p in A_i
   (g) sum_p e_ij[p,q] = s_j[q]                           for q in A_j
   Alpa writes (f), (g) as <=. With (e) and binary s both versions allow exactly e_ij[p,q] =
   s_i[p] s_j[q]: (f)-(g) with <= confine the single 1 of e_ij to row p* and column q* of the
   chosen strategies, and then the equalities hold too. The equality form is the "local polytope"
   whose LP relaxation is integral on chains and trees, so the root LP usually solves the
   unbudgeted problem (TOOLCHAIN.md section 4); it also drops row (e). Measured on the 300 x 8
   budgeted instance of test_ilp.cc (CPU seconds, equality vs Alpa's form): CBC 2.3 vs 7.9 and
   2.3 vs 5.1 (two seeds); without the budget, lp_solve 1.3 vs 2.0. A missing e variable
   (forbidden pair) makes (f)-(g) unsatisfiable for that combination, which is how it is forbidden.
   Scaling: costs are seconds (1e-6 .. 1e-2), while MIP tolerances (integrality, cutoff, gap
   tests) are absolute and tuned for O(1) coefficients; a 1e-6 absolute tolerance is 1% of a
   1e-4 s cost. So the objective is divided by its largest |coefficient|, which puts every
   coefficient in [-1, 1] without changing the argmin; memory rows are divided by M likewise. */
BuiltModel build_model(const IlpProblem& p, const Reduction& r) {
  BuiltModel m;
  const std::size_t n = p.nodes.size();
  m.fixed.assign(n, -1);
  m.col_strategy.resize(n);
  m.s_col.resize(n);
  std::vector<double> obj;  // seconds, scaled at the end
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<StrategyIdx> alive;
    for (std::size_t a = 0; a < r.alive[i].size(); ++a) {
      if (r.alive[i][a]) alive.push_back(StrategyIdx(a));
    }
    if (alive.size() == 1) {
      m.fixed[i] = alive[0];
      m.offset_s += p.nodes[i].cost_s[static_cast<std::size_t>(alive[0])];
      continue;
    }
    m.col_strategy[i] = alive;
    for (StrategyIdx a : alive) {
      m.s_col[i].push_back(static_cast<std::int32_t>(obj.size()));
      obj.push_back(p.nodes[i].cost_s[static_cast<std::size_t>(a)]);
    }
  }
  // Column of the s variable of node i (not constant) and its surviving strategy a.
  auto col_of = [&](std::size_t i, StrategyIdx a) -> std::int32_t {
    const auto& strategies = m.col_strategy[i];
    const auto it = std::lower_bound(strategies.begin(), strategies.end(), a);
    return m.s_col[i][static_cast<std::size_t>(it - strategies.begin())];
  };

  // (b) one-hot
  for (std::size_t i = 0; i < n; ++i) {
    if (m.fixed[i] >= 0) continue;
    std::vector<std::pair<std::int32_t, double>> terms;
    for (std::int32_t c : m.s_col[i]) add_term(&terms, c, 1.0);
    m.mip.rows.push_back(make_row(std::move(terms), detail::RowSense::kEqual, 1.0));
  }

  for (const IlpEdge& e : p.edges) {
    const std::size_t src = static_cast<std::size_t>(e.src), dst = static_cast<std::size_t>(e.dst);
    const std::size_t k_dst = p.nodes[dst].cost_s.size();
    auto r_of = [&](StrategyIdx a, StrategyIdx b) {
      return e.cost_s[static_cast<std::size_t>(a) * k_dst + static_cast<std::size_t>(b)];
    };
    const bool src_fixed = m.fixed[src] >= 0, dst_fixed = m.fixed[dst] >= 0;
    if (src_fixed && dst_fixed) {
      m.offset_s += r_of(m.fixed[src], m.fixed[dst]);
    } else if (src_fixed) {  // (a) folded into c'_dst; reduce() left only finite pairs
      for (StrategyIdx b : m.col_strategy[dst]) {
        obj[std::size_t(col_of(dst, b))] += r_of(m.fixed[src], b);
      }
    } else if (dst_fixed) {
      for (StrategyIdx a : m.col_strategy[src]) {
        obj[std::size_t(col_of(src, a))] += r_of(a, m.fixed[dst]);
      }
    } else {
      // One row per surviving strategy of either endpoint: (f) rows for src, (g) rows for dst,
      // each starting with -s.
      std::vector<std::vector<std::pair<std::int32_t, double>>> f_rows, g_rows;
      for (StrategyIdx a : m.col_strategy[src]) f_rows.push_back({{col_of(src, a), -1.0}});
      for (StrategyIdx b : m.col_strategy[dst]) g_rows.push_back({{col_of(dst, b), -1.0}});
      for (std::size_t ia = 0; ia < m.col_strategy[src].size(); ++ia) {
        for (std::size_t ib = 0; ib < m.col_strategy[dst].size(); ++ib) {
          const double c = r_of(m.col_strategy[src][ia], m.col_strategy[dst][ib]);
          if (std::isinf(c)) continue;  // forbidden pair: no e variable
          const auto col = static_cast<std::int32_t>(obj.size());
          obj.push_back(c);  // (a) edge term
          add_term(&f_rows[ia], col, 1.0);
          add_term(&g_rows[ib], col, 1.0);
        }
      }
      // (f) sum_q e[p,q] = s_i[p]
      for (auto& t : f_rows) {
        m.mip.rows.push_back(make_row(std::move(t), detail::RowSense::kEqual, 0));
      }
      // (g) sum_p e[p,q] = s_j[q]
      for (auto& t : g_rows) {
        m.mip.rows.push_back(make_row(std::move(t), detail::RowSense::kEqual, 0));
      }
    }
  }

  // (c) memory budget, one row per liveness set, divided by M
  if (budget_active(p)) {
    const double budget = p.memory_budget_bytes;
    for (const auto& set : p.liveness) {
      double fixed_bytes = 0, min_act = 0, max_act = 0;
      std::vector<std::pair<std::int32_t, double>> terms;
      for (NodeIdx node : set) {
        const std::size_t i = static_cast<std::size_t>(node);
        if (m.fixed[i] >= 0) {
          fixed_bytes += node_memory(p.nodes[i], m.fixed[i]);
          continue;
        }
        double lo = std::numeric_limits<double>::infinity(), hi = 0;
        for (std::size_t t = 0; t < m.col_strategy[i].size(); ++t) {
          const double bytes = node_memory(p.nodes[i], m.col_strategy[i][t]);
          lo = std::min(lo, bytes), hi = std::max(hi, bytes);
          add_term(&terms, m.s_col[i][t], bytes / budget);
        }
        min_act += lo, max_act += hi;
      }
      if (fixed_bytes + min_act > budget) {
        m.infeasible = true;
        return m;
      }
      if (terms.empty() || fixed_bytes + max_act <= budget) continue;  // never binds
      m.mip.rows.push_back(make_row(std::move(terms), detail::RowSense::kLessEqual,
                                    (budget - fixed_bytes) / budget));
    }
  }

  // (a) scaling of the objective to [-1, 1]
  double largest = 0;
  for (double c : obj) largest = std::max(largest, std::fabs(c));
  m.objective_scale = largest > 0 ? largest : 1.0;
  for (double& c : obj) c /= m.objective_scale;
  m.mip.obj = std::move(obj);
  return m;
}

enum class Backend : std::uint8_t { kAuto, kLpSolve, kCbc };

// Checks a candidate solution against the original problem: every strategy allowed, memory kept,
// and the solver's objective equal to evaluate()'s. A mismatch is a bug, reported as kError.

IlpSolution solve_mip(const IlpProblem& p, Backend backend, double time_limit_s,
                      std::int64_t lp_solve_max_variables) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(p);
  if (!(time_limit_s > 0)) throw std::invalid_argument("time_limit_s must be > 0");
  const char* fixed_name = backend == Backend::kCbc ? "cbc" : "lp_solve";
  const Reduction red = reduce(p);
  if (red.infeasible) {
    IlpSolution s = infeasible_solution(fixed_name);
    s.wall_s = seconds_since(t0);
    return s;
  }
  const BuiltModel m = build_model(p, red);
  const auto columns = static_cast<std::int64_t>(m.mip.obj.size());
  if (backend == Backend::kAuto) {
    backend = columns <= lp_solve_max_variables ? Backend::kLpSolve : Backend::kCbc;
  }
  IlpSolution s;
  s.solver = backend == Backend::kCbc ? "cbc" : "lp_solve";
  s.variables = columns;
  if (m.infeasible) {
    s.status = SolveStatus::kInfeasible;
    s.wall_s = seconds_since(t0);
    return s;
  }

  detail::MipResult res;
  if (columns == 0) {  // every node constant: nothing to solve
    res.status = SolveStatus::kOptimal;
  } else {
    // Neither lp_solve 5.5 nor CBC 2.10's C API documents thread safety, and the plan search
    // runs on several threads: one MIP solve at a time in the process. Rare in practice (variable
    // elimination solves every unconstrained problem it can), so the lock costs nothing measurable.
    static std::mutex mip_mutex;
    const std::lock_guard<std::mutex> lock(mip_mutex);
    res = backend == Backend::kCbc ? detail::run_cbc(m.mip, time_limit_s)
                                   : detail::run_lp_solve(m.mip, time_limit_s);
  }
  s.status = res.status;
  if (res.status == SolveStatus::kOptimal || res.status == SolveStatus::kFeasible) {
    // Map back: constant nodes keep their strategy, the others take the s column at 1.
    s.choice.assign(p.nodes.size(), -1);
    for (std::size_t i = 0; i < p.nodes.size() && s.status != SolveStatus::kError; ++i) {
      if (m.fixed[i] >= 0) {
        s.choice[i] = m.fixed[i];
        continue;
      }
      int ones = 0;
      for (std::size_t t = 0; t < m.s_col[i].size(); ++t) {
        if (res.x[static_cast<std::size_t>(m.s_col[i][t])] > 0.5) {
          s.choice[i] = m.col_strategy[i][t];
          ++ones;
        }
      }
      if (ones != 1) {
        s.status = SolveStatus::kError;
        s.message = s.solver + ": node " + std::to_string(i) + " has " + std::to_string(ones) +
                    " strategies set in the solver's solution";
      }
    }
    if (s.status != SolveStatus::kError) {
      cross_check(p, res.objective * m.objective_scale + m.offset_s, &s);
    }
    if (s.status == SolveStatus::kError) {
      s.choice.clear();
      s.objective_s = kForbidden;
    }
  } else if (res.status == SolveStatus::kError) {
    s.message = s.solver + ": " + res.message;
  }
  s.wall_s = seconds_since(t0);
  return s;
}

}  // namespace

bool detail::budget_active(const IlpProblem& p) {
  if (!(p.memory_budget_bytes > 0)) return false;
  for (const auto& set : p.liveness) {
    if (!set.empty()) return true;
  }
  return false;
}

void detail::cross_check(const IlpProblem& p, double solver_objective_s, IlpSolution* s) {
  double abs_sum = 0;
  s->objective_s = evaluate_with_abs(p, s->choice, &abs_sum);
  char buf[256];
  if (std::isinf(s->objective_s)) {
    s->message = "solution uses a forbidden strategy or edge pair";
  } else if (!memory_feasible(p, s->choice)) {
    s->message = "solution violates a liveness-set memory budget";
  } else if (std::fabs(solver_objective_s - s->objective_s) >
             kObjectiveRtol * std::max(abs_sum, std::numeric_limits<double>::min())) {
    std::snprintf(buf, sizeof buf, "solver objective %.17g s != evaluate() %.17g s",
                  solver_objective_s, s->objective_s);
    s->message = buf;
  } else {
    return;
  }
  s->status = SolveStatus::kError;
  s->message = s->solver + ": " + s->message;
}

const char* solve_status_name(SolveStatus status) {
  switch (status) {
    case SolveStatus::kOptimal:
      return "optimal";
    case SolveStatus::kFeasible:
      return "feasible";
    case SolveStatus::kInfeasible:
      return "infeasible";
    case SolveStatus::kTimeout:
      return "timeout";
    case SolveStatus::kError:
      return "error";
  }
  return "unknown";
}

void validate(const IlpProblem& p) {
  const std::size_t n = p.nodes.size();
  if (n > static_cast<std::size_t>(std::numeric_limits<NodeIdx>::max())) {
    throw std::invalid_argument("too many nodes");
  }
  if (std::isnan(p.memory_budget_bytes)) throw std::invalid_argument("memory_budget_bytes is NaN");
  const bool memory = budget_active(p);
  std::vector<char> in_liveness(n, 0);
  for (std::size_t l = 0; l < p.liveness.size(); ++l) {
    for (NodeIdx i : p.liveness[l]) {
      if (i < 0 || static_cast<std::size_t>(i) >= n) {
        throw std::invalid_argument("liveness set " + std::to_string(l) + ": node " +
                                    std::to_string(i) + " out of range");
      }
      in_liveness[static_cast<std::size_t>(i)] = 1;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const IlpNode& node = p.nodes[i];
    const std::string where = "node " + std::to_string(i);
    if (node.cost_s.empty()) throw std::invalid_argument(where + ": no strategies");
    if (node.cost_s.size() > static_cast<std::size_t>(std::numeric_limits<StrategyIdx>::max())) {
      throw std::invalid_argument(where + ": too many strategies");
    }
    for (double c : node.cost_s) check_cost(c, where);
    if (!node.memory_bytes.empty() && node.memory_bytes.size() != node.cost_s.size()) {
      throw std::invalid_argument(where + ": memory_bytes has " +
                                  std::to_string(node.memory_bytes.size()) + " entries for " +
                                  std::to_string(node.cost_s.size()) + " strategies");
    }
    if (memory && in_liveness[i] && node.memory_bytes.empty()) {
      throw std::invalid_argument(where + ": in a liveness set under a budget but no memory_bytes");
    }
    for (double b : node.memory_bytes) {
      if (!std::isfinite(b) || b < 0) {
        throw std::invalid_argument(where + ": memory_bytes must be finite and >= 0");
      }
    }
  }
  std::set<std::pair<NodeIdx, NodeIdx>> seen;
  for (std::size_t k = 0; k < p.edges.size(); ++k) {
    const IlpEdge& e = p.edges[k];
    const std::string where = "edge " + std::to_string(k);
    if (e.src < 0 || e.dst < 0 || static_cast<std::size_t>(e.src) >= n ||
        static_cast<std::size_t>(e.dst) >= n) {
      throw std::invalid_argument(where + ": endpoint out of range");
    }
    if (e.src == e.dst) throw std::invalid_argument(where + ": self loop");
    if (!seen.insert({e.src, e.dst}).second) {
      throw std::invalid_argument(where + ": second edge " + std::to_string(e.src) + "->" +
                                  std::to_string(e.dst));
    }
    const std::size_t want = p.nodes[static_cast<std::size_t>(e.src)].cost_s.size() *
                             p.nodes[static_cast<std::size_t>(e.dst)].cost_s.size();
    if (e.cost_s.size() != want) {
      throw std::invalid_argument(where + ": cost_s has " + std::to_string(e.cost_s.size()) +
                                  " entries, expected " + std::to_string(want));
    }
    for (double c : e.cost_s) check_cost(c, where);
  }
}

double evaluate(const IlpProblem& problem, const std::vector<StrategyIdx>& choice) {
  return evaluate_with_abs(problem, choice, nullptr);
}

bool memory_feasible(const IlpProblem& problem, const std::vector<StrategyIdx>& choice) {
  check_choice(problem, choice);
  if (!(problem.memory_budget_bytes > 0)) return true;
  for (const auto& set : problem.liveness) {
    double bytes = 0;
    for (NodeIdx i : set) {
      bytes += node_memory(problem.nodes[static_cast<std::size_t>(i)],
                           choice[static_cast<std::size_t>(i)]);
    }
    if (bytes > problem.memory_budget_bytes) return false;
  }
  return true;
}

bool is_chain(const IlpProblem& problem) {
  for (const IlpEdge& e : problem.edges) {
    if (e.src - e.dst != 1 && e.dst - e.src != 1) return false;
  }
  return true;
}

/* Viterbi over the chain 0 - 1 - ... - N-1, where R_{i-1,i}(a, b) sums every edge between i-1 and
   i (either direction) and forbidden costs are +inf (inf + finite = inf, never NaN):
     V_0(b) = c_0(b)
     V_i(b) = c_i(b) + min_a [V_{i-1}(a) + R_{i-1,i}(a,b)]
   optimum = min_b V_{N-1}(b), strategies recovered through the argmin back-pointers. An infinite
   optimum means every assignment uses a forbidden choice. Ties go to the lowest index. */
IlpSolution solve_chain_dp(const IlpProblem& problem) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(problem);
  if (!is_chain(problem)) throw std::invalid_argument("solve_chain_dp: problem is not a chain");
  if (budget_active(problem)) {
    throw std::invalid_argument("solve_chain_dp: a memory budget needs a MIP solver");
  }
  const std::size_t n = problem.nodes.size();
  IlpSolution s;
  s.solver = "chain_dp";
  // Edges into node i from i-1, as (edge, whether it is stored as (i, i-1)).
  std::vector<std::vector<std::pair<const IlpEdge*, bool>>> into(n);
  for (const IlpEdge& e : problem.edges) {
    if (e.dst == e.src + 1) {
      into[static_cast<std::size_t>(e.dst)].emplace_back(&e, false);
    } else {
      into[static_cast<std::size_t>(e.src)].emplace_back(&e, true);
    }
  }
  std::vector<double> v_prev, v;
  std::vector<std::vector<StrategyIdx>> back(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = problem.nodes[i].cost_s;
    v.assign(c.size(), kForbidden);
    if (i == 0) {
      v = c;
    } else {
      back[i].assign(c.size(), 0);
      const std::size_t k_prev = v_prev.size(), k = c.size();
      for (std::size_t b = 0; b < k; ++b) {
        double best = kForbidden;
        StrategyIdx arg = 0;
        for (std::size_t a = 0; a < k_prev; ++a) {
          double r = 0;
          for (const auto& [e, reversed] : into[i]) {
            r += reversed ? e->cost_s[b * k_prev + a] : e->cost_s[a * k + b];
          }
          const double val = v_prev[a] + r;
          if (val < best) best = val, arg = StrategyIdx(a);
        }
        v[b] = c[b] + best;
        back[i][b] = arg;
      }
    }
    v_prev.swap(v);
  }
  double best = n == 0 ? 0.0 : kForbidden;
  StrategyIdx arg = 0;
  for (std::size_t b = 0; b < v_prev.size(); ++b) {
    if (v_prev[b] < best) best = v_prev[b], arg = StrategyIdx(b);
  }
  if (std::isinf(best)) {
    s.status = SolveStatus::kInfeasible;
  } else {
    s.status = SolveStatus::kOptimal;
    s.choice.assign(n, 0);
    for (std::size_t i = n; i-- > 0;) {
      s.choice[i] = arg;
      if (i > 0) arg = back[i][static_cast<std::size_t>(arg)];
    }
    cross_check(problem, best, &s);
    if (s.status == SolveStatus::kError) s.choice.clear(), s.objective_s = kForbidden;
  }
  s.wall_s = seconds_since(t0);
  return s;
}

IlpSolution solve_brute_force(const IlpProblem& problem) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(problem);
  std::int64_t count = 1;
  for (const IlpNode& node : problem.nodes) {
    count *= static_cast<std::int64_t>(node.cost_s.size());
    if (count > kBruteForceMaxAssignments) {
      throw std::invalid_argument("solve_brute_force: more than 2^22 assignments");
    }
  }
  IlpSolution s = infeasible_solution("brute_force");
  std::vector<StrategyIdx> choice(problem.nodes.size(), 0);
  // Odometer over all assignments in lexicographic order; strict < keeps the first optimum.
  for (std::int64_t step = 0; step < count; ++step) {
    const double obj = evaluate(problem, choice);
    if (obj < s.objective_s && memory_feasible(problem, choice)) {
      s.status = SolveStatus::kOptimal;
      s.objective_s = obj;
      s.choice = choice;
    }
    for (std::size_t i = choice.size(); i-- > 0;) {
      if (static_cast<std::size_t>(++choice[i]) < problem.nodes[i].cost_s.size()) break;
      choice[i] = 0;
    }
  }
  s.wall_s = seconds_since(t0);
  return s;
}

IlpSolution solve_lp_solve(const IlpProblem& problem, double time_limit_s) {
  return solve_mip(problem, Backend::kLpSolve, time_limit_s, 0);
}

IlpSolution solve_cbc(const IlpProblem& problem, double time_limit_s) {
  return solve_mip(problem, Backend::kCbc, time_limit_s, 0);
}

IlpSolution solve_ilp(const IlpProblem& problem, const IlpOptions& options) {
  validate(problem);
  const std::string& name = options.solver;
  if (name == "auto") {
    if (!budget_active(problem)) {
      if (is_chain(problem)) return solve_chain_dp(problem);
      std::optional<IlpSolution> s =
          try_variable_elimination(problem, options.elimination_max_work);
      if (s) return *s;
    }
    return solve_mip(problem, Backend::kAuto, options.time_limit_s, options.lp_solve_max_variables);
  }
  if (name == "lp_solve") return solve_lp_solve(problem, options.time_limit_s);
  if (name == "cbc") return solve_cbc(problem, options.time_limit_s);
  if (name == "chain_dp") return solve_chain_dp(problem);
  if (name == "brute_force") return solve_brute_force(problem);
  if (name == "variable_elimination") {
    std::optional<IlpSolution> s = try_variable_elimination(problem, options.elimination_max_work);
    if (s) return *s;
    IlpSolution refused;
    refused.solver = name;
    refused.message =
        "variable_elimination: the elimination order needs more work than "
        "IlpOptions::elimination_max_work (" +
        std::to_string(options.elimination_max_work) + ")";
    return refused;
  }
  throw std::invalid_argument("IlpOptions::solver: unknown solver '" + name + "'");
}

}  // namespace strata::solver
