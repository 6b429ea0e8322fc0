// Index maps: the one description of each op kind (DESIGN.md section 3), like an einsum.
// Each operand is a string with one letter per dim. Tensors carry factored shapes (tensor.h), so
// no op kind needs a composite dim; operand_dims still reads one (a reshape, a group in
// parentheses, major index first: "bs(pad)") for generality. Strategy enumeration, lowering and
// cost all read this, so the planner and the executor cannot disagree. Pure C++.
#pragma once

#include <string>
#include <vector>

#include "solver/ir/graph.h"

namespace strata::solver {

struct IndexMap {
  std::vector<std::string> inputs;   // one per op input
  std::vector<std::string> outputs;  // one per op output
  std::string reduced;               // indices summed over: present in inputs, absent from outputs
                                     // (cross-entropy: the token indices; its v is `normalized`)
  std::string normalized;  // indices the op normalises over (layernorm h, softmax t, CE v)
  std::string gathered;    // indices looked up by value (embedding vocabulary v)
};

// The index map of `op` in `graph`. Every kind has one (optimizer ops are elementwise over the
// parameter; scalars are "").
IndexMap index_map(const Graph& graph, const Op& op);

// Splits an operand string into its dims: "bspad" -> {"b", "s", "p", "a", "d"}; a composite
// group counts as one dim: "bs(pad)" -> {"b", "s", "pad"}.
std::vector<std::string> operand_dims(const std::string& operand);

}  // namespace strata::solver
