// IntraStageCostModel (stage_cost.h): GPT stage costs from cached whole-range intra-op ILPs on
// template GPTs of 1 .. max_whole_blocks + 1 blocks, extrapolated linearly in the number of
// blocks beyond that, plus the boundary transfer. Pure C++, deterministic.
#include "solver/inter/stage_cost.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "solver/cost/cost_model.h"
#include "solver/intra/ilp_reduce.h"

namespace strata::solver {
namespace {

bool solved(const IntraResult& r) {
  return r.status == SolveStatus::kOptimal || r.status == SolveStatus::kFeasible;
}

StageEstimate estimate_of(const IntraResult& r) {
  return {r.time_per_microbatch_s, r.tail_s, r.static_memory_bytes, r.activation_memory_bytes};
}

bool fits(const StageEstimate& e, std::int64_t in_flight, double capacity) {
  return e.static_memory_bytes + static_cast<double>(in_flight) * e.activation_memory_bytes <=
         capacity;
}

// The in-flight micro-batch counts the leaner variants are fitted to: at most `count` distinct
// values from `most` down to 1, geometrically spaced (most^((n-1-j)/(n-1)), rounded), so that a
// stage at any pipeline position has a variant fitted to within a small factor of its count.
std::vector<std::int64_t> in_flight_targets(std::int64_t most, int count) {
  std::vector<std::int64_t> targets;
  for (int j = 0; j < count; ++j) {
    const double e = count > 1 ? static_cast<double>(count - 1 - j) / (count - 1) : 1.0;
    const auto t = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::llround(std::pow(static_cast<double>(most), e))));
    if (targets.empty() || t < targets.back()) targets.push_back(t);
  }
  return targets;
}

}  // namespace

IntraStageCostModel::IntraStageCostModel(const GptConfig& model, const OptimizerSpec& optimizer,
                                         const ClusterSpec& cluster, std::int64_t global_batch,
                                         IntraOptions base, std::int64_t max_whole_blocks)
    : model_(model),
      optimizer_(optimizer),
      cluster_(cluster),
      global_batch_(global_batch),
      base_(std::move(base)),
      max_whole_blocks_(max_whole_blocks) {
  validate(model_);
  validate(cluster_);
  if (global_batch_ < 1) {
    throw std::invalid_argument("IntraStageCostModel: global_batch must be >= 1");
  }
  if (max_whole_blocks_ < 1) {
    throw std::invalid_argument("IntraStageCostModel: max_whole_blocks must be >= 1");
  }
}

void IntraStageCostModel::set_schedule(const std::string& schedule) {
  if (schedule != "1f1b" && schedule != "gpipe") {
    throw std::invalid_argument("IntraStageCostModel: schedule '" + schedule +
                                "' (expected 1f1b or gpipe)");
  }
  gpipe_ = schedule == "gpipe";
}

const TrainingGraph& IntraStageCostModel::template_graph(std::int64_t micro_batch_size,
                                                         std::int64_t blocks) {
  const auto key = std::make_pair(micro_batch_size, blocks);
  auto it = templates_.find(key);
  if (it == templates_.end()) {
    GptConfig c = model_;
    c.layers = blocks;
    Graph g = build_gpt(c, micro_batch_size);
    const TensorId loss = g.at("loss");
    it = templates_.emplace(key, build_training_graph(g, loss, optimizer_)).first;
  }
  return it->second;
}

IntraStageCostModel::RangeKey IntraStageCostModel::range_key(bool embedding, std::int64_t blocks,
                                                             bool head,
                                                             const StageCandidate& c) const {
  return {embedding,         blocks,    head,      c.micro_batch_size, c.group, c.submesh.hosts,
          c.submesh.devices, c.mesh.d0, c.mesh.d1, c.recompute};
}

