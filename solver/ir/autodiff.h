// Training graph: forward graph + backward ops from one gradient rule per op kind + gradient
// clipping + optimizer update ops (DESIGN.md section 3). Backward and optimizer ops inherit the
// layer of the forward op or parameter they belong to. Pure C++.
#pragma once

#include <map>

#include "solver/ir/graph.h"
#include "solver/ir/optimizer.h"

namespace strata::solver {

struct TrainingGraph {
  Graph graph;                            // ops in execution order: forward, backward, optimizer
  TensorId loss = kNoTensor;              // scalar, role kLoss
  TensorId loss_grad = kNoTensor;         // scalar seed of the backward pass (the executor sets it)
  std::map<TensorId, TensorId> grad_of;   // parameter -> its total gradient
  std::map<TensorId, std::vector<TensorId>> state_of;  // parameter -> optimizer state (m, v | buf)
  TensorId norm_scale = kNoTensor;        // f64 [2] {global grad norm, clip scale}
};

// Builds backward ops for every parameter that reaches `loss` and, when `optimizer` is given,
// the clipping and update ops. Throws std::invalid_argument when `loss` is not a scalar.
TrainingGraph build_training_graph(const Graph& forward, TensorId loss,
                                   const OptimizerSpec& optimizer);

}  // namespace strata::solver
