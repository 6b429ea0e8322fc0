// FLOP and memory accounting of IR ops (used by `strata inspect`, the cost model and metrics).
// Model FLOPs count multiply-adds as 2 and exclude recomputation. Pure C++.
#pragma once

#include <cstdint>

#include "solver/ir/graph.h"

namespace strata::solver {

// FLOPs of one op as the graph's shapes give them (matmul: 2 x product of all index extents;
// elementwise and normalisations: a small constant per element, tabulated in flops.cc, e.g.
// add 1, layernorm 8, softmax 5, gelu 8, adamw 12; embedding and split/merge heads 0).
double op_flops(const Graph& graph, const Op& op);

// Bytes an op streams through memory beyond reading its inputs and writing its outputs: the
// fused attention's score blocks, which live in a workspace rather than in the graph (flops.cc
// counts the passes). 0 for every other kind.
double op_scratch_bytes(const Graph& graph, const Op& op);

// Sum over ops of `phase`.
double graph_flops(const Graph& graph, OpPhase phase);

// GPT model FLOPs per iteration of ALPA_FACTS.md 4.1 (forward + backward, no recomputation):
//   72 * B * S * H^2 * L * (1 + S / (6H)) + 6 * B * S * H * V
double gpt_model_flops(std::int64_t batch, std::int64_t seq, std::int64_t hidden,
                       std::int64_t layers, std::int64_t vocab);

// Bytes of all tensors with `role`.
std::int64_t bytes_with_role(const Graph& graph, TensorRole role);

}  // namespace strata::solver
