// Shape inference: the output shapes and dtypes an op kind produces from its input tensors.
// Called by Graph::add_op. Errors throw std::invalid_argument with the op name, kind and the
// offending shapes, e.g. "op h.0.mlp.fc (matmul bsk,kn->bsn): index k is 256 in input 0 but 512
// in input 1". Pure C++.
#pragma once

#include <vector>

#include "solver/ir/graph.h"

namespace strata::solver {

struct OutputSpec {
  Shape shape;
  DType dtype;
};

std::vector<OutputSpec> infer_output_specs(const Graph& graph, const Op& op);

}  // namespace strata::solver