const IntraStage& IntraStageCostModel::stage(const RangeKey& key, const StageCandidate& c) {
  auto it = stages_.find(key);
  if (it != stages_.end()) return it->second;
  const auto& [embedding, blocks, head, mbs, group, hosts, devices, d0, d1, recompute] = key;
  if (recompute) {  // the same stage without recomputation, re-weighted (no new enumeration)
    RangeKey plain = key;
    std::get<9>(plain) = false;
    IntraStage derived = stage(plain, c).with_recompute(true);
    return stages_.emplace(key, std::move(derived)).first->second;
  }
  StagePlacement placement;
  placement.group = group;
  placement.hosts = hosts;
  placement.devices = devices;
  placement.mesh = MeshShape{d0, d1};
  IntraOptions options = base_;
  options.micro_batches = global_batch_ / c.micro_batch_size;
  options.recompute = false;
  // Template of max(blocks, 1) blocks: layers 0 embedding, 1..n blocks, n+1 head.
  const std::int64_t n = std::max<std::int64_t>(blocks, 1);
  const std::int64_t begin = embedding ? 0 : (blocks == 0 ? n + 1 : 1);
  const std::int64_t end = head ? n + 2 : (blocks == 0 ? 1 : n + 1);
  IntraStage built(template_graph(mbs, n), begin, end, cluster_, placement, options, &intra_cache_);
  return stages_.emplace(key, std::move(built)).first->second;
}

double IntraStageCostModel::least_memory(bool embedding, std::int64_t blocks, bool head,
                                         const StageCandidate& c) {
  return stage(range_key(embedding, blocks, head, c), c).least_memory_bytes();
}

const IntraResult& IntraStageCostModel::solve_template(bool embedding, std::int64_t blocks,
                                                       bool head, const StageCandidate& c,
                                                       double lambda) {
  const RangeKey key = range_key(embedding, blocks, head, c);
  const auto it = results_.find({key, lambda});
  if (it != results_.end()) return it->second;
  IntraResult r = stage(key, c).solve_weighted(lambda, IntraStage::Detail::kCosts);
  ++ilp_solves_;
  return results_.emplace(std::make_pair(key, lambda), std::move(r)).first->second;
}

const std::vector<IntraResult>& IntraStageCostModel::frontier(bool embedding, std::int64_t blocks,
                                                              bool head, const StageCandidate& c) {
  const RangeKey key = range_key(embedding, blocks, head, c);
  auto it = frontiers_.find(key);
  if (it != frontiers_.end()) return it->second;
  // Lambda 0 is solve_template's (price() always asks it first); ~2 weighted solves per further
  // vertex (memory_frontier).
  const IntraResult& least_time = solve_template(embedding, blocks, head, c, 0);
  std::vector<IntraResult> f =
      stage(key, c).frontier(kFrontierPoints, IntraStage::Detail::kCosts, &least_time);
  ilp_solves_ += std::max<std::int64_t>(0, 2 * static_cast<std::int64_t>(f.size()) - 2);
  for (const IntraResult& r : f)
    results_.emplace(std::make_pair(key, r.memory_weight_s_per_byte), r);
  return frontiers_.emplace(key, std::move(f)).first->second;
}

// The candidate's estimate from the solves at weight lambda: the exact range (lo), or the two
// templates (lo, hi) extrapolated to the range's k blocks. False when a solve failed or the
// extrapolation goes below zero.
bool IntraStageCostModel::estimate_at(const Range& r, const StageCandidate& c, double lambda,
                                      Priced& out) {
  const std::int64_t K = max_whole_blocks_;
  if (r.blocks <= K + 1) {
    out.lo = &solve_template(r.embedding, r.blocks, r.head, c, lambda);
    out.lo_key = range_key(r.embedding, r.blocks, r.head, c);
    out.hi = nullptr;
    if (!solved(*out.lo)) return false;
    out.estimate = estimate_of(*out.lo);
    return true;
  }
  out.lo = &solve_template(r.embedding, K, r.head, c, lambda);
  out.hi = &solve_template(r.embedding, K + 1, r.head, c, lambda);
  out.lo_key = range_key(r.embedding, K, r.head, c);
  out.hi_key = range_key(r.embedding, K + 1, r.head, c);
  if (!solved(*out.lo) || !solved(*out.hi)) return false;
  const StageEstimate a = estimate_of(*out.lo), b = estimate_of(*out.hi);
  const double x = static_cast<double>(r.blocks - K);
  const auto lin = [x](double ya, double yb) { return ya + x * (yb - ya); };
  StageEstimate& e = out.estimate;
  e.time_per_microbatch_s = lin(a.time_per_microbatch_s, b.time_per_microbatch_s);
  e.tail_s = lin(a.tail_s, b.tail_s);
  e.static_memory_bytes = lin(a.static_memory_bytes, b.static_memory_bytes);
  e.activation_memory_bytes = lin(a.activation_memory_bytes, b.activation_memory_bytes);
  // Two templates planned differently at one weight can extrapolate below zero: no estimate
  // rather than a negative one.
  return e.time_per_microbatch_s >= 0 && e.tail_s >= 0 && e.static_memory_bytes >= 0 &&
         e.activation_memory_bytes >= 0;
}

