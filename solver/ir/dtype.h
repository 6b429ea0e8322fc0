// Element types of IR tensors and their sizes.
// Floating types are the compute dtypes of DESIGN.md section 3; kI32 is for token ids only.
// Pure C++: no MPI, CUDA, Kokkos, HDF5 or YAML here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace strata::solver {

enum class DType : std::uint8_t { kF64, kF32, kBF16, kF16, kI32 };

// Bytes per element.
std::size_t dtype_size_bytes(DType dtype);
// "f64", "f32", "bf16", "f16", "i32".
const char* dtype_name(DType dtype);
// Inverse of dtype_name; throws std::invalid_argument naming the text.
DType parse_dtype(const std::string& text);
bool is_floating(DType dtype);

}  // namespace strata::solver
