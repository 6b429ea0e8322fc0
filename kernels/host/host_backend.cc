// HostBackend: construction, memory, dtype conversion and the shared dtype helpers. The
// operator kernels live beside this file, one file per family (gemm, elementwise,
// normalization, layout, loss, optimizer). Host memory is the backend's memory, so copies are
// memcpy; allocations are 64-byte aligned (a cache line, and full AVX-512 vectors).
#include "kernels/host/host_backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/host/host_common.h"

namespace strata::kernels {
namespace detail {

void throw_bad_dtype(const char* method, DType dtype) {
  checks.fail(method, "dtype ", dtype_name(dtype), " is not supported (host supports f32 and f64)");
}

}  // namespace detail

namespace {
constexpr std::size_t kAlignBytes = 64;
}  // namespace

HostBackend::HostBackend() : Backend("HostBackend") {
  if (!Kokkos::is_initialized()) {
    throw std::runtime_error(
        "HostBackend: Kokkos is not initialised (hold a Kokkos::ScopeGuard in main first)");
  }
}

void* HostBackend::allocate(std::size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment; 0 still gets a real block so
  // every allocation is distinct and release() is uniform.
  const std::size_t rounded = (bytes + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
  if (rounded < bytes) throw std::bad_alloc();  // overflow
  void* ptr = std::aligned_alloc(kAlignBytes, rounded == 0 ? kAlignBytes : rounded);
  if (ptr == nullptr) throw std::bad_alloc();
  std::memset(ptr, 0, rounded == 0 ? kAlignBytes : rounded);
  return ptr;
}

void HostBackend::release(void* ptr) noexcept { std::free(ptr); }

void HostBackend::do_copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
  do_copy(dst, host_src, bytes);
}

void HostBackend::do_copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
  do_copy(host_dst, src, bytes);
}

void HostBackend::do_copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;  // copy_from_host / copy_to_host of nothing may pass null pointers
  std::memmove(dst, src, bytes);
}

void HostBackend::do_fill_zero(void* dst, std::size_t bytes) { std::memset(dst, 0, bytes); }

namespace {
template <class From, class To>
void convert_impl(const void* src, void* dst, std::int64_t n) {
  const From* s = static_cast<const From*>(src);
  To* d = static_cast<To*>(dst);
  Kokkos::parallel_for(
      "convert", detail::host_range(n), KOKKOS_LAMBDA(std::int64_t i) { d[i] = To(s[i]); });
}
}  // namespace

void HostBackend::do_convert(DType from, const void* src, DType to, void* dst, std::int64_t n) {
  if (n == 0) return;
  const bool from_ok = from == DType::kF32 || from == DType::kF64;
  const bool to_ok = to == DType::kF32 || to == DType::kF64;
  if (!from_ok) detail::throw_bad_dtype("convert", from);
  if (!to_ok) detail::throw_bad_dtype("convert", to);
  if (from == to) {
    copy(dst, src, static_cast<std::size_t>(n) * dtype_size_bytes(from));
  } else if (from == DType::kF32) {
    convert_impl<float, double>(src, dst, n);
  } else {
    convert_impl<double, float>(src, dst, n);
  }
}

void HostBackend::synchronize() { Kokkos::fence(); }

}  // namespace strata::kernels