// Between frontier vertices f[j - 1] and f[j] (of the template `blocks`): the minimiser of
// objective + lambda x memory at the lambda where the two tie (memory = the ILP's memory row),
// inserted at j when it is a new hull vertex the coarse frontier skipped (ilp_reduce.h
// tie_weight, new_vertex: the step of memory_frontier's parametric search). Returns whether.
bool IntraStageCostModel::refine_frontier(bool embedding, std::int64_t blocks, bool head,
                                          const StageCandidate& c, std::size_t j) {
  std::vector<IntraResult>& f = frontiers_.at(range_key(embedding, blocks, head, c));
  const auto mem = [](const IntraResult& r) {
    return r.static_memory_bytes + r.activation_memory_bytes;
  };
  const IntraResult &a = f[j - 1], &b = f[j];
  if (mem(a) <= mem(b)) return false;
  const double lambda = tie_weight(a.ilp.objective_s, mem(a), b.ilp.objective_s, mem(b));
  if (!(lambda > a.memory_weight_s_per_byte)) return false;
  const IntraResult& x = solve_template(embedding, blocks, head, c, lambda);
  if (!solved(x) ||
      !new_vertex(a.ilp.objective_s, mem(a), mem(b), lambda, x.ilp.objective_s, mem(x))) {
    return false;
  }
  f.insert(f.begin() + static_cast<std::ptrdiff_t>(j), x);
  return true;
}

// Sets `p` to the fastest plan of the range on the template's frontier whose stage memory fits
// `in_flight` micro-batches: the first fitting vertex of the coarse frontier, then the gap
// before it bisected (kRefineSteps more vertices at most, while the gap's two ends differ by
// more than kRefineGap in cost) for a faster one that still fits.
// When no vertex fits, the leanest (the DP's own memory test then rejects it). False when no
// vertex has an estimate.
bool IntraStageCostModel::leaner_variant(const Range& r, const StageCandidate& c,
                                         std::int64_t in_flight, double capacity, Priced& p) {
  const std::int64_t blocks = r.blocks <= max_whole_blocks_ + 1 ? r.blocks : max_whole_blocks_ + 1;
  const std::vector<IntraResult>& f = frontier(r.embedding, blocks, r.head, c);
  std::size_t j = 1;
  bool any = false;
  for (; j < f.size(); ++j) {
    Priced q;
    if (!estimate_at(r, c, f[j].memory_weight_s_per_byte, q)) continue;
    p = q;
    any = true;
    if (fits(q.estimate, in_flight, capacity)) break;
  }
  if (j >= f.size()) return any;  // nothing fits: p is the leanest with an estimate
  const double B = static_cast<double>(global_batch_ / c.micro_batch_size);
  const auto cost = [B](const StageEstimate& e) { return e.time_per_microbatch_s + e.tail_s / B; };
  // By default only a gap before the frontier's leanest vertex is refined: refining every gap
  // adds 30 % to the solves of a large search (GPT-39B on 64 GPUs: 27,000 -> 35,000) and plans
  // its auto rows the same; small searches (refine_every_gap) take every gap.
  const int steps = refine_every_gap_ || j + 1 == f.size() ? kRefineSteps : 0;
  for (int step = 0; step < steps; ++step) {
    // Worth refining only while the vertex that fits costs kRefineGap more than the one before
    // it (which does not): a plan in between saves at most that.
    Priced before;
    if (!estimate_at(r, c, f[j - 1].memory_weight_s_per_byte, before) ||
        cost(p.estimate) <= cost(before.estimate) * (1 + kRefineGap)) {
      break;
    }
    if (!refine_frontier(r.embedding, blocks, r.head, c, j)) break;
    Priced q;  // the new vertex f[j], between f[j - 1] (too big) and f[j + 1] (fits)
    if (estimate_at(r, c, f[j].memory_weight_s_per_byte, q) &&
        fits(q.estimate, in_flight, capacity)) {
      p = q;
    } else {
      ++j;
    }
  }
  return true;
}

