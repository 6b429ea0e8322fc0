// Shape inference: the output shapes and dtypes an op kind produces from its input tensors.
// Called by Graph::add_op. Errors throw std::invalid_argument with the op name, kind and the
// offending shapes, e.g. "op h.0.mlp.fc (matmul bsk,kn->bsn): index k is 256 in input 0 but 512
// in input 1". Pure C++.
#pragma once

#include <string>
#include <vector>

#include "solver/ir/graph.h"

namespace strata::solver {

struct OutputSpec {
  Shape shape;
  DType dtype;
};

std::vector<OutputSpec> infer_output_specs(const Graph& graph, const Op& op);

// A kMatMul equation "lhs,rhs->out", one letter (a-z, A-Z) per dim. Letters are unique within
// an operand and every output letter occurs in an input; letters of the inputs absent from the
// output are summed. Throws std::invalid_argument naming the equation otherwise.
struct MatMulEquation {
  std::string lhs, rhs, out;
};
MatMulEquation parse_matmul_equation(const std::string& equation);

}  // namespace strata::solver
