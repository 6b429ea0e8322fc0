// HostBackend: construction, memory, dtype conversion and the shared dtype helpers. The
// operator kernels live beside this file, one file per family (gemm, elementwise,
// normalization, layout, loss, optimizer). Host memory is the backend's memory, so copies are
// memcpy; allocations are 64-byte aligned (a cache line, and full AVX-512 vectors).
#include "kernels/host/host_backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/bf16_bits.h"
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

// bf16 through f32 (kernels/bf16_bits.h); f64 to bf16 goes through f32 first (two roundings:
// only a tie at f32 precision can differ from rounding f64 directly).
double load(DType dtype, const void* p, std::int64_t i) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(p)[i];
    case DType::kF64:
      return static_cast<const double*>(p)[i];
    default:
      return f32_from_bf16(static_cast<const std::uint16_t*>(p)[i]);
  }
}
void store(DType dtype, void* p, std::int64_t i, double v) {
  switch (dtype) {
    case DType::kF32:
      static_cast<float*>(p)[i] = static_cast<float>(v);
      return;
    case DType::kF64:
      static_cast<double*>(p)[i] = v;
      return;
    default:
      static_cast<std::uint16_t*>(p)[i] = bf16_from_f32(static_cast<float>(v));
  }
}

// f32 <-> f64, the conversions of every mixed-precision step (master updates, gradient
// accumulation): one typed loop, no per-element dtype switch.
template <class From, class To>
void convert_typed(const void* src, void* dst, std::int64_t n) {
  const From* s = static_cast<const From*>(src);
  To* d = static_cast<To*>(dst);
  Kokkos::parallel_for(
      "convert", detail::host_range(n), KOKKOS_LAMBDA(std::int64_t i) { d[i] = To(s[i]); });
}

}  // namespace

// f32, f64 and bf16 (the emulated dtype) in any pair; every value passes exactly through double.
void HostBackend::do_convert(DType from, const void* src, DType to, void* dst, std::int64_t n) {
  if (n == 0) return;
  const auto ok = [](DType d) { return d == DType::kF32 || d == DType::kF64 || d == DType::kBF16; };
  if (!ok(from)) detail::throw_bad_dtype("convert", from);
  if (!ok(to)) detail::throw_bad_dtype("convert", to);
  if (from == to) {
    copy(dst, src, static_cast<std::size_t>(n) * dtype_size_bytes(from));
    return;
  }
  if (from == DType::kF32 && to == DType::kF64) return convert_typed<float, double>(src, dst, n);
  if (from == DType::kF64 && to == DType::kF32) return convert_typed<double, float>(src, dst, n);
  Kokkos::parallel_for(
      "convert", detail::host_range(n),
      KOKKOS_LAMBDA(std::int64_t i) { store(to, dst, i, load(from, src, i)); });
}

void HostBackend::synchronize() { Kokkos::fence(); }

}  // namespace strata::kernels