std::optional<IntraStageCostModel::Priced> IntraStageCostModel::price(const StageCandidate& c) {
  if (c.micro_batch_size < 1 || global_batch_ % c.micro_batch_size != 0) return std::nullopt;
  if (c.mesh.d0 < 1 || c.mesh.d1 < 1 || c.mesh.d0 * c.mesh.d1 != c.submesh.size()) {
    return std::nullopt;
  }
  if (c.group < 0 || c.group >= static_cast<std::int64_t>(cluster_.groups.size())) {
    return std::nullopt;
  }
  // Alpa's force_batch_dim_to_mesh_dim (IntraOptions::force_batch_axis0) needs the batch to
  // divide over axis 0 of a 2-D mesh; where it does not, the ops would fall back to every
  // strategy (an ILP ~50x larger for a plan Alpa cannot express): not a candidate.
  if (base_.force_batch_axis0 && base_.restrict_to.empty() && c.mesh.d0 > 1 && c.mesh.d1 > 1 &&
      c.micro_batch_size % c.mesh.d0 != 0) {
    return std::nullopt;
  }
  const std::int64_t L = model_.layers;
  if (c.layer_begin < 0 || c.layer_end > L + 2 || c.layer_begin >= c.layer_end || c.variant < 0 ||
      c.variant >= kMaxVariants) {
    return std::nullopt;
  }
  const bool embed = c.layer_begin == 0, head = c.layer_end == L + 2;
  const std::int64_t k = std::max<std::int64_t>(
      0, std::min(c.layer_end, L + 1) - std::max<std::int64_t>(c.layer_begin, 1));
  const HostGroup& group = cluster_.groups[static_cast<std::size_t>(c.group)];
  const double capacity =
      base_.memory_budget_bytes > 0 ? base_.memory_budget_bytes : group.device.memory_bytes;
  const std::int64_t K = max_whole_blocks_;
  const bool exact = k <= K + 1;
  const Range range{embed, k, head};
  // No plan of the stage fits one micro-batch: every node at its leanest strategy overflows the
  // device (extrapolated as the cost is). Invalid, without a solve.
  const double least =
      exact ? least_memory(embed, k, head, c)
            : least_memory(embed, K, head, c) +
                  static_cast<double>(k - K) *
                      (least_memory(embed, K + 1, head, c) - least_memory(embed, K, head, c));
  if (capacity > 0 && least > capacity) return std::nullopt;
  Priced p;
  if (!estimate_at(range, c, 0, p)) {
    // The two templates' least-time plans differ so much that the extrapolation goes negative
    // (one block's plan trades per-micro-batch time for tail, the other's not): the fastest
    // frontier vertex that extrapolates stands for the least-time plan.
    if (exact) return std::nullopt;
    const std::vector<IntraResult>& f = frontier(embed, K + 1, head, c);
    bool any = false;
    for (std::size_t j = 1; j < f.size() && !any; ++j) {
      any = estimate_at(range, c, f[j].memory_weight_s_per_byte, p);
    }
    if (!any) return std::nullopt;
  }
  if (c.variant > 0) {
    // Leaner variants only where the fastest plan could fail the DP's memory test: under 1F1B a
    // stage holds min(B, stages from it to the end) micro-batches of activations, and every later
    // stage has a layer and a device; under GPipe every stage holds all B.
    const std::int64_t later_stages =
        std::min(L + 2 - c.layer_end, cluster_.total_devices() - c.submesh.size());
    const std::int64_t micro_batches = global_batch_ / c.micro_batch_size;
    const std::int64_t most_in_flight =
        gpipe_ ? micro_batches : std::min<std::int64_t>(micro_batches, later_stages + 1);
    if (capacity <= 0 || fits(p.estimate, most_in_flight, capacity)) return std::nullopt;
    const std::vector<std::int64_t> targets = in_flight_targets(most_in_flight, kMaxVariants - 1);
    if (c.variant > static_cast<std::int32_t>(targets.size())) return std::nullopt;
    const std::int64_t in_flight = targets[static_cast<std::size_t>(c.variant - 1)];
    if (!leaner_variant(range, c, in_flight, capacity, p)) return std::nullopt;
  }
  if (!head) {  // boundary activation forward + its gradient back
    const double bytes = static_cast<double>(c.micro_batch_size * model_.seq_len * model_.hidden) *
                         static_cast<double>(dtype_size_bytes(model_.dtype));
    const bool whole_hosts = c.submesh.hosts > 1 || c.submesh.devices >= group.devices_per_host;
    const LinkSpec& link = whole_hosts ? cluster_.inter_host : group.intra_host;
    const double per_sender =
        bytes / static_cast<double>(whole_hosts ? c.submesh.hosts : c.submesh.size());
    p.estimate.time_per_microbatch_s +=
        2 * collective_time_s(Collective::kP2P, per_sender, 2, link);
  }
  return p;
}

