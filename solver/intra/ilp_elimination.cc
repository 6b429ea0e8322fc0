// Min-sum variable elimination for the intra-op ILP without a memory budget (ilp.h
// try_variable_elimination). Pure C++, deterministic.
//
// The objective is a sum of factors: one table c_v per node and one table r_uv per edge.
// Eliminating node w replaces the factors that mention w (its bucket) by
//
//     g_w(x_N) = min_q  sum_{f in bucket(w)} f(x_{scope(f) \ w}, x_w = q),
//     N = (union of the bucket's scopes) \ {w},
//
// and records the minimising q for every assignment x_N. Once every node is gone, the factors
// left have empty scopes and sum to the optimum; going back through the order, each node takes
// its recorded argmin given the nodes of N, all eliminated after it and so already set (bucket
// elimination, Dechter 1999). Exact for any order. The order only sets the cost: g_w has
// prod_{v in N} |S_v| entries and takes |S_w| sums per entry, so nodes are taken greedily by the
// least table (ties: lowest index), planned on the interaction graph before any arithmetic, and
// the solve is declined when the planned work sum_w |S_w| |g_w| exceeds the caller's limit. A
// chain or tree costs O(N k^2); GPT's blocks (residual skips, q/k/v branches) stay within tables
// of a few thousand entries after ilp_reduce.h's degree-2 eliminations.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include "solver/intra/ilp.h"
#include "solver/intra/ilp_private.h"

namespace strata::solver {
namespace {

// A table over `scope` (distinct nodes), row-major: the last node of the scope varies fastest.
// The problem's own node and edge tables are borrowed (not copied); eliminations own theirs.
struct Factor {
  std::vector<NodeIdx> scope;
  const double* table = nullptr;
  std::vector<double> owned;
};

// The elimination order and each step's neighbourhood N (ascending), or nullopt when the work
// would exceed max_work.
struct Order {
  std::vector<NodeIdx> nodes;
  std::vector<std::vector<NodeIdx>> neighbours;
};

// The interaction graph as one bit row per node (the cores GPT leaves have tens of nodes: a
// word or two per row).
class BitGraph {
 public:
  explicit BitGraph(std::size_t n) : n_(n), words_((n + 63) / 64), bits_(n * words_, 0) {}
  void set(std::size_t u, std::size_t v) { row(u)[v / 64] |= std::uint64_t{1} << (v % 64); }
  void clear(std::size_t u, std::size_t v) { row(u)[v / 64] &= ~(std::uint64_t{1} << (v % 64)); }
  // Calls f(v) for every neighbour v of u, ascending.
  template <class F>
  void for_each(std::size_t u, F f) const {
    const std::uint64_t* r = row(u);
    for (std::size_t w = 0; w < words_; ++w) {
      for (std::uint64_t b = r[w]; b != 0; b &= b - 1)
        f(w * 64 + static_cast<std::size_t>(__builtin_ctzll(b)));
    }
  }

