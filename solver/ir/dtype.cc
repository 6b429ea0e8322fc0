// Element types: sizes, names and parsing (dtype.h).
// The names are part of the graph JSON and plan formats, so they never change.
// Pure C++.
#include "solver/ir/dtype.h"

#include <stdexcept>

namespace strata::solver {

std::size_t dtype_size_bytes(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return 8;
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kF16:
      return 2;
    case DType::kI32:
      return 4;
  }
  throw std::invalid_argument("dtype_size_bytes: unknown dtype " +
                              std::to_string(static_cast<int>(dtype)));
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return "f64";
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
    case DType::kI32:
      return "i32";
  }
  return "unknown";
}

DType parse_dtype(const std::string& text) {
  if (text == "f64") return DType::kF64;
  if (text == "f32") return DType::kF32;
  if (text == "bf16") return DType::kBF16;
  if (text == "f16") return DType::kF16;
  if (text == "i32") return DType::kI32;
  throw std::invalid_argument("unknown dtype '" + text + "' (expected f64, f32, bf16, f16, i32)");
}

bool is_floating(DType dtype) { return dtype != DType::kI32; }

}  // namespace strata::solver
