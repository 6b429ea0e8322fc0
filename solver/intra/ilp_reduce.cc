// Exact reductions of the intra-op ILP and the frontier of memory weights (ilp_reduce.h).
// Pure C++, deterministic.
#include "solver/intra/ilp_reduce.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

namespace strata::solver {
namespace {

// Exact variable elimination before the ILP (only without a memory row, which couples every
// node): a node w with at most two neighbours is removed,
//   degree 0:        fixed at argmin_q c_w[q];
//   degree 1 (v):    c_v[a] += min_q (c_w[q] + r_vw[a][q]);
//   degree 2 (u, v): r_uv[a][b] += min_q (r_uw[a][q] + c_w[q] + r_wv[q][b])  (a new edge if none),
// lowest index first, until every node left has three or more neighbours. The solver sees the
// rest; eliminated nodes are then set, in reverse order, to the minimising q given their
// neighbours' choices (argmin ties to the lowest q). GPT's ILPs are nearly series-parallel, so
// most nodes go. The optimum and its value are unchanged (dynamic programming over the
// eliminated variables).
struct Elimination {
  NodeIdx w = 0, u = -1, v = -1;
  std::vector<StrategyIdx> best;  // [a] (degree 1) or [a * |S_v| + b] (degree 2) or [0]
};

class Eliminator {
 public:
  explicit Eliminator(const IlpProblem& p) : cost_(p.nodes.size()), adj_(p.nodes.size()) {
    for (std::size_t v = 0; v < p.nodes.size(); ++v) cost_[v] = p.nodes[v].cost_s;
    for (const IlpEdge& e : p.edges) add_edge(e.src, e.dst, e.cost_s);
  }

  // Eliminates and returns the remaining problem; keep[i] = original node of remaining node i.
  IlpProblem run(std::vector<NodeIdx>* keep) {
    std::vector<char> alive(cost_.size(), 1);
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t w = 0; w < cost_.size(); ++w) {
        if (!alive[w] || adj_[w].size() > 2) continue;
        eliminate(static_cast<NodeIdx>(w));
        alive[w] = 0;
        changed = true;
      }
    }
    IlpProblem out;
    std::vector<NodeIdx> index(cost_.size(), -1);
    for (std::size_t v = 0; v < cost_.size(); ++v) {
      if (!alive[v]) continue;
      index[v] = static_cast<NodeIdx>(keep->size());
      keep->push_back(static_cast<NodeIdx>(v));
      out.nodes.push_back({cost_[v], std::vector<double>(cost_[v].size(), 0.0)});
    }
    for (const auto& [key, m] : edges_) {
      out.edges.push_back({index[static_cast<std::size_t>(key.first)],
                           index[static_cast<std::size_t>(key.second)], m});
    }
    return out;
  }

