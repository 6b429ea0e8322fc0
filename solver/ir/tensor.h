// Tensor: a named, shaped, typed value of the IR graph.
// Tensors are owned by Graph and referred to by TensorId. A tensor's `layer` is the model layer it
// belongs to (the unit the pipeline cuts between); parameters shared by two layers list both.
// `shape` is factored (one dim per index, e.g. c_attn [H, 3, A, D]) so index maps never need a
// composite dim; `file_shape` is the same row-major bytes as files store them ([H, 3H]).
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
  // Shape in model and checkpoint files (Hugging Face layout) when it differs from `shape`: a
  // row-major reshape with the same element count, so the bytes are identical. {} = `shape`.
  // Last, with a default, so {name, shape, dtype, role, layer} initialisers stay valid.
  Shape file_shape{};
};

// Product of dims; throws std::overflow_error naming `what` when it does not fit int64.
std::int64_t num_elements(const Shape& shape, const std::string& what = "tensor");
std::int64_t num_bytes(const Tensor& tensor);
std::string shape_to_string(const Shape& shape);  // "[8, 128, 256]"
// The shape files store `tensor` with: file_shape when set, else shape.
const Shape& file_shape_of(const Tensor& tensor);

}  // namespace strata::solver
