// Tensor: a named, shaped, typed value of the IR graph.
// Tensors are owned by Graph and referred to by TensorId. A tensor's `layer` is the model layer it
// belongs to (the unit the pipeline cuts between); parameters shared by two layers list both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "solver/ir/dtype.h"

namespace strata::solver {

using TensorId = std::int32_t;  // index into Graph::tensors
using OpId = std::int32_t;      // index into Graph::ops
using Shape = std::vector<std::int64_t>;

inline constexpr TensorId kNoTensor = -1;

enum class TensorRole : std::uint8_t {
  kParameter,       // trainable weight (master copy)
  kInput,           // fed from the dataset (tokens, targets)
  kActivation,      // produced by a forward op
  kGradient,        // produced by a backward op
  kOptimizerState,  // Adam moments, SGD momentum
  kLoss,            // the scalar the backward pass starts from
};

const char* role_name(TensorRole role);
TensorRole parse_role(const std::string& text);

struct Tensor {
  std::string name;  // unique in the graph; parameters use the model file's names
  Shape shape;       // int64 dims, row-major; {} is a scalar
  DType dtype = DType::kF32;
  TensorRole role = TensorRole::kActivation;
  int layer = 0;  // model layer (GPT: 0 embedding, 1..L blocks, L+1 head)
};

// Product of dims; throws std::overflow_error naming `what` when it does not fit int64.
std::int64_t num_elements(const Shape& shape, const std::string& what = "tensor");
std::int64_t num_bytes(const Tensor& tensor);
std::string shape_to_string(const Shape& shape);  // "[8, 128, 256]"

}  // namespace strata::solver
