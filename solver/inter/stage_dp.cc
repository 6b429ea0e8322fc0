// Stage DP (DESIGN.md section 5, ALPA_FACTS.md 2.2): Alpa's F(q, i, d) recurrence over layer
// ranges, sub-meshes and per-group device counts, inside a branch-and-bound over the
// (t_max, tail_max) thresholds that is exact for sum t + (B-1) max t + max tail, searched over
// micro-batch counts. Deterministic: flat arrays, fixed loop orders, strict comparisons.
// Pure C++.
#include "solver/inter/stage_dp.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "solver/inter/stage_dp_detail.h"

namespace strata::solver {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kAlwaysFits = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxDpCells = std::int64_t{1} << 28;  // F entries; guards huge clusters

struct ShapeRef {
  std::int64_t group = 0;
  SubmeshShape submesh;
  std::int64_t size = 1;    // devices
  std::int64_t stride = 1;  // of the group's digit in the flat device-count index
};

// One (logical mesh, recompute) choice of a (layers, group, sub-mesh) key.
struct Option {
  StageEstimate estimate;
  LogicalMesh mesh;
  bool recompute = false;
  std::int32_t variant = 0;
  std::int32_t order = 0;  // enumeration order within its key (last tie-breaker)
  std::int64_t max_q = 0;  // fits with q stages from it to the end iff q <= max_q
  double time() const { return estimate.time_per_microbatch_s; }
  double tail() const { return estimate.tail_s; }
};

// Everything fixed for one micro-batch count B: the candidate table (the cost cache) and the
// threshold values.
struct Problem {
  const StageDpOptions* opt = nullptr;
  std::int64_t num_layers = 0, micro_batches = 1, micro_batch_size = 1;
  std::vector<ShapeRef> shapes;                  // all groups, group by group, submesh_shapes order
  std::vector<std::vector<std::int32_t>> digit;  // digit[g][flat d] = devices of group g in d
  std::int64_t flat_size = 1, full = 0;          // number of device-count vectors; index of D
  std::vector<std::int64_t> key_begin;  // options of key = [key_begin[key], key_begin[key+1])
  std::vector<Option> options;          // valid, undominated candidates, sorted per key
  std::vector<double> times, tails;     // distinct, ascending, over options that fit
  std::int64_t max_stages = 1;          // min(L, devices, options.max_stages)

