// Private helpers shared by the HostBackend kernel files: dtype dispatch, argument checks that
// throw std::invalid_argument naming the call and the sizes, and the Kokkos range policy.
// Rules: included only from kernels/host/*.cc (it pulls in Kokkos); nothing here allocates
// except the message of a failing check.
#pragma once

#include <Kokkos_Core.hpp>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/arg_checks.h"
#include "kernels/backend.h"

namespace strata::kernels::detail {

using HostSpace = Kokkos::DefaultHostExecutionSpace;
using HostRange = Kokkos::RangePolicy<HostSpace, Kokkos::IndexType<std::int64_t>>;

inline HostRange host_range(std::int64_t n) { return HostRange(0, n); }

// Columns per Kokkos work item in kernels that reduce over rows into per-column results:
// each item owns a block of kColBlock columns (no races), and the inner loop stays contiguous.
constexpr std::int64_t kColBlock = 256;

[[noreturn]] void throw_bad_dtype(const char* method, DType dtype);

// Argument checks: HostBackend::<method>: ... (kernels/arg_checks.h).
inline constexpr ArgChecks checks{"HostBackend"};

// Calls fn(T{}) with T = float or double; throws for any other dtype. One switch per call, so
// the kernel bodies are templates instantiated twice and never branch on the dtype inside.
template <class Fn>
inline void dispatch_float(DType dtype, const char* method, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kF64:
      fn(double{});
      return;
    default:
      throw_bad_dtype(method, dtype);
  }
}

}  // namespace strata::kernels::detail
