// IntraStageCostModel (stage_cost.h): GPT stage costs composed from cached per-layer intra-op
// ILPs, solved on a 3-block template training graph per micro-batch size (layers 0 embedding,
// 1..3 blocks, 4 head; the middle block 2 has a block on either side, like any block of a
// range). Pure C++, deterministic.
#include "solver/inter/stage_cost.h"

#include <stdexcept>

#include "solver/cost/cost_model.h"

namespace strata::solver {
namespace {

constexpr std::int64_t kTemplateBlocks = 3;

// Layer range of piece p in the template: embedding [0,1), middle block [2,3), head [4,5).
std::pair<std::int64_t, std::int64_t> piece_range(int piece) {
  if (piece == 0) return {0, 1};
  if (piece == 1) return {2, 3};
  return {kTemplateBlocks + 1, kTemplateBlocks + 2};
}

}  // namespace

IntraStageCostModel::IntraStageCostModel(const GptConfig& model, const OptimizerSpec& optimizer,
                                         const ClusterSpec& cluster, std::int64_t global_batch,
                                         IntraOptions base)
    : model_(model), optimizer_(optimizer), cluster_(cluster), global_batch_(global_batch),
      base_(std::move(base)) {
  validate(model_);
  validate(cluster_);
  if (global_batch_ < 1) {
    throw std::invalid_argument("IntraStageCostModel: global_batch must be >= 1");
  }
}

const TrainingGraph& IntraStageCostModel::template_graph(std::int64_t micro_batch_size) {
  auto it = templates_.find(micro_batch_size);
  if (it == templates_.end()) {
    GptConfig c = model_;
    c.layers = kTemplateBlocks;
    Graph g = build_gpt(c, micro_batch_size);
    const TensorId loss = g.at("loss");
    it = templates_.emplace(micro_batch_size, build_training_graph(g, loss, optimizer_)).first;
  }
  return it->second;
}

IntraResult IntraStageCostModel::solve_piece(int piece, const StageCandidate& c,
                                             double budget_bytes) {
  const Key key{piece, c.micro_batch_size, c.group, c.submesh.hosts, c.submesh.devices,
                c.mesh.d0, c.mesh.d1, c.recompute, budget_bytes};
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
  const auto [begin, end] = piece_range(piece);
  IntraResult r = solve_intra_op(template_graph(c.micro_batch_size), begin, end, cluster_,
                                 placement, options);
  ++ilp_solves_;
  cache_.emplace(key, r);
  return r;
}

std::optional<StageEstimate> IntraStageCostModel::operator()(const StageCandidate& c) {
  if (c.micro_batch_size < 1 || global_batch_ % c.micro_batch_size != 0) return std::nullopt;
  if (c.mesh.d0 * c.mesh.d1 != c.submesh.size() || c.mesh.d0 < 1 || c.mesh.d1 < 1) {
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
  const std::int64_t blocks = std::min(c.layer_end, L + 1) - std::max<std::int64_t>(c.layer_begin, 1);
  const std::int64_t count[3] = {embed ? 1 : 0, std::max<std::int64_t>(blocks, 0), head ? 1 : 0};
  const HostGroup& group = cluster_.groups[static_cast<std::size_t>(c.group)];
  const double capacity =
      base_.memory_budget_bytes > 0 ? base_.memory_budget_bytes : group.device.memory_bytes;

  // Unconstrained pieces first (budget 0 = the device's capacity per piece; see the header).
  IntraResult parts[3];
  double memory[3] = {0, 0, 0}, total = 0;
  for (int p = 0; p < 3; ++p) {
    if (count[p] == 0) continue;
    parts[p] = solve_piece(p, c, 0);
    if (parts[p].status != SolveStatus::kOptimal && parts[p].status != SolveStatus::kFeasible) {
      return std::nullopt;
    }
    memory[p] = static_cast<double>(count[p]) *
                (parts[p].static_memory_bytes + parts[p].activation_memory_bytes);
    total += memory[p];
  }
  if (capacity > 0 && total > capacity) {
    for (int p = 0; p < 3; ++p) {
      if (count[p] == 0) continue;
      const double share = capacity * memory[p] / total / static_cast<double>(count[p]);
      parts[p] = solve_piece(p, c, share);
      if (parts[p].status != SolveStatus::kOptimal && parts[p].status != SolveStatus::kFeasible) {
        return std::nullopt;
      }
    }
  }
  StageEstimate e;
  for (int p = 0; p < 3; ++p) {
    if (count[p] == 0) continue;
    const double n = static_cast<double>(count[p]);
    e.time_per_microbatch_s += n * parts[p].time_per_microbatch_s;
    e.tail_s += n * parts[p].tail_s;
    e.static_memory_bytes += n * parts[p].static_memory_bytes;
    e.activation_memory_bytes += n * parts[p].activation_memory_bytes;
  }
  if (!head) {  // boundary activation forward + its gradient back
    const double bytes = static_cast<double>(c.micro_batch_size * model_.seq_len * model_.hidden) *
                         static_cast<double>(dtype_size_bytes(model_.dtype));
    const bool whole_hosts = c.submesh.hosts > 1 || c.submesh.devices >= group.devices_per_host;
    const LinkSpec& link = whole_hosts ? cluster_.inter_host : group.intra_host;
    const double per_sender =
        bytes / static_cast<double>(whole_hosts ? c.submesh.hosts : c.submesh.size());
    e.time_per_microbatch_s += 2 * collective_time_s(Collective::kP2P, per_sender, 2, link);
  }
  return e;
}

StageCostFn IntraStageCostModel::as_function(std::shared_ptr<IntraStageCostModel> model) {
  return [model](const StageCandidate& c) { return (*model)(c); };
}

}  // namespace strata::solver
