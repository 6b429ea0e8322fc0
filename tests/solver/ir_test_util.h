// Helpers for the IR unit tests: tiny hand-built graphs.
// Header-only, test-only; pure C++ like solver/.
#pragma once

#include <string>
#include <vector>

#include "solver/ir/graph.h"

namespace strata::solver::test {

inline TensorId param(Graph& g, const std::string& name, Shape shape, DType dtype = DType::kF32,
                      int layer = 0) {
  return g.add_tensor({name, std::move(shape), dtype, TensorRole::kParameter, layer});
}

inline TensorId input(Graph& g, const std::string& name, Shape shape, DType dtype = DType::kI32,
                      int layer = 0) {
  return g.add_tensor({name, std::move(shape), dtype, TensorRole::kInput, layer});
}

inline TensorId activation(Graph& g, const std::string& name, Shape shape,
                           DType dtype = DType::kF32) {
  return g.add_tensor({name, std::move(shape), dtype, TensorRole::kActivation, 0});
}

// Adds an op and returns its output tensors.
inline std::vector<TensorId> apply(Graph& g, OpKind kind, const std::string& name,
                                   std::vector<TensorId> inputs, Attrs attrs = {}) {
  const OpId id = g.add_op(kind, name, std::move(inputs), std::move(attrs), 0);
  return g.ops[static_cast<std::size_t>(id)].outputs;
}

inline Shape shape_of(const Graph& g, TensorId id) { return g.tensor(id).shape; }

}  // namespace strata::solver::test
