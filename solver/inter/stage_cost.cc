// IntraStageCostModel (stage_cost.h): GPT stage costs from cached whole-range intra-op ILPs on
// template GPTs of 1 .. max_whole_blocks + 1 blocks, extrapolated linearly in the number of
// blocks beyond that, plus the boundary transfer. Pure C++, deterministic.
#include "solver/inter/stage_cost.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "solver/cost/cost_model.h"

namespace strata::solver {
namespace {

// A stage whose least-time plan takes more than a share of the device is re-solved within it,
// shares in this order, and the first leaner plan at most kLeanSlack slower per micro-batch is
// kept (see price()).
constexpr double kLeanShares[] = {0.5, 0.75, 0.9};
constexpr double kLeanSlack = 0.02;

bool solved(const IntraResult& r) {
  return r.status == SolveStatus::kOptimal || r.status == SolveStatus::kFeasible;
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

IntraResult IntraStageCostModel::solve_range(bool embedding, std::int64_t blocks, bool head,
                                             const StageCandidate& c, double budget_bytes) {
  const Key key{
      embedding,         blocks,    head,      c.micro_batch_size, c.group,     c.submesh.hosts,
      c.submesh.devices, c.mesh.d0, c.mesh.d1, c.recompute,        budget_bytes};
  const auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  StagePlacement placement;
  placement.group = c.group;
  placement.hosts = c.submesh.hosts;
  placement.devices = c.submesh.devices;
  placement.mesh = MeshShape{c.mesh.d0, c.mesh.d1};
  IntraOptions options = base_;
  options.micro_batches = global_batch_ / c.micro_batch_size;
  options.recompute = c.recompute;
  options.memory_budget_bytes = budget_bytes;
  // Template of max(blocks, 1) blocks: layers 0 embedding, 1..n blocks, n+1 head.
  const std::int64_t n = std::max<std::int64_t>(blocks, 1);
  const std::int64_t begin = embedding ? 0 : (blocks == 0 ? n + 1 : 1);
  const std::int64_t end = head ? n + 2 : (blocks == 0 ? 1 : n + 1);
  IntraResult r = solve_intra_op(template_graph(c.micro_batch_size, n), begin, end, cluster_,
                                 placement, options);
  ++ilp_solves_;
  cache_.emplace(key, r);
  return r;
}

std::optional<IntraStageCostModel::Priced> IntraStageCostModel::price(const StageCandidate& c) {
  if (c.micro_batch_size < 1 || global_batch_ % c.micro_batch_size != 0) return std::nullopt;
  if (c.mesh.d0 < 1 || c.mesh.d1 < 1 || c.mesh.d0 * c.mesh.d1 != c.submesh.size()) {
    return std::nullopt;
  }
  if (c.group < 0 || c.group >= static_cast<std::int64_t>(cluster_.groups.size())) {
    return std::nullopt;
  }
  const std::int64_t L = model_.layers;
  if (c.layer_begin < 0 || c.layer_end > L + 2 || c.layer_begin >= c.layer_end) {
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
  // Budget 0: the device's capacity (solve_range). lo prices the K-block template (or the exact
  // range), hi the (K + 1)-block one.
  const auto estimate = [&](double lo, double hi) -> std::optional<StageEstimate> {
    StageEstimate e;
    if (exact) {
      const IntraResult r = solve_range(embed, k, head, c, lo);
      if (!solved(r)) return std::nullopt;
      e = {r.time_per_microbatch_s, r.tail_s, r.static_memory_bytes, r.activation_memory_bytes};
      return e;
    }
    const IntraResult a = solve_range(embed, K, head, c, lo);
    const IntraResult b = solve_range(embed, K + 1, head, c, hi);
    if (!solved(a) || !solved(b)) return std::nullopt;
    const double x = static_cast<double>(k - K);
    const auto lin = [x](double ya, double yb) { return ya + x * (yb - ya); };
    e.time_per_microbatch_s = lin(a.time_per_microbatch_s, b.time_per_microbatch_s);
    e.tail_s = lin(a.tail_s, b.tail_s);
    e.static_memory_bytes = lin(a.static_memory_bytes, b.static_memory_bytes);
    e.activation_memory_bytes = lin(a.activation_memory_bytes, b.activation_memory_bytes);
    // Two solves that disagree (a memory budget pushing the (K + 1)-block one to a plan cheaper
    // than the K-block one's) extrapolate below zero: no estimate rather than a negative one.
    if (e.time_per_microbatch_s < 0 || e.tail_s < 0 || e.static_memory_bytes < 0 ||
        e.activation_memory_bytes < 0) {
      return std::nullopt;
    }
    return e;
  };
  const auto memory = [](const StageEstimate& e) {
    return e.static_memory_bytes + e.activation_memory_bytes;
  };
  // The least-time plan of the stage under a memory target (with one micro-batch of
  // activations): an exact range is solved with the target as its budget; a longer one re-solves
  // both templates under budgets that leave room for the other k - K blocks. With p the budget
  // of one repeated block, the K-block template gets target - (k - K) p and the (K + 1)-block one
  // p more, so that extrapolating their memory to k blocks lands on the target when each solve
  // fills its budget. p starts at target / k (as if nothing but blocks held memory) and shrinks
  // by 0.7, up to 4 tries, while a template does not fit or the extrapolation overflows: a
  // smaller p leaves more room for what does not repeat (embedding, head, the recompute working
  // set). Returns the last estimate found (it may overflow; the DP then rejects it).
  const auto fit = [&](double target, Priced& out) {
    if (exact) {
      const std::optional<StageEstimate> t = estimate(target, target);
      if (t) out.estimate = *t, out.budget_lo = out.budget_hi = target;
      return t.has_value();
    }
    bool found = false;
    double p_block = target / static_cast<double>(k);
    for (int attempt = 0; attempt < 4; ++attempt, p_block *= 0.7) {
      const double lo = target - static_cast<double>(k - K) * p_block;
      const std::optional<StageEstimate> t = estimate(lo, lo + p_block);
      if (!t) continue;
      out.estimate = *t, out.budget_lo = lo, out.budget_hi = lo + p_block;
      found = true;
      if (memory(*t) <= target) break;
    }
    return found;
  };
  Priced p;
  std::optional<StageEstimate> e = estimate(0, 0);  // budget: the whole device
  if (!e) return std::nullopt;
  p.estimate = *e;
  bool chosen = false;
  // Under 1F1B a stage holds min(B, stages from it to the end) micro-batches of activations;
  // every later stage has a layer and a device, which bounds that count.
  const std::int64_t later_stages =
      std::min(L + 2 - c.layer_end, cluster_.total_devices() - c.submesh.size());
  const double in_flight = static_cast<double>(
      std::min<std::int64_t>(global_batch_ / c.micro_batch_size, later_stages + 1));
  const bool tight = e->static_memory_bytes + in_flight * e->activation_memory_bytes > capacity;
  for (double share : kLeanShares) {
    // The least-time plan takes most of the device, leaving too little room for the micro-batches
    // the pipeline may keep in flight (the DP's memory test, which this ILP cannot see). Prefer
    // the leanest plan within a share of the device that is at most kLeanSlack slower.
    if (capacity <= 0 || !tight || memory(*e) <= share * capacity) break;
    Priced lean;
    if (fit(share * capacity, lean) && memory(lean.estimate) <= share * capacity &&
        lean.estimate.time_per_microbatch_s <= (1 + kLeanSlack) * e->time_per_microbatch_s) {
      p = lean;
      chosen = true;
      break;
    }
  }
  if (!chosen && !exact && capacity > 0 && memory(*e) > capacity) {
    if (!fit(capacity, p)) return std::nullopt;
  }
  e = p.estimate;
  if (!head) {  // boundary activation forward + its gradient back
    const double bytes = static_cast<double>(c.micro_batch_size * model_.seq_len * model_.hidden) *
                         static_cast<double>(dtype_size_bytes(model_.dtype));
    const bool whole_hosts = c.submesh.hosts > 1 || c.submesh.devices >= group.devices_per_host;
    const LinkSpec& link = whole_hosts ? cluster_.inter_host : group.intra_host;
    const double per_sender =
        bytes / static_cast<double>(whole_hosts ? c.submesh.hosts : c.submesh.size());
    e->time_per_microbatch_s += 2 * collective_time_s(Collective::kP2P, per_sender, 2, link);
  }
  p.estimate = *e;
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
  // The solves that priced the candidate: price() decides whether the memory-budgeted ones did.
  const std::optional<Priced> priced = price(c);
  if (!priced) return std::nullopt;
  const std::int64_t L = model_.layers;
  const bool embed = c.layer_begin == 0, head = c.layer_end == L + 2;
  const std::int64_t k = std::max<std::int64_t>(
      0, std::min(c.layer_end, L + 1) - std::max<std::int64_t>(c.layer_begin, 1));
  const std::int64_t blocks = std::min(k, max_whole_blocks_ + 1);
  // The budgets price() solved under: budget_lo for the exact range or the K-block template,
  // budget_hi for the (K + 1)-block one (0: the device's capacity).
  const IntraResult r =
      solve_range(embed, blocks, head, c, k > blocks ? priced->budget_hi : priced->budget_lo);
  Piece p;
  p.result = r;
  p.graph = &template_graph(c.micro_batch_size, std::max<std::int64_t>(blocks, 1));
  p.blocks = blocks;
  p.stage_blocks = k;
  p.bytes_per_iteration = r.bytes_per_iteration;
  if (k > blocks) {  // extrapolated: blocks == K + 1
    const IntraResult a = solve_range(embed, blocks - 1, head, c, priced->budget_lo);
    const double x = static_cast<double>(k - (blocks - 1));
    std::set<std::string> names;
    for (const auto& kv : a.bytes_per_iteration) names.insert(kv.first);
    for (const auto& kv : r.bytes_per_iteration) names.insert(kv.first);
    p.bytes_per_iteration.clear();
    for (const std::string& n : names) {
      const auto at = [&n](const std::map<std::string, double>& m) {
        const auto it = m.find(n);
        return it == m.end() ? 0.0 : it->second;
      };
      const double ya = at(a.bytes_per_iteration), yb = at(r.bytes_per_iteration);
      p.bytes_per_iteration[n] = std::max(0.0, ya + x * (yb - ya));
    }
  }
  return p;
}

StageCostFn IntraStageCostModel::as_function(std::shared_ptr<IntraStageCostModel> model) {
  return [model](const StageCandidate& c) { return (*model)(c); };
}

}  // namespace strata::solver
