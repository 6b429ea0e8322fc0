// Tensor helpers (tensor.h): role names, element and byte counts with overflow checks, shape text.
// num_elements is the one place shape products are formed, so every caller inherits its int64
// overflow check (decoded graphs are untrusted input). Pure C++.
#include "solver/ir/tensor.h"

#include <limits>
#include <stdexcept>

namespace strata::solver {

const char* role_name(TensorRole role) {
  switch (role) {
    case TensorRole::kParameter:
      return "parameter";
    case TensorRole::kInput:
      return "input";
    case TensorRole::kActivation:
      return "activation";
    case TensorRole::kGradient:
      return "gradient";
    case TensorRole::kOptimizerState:
      return "optimizer_state";
    case TensorRole::kLoss:
      return "loss";
  }
  return "unknown";
}

TensorRole parse_role(const std::string& text) {
  if (text == "parameter") return TensorRole::kParameter;
  if (text == "input") return TensorRole::kInput;
  if (text == "activation") return TensorRole::kActivation;
  if (text == "gradient") return TensorRole::kGradient;
  if (text == "optimizer_state") return TensorRole::kOptimizerState;
  if (text == "loss") return TensorRole::kLoss;
  throw std::invalid_argument("unknown tensor role '" + text + "'");
}

std::int64_t num_elements(const Shape& shape, const std::string& what) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) {
      throw std::invalid_argument(what + ": negative dim in shape " + shape_to_string(shape));
    }
    if (d != 0 && n > kMax / d) {
      throw std::overflow_error(what + ": element count of shape " + shape_to_string(shape) +
                                " overflows int64");
    }
    n *= d;
  }
  return n;
}

std::int64_t num_bytes(const Tensor& tensor) {
  const std::int64_t n = num_elements(tensor.shape, tensor.name);
  const auto size = static_cast<std::int64_t>(dtype_size_bytes(tensor.dtype));
  if (n > std::numeric_limits<std::int64_t>::max() / size) {
    throw std::overflow_error(tensor.name + ": byte count of shape " +
                              shape_to_string(tensor.shape) + " overflows int64");
  }
  return n * size;
}

const Shape& file_shape_of(const Tensor& tensor) {
  return tensor.file_shape.empty() ? tensor.shape : tensor.file_shape;
}

std::string shape_to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace strata::solver