  std::int64_t num_shapes() const { return static_cast<std::int64_t>(shapes.size()); }
  std::int64_t key(std::int64_t i, std::int64_t k, std::int64_t s) const {
    return (i * (num_layers + 1) + k) * num_shapes() + s;
  }
  std::int64_t num_keys() const { return num_layers * (num_layers + 1) * num_shapes(); }
};

// (k, shape, option) of one stage on a DP path, in pipeline order.
struct PathStage {
  std::int64_t layer_begin = 0, layer_end = 0, shape = 0, option = 0;
};

// Largest in-flight count that fits, as a bound on q (see the recurrence below).
std::int64_t max_stages_to_end(const Problem& p, const StageEstimate& e, double capacity) {
  const std::int64_t b = p.micro_batches;
  auto fits = [&](std::int64_t n) { return stage_memory_bytes(e, n) <= capacity; };
  if (fits(b)) return kAlwaysFits;  // min(q, B) <= B always
  if (p.opt->schedule == "gpipe" || !fits(1)) return 0;
  // Here act > 0 and 1 <= answer < B: estimate, then settle against stage_memory_bytes itself.
  const double guess = std::floor((capacity - e.static_memory_bytes) / e.activation_memory_bytes);
  std::int64_t n =
      std::clamp(static_cast<std::int64_t>(std::min(guess, 1e15)), std::int64_t{1}, b - 1);
  while (n > 1 && !fits(n)) --n;
  while (n + 1 < b && fits(n + 1)) ++n;
  return n;
}

// Calls the cost function once per candidate (i, k, group, sub-mesh, logical mesh, recompute)
// for this micro-batch size, in that loop order. Reuses p's storage (one Problem serves every B).
void build_problem(const StageDpOptions& o, const StageCostFn& cost, std::int64_t b,
                   std::int64_t& evaluations, Problem& p) {
  p.opt = &o;
  p.flat_size = 1;
  p.full = 0;
  p.shapes.clear();
  p.options.clear();
  p.times.clear();
  p.tails.clear();
  p.num_layers = o.num_layers;
  p.micro_batches = b;
  p.micro_batch_size = o.global_batch / b;
  std::int64_t devices = 0;
  std::vector<std::int64_t> stride(o.groups.size());
  for (std::size_t g = 0; g < o.groups.size(); ++g) {
    const std::int64_t dg = o.groups[g].hosts * o.groups[g].devices_per_host;
    stride[g] = p.flat_size;
    p.full += dg * p.flat_size;
    if (p.flat_size > kMaxDpCells / (dg + 1))
      throw std::invalid_argument("stage_dp: groups: too many devices for the stage DP");
    p.flat_size *= dg + 1;
    devices += dg;
    for (const SubmeshShape& s : submesh_shapes(o.groups[g]))
      p.shapes.push_back({static_cast<std::int64_t>(g), s, s.size(), stride[g]});
  }
  p.digit.assign(o.groups.size(), std::vector<std::int32_t>(static_cast<std::size_t>(p.flat_size)));
  for (std::size_t g = 0; g < o.groups.size(); ++g) {
    const std::int64_t radix = o.groups[g].hosts * o.groups[g].devices_per_host + 1;
    for (std::int64_t d = 0; d < p.flat_size; ++d)
      p.digit[g][d] = static_cast<std::int32_t>((d / stride[g]) % radix);
  }
  p.max_stages = std::min(o.num_layers, devices);
  if (o.max_stages > 0) p.max_stages = std::min(p.max_stages, o.max_stages);

  const std::int64_t num_shapes = p.num_shapes();
  std::vector<std::vector<LogicalMesh>> meshes;
  std::size_t per_range = 0;  // candidates per layer range
  for (const ShapeRef& shape : p.shapes) {
    meshes.push_back(logical_meshes(shape.submesh));
    per_range += meshes.back().size() * (o.allow_recompute ? 2 : 1);
  }
  p.options.reserve(per_range * static_cast<std::size_t>(o.num_layers * (o.num_layers + 1) / 2));
  p.key_begin.assign(static_cast<std::size_t>(p.num_keys() + 1), 0);
  for (std::int64_t i = 0; i < p.num_layers; ++i) {
    for (std::int64_t k = 0; k <= p.num_layers; ++k) {
      for (std::int64_t s = 0; s < num_shapes; ++s) {
        const std::int64_t key = p.key(i, k, s);
        const auto begin = static_cast<std::int64_t>(p.options.size());
        p.key_begin[key] = begin;
        if (k <= i) continue;
        const ShapeRef& shape = p.shapes[s];
        const double capacity = o.groups[shape.group].memory_bytes_per_device;
        std::int32_t order = 0;
        for (const LogicalMesh& mesh : meshes[s]) {
          for (int r = 0; r < (o.allow_recompute ? 2 : 1); ++r) {
            for (std::int32_t v = 0; v < std::max(1, o.max_variants); ++v, ++order) {
              StageCandidate c{i,    k,      shape.group,        shape.submesh,
                               mesh, r == 1, p.micro_batch_size, v};
              std::optional<StageEstimate> e = cost(c);
              ++evaluations;
              if (!e) break;
              detail::check_estimate(*e, c);
              p.options.push_back({*e, mesh, r == 1, v, order, max_stages_to_end(p, *e, capacity)});
            }
          }
        }
        // Within a key: less time, then less tail, then less memory, then enumeration order.
        std::sort(p.options.begin() + begin, p.options.end(), [](const Option& a, const Option& c) {
          const double ma = a.estimate.static_memory_bytes + a.estimate.activation_memory_bytes;
          const double mc = c.estimate.static_memory_bytes + c.estimate.activation_memory_bytes;
          return std::tie(a.estimate.time_per_microbatch_s, a.estimate.tail_s, ma, a.order) <
                 std::tie(c.estimate.time_per_microbatch_s, c.estimate.tail_s, mc, c.order);
        });
        // Drop options dominated by an earlier (so no slower) one in tail, static and
        // activation memory: neither DP can ever prefer them (the first in order wins ties).
        auto kept = p.options.begin() + begin;
        for (auto it = kept; it != p.options.end(); ++it) {
          const StageEstimate& e = it->estimate;
          bool dominated = false;
          for (auto prev = p.options.begin() + begin; prev != kept && !dominated; ++prev) {
            const StageEstimate& f = prev->estimate;
            dominated = f.tail_s <= e.tail_s && f.static_memory_bytes <= e.static_memory_bytes &&
                        f.activation_memory_bytes <= e.activation_memory_bytes;
          }
          if (!dominated) *kept++ = *it;
        }
        p.options.erase(kept, p.options.end());
      }
    }
  }
  p.key_begin[p.num_keys()] = static_cast<std::int64_t>(p.options.size());
  for (const Option& op : p.options) {
    if (op.max_q == 0) continue;
    p.times.push_back(op.time());
    p.tails.push_back(op.tail());
  }
  for (auto* v : {&p.times, &p.tails}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
}

// ---------------------------------------------------------------- the recurrence
//
// Fixed micro-batch count B. Layers i..L-1 remain; d = (d_0, ..., d_{G-1}) devices remain per
// group (a flat mixed-radix index); q = stages from the current one to the end, so the current
// stage has index Q - q in a Q-stage pipeline and, under 1F1B, min(B, q) micro-batches in flight
// (GPipe: B). An option o of key (i, k, g, s) fits at q iff
//     static(o) + inflight(q) * act(o) <= capacity_g    <=>   q <= max_q(o).
// For thresholds (T, U) on stage time and tail:
//     w(i, k, g, s, q) = min { t(o) : o of the key, t(o) <= T, tail(o) <= U, q <= max_q(o) }
//     F(0, L, 0)       = 0
//     F(q, i, d)       = min over k in (i, L], g, s in S_g with n_s <= d_g of
//                          F(q - 1, k, d - n_s e_g) + w(i, k, g, s, q)              (a)
//     F*(T, U)         = min over 1 <= q <= Qmax of F(q, 0, D)                      (b)
// i.e. Alpa's F[q][i][d] (ALPA_FACTS.md 2.2) with the memory test made exact per q instead of
// through max_n_succ_stages, d per group, and the best (mesh, recompute) per key and q.
// q only matters below Qc = 1 + max { max_q(o) finite }: when Qc < Qmax the last level is a
// bucket "q >= Qc" (fed by levels Qc - 1 and Qc), so the table is L x |d| x Qc, not x Qmax.
// max_stages > 0 needs exact counts: then Qc = Qmax with no bucket.
// Cost: O(L^2 * sum_s |{d : d_g >= n_s}| * Qc) per (T, U).
//
// The same recursion with max instead of + and w = least memory overshoot
// static + inflight(q) * act - capacity gives the least over-memory slicing (failure message).
//
// Ties: strict '<' in loop order (k ascending: shorter first stage; then shapes in group and
// submesh_shapes order; in (b) fewer stages), and options sorted by (time, tail, memory,
// enumeration order) within a key.

// A growable array left uninitialised (pages are touched only where written).
template <class T>
class Buffer {
 public:
  void ensure(std::size_t n) {
    if (n > size_) {
      data_.reset(new T[n]);
      size_ = n;
    }
  }
  T& operator[](std::int64_t i) { return data_[static_cast<std::size_t>(i)]; }
  const T& operator[](std::int64_t i) const { return data_[static_cast<std::size_t>(i)]; }
  T* begin() { return data_.get(); }

 private:
  std::unique_ptr<T[]> data_;
  std::size_t size_ = 0;
};

struct Table {
  std::int64_t qc = 1;              // q levels 1..qc (plus level 0)
  bool bucket = false;              // level qc means q >= qc
  Buffer<double> w;                 // [key][q]
  Buffer<std::int64_t> wopt;        // option index achieving w
  std::vector<std::int32_t> wlast;  // [key]: w finite exactly for q <= wlast (w non-decreasing)
  Buffer<double> f;                 // [i][d][q]
  Buffer<std::int32_t> arg;         // ((k * S + s) << 1) | (from the bucket level)
  std::int64_t f_size = 0, w_size = 0;
  std::vector<std::int32_t> qlo, qhi;  // [i][d]: levels with finite f lie in [qlo, qhi]
                                       // (qlo > qhi: none)
};

void size_table(const Problem& p, std::int64_t qc, bool bucket, Table& t) {
  t.qc = qc;
  t.bucket = bucket;
  const std::int64_t qw = qc + 1;
  if ((p.num_layers + 1) * p.flat_size > kMaxDpCells / qw || p.num_keys() > kMaxDpCells / qw)
    throw std::invalid_argument("stage_dp: num_layers x devices too large for the stage DP");
  // w, wopt and arg are written before they are read (w and wopt for q <= wlast, arg wherever
  // f is finite), so they are left uninitialised; f is filled by each run.
  t.w_size = p.num_keys() * qw;
  t.f_size = (p.num_layers + 1) * p.flat_size * qw;
  t.w.ensure(static_cast<std::size_t>(t.w_size));
  t.wopt.ensure(static_cast<std::size_t>(t.w_size));
  t.wlast.assign(static_cast<std::size_t>(p.num_keys()), 0);
  t.f.ensure(static_cast<std::size_t>(t.f_size));
  t.arg.ensure(static_cast<std::size_t>(t.f_size));
  t.qlo.assign(static_cast<std::size_t>((p.num_layers + 1) * p.flat_size), 1);
  t.qhi.assign(t.qlo.size(), 0);
}

// w for the time DP under thresholds (T, U). Options are sorted by time, so the first option
// fitting at q is the fastest; fitting is a prefix 1..max_q of q, so each option serves the
// levels above those served by faster ones.
void fill_time_weights(const Problem& p, double t_max, double tail_max, Table& t) {
  const std::int64_t qw = t.qc + 1;
  for (std::int64_t key = 0; key < p.num_keys(); ++key) {
    double* row = &t.w[key * qw];
    std::int64_t* orow = &t.wopt[key * qw];
    std::int64_t served = 0;
    for (std::int64_t o = p.key_begin[key]; o < p.key_begin[key + 1] && served < t.qc; ++o) {
      const Option& op = p.options[o];
      if (op.time() > t_max) break;
      if (op.tail() > tail_max || op.max_q == 0) continue;
      const std::int64_t upto = std::min(op.max_q, t.qc);
      for (std::int64_t q = served + 1; q <= upto; ++q) {
        row[q] = op.time();
        orow[q] = o;
      }
      served = std::max(served, upto);
    }
    t.wlast[key] = static_cast<std::int32_t>(served);
  }
}

// w for the overshoot DP: least static + inflight(q) * act - capacity over the key's options.
void fill_overshoot_weights(const Problem& p, Table& t) {
  const std::int64_t qw = t.qc + 1;
  std::fill(t.w.begin(), t.w.begin() + t.w_size, kInf);
  for (std::int64_t i = 0; i < p.num_layers; ++i) {
    for (std::int64_t k = i + 1; k <= p.num_layers; ++k) {
      for (std::int64_t s = 0; s < p.num_shapes(); ++s) {
        const std::int64_t key = p.key(i, k, s);
        const double capacity = p.opt->groups[p.shapes[s].group].memory_bytes_per_device;
        for (std::int64_t q = 1; q <= t.qc; ++q) {
          const std::int64_t in_flight =
              p.opt->schedule == "gpipe" ? p.micro_batches : std::min(q, p.micro_batches);
          for (std::int64_t o = p.key_begin[key]; o < p.key_begin[key + 1]; ++o) {
            const double over = stage_memory_bytes(p.options[o].estimate, in_flight) - capacity;
            if (over < t.w[key * qw + q]) {
              t.w[key * qw + q] = over;
              t.wopt[key * qw + q] = o;
            }
          }
        }
        t.wlast[key] =
            p.key_begin[key] < p.key_begin[key + 1] ? static_cast<std::int32_t>(t.qc) : 0;
      }
    }
  }
}

// Runs (a) with + (kMax false) or max (kMax true) over the weights in t.w. Only levels that can
// be finite are visited: q - 1 within the successor's finite range, q within the key's.
template <bool kMax>
void run_recurrence(const Problem& p, Table& t) {
  const std::int64_t num_layers = p.num_layers, num_shapes = p.num_shapes();
  const std::int64_t flat = p.flat_size, qc = t.qc, qw = qc + 1;
  std::fill(t.f.begin(), t.f.begin() + t.f_size, kInf);
  std::fill(t.qlo.begin(), t.qlo.end(), 1);
  std::fill(t.qhi.begin(), t.qhi.end(), 0);
  t.f[(num_layers * flat + 0) * qw + 0] = kMax ? -kInf : 0.0;
  t.qlo[num_layers * flat + 0] = 0;
  t.qhi[num_layers * flat + 0] = 0;
  for (std::int64_t i = num_layers - 1; i >= 0; --i) {
    for (std::int64_t k = i + 1; k <= num_layers; ++k) {
      for (std::int64_t s = 0; s < num_shapes; ++s) {
        const std::int64_t key = p.key(i, k, s);
        const std::int64_t wlast = t.wlast[key];
        if (wlast == 0) continue;
        const double* row = &t.w[key * qw];
        const ShapeRef& shape = p.shapes[s];
        const std::int32_t* digit = p.digit[shape.group].data();
        const std::int64_t step = shape.size * shape.stride;
        const auto code = static_cast<std::int32_t>((k * num_shapes + s) << 1);
        const std::int32_t* slo = &t.qlo[k * flat];
        const std::int32_t* shi = &t.qhi[k * flat];
        for (std::int64_t d = step; d < flat; ++d) {
          if (digit[d] < shape.size) continue;
          const std::int64_t d2 = d - step;
          if (slo[d2] > shi[d2]) continue;
          const double* succ = &t.f[(k * flat + d2) * qw];
          double* cur = &t.f[(i * flat + d) * qw];
          std::int32_t* arg = &t.arg[(i * flat + d) * qw];
          const std::int64_t q_end = std::min<std::int64_t>(shi[d2] + 1, wlast);
          for (std::int64_t q = slo[d2] + 1; q <= q_end; ++q) {
            const double c = kMax ? std::max(succ[q - 1], row[q]) : succ[q - 1] + row[q];
            if (c < cur[q]) {
              cur[q] = c;
              arg[q] = code;
            }
          }
          if (t.bucket && shi[d2] == qc && wlast == qc) {
            const double c = kMax ? std::max(succ[qc], row[qc]) : succ[qc] + row[qc];
            if (c < cur[qc]) {
              cur[qc] = c;
              arg[qc] = code | 1;
            }
          }
        }
      }
    }
    for (std::int64_t d = 0; d < flat; ++d) {
      const double* cur = &t.f[(i * flat + d) * qw];
      std::int32_t lo = 1, hi = 0;
      for (std::int64_t q = 1; q <= qc; ++q) {
        if (cur[q] != kInf) {
          if (lo > hi) lo = static_cast<std::int32_t>(q);
          hi = static_cast<std::int32_t>(q);
        }
      }
      t.qlo[i * flat + d] = lo;
      t.qhi[i * flat + d] = hi;
    }
  }
}

// (b) and the path behind it; empty when F* is infinite.
std::vector<PathStage> best_path(const Problem& p, const Table& t, double& value) {
  const std::int64_t qw = t.qc + 1, flat = p.flat_size;
  std::int64_t best_q = 0;
  value = kInf;
  for (std::int64_t q = 1; q <= t.qc; ++q) {
    const double v = t.f[(0 * flat + p.full) * qw + q];
    if (v < value) {
      value = v;
      best_q = q;
    }
  }
  std::vector<PathStage> path;
  if (value == kInf) return path;
  std::int64_t i = 0, d = p.full, q = best_q;
  while (i < p.num_layers) {
    const std::int32_t code = t.arg[(i * flat + d) * qw + q];
    if (code < 0 || (code >> 1) >= (p.num_layers + 1) * p.num_shapes())
      throw std::logic_error("stage_dp: broken DP back-pointer");
    const std::int64_t ks = code >> 1, k = ks / p.num_shapes(), s = ks % p.num_shapes();
    path.push_back({i, k, s, t.wopt[p.key(i, k, s) * qw + q]});
    d -= p.shapes[s].size * p.shapes[s].stride;
    q = (code & 1) ? t.qc : q - 1;
    i = k;
  }
  if (d != 0 || q != 0) throw std::logic_error("stage_dp: DP path does not use every device");
  return path;
}

StagePlan path_to_plan(const Problem& p, const std::vector<PathStage>& path) {
  StagePlan plan;
  plan.micro_batches = p.micro_batches;
  for (const PathStage& ps : path) {
    const Option& op = p.options[ps.option];
    const ShapeRef& shape = p.shapes[ps.shape];
    plan.stages.push_back({ps.layer_begin, ps.layer_end, shape.group, shape.submesh, op.mesh,
                           op.recompute, p.micro_batch_size, op.variant});
    plan.estimates.push_back(op.estimate);
  }
  return plan;
}

// ---------------------------------------------------------------- thresholds (branch and bound)
//
// value(P) = sum t + (B-1) max t + max tail. Let T_1 < ... < T_n be the distinct stage times and
// U_1 < ... < U_m the distinct tails of fitting options, and F(x, y) = F*(T_x, U_y) (infinite when
// nothing fits). Then
//     opt = min over (x, y) of F(x, y) + (B-1) T_x + U_y.                                 (c)
// Proof. (<=) A plan P attaining F(x, y) has max t <= T_x and max tail <= U_y, so
// value(P) <= F(x, y) + (B-1) T_x + U_y. (>=) An optimal plan P* with max t = T_x*, max tail =
// U_y* is feasible at (x*, y*), so F(x*, y*) <= sum t(P*) and the term at (x*, y*) is <= opt.
// Alpa enumerates x ascending (t_max loop) with y fixed at infinity and stops when
// T_x * B >= best. Here the grid is covered by boxes R = [a..b] x [c..e], each with a lower bound
// flb <= F on R (F is non-increasing in x and y; flb is F at a probed point dominating R). Every
// plan whose (max t, max tail) lies in R has
//     value >= flb + (B-1) T_a + U_c =: bound(R),                                         (d)
// so R is dropped once bound(R) > best: this is the early stop t_max (B-1) + lower bound >= best,
// exact with the tail term because (d) bounds all three terms of value from below. A box is
// split by probing the DP at (x, e) (x = b for the first box, then the middle of [a..b]):
//   - infeasible: F = inf on [a..x] x [c..e] (monotone); keep [x+1..b] x [c..e];
//   - a plan P with F(x, e) = sum t(P), max t = T_m, max tail = U_u: F is constant on
//     [m..x] x [u..e] (P is feasible there and F is monotone), where every plan has value
//     >= value(P), so that box is done once P is scored; keep [a..m-1] x [c..e] and
//     [m..x] x [c..u-1] with flb = F(x, e), and [x+1..b] x [c..e] with the parent's flb.
// The root box has flb = 0 (times are >= 0). Boxes are taken in order of (bound, a, c, b, e);
// the search ends when the least bound exceeds best. With B = 1 the time term of (c) vanishes and
// F is non-increasing in x, so x = n dominates every column and the root is [n..n] x [1..m].

struct Box {
  std::int64_t a, b, c, e;
  double flb;
  double bound;
  bool operator>(const Box& o) const {
    return std::tie(bound, a, c, b, e) > std::tie(o.bound, o.a, o.c, o.b, o.e);
  }
};

struct Incumbent {
  std::optional<StagePlan> plan;
  detail::PlanKey key{kInf, 0, 0};
};

std::int64_t index_of(const std::vector<double>& v, double x) {
  return static_cast<std::int64_t>(std::lower_bound(v.begin(), v.end(), x) - v.begin());
}

// Returns whether any probe was feasible.
bool search_thresholds(const Problem& p, Table& t, Incumbent& best) {
  const auto n = static_cast<std::int64_t>(p.times.size());
  const auto m = static_cast<std::int64_t>(p.tails.size());
  if (n == 0 || m == 0) return false;
  bool feasible = false;
  const double b1 = static_cast<double>(p.micro_batches - 1);
  auto bound_of = [&](Box& r) {
    r.bound = r.flb + b1 * p.times[r.a] + p.tails[r.c];
    return r;
  };
  auto prune = [&](double bound) {
    const double v = best.key.iteration_s;
    return bound > v + detail::kTieRelTol * std::abs(v);
  };
  std::priority_queue<Box, std::vector<Box>, std::greater<Box>> boxes;
  Box root{p.micro_batches == 1 ? n - 1 : 0, n - 1, 0, m - 1, 0, 0};
  boxes.push(bound_of(root));
  bool first = true;
  while (!boxes.empty()) {
    const Box r = boxes.top();
    boxes.pop();
    if (prune(r.bound)) break;
    const std::int64_t x = first ? r.b : r.a + (r.b - r.a) / 2;
    first = false;
    fill_time_weights(p, p.times[x], p.tails[r.e], t);
    run_recurrence<false>(p, t);
    double f = 0;
    const std::vector<PathStage> path = best_path(p, t, f);
    auto push = [&](std::int64_t a, std::int64_t b, std::int64_t c, std::int64_t e, double flb) {
      if (a > b || c > e) return;
      Box child{a, b, c, e, flb, 0};
      bound_of(child);
      if (!prune(child.bound)) boxes.push(child);
    };
    push(x + 1, r.b, r.c, r.e, r.flb);
    if (path.empty()) continue;
    feasible = true;
    StagePlan plan = path_to_plan(p, path);
    if (!detail::finish_plan(*p.opt, plan))
      throw std::logic_error("stage_dp: a DP plan does not place on the hosts");
    const detail::PlanKey key{plan.iteration_s, plan.micro_batches,
                              static_cast<std::int64_t>(plan.stages.size())};
    if (detail::plan_better(key, best.key)) {
      best.key = key;
      best.plan = std::move(plan);
    }
    double max_t = 0, max_tail = 0;
    for (const PathStage& ps : path) {
      max_t = std::max(max_t, p.options[ps.option].time());
      max_tail = std::max(max_tail, p.options[ps.option].tail());
    }
    const std::int64_t mx = std::max(r.a, index_of(p.times, max_t));
    const std::int64_t mu = std::max(r.c, index_of(p.tails, max_tail));
    push(r.a, mx - 1, r.c, r.e, f);
    push(mx, x, r.c, mu - 1, f);
  }
  return feasible;
}

// Least over-memory slicing for B (the failure message); nullopt when no slicing uses every
// device at all.
struct Overshoot {
  double over_bytes = kInf;
  std::string message;
};

Overshoot least_overshoot(const Problem& p) {
  Table t;
  // Memory depends on q up to B (1F1B) or not at all (GPipe).
  const std::int64_t qmem = p.opt->schedule == "gpipe" ? 1 : p.micro_batches;
  const bool exact = p.opt->max_stages > 0 || qmem >= p.max_stages;
  size_table(p, exact ? p.max_stages : qmem, !exact, t);
  fill_overshoot_weights(p, t);
  run_recurrence<true>(p, t);
  double over = 0;
  const std::vector<PathStage> path = best_path(p, t, over);
  Overshoot result;
  if (path.empty()) return result;
  result.over_bytes = over;
  const StagePlan plan = path_to_plan(p, path);
  const auto q = static_cast<std::int64_t>(plan.stages.size());
  double worst = -kInf;
  for (std::int64_t j = 0; j < q; ++j) {
    const StageCandidate& st = plan.stages[j];
    const double cap = p.opt->groups[st.group].memory_bytes_per_device;
    const double need = stage_memory_bytes(
        plan.estimates[j], in_flight_microbatches(p.opt->schedule, j, q, p.micro_batches));
    if (need - cap > worst) {
      worst = need - cap;
      result.message = detail::memory_failure_message(j, st, need, cap);
    }
  }
  return result;
}

// Qc of the recurrence's comment.
void choose_levels(const Problem& p, Table& t) {
  if (p.opt->max_stages > 0) return size_table(p, p.max_stages, false, t);
  std::int64_t qmem = 1;
  for (const Option& op : p.options) {
    if (op.max_q != kAlwaysFits) qmem = std::max(qmem, op.max_q + 1);
  }
  if (qmem >= p.max_stages) return size_table(p, p.max_stages, false, t);
  size_table(p, qmem, true, t);
}

// The micro-batch counts counts[w], counts[w + W], ... of worker w of W, searched in order with
// the worker's own incumbent (the early stop prunes against the best plan of its own counts).
struct WorkerResult {
  Incumbent best;
  Overshoot failure;  // least over-memory slicing while the worker had no plan
  std::int64_t failure_b = 0;
  std::int64_t cost_evaluations = 0;
  std::exception_ptr error;
};

}  // namespace

StageDpResult plan_stages(const StageDpOptions& options, const std::vector<StageCostFn>& costs) {
  const auto start = std::chrono::steady_clock::now();
  detail::validate_stage_dp_options(options);
  if (costs.empty()) throw std::invalid_argument("stage_dp: no cost function");
  for (const StageCostFn& cost : costs) {
    if (!cost) throw std::invalid_argument("stage_dp: cost function is empty");
  }
  const std::vector<std::int64_t> counts = detail::micro_batch_counts(options);
  const std::size_t workers = std::min(costs.size(), std::max<std::size_t>(1, counts.size()));
  std::vector<WorkerResult> out(workers);
  std::mutex progress_mutex;
  std::size_t done = 0;
  double best_s = kInf;
  const auto work = [&](std::size_t w) {
    WorkerResult& r = out[w];
    try {
      Problem p;  // storage reused across micro-batch counts
      Table t;
      for (std::size_t i = w; i < counts.size(); i += workers) {
        const std::int64_t b = counts[i];
        build_problem(options, costs[w], b, r.cost_evaluations, p);
        choose_levels(p, t);
        const bool feasible = search_thresholds(p, t, r.best);
        if (!feasible && !r.best.plan) {
          Overshoot o = least_overshoot(p);
          if (o.over_bytes < r.failure.over_bytes) r.failure = std::move(o), r.failure_b = b;
        }
        if (options.progress) {
          const std::lock_guard<std::mutex> lock(progress_mutex);
          best_s = std::min(best_s, r.best.key.iteration_s);
          options.progress(b, ++done, counts.size(), best_s);
        }
      }
    } catch (...) {
      r.error = std::current_exception();
    }
  };
  if (workers == 1) {
    work(0);
  } else {
    std::vector<std::thread> threads;
    for (std::size_t w = 0; w < workers; ++w) threads.emplace_back(work, w);
    for (std::thread& th : threads) th.join();
  }
  // Merge as one sequential search would have ended: the best plan by plan_better (ties: fewer
  // micro-batches, then fewer stages), or the least overshoot (ties: fewer micro-batches).
  StageDpResult result;
  Incumbent best;
  Overshoot failure;
  std::int64_t failure_b = 0;
  for (std::size_t w = 0; w < workers; ++w) {
    WorkerResult& r = out[w];
    if (r.error) std::rethrow_exception(r.error);
    result.cost_evaluations += r.cost_evaluations;
    if (r.best.plan && detail::plan_better(r.best.key, best.key)) {
      best = std::move(r.best);
      result.worker = static_cast<std::int32_t>(w);
    }
    if (r.failure.over_bytes < failure.over_bytes ||
        (r.failure.over_bytes == failure.over_bytes && r.failure_b < failure_b)) {
      failure = std::move(r.failure);
      failure_b = r.failure_b;
    }
  }
  result.plan = std::move(best.plan);
  if (!result.plan) {
    result.failure.message =
        failure.over_bytes == kInf ? detail::no_slicing_message(options) : failure.message;
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

StageDpResult plan_stages(const StageDpOptions& options, const StageCostFn& cost) {
  return plan_stages(options, std::vector<StageCostFn>{cost});
}

}  // namespace strata::solver