std::optional<StageEstimate> IntraStageCostModel::operator()(const StageCandidate& c) {
  const std::optional<Priced> p = price(c);
  if (!p) return std::nullopt;
  return p->estimate;
}

std::string IntraStageCostModel::describe(const StageCandidate& c) {
  const std::optional<Piece> p = piece(c);
  return p ? p->result.summary : "";
}

std::optional<IntraStageCostModel::Piece> IntraStageCostModel::piece(const StageCandidate& c) {
  const std::optional<Priced> priced = price(c);  // the solves that priced the candidate
  if (!priced) return std::nullopt;
  const std::int64_t L = model_.layers;
  const std::int64_t k = std::max<std::int64_t>(
      0, std::min(c.layer_end, L + 1) - std::max<std::int64_t>(c.layer_begin, 1));
  const std::int64_t blocks = std::min(k, max_whole_blocks_ + 1);
  const bool extrapolated = k > blocks;  // then blocks == K + 1
  Piece p;
  // The pricing solves carry costs only; the plan needs their strategies and bytes.
  const IntraResult lo = stage(priced->lo_key, c).complete(*priced->lo);
  p.result = extrapolated ? stage(priced->hi_key, c).complete(*priced->hi) : lo;
  p.graph = &template_graph(c.micro_batch_size, std::max<std::int64_t>(blocks, 1));
  p.blocks = blocks;
  p.stage_blocks = k;
  p.bytes_per_iteration = p.result.bytes_per_iteration;
  if (extrapolated) {
    const IntraResult& a = lo;
    const double x = static_cast<double>(k - (blocks - 1));
    std::set<std::string> names;
    for (const auto& kv : a.bytes_per_iteration) names.insert(kv.first);
    for (const auto& kv : p.result.bytes_per_iteration) names.insert(kv.first);
    p.bytes_per_iteration.clear();
    for (const std::string& n : names) {
      const auto at = [&n](const std::map<std::string, double>& m) {
        const auto it = m.find(n);
        return it == m.end() ? 0.0 : it->second;
      };
      const double ya = at(a.bytes_per_iteration), yb = at(p.result.bytes_per_iteration);
      p.bytes_per_iteration[n] = std::max(0.0, ya + x * (yb - ya));
    }
  }
  return p;
}

StageCostFn IntraStageCostModel::as_function(std::shared_ptr<IntraStageCostModel> model) {
  return [model](const StageCandidate& c) { return (*model)(c); };
}

}  // namespace strata::solver
