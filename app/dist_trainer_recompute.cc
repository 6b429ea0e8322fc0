// DistTrainer's recomputation, layer by layer (activation checkpointing, as Megatron does and as
// the planner's memory model prices it: intra_memory.cc m3 and m5).
//
// The forward action stores, per micro-batch in flight, only the stage's inputs and each layer's
// input checkpoint: a forward output that a forward op of another layer reads (GPT's residual
// stream between blocks). The backward action then runs the backward ops in order; before the
// first one that reads a forward output of layer L (not a checkpoint), it reruns layer L's
// forward ops, which read only checkpoints, stage inputs, parameters and their own layer's
// outputs. So only the layers whose outputs the backward is about to read exist at once, and
// their buffers are transient (dist_trainer_buffers.cc): the next layer's recomputation reuses
// them. Rerun ops send nothing and receive nothing; the backward's messages keep their order.
#include "app/dist_trainer.h"

namespace strata::app {

using solver::OpId;
using solver::TensorId;

namespace {

// The layer of the op that makes each output of `forward_ops`.
std::map<TensorId, int> producer_layers(const solver::Graph& g,
                                        const std::vector<OpId>& forward_ops) {
  std::map<TensorId, int> layer;
  for (OpId o : forward_ops)
    for (TensorId t : g.ops[static_cast<std::size_t>(o)].outputs)
      layer[t] = g.ops[static_cast<std::size_t>(o)].layer;
  return layer;
}

}  // namespace

std::set<TensorId> DistTrainer::layer_checkpoints() const {
  const solver::Graph& g = training_.graph;
  const std::map<TensorId, int> producer_layer = producer_layers(g, me_->forward_ops);
  std::set<TensorId> out;
  for (OpId o : me_->forward_ops) {
    const solver::Op& op = g.ops[static_cast<std::size_t>(o)];
    for (TensorId t : op.inputs) {
      const auto it = producer_layer.find(t);
      if (it != producer_layer.end() && it->second != op.layer) out.insert(t);
    }
  }
  return out;
}

std::vector<std::pair<OpId, bool>> DistTrainer::recompute_order(
    const std::set<TensorId>& checkpoints) const {
  const solver::Graph& g = training_.graph;
  const std::map<TensorId, int> producer_layer = producer_layers(g, me_->forward_ops);
  std::map<int, std::vector<OpId>> forward_of_layer;
  for (OpId o : me_->forward_ops)
    forward_of_layer[g.ops[static_cast<std::size_t>(o)].layer].push_back(o);
  std::set<int> rerun;
  std::vector<std::pair<OpId, bool>> out;
  for (OpId b : me_->backward_ops) {
    for (TensorId t : g.ops[static_cast<std::size_t>(b)].inputs) {
      const auto it = producer_layer.find(t);
      if (it == producer_layer.end() || checkpoints.count(t)) continue;
      if (!rerun.insert(it->second).second) continue;
      for (OpId f : forward_of_layer[it->second]) out.push_back({f, true});
    }
    out.push_back({b, false});
  }
  return out;
}

}  // namespace strata::app
