// IntraCache (intra_cache.h). Pure C++, deterministic.
#include "solver/intra/intra_cache.h"

#include "solver/intra/resharding.h"

namespace strata::solver {

double IntraCache::Reshards::time_s(const Shape& shape, DType dtype, const Layout& from,
                                    const Layout& to) {
  if (from == to) return 0;
  const auto it = times_.find(std::tie(shape, dtype, from, to));
  if (it != times_.end()) return it->second;
  const double s = resharding_time_s(plan_resharding(shape, dtype, from, to, mesh_), links_);
  times_.emplace(std::make_tuple(shape, dtype, from, to), s);
  return s;
}

IntraCache::OpKey IntraCache::op_key(const Graph& graph, const Op& op, MeshShape mesh) {
  std::vector<std::pair<Shape, DType>> operands;
  for (TensorId t : op.inputs) operands.emplace_back(graph.tensor(t).shape, graph.tensor(t).dtype);
  // An input/output boundary, so that moving a tensor from the inputs to the outputs changes
  // the key.
  operands.emplace_back(Shape{-1}, DType::kF32);
  for (TensorId t : op.outputs) operands.emplace_back(graph.tensor(t).shape, graph.tensor(t).dtype);
  return OpKey{op.kind, op.phase, std::move(operands), mesh.d0, mesh.d1};
}

const std::vector<Strategy>& IntraCache::strategies(const Graph& graph, const Op& op,
                                                    MeshShape mesh) {
  OpKey key = op_key(graph, op, mesh);
  auto it = strategies_.find(key);
  if (it == strategies_.end()) {
    it = strategies_.emplace(std::move(key), enumerate_strategies(graph, op, mesh)).first;
  }
  return it->second;
}

const IntraCache::OpChoices& IntraCache::op_choices(
    const Graph& graph, const Op& op, MeshShape mesh, const std::string& rules,
    const std::function<OpChoices(const std::vector<Strategy>&)>& make) {
  auto key = std::make_pair(op_key(graph, op, mesh), rules);
  auto it = choices_.find(key);
  if (it == choices_.end()) {
    it = choices_.emplace(std::move(key), make(strategies(graph, op, mesh))).first;
  }
  return it->second;
}

IntraCache::Reshards& IntraCache::reshards(MeshShape mesh, const MeshAxisLinks& links) {
  const LinksKey key{mesh.d0,
                     mesh.d1,
                     links.axis[0].alpha_s,
                     links.axis[0].beta_s_per_byte,
                     links.crosses_hosts[0],
                     links.host_link_sharers[0],
                     links.axis[1].alpha_s,
                     links.axis[1].beta_s_per_byte,
                     links.crosses_hosts[1],
                     links.host_link_sharers[1]};
  auto it = reshards_.find(key);
  if (it == reshards_.end()) {
    it = reshards_.emplace(key, std::make_unique<Reshards>(mesh, links)).first;
  }
  return *it->second;
}

}  // namespace strata::solver