  // Completes `choice` (remaining nodes set) for the eliminated ones.
  void back_substitute(std::vector<StrategyIdx>* choice) const {
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      const Elimination& el = *it;
      StrategyIdx q = el.best[0];
      if (el.u >= 0 && el.v < 0)
        q = el.best[static_cast<std::size_t>((*choice)[static_cast<std::size_t>(el.u)])];
      if (el.v >= 0) {
        const std::size_t nv = cost_[static_cast<std::size_t>(el.v)].size();
        q = el.best[static_cast<std::size_t>((*choice)[static_cast<std::size_t>(el.u)]) * nv +
                    static_cast<std::size_t>((*choice)[static_cast<std::size_t>(el.v)])];
      }
      (*choice)[static_cast<std::size_t>(el.w)] = q;
    }
  }

 private:
  using Key = std::pair<NodeIdx, NodeIdx>;
  // r[a][b] with a of x and b of y, whatever the stored orientation.
  double r(NodeIdx x, NodeIdx y, StrategyIdx a, StrategyIdx b) const {
    if (x < y)
      return edges_.at(
          {x, y})[static_cast<std::size_t>(a) * cost_[static_cast<std::size_t>(y)].size() +
                  static_cast<std::size_t>(b)];
    return edges_.at(
        {y, x})[static_cast<std::size_t>(b) * cost_[static_cast<std::size_t>(x)].size() +
                static_cast<std::size_t>(a)];
  }
  void add_edge(NodeIdx x, NodeIdx y, const std::vector<double>& m) {  // m is [x][y]
    const std::size_t nx = cost_[static_cast<std::size_t>(x)].size(),
                      ny = cost_[static_cast<std::size_t>(y)].size();
    const Key key = x < y ? Key{x, y} : Key{y, x};
    std::vector<double>& e = edges_[key];
    e.resize(nx * ny, 0.0);
    for (std::size_t a = 0; a < nx; ++a) {
      for (std::size_t b = 0; b < ny; ++b) e[x < y ? a * ny + b : b * nx + a] += m[a * ny + b];
    }
    adj_[static_cast<std::size_t>(x)].insert(y);
    adj_[static_cast<std::size_t>(y)].insert(x);
  }
  void drop_edge(NodeIdx x, NodeIdx y) {
    edges_.erase(x < y ? Key{x, y} : Key{y, x});
    adj_[static_cast<std::size_t>(x)].erase(y);
    adj_[static_cast<std::size_t>(y)].erase(x);
  }
  void eliminate(NodeIdx w) {
    const std::vector<double>& cw = cost_[static_cast<std::size_t>(w)];
    const std::vector<NodeIdx> nb(adj_[static_cast<std::size_t>(w)].begin(),
                                  adj_[static_cast<std::size_t>(w)].end());
    Elimination el;
    el.w = w;
    if (nb.empty()) {
      const auto it = std::min_element(cw.begin(), cw.end());
      constant_s_ += *it;
      el.best.push_back(static_cast<StrategyIdx>(it - cw.begin()));
    } else if (nb.size() == 1) {
      const NodeIdx v = nb[0];
      el.u = v;
      std::vector<double>& cv = cost_[static_cast<std::size_t>(v)];
      for (std::size_t a = 0; a < cv.size(); ++a) {
        double best = kForbidden;
        StrategyIdx arg = 0;
        for (std::size_t q = 0; q < cw.size(); ++q) {
          const double c =
              cw[q] + r(v, w, static_cast<StrategyIdx>(a), static_cast<StrategyIdx>(q));
          if (c < best) best = c, arg = static_cast<StrategyIdx>(q);
        }
        cv[a] += best;
        el.best.push_back(arg);
      }
      drop_edge(v, w);
    } else {
      const NodeIdx u = nb[0], v = nb[1];
      el.u = u, el.v = v;
      const std::size_t nu = cost_[static_cast<std::size_t>(u)].size(),
                        nv = cost_[static_cast<std::size_t>(v)].size();
      std::vector<double> m(nu * nv);
      el.best.resize(nu * nv);
      for (std::size_t a = 0; a < nu; ++a) {
        for (std::size_t b = 0; b < nv; ++b) {
          double best = kForbidden;
          StrategyIdx arg = 0;
          for (std::size_t q = 0; q < cw.size(); ++q) {
            const auto sq = static_cast<StrategyIdx>(q);
            const double c = r(u, w, static_cast<StrategyIdx>(a), sq) + cw[q] +
                             r(w, v, sq, static_cast<StrategyIdx>(b));
            if (c < best) best = c, arg = sq;
          }
          m[a * nv + b] = best;
          el.best[a * nv + b] = arg;
        }
      }
      drop_edge(u, w);
      drop_edge(w, v);
      add_edge(u, v, m);
    }
    order_.push_back(std::move(el));
  }

  std::vector<std::vector<double>> cost_;
  std::vector<std::set<NodeIdx>> adj_;
  std::map<Key, std::vector<double>> edges_;
  std::vector<Elimination> order_;
  double constant_s_ = 0;  // costs of nodes eliminated with no neighbour left

 public:
  double constant_s() const { return constant_s_; }
};

}  // namespace

