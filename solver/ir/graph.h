// Graph: tensors and ops in topological (execution) order, plus the model's layer structure.
// add_op runs shape inference (shape_inference.h) and creates the op's output tensors, so a Graph
// is always shape-consistent. Pure C++.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "solver/ir/op.h"
#include "solver/ir/tensor.h"

namespace strata::solver {

// A parameter used by ops in several layers that may land in different pipeline stages (GPT's
// token embedding, tied to the LM head). The owner (layers.front()) holds master copy and
// optimizer state; DESIGN.md section 3.
struct SharedParameter {
  TensorId tensor = kNoTensor;
  std::vector<int> layers;  // ascending; front() is the owner
};

struct Graph {
  std::vector<Tensor> tensors;
  std::vector<Op> ops;
  int num_layers = 0;  // layers are 0 .. num_layers-1
  std::vector<SharedParameter> shared_parameters;
  std::map<std::string, std::string> meta;  // model hyper-parameters ("kind" -> "gpt", ...)

  // Adds a tensor; throws std::invalid_argument on a duplicate or empty name, a negative or
  // overflowing shape, or a file_shape whose element count differs from the shape's.
  TensorId add_tensor(Tensor tensor);
  // Appends an op, infers its output shapes and dtypes, and creates its outputs named
  // `output_names` (default: name + ":out" for one output, name + ":out<i>" for several).
  // Throws std::invalid_argument naming the op and the shapes when inputs do not fit.
  OpId add_op(OpKind kind, const std::string& name, std::vector<TensorId> inputs, Attrs attrs,
              int layer, OpPhase phase = OpPhase::kForward,
              TensorRole output_role = TensorRole::kActivation,
              std::vector<std::string> output_names = {});

  TensorId find(const std::string& name) const;  // kNoTensor when absent
  TensorId at(const std::string& name) const;    // throws std::out_of_range naming it
  const Tensor& tensor(TensorId id) const { return tensors.at(static_cast<std::size_t>(id)); }
  Tensor& tensor(TensorId id) { return tensors.at(static_cast<std::size_t>(id)); }
  std::vector<TensorId> tensors_with_role(TensorRole role) const;  // in id order

 private:
  std::map<std::string, TensorId> by_name_;
};

}  // namespace strata::solver
