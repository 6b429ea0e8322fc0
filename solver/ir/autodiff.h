// Training graph: forward graph + backward ops from one gradient rule per op kind + gradient
// clipping + optimizer update ops (DESIGN.md section 3). Backward and optimizer ops inherit the
// layer of the forward op or parameter they belong to. Pure C++.
#pragma once

#include <map>

#include "solver/ir/graph.h"
#include "solver/ir/optimizer.h"

namespace strata::solver {

struct TrainingGraph {
  Graph graph;                           // ops in execution order: forward, backward, optimizer
  TensorId loss = kNoTensor;             // scalar, role kLoss
  TensorId loss_grad = kNoTensor;        // scalar seed of the backward pass (the executor sets it)
  std::map<TensorId, TensorId> grad_of;  // parameter -> its total gradient
  std::map<TensorId, std::vector<TensorId>> state_of;  // parameter -> optimizer state (m, v | buf)
  TensorId norm_scale = kNoTensor;                     // f64 [2] {global grad norm, clip scale}
};

// Builds backward ops for every parameter that reaches `loss` and, when `optimizer` is given,
// the clipping and update ops. Throws std::invalid_argument when `loss` is not a scalar.
// Names: the seed is "grad:<loss>"; the total gradient of X is "grad:X" (a gradient passed through
// unchanged, as dx = dy of bias_add/add/position_embedding, keeps the upstream tensor's name);
// partials of a tensor read k > 1 times are "grad:X#0".."grad:X#k-1", summed by kAdd ops
// "grad_acc:X#i" at the parameter's owner layer (activations: the lowest layer among the
// partials). Backward ops are "<forward op>.grad" (matmul: ".grad_a", ".grad_b"; bias_add:
// ".grad_bias"; position_embedding: ".grad_table"). Optimizer ops: "sumsq:<p>" (output of the
// same name), "clip_grad_norm" (output "norm_scale", layer 0: it spans all layers),
// "adamw:<p>" / "sgd:<p>" with state "adam_m:<p>", "adam_v:<p>" / "momentum:<p>".
// Throws std::invalid_argument for a forward op without a gradient rule (backward or optimizer
// kinds, a matmul index summed in one operand only, gradients through layernorm statistics).
TrainingGraph build_training_graph(const Graph& forward, TensorId loss,
                                   const OptimizerSpec& optimizer);

// Gradient accumulation across micro-batches (shared by the intra-op pass and the runtime): per
// tensor, 1 when every reader is an optimizer op, or a backward add whose output is itself
// accumulated (the sums of a parameter read several times, e.g. GPT's tied wte). Such tensors
// are summed locally over the micro-batches (as partial sums where the strategy leaves them
// partial) and their collectives run once per iteration, on the last micro-batch (ALPA_FACTS
// 1.9; DESIGN.md section 4); the adds reading them run once per iteration too.
std::vector<char> gradient_accumulated(const Graph& g);

}  // namespace strata::solver
