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

std::optional<StageEstimate> IntraStageCostModel::operator()(const StageCandidate& c) {
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
  const auto estimate = [&](double budget_per_block) -> std::optional<StageEstimate> {
    const auto budget = [&](std::int64_t blocks) {
      return budget_per_block > 0
                 ? budget_per_block * static_cast<double>(std::max<std::int64_t>(blocks, 1))
                 : 0.0;
    };
    StageEstimate e;
    if (exact) {
      const IntraResult r = solve_range(embed, k, head, c, budget(k));
      if (!solved(r)) return std::nullopt;
      e = {r.time_per_microbatch_s, r.tail_s, r.static_memory_bytes, r.activation_memory_bytes};
      return e;
    }
    const IntraResult a = solve_range(embed, K, head, c, budget(K));
    const IntraResult b = solve_range(embed, K + 1, head, c, budget(K + 1));
    if (!solved(a) || !solved(b)) return std::nullopt;
    const double x = static_cast<double>(k - K);
    const auto lin = [x](double ya, double yb) { return ya + x * (yb - ya); };
    e.time_per_microbatch_s = lin(a.time_per_microbatch_s, b.time_per_microbatch_s);
    e.tail_s = lin(a.tail_s, b.tail_s);
    e.static_memory_bytes = lin(a.static_memory_bytes, b.static_memory_bytes);
    e.activation_memory_bytes = lin(a.activation_memory_bytes, b.activation_memory_bytes);
    return e;
  };
  std::optional<StageEstimate> e = estimate(0);
  if (!e) return std::nullopt;
  if (capacity > 0 && e->static_memory_bytes + e->activation_memory_bytes > capacity) {
    e = estimate(capacity / static_cast<double>(std::max<std::int64_t>(k, 1)));
    if (!e) return std::nullopt;
  }
  if (!head) {  // boundary activation forward + its gradient back
    const double bytes = static_cast<double>(c.micro_batch_size * model_.seq_len * model_.hidden) *
                         static_cast<double>(dtype_size_bytes(model_.dtype));
    const bool whole_hosts = c.submesh.hosts > 1 || c.submesh.devices >= group.devices_per_host;
    const LinkSpec& link = whole_hosts ? cluster_.inter_host : group.intra_host;
    const double per_sender =
        bytes / static_cast<double>(whole_hosts ? c.submesh.hosts : c.submesh.size());
    e->time_per_microbatch_s += 2 * collective_time_s(Collective::kP2P, per_sender, 2, link);
  }
  return e;
}

std::string IntraStageCostModel::describe(const StageCandidate& c) {
  const std::optional<Piece> p = piece(c);
  return p ? p->result.summary : "";
}

std::optional<IntraStageCostModel::Piece> IntraStageCostModel::piece(const StageCandidate& c) {
  if (!(*this)(c)) return std::nullopt;
  const std::int64_t L = model_.layers;
  const bool embed = c.layer_begin == 0, head = c.layer_end == L + 2;
  const std::int64_t k = std::max<std::int64_t>(
      0, std::min(c.layer_end, L + 1) - std::max<std::int64_t>(c.layer_begin, 1));
  const std::int64_t blocks = std::min(k, max_whole_blocks_ + 1);
  IntraResult r = solve_range(embed, blocks, head, c, 0);
  const double capacity =
      base_.memory_budget_bytes > 0
          ? base_.memory_budget_bytes
          : cluster_.groups[static_cast<std::size_t>(c.group)].device.memory_bytes;
  const double scale = static_cast<double>(std::max<std::int64_t>(k, 1)) /
                       static_cast<double>(std::max<std::int64_t>(blocks, 1));
  double per_block = 0;  // memory budget per block; 0: the device's
  if (capacity > 0 && k > blocks &&
      scale * (r.static_memory_bytes + r.activation_memory_bytes) > capacity) {
    per_block = capacity / static_cast<double>(std::max<std::int64_t>(k, 1));
    r = solve_range(embed, blocks, head, c,
                    per_block * static_cast<double>(std::max<std::int64_t>(blocks, 1)));
  }
  Piece p;
  p.result = r;
  p.graph = &template_graph(c.micro_batch_size, std::max<std::int64_t>(blocks, 1));
  p.blocks = blocks;
  p.stage_blocks = k;
  p.bytes_per_iteration = r.bytes_per_iteration;
  if (k > blocks) {  // extrapolated: blocks == K + 1
    const IntraResult a =
        solve_range(embed, blocks - 1, head, c, per_block * static_cast<double>(blocks - 1));
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