 private:
  std::uint64_t* row(std::size_t u) { return bits_.data() + u * words_; }
  const std::uint64_t* row(std::size_t u) const { return bits_.data() + u * words_; }
  std::size_t n_, words_;
  std::vector<std::uint64_t> bits_;
};

std::optional<Order> plan_order(const IlpProblem& p, double max_work) {
  const std::size_t n = p.nodes.size();
  BitGraph adj(n);
  for (const IlpEdge& e : p.edges) {
    adj.set(static_cast<std::size_t>(e.src), static_cast<std::size_t>(e.dst));
    adj.set(static_cast<std::size_t>(e.dst), static_cast<std::size_t>(e.src));
  }
  const auto size_of = [&](std::size_t v) { return static_cast<double>(p.nodes[v].cost_s.size()); };
  // table[v]: the size of the table eliminating v now would build (product over its neighbours).
  std::vector<double> table(n, 1);
  for (std::size_t v = 0; v < n; ++v)
    adj.for_each(v, [&](std::size_t u) { table[v] *= size_of(u); });
  std::vector<char> alive(n, 1);
  Order order;
  double work = 0;
  std::vector<NodeIdx> nb;
  for (std::size_t step = 0; step < n; ++step) {
    std::size_t best = n;
    for (std::size_t v = 0; v < n; ++v) {
      if (alive[v] && (best == n || table[v] < table[best])) best = v;
    }
    work += table[best] * size_of(best);
    if (work > max_work) return std::nullopt;
    alive[best] = 0;
    nb.clear();
    adj.for_each(best, [&](std::size_t u) { nb.push_back(static_cast<NodeIdx>(u)); });
    for (NodeIdx u : nb) {  // the neighbours become a clique (the scope of g)
      const auto su = static_cast<std::size_t>(u);
      adj.clear(su, best);
      for (NodeIdx v : nb)
        if (v != u) adj.set(su, static_cast<std::size_t>(v));
      table[su] = 1;
      adj.for_each(su, [&](std::size_t v) { table[su] *= size_of(v); });
    }
    order.nodes.push_back(static_cast<NodeIdx>(best));
    order.neighbours.push_back(nb);
  }
  return order;
}

// One factor of a bucket as seen from the odometer over N: `step[j]` moves its offset when node
// N[j] advances, `w_stride` when w does.
struct Term {
  const double* table = nullptr;
  std::vector<std::size_t> step;
  std::size_t w_stride = 0;
  std::size_t offset = 0;
};

Term make_term(const Factor& f, NodeIdx w, const std::vector<NodeIdx>& scope_n,
               const IlpProblem& p) {
  Term t;
  t.table = f.table;
  t.step.assign(scope_n.size(), 0);
  std::size_t stride = 1;
  for (std::size_t i = f.scope.size(); i-- > 0;) {
    const NodeIdx v = f.scope[i];
    if (v == w) {
      t.w_stride = stride;
    } else {
      const auto j = std::lower_bound(scope_n.begin(), scope_n.end(), v) - scope_n.begin();
      t.step[static_cast<std::size_t>(j)] = stride;
    }
    stride *= p.nodes[static_cast<std::size_t>(v)].cost_s.size();
  }
  return t;
}

// g_w over N (Factor) and its argmin table, from the bucket's factors. Factors over w alone
// (w's own cost, eliminations that left only w) are the same for every entry of N: summed once.
Factor eliminate(const IlpProblem& p, NodeIdx w, const std::vector<NodeIdx>& scope_n,
                 const std::vector<const Factor*>& bucket, std::vector<StrategyIdx>* argmin) {
  const std::size_t kw = p.nodes[static_cast<std::size_t>(w)].cost_s.size();
  std::vector<double> base(kw, 0.0);
  std::vector<Term> terms;
  for (const Factor* f : bucket) {
    if (f->scope.size() == 1) {
      for (std::size_t q = 0; q < kw; ++q) base[q] += f->table[q];
    } else {
      terms.push_back(make_term(*f, w, scope_n, p));
    }
  }
  std::vector<std::size_t> radix;
  std::size_t entries = 1;
  for (NodeIdx v : scope_n) {
    radix.push_back(p.nodes[static_cast<std::size_t>(v)].cost_s.size());
    entries *= radix.back();
  }
  Factor g;
  g.scope = scope_n;
  g.owned.resize(entries);
  argmin->resize(entries);
  std::vector<std::size_t> x(scope_n.size(), 0);
  for (std::size_t idx = 0; idx < entries; ++idx) {
    double best = kForbidden;
    StrategyIdx arg = 0;
    for (std::size_t q = 0; q < kw; ++q) {
      double sum = base[q];
      for (const Term& t : terms) sum += t.table[t.offset + q * t.w_stride];
      if (sum < best) best = sum, arg = static_cast<StrategyIdx>(q);
    }
    g.owned[idx] = best;
    (*argmin)[idx] = arg;
    for (std::size_t j = x.size(); j-- > 0;) {  // odometer, last node fastest (row-major)
      for (Term& t : terms) t.offset += t.step[j];
      if (++x[j] < radix[j]) break;
      for (Term& t : terms) t.offset -= radix[j] * t.step[j];
      x[j] = 0;
    }
  }
  g.table = g.owned.data();
  return g;
}

}  // namespace

std::optional<IlpSolution> try_variable_elimination(const IlpProblem& problem,
                                                    std::int64_t max_work) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(problem);
  if (detail::budget_active(problem)) {
    throw std::invalid_argument("variable elimination: a memory budget needs a MIP solver");
  }
  const std::optional<Order> order = plan_order(problem, static_cast<double>(max_work));
  if (!order) return std::nullopt;
  const std::size_t n = problem.nodes.size();
  std::vector<Factor> factors;
  factors.reserve(2 * n + problem.edges.size());
  for (std::size_t v = 0; v < n; ++v)
    factors.push_back({{static_cast<NodeIdx>(v)}, problem.nodes[v].cost_s.data(), {}});
  for (const IlpEdge& e : problem.edges) factors.push_back({{e.src, e.dst}, e.cost_s.data(), {}});
  std::vector<char> used(factors.size(), 0);
  std::vector<std::vector<std::size_t>> mentions(n);  // factors per node
  const auto index_factor = [&](std::size_t f) {
    for (NodeIdx v : factors[f].scope) mentions[static_cast<std::size_t>(v)].push_back(f);
  };
  for (std::size_t f = 0; f < factors.size(); ++f) index_factor(f);
  std::vector<std::vector<StrategyIdx>> argmins(n);
  double constant = 0;
  for (std::size_t step = 0; step < n; ++step) {
    const NodeIdx w = order->nodes[step];
    std::vector<const Factor*> bucket;
    std::vector<std::size_t> taken;
    for (std::size_t f : mentions[static_cast<std::size_t>(w)]) {
      if (used[f]) continue;
      used[f] = 1;
      taken.push_back(f);
    }
    for (std::size_t f : taken) bucket.push_back(&factors[f]);
    Factor g = eliminate(problem, w, order->neighbours[step], bucket,
                         &argmins[static_cast<std::size_t>(w)]);
    for (std::size_t f : taken) std::vector<double>().swap(factors[f].owned);  // consumed
    if (g.scope.empty()) {
      constant += g.table[0];
      continue;
    }
    factors.push_back(std::move(g));  // moving keeps g.owned's buffer, so g.table stays valid
    used.push_back(0);
    index_factor(factors.size() - 1);
  }
  IlpSolution s;
  s.solver = "variable_elimination";
  if (std::isinf(constant)) {
    s.status = SolveStatus::kInfeasible;
  } else {
    s.status = SolveStatus::kOptimal;
    s.choice.assign(n, 0);
    for (std::size_t step = n; step-- > 0;) {
      const NodeIdx w = order->nodes[step];
      std::size_t idx = 0;
      for (NodeIdx v : order->neighbours[step]) {
        idx = idx * problem.nodes[static_cast<std::size_t>(v)].cost_s.size() +
              static_cast<std::size_t>(s.choice[static_cast<std::size_t>(v)]);
      }
      s.choice[static_cast<std::size_t>(w)] = argmins[static_cast<std::size_t>(w)][idx];
    }
    detail::cross_check(problem, constant, &s);
    if (s.status == SolveStatus::kError) s.choice.clear(), s.objective_s = kForbidden;
  }
  s.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

}  // namespace strata::solver