// Exact reduction before solving: strategy b of node v is removed when another strategy a of v
// dominates it: c_v[a] <= c_v[b], r_vw[a][q] <= r_vw[b][q] for every edge (v, w) and strategy q
// of w, and (when the memory row is on) memory_v[a] <= memory_v[b]. Any solution using b stays
// feasible and no worse with a, so the optimum is unchanged. Among identical strategies the
// highest index stays (Alpa's tie to R). Repeated until nothing changes (removing strategies of
// w can make more of v dominated). kept[v] maps the reduced node's strategies to v's.
IlpProblem prune_dominated(const IlpProblem& full, std::vector<std::vector<StrategyIdx>>* kept) {
  const std::size_t n = full.nodes.size();
  kept->assign(n, {});
  for (std::size_t v = 0; v < n; ++v) {
    for (std::size_t a = 0; a < full.nodes[v].cost_s.size(); ++a)
      (*kept)[v].push_back(static_cast<StrategyIdx>(a));
  }
  const bool memory_on = !full.liveness.empty();
  std::vector<std::vector<std::pair<std::size_t, bool>>> incident(n);  // (edge, v is src)
  for (std::size_t e = 0; e < full.edges.size(); ++e) {
    incident[static_cast<std::size_t>(full.edges[e].src)].push_back({e, true});
    incident[static_cast<std::size_t>(full.edges[e].dst)].push_back({e, false});
  }
  const auto edge_cost = [&](std::size_t e, bool v_is_src, StrategyIdx a, StrategyIdx q) {
    const IlpEdge& edge = full.edges[e];
    const std::size_t cols = full.nodes[static_cast<std::size_t>(edge.dst)].cost_s.size();
    return v_is_src ? edge.cost_s[static_cast<std::size_t>(a) * cols + static_cast<std::size_t>(q)]
                    : edge.cost_s[static_cast<std::size_t>(q) * cols + static_cast<std::size_t>(a)];
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t v = 0; v < n; ++v) {
      std::vector<StrategyIdx>& ks = (*kept)[v];
      const IlpNode& node = full.nodes[v];
      // b dominated by a?
      const auto dominates = [&](StrategyIdx a, StrategyIdx b) {
        if (node.cost_s[static_cast<std::size_t>(a)] > node.cost_s[static_cast<std::size_t>(b)])
          return false;
        if (memory_on && node.memory_bytes[static_cast<std::size_t>(a)] >
                             node.memory_bytes[static_cast<std::size_t>(b)])
          return false;
        for (const auto& [e, is_src] : incident[v]) {
          const IlpEdge& edge = full.edges[e];
          const std::size_t w = static_cast<std::size_t>(is_src ? edge.dst : edge.src);
          for (StrategyIdx q : (*kept)[w]) {
            if (edge_cost(e, is_src, a, q) > edge_cost(e, is_src, b, q)) return false;
          }
        }
        return true;
      };
      std::vector<StrategyIdx> next;
      for (std::size_t bi = 0; bi < ks.size(); ++bi) {
        bool removed = false;
        for (std::size_t ai = 0; ai < ks.size() && !removed; ++ai) {
          if (ai == bi) continue;
          // strict domination, or identical with a later index (keeps the highest of equals)
          if (dominates(ks[ai], ks[bi]) && (!dominates(ks[bi], ks[ai]) || ai > bi)) removed = true;
        }
        if (!removed) next.push_back(ks[bi]);
      }
      if (next.size() != ks.size()) ks.swap(next), changed = true;
    }
  }
  IlpProblem p;
  p.liveness = full.liveness;
  p.memory_budget_bytes = full.memory_budget_bytes;
  p.nodes.resize(n);
  for (std::size_t v = 0; v < n; ++v) {
    for (StrategyIdx a : (*kept)[v]) {
      p.nodes[v].cost_s.push_back(full.nodes[v].cost_s[static_cast<std::size_t>(a)]);
      p.nodes[v].memory_bytes.push_back(full.nodes[v].memory_bytes[static_cast<std::size_t>(a)]);
    }
  }
  for (std::size_t e = 0; e < full.edges.size(); ++e) {
    const IlpEdge& edge = full.edges[e];
    IlpEdge r{edge.src, edge.dst, {}};
    for (StrategyIdx a : (*kept)[static_cast<std::size_t>(edge.src)]) {
      for (StrategyIdx b : (*kept)[static_cast<std::size_t>(edge.dst)])
        r.cost_s.push_back(edge_cost(e, true, a, b));
    }
    p.edges.push_back(std::move(r));
  }
  return p;
}

double total_memory_bytes(const IlpProblem& problem, const std::vector<StrategyIdx>& choice) {
  double bytes = 0;
  for (std::size_t v = 0; v < problem.nodes.size(); ++v) {
    const std::vector<double>& m = problem.nodes[v].memory_bytes;
    if (!m.empty()) bytes += m[static_cast<std::size_t>(choice[v])];
  }
  return bytes;
}

namespace {

using Clock = std::chrono::steady_clock;

bool solved(const IlpSolution& s) {
  return s.status == SolveStatus::kOptimal || s.status == SolveStatus::kFeasible;
}

// Step 2 of solve_exact on a problem whose memory row is ignored: eliminate, solve the rest,
// back-substitute. Choices index `reduced`.
IlpSolution solve_by_elimination(const IlpProblem& reduced, const IlpOptions& options) {
  IlpProblem free = reduced;
  free.liveness.clear();
  free.memory_budget_bytes = 0;
  Eliminator elim(free);
  std::vector<NodeIdx> keep;
  const IlpProblem rest = elim.run(&keep);
  IlpSolution s;
  if (rest.nodes.empty()) {
    s.status = SolveStatus::kOptimal;
    s.solver = "elimination";
    s.objective_s = 0;
  } else {
    s = solve_ilp(rest, options);
  }
  if (!solved(s)) return s;
  std::vector<StrategyIdx> full(free.nodes.size(), 0);
  for (std::size_t i = 0; i < keep.size(); ++i)
    full[static_cast<std::size_t>(keep[i])] = s.choice[i];
  elim.back_substitute(&full);
  const double rest_objective = s.objective_s + elim.constant_s();
  s.choice = full;
  s.objective_s = evaluate(free, full);
  if (std::isinf(s.objective_s)) {  // every assignment has a forbidden choice
    IlpSolution none;
    none.status = SolveStatus::kInfeasible;
    none.solver = s.solver;
    return none;
  }
  if (std::abs(s.objective_s - rest_objective) > 1e-9 * std::max(1e-6, s.objective_s)) {
    throw std::logic_error(
        "solve_exact: elimination changed the objective: " + std::to_string(rest_objective) +
        " s vs " + std::to_string(s.objective_s) + " s");
  }
  return s;
}

// A solution of the pruned problem, mapped back to `problem`'s strategy indices.
IlpSolution unprune(const IlpProblem& problem, const std::vector<std::vector<StrategyIdx>>& kept,
                    IlpSolution s, Clock::time_point start) {
  if (solved(s)) {
    for (std::size_t v = 0; v < kept.size(); ++v) {
      StrategyIdx& c = s.choice[v];
      c = kept[v][static_cast<std::size_t>(c)];
    }
    s.objective_s = evaluate(problem, s.choice);
  }
  s.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

}  // namespace

IlpSolution solve_exact(const IlpProblem& problem, const IlpOptions& options) {
  const auto start = Clock::now();
  std::vector<std::vector<StrategyIdx>> kept;
  const IlpProblem reduced = prune_dominated(problem, &kept);
  IlpSolution s = solve_by_elimination(reduced, options);
  if (!reduced.liveness.empty() && solved(s) && !memory_feasible(reduced, s.choice)) {
    s = solve_ilp(reduced, options);
    s.solver += "+budget";
  }
  return unprune(problem, kept, std::move(s), start);
}

IlpSolution solve_weighted(const IlpProblem& problem, double lambda_s_per_byte,
                           const IlpOptions& options) {
  if (!(lambda_s_per_byte >= 0) || std::isinf(lambda_s_per_byte)) {
    throw std::invalid_argument("solve_weighted: lambda must be finite and >= 0, got " +
                                std::to_string(lambda_s_per_byte));
  }
  const auto start = Clock::now();
  IlpProblem weighted = problem;
  weighted.liveness.clear();
  weighted.memory_budget_bytes = 0;
  for (IlpNode& n : weighted.nodes) {
    for (std::size_t a = 0; a < n.memory_bytes.size(); ++a)
      n.cost_s[a] += lambda_s_per_byte * n.memory_bytes[a];
  }
  std::vector<std::vector<StrategyIdx>> kept;
  const IlpProblem reduced = prune_dominated(weighted, &kept);
  return unprune(problem, kept, solve_by_elimination(reduced, options), start);
}

namespace {

// The least-cost choice among the least-memory strategies of every node (lambda -> infinity).
IlpSolution solve_leanest(const IlpProblem& problem, const IlpOptions& options) {
  const auto start = Clock::now();
  std::vector<std::vector<StrategyIdx>> kept(problem.nodes.size());
  for (std::size_t v = 0; v < problem.nodes.size(); ++v) {
    const std::vector<double>& m = problem.nodes[v].memory_bytes;
    const std::size_t k = problem.nodes[v].cost_s.size();
    const double least = m.empty() ? 0 : *std::min_element(m.begin(), m.end());
    for (std::size_t a = 0; a < k; ++a) {
      if (m.empty() || m[a] <= least) kept[v].push_back(static_cast<StrategyIdx>(a));
    }
  }
  IlpProblem restricted;
  restricted.nodes.resize(problem.nodes.size());
  for (std::size_t v = 0; v < problem.nodes.size(); ++v) {
    for (StrategyIdx a : kept[v]) {
      const auto i = static_cast<std::size_t>(a);
      restricted.nodes[v].cost_s.push_back(problem.nodes[v].cost_s[i]);
      restricted.nodes[v].memory_bytes.push_back(
          problem.nodes[v].memory_bytes.empty() ? 0.0 : problem.nodes[v].memory_bytes[i]);
    }
  }
  for (const IlpEdge& e : problem.edges) {
    IlpEdge r{e.src, e.dst, {}};
    const std::size_t cols = problem.nodes[static_cast<std::size_t>(e.dst)].cost_s.size();
    for (StrategyIdx a : kept[static_cast<std::size_t>(e.src)]) {
      for (StrategyIdx b : kept[static_cast<std::size_t>(e.dst)]) {
        r.cost_s.push_back(
            e.cost_s[static_cast<std::size_t>(a) * cols + static_cast<std::size_t>(b)]);
      }
    }
    restricted.edges.push_back(std::move(r));
  }
  std::vector<std::vector<StrategyIdx>> pruned;
  const IlpProblem reduced = prune_dominated(restricted, &pruned);
  IlpSolution s = unprune(restricted, pruned, solve_by_elimination(reduced, options), start);
  if (solved(s)) {
    for (std::size_t v = 0; v < kept.size(); ++v) {
      s.choice[v] = kept[v][static_cast<std::size_t>(s.choice[v])];
    }
    s.objective_s = evaluate(problem, s.choice);
  }
  return s;
}

FrontierPoint make_point(const IlpProblem& problem, IlpSolution s, double lambda) {
  FrontierPoint p;
  p.lambda_s_per_byte = lambda;
  p.memory_bytes = solved(s) ? total_memory_bytes(problem, s.choice) : 0;
  p.solution = std::move(s);
  return p;
}

}  // namespace

double tie_weight(double cost_a, double memory_a, double cost_b, double memory_b) {
  return (cost_b - cost_a) / (memory_a - memory_b);
}

bool new_vertex(double cost_a, double memory_a, double memory_b, double lambda, double cost_x,
                double memory_x) {
  const double on_segment = cost_a + lambda * memory_a;
  const double value = cost_x + lambda * memory_x;
  return value < on_segment - 1e-9 * std::abs(on_segment) && memory_x < memory_a &&
         memory_x > memory_b;
}

std::vector<FrontierPoint> memory_frontier(const IlpProblem& problem, const IlpOptions& options,
                                           int max_points, const IlpSolution* least_cost) {
  if (max_points < 2) throw std::invalid_argument("memory_frontier: max_points must be >= 2");
  IlpSolution first = least_cost != nullptr ? *least_cost : solve_weighted(problem, 0, options);
  if (!solved(first) || std::isinf(first.objective_s)) return {};
  std::vector<FrontierPoint> hull{make_point(problem, std::move(first), 0)};
  IlpSolution last = solve_leanest(problem, options);
  const auto cost = [](const FrontierPoint& p) { return p.solution.objective_s; };
  if (solved(last) && !std::isinf(last.objective_s)) {
    FrontierPoint lean = make_point(problem, std::move(last), 0);
    // Equal memory: the least-cost choice is already among the leanest.
    if (lean.memory_bytes < hull[0].memory_bytes * (1 - 1e-12) && cost(lean) > cost(hull[0])) {
      hull.push_back(std::move(lean));
    }
  }
  // Refine the widest gap first; a gap that yields no new vertex is final.
  std::set<std::size_t> final_gaps;  // index i: the gap between hull[i] and hull[i + 1]
  while (static_cast<int>(hull.size()) < max_points) {
    std::size_t widest = hull.size();
    double width = 0;
    for (std::size_t i = 0; i + 1 < hull.size(); ++i) {
      const double w = hull[i].memory_bytes - hull[i + 1].memory_bytes;
      if (!final_gaps.count(i) && w > width) widest = i, width = w;
    }
    if (widest == hull.size()) break;
    const FrontierPoint &a = hull[widest], &b = hull[widest + 1];
    const double lambda = tie_weight(cost(a), a.memory_bytes, cost(b), b.memory_bytes);
    IlpSolution x = solve_weighted(problem, lambda, options);
    FrontierPoint p = make_point(problem, std::move(x), lambda);
    const bool below = solved(p.solution) && new_vertex(cost(a), a.memory_bytes, b.memory_bytes,
                                                        lambda, cost(p), p.memory_bytes);
    if (!below) {
      final_gaps.insert(widest);
      continue;
    }
    hull.insert(hull.begin() + static_cast<std::ptrdiff_t>(widest) + 1, std::move(p));
    std::set<std::size_t> shifted;  // gaps after the new vertex move one place
    for (std::size_t g : final_gaps) shifted.insert(g > widest ? g + 1 : g);
    final_gaps.swap(shifted);
  }
  // Each vertex's weight interval: between its breakpoints with its neighbours.
  for (std::size_t i = 0; i < hull.size(); ++i) {
    const auto tie = [&](std::size_t j) {
      return (cost(hull[j + 1]) - cost(hull[j])) /
             (hull[j].memory_bytes - hull[j + 1].memory_bytes);
    };
    hull[i].lambda_lo = i == 0 ? 0 : tie(i - 1);
    hull[i].lambda_hi = i + 1 == hull.size() ? kForbidden : tie(i);
    if (i + 1 == hull.size() && i > 0) hull[i].lambda_s_per_byte = 2 * hull[i].lambda_lo;
  }
  return hull;
}

}  // namespace strata::solver
