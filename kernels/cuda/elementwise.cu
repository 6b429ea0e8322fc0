// CudaBackend elementwise kernels and flat reductions: add, add_broadcast, reduce_sum_outer,
// GELU (tanh form) forward/backward, sum_squares, causal_mask. Grid-stride loops in the compute
// type (f32 for f32/bf16, f64 for f64); reductions accumulate in double with fixed trees:
//   reduce_sum_outer: a 32 x 32 block per tile of 32 columns, 32 row lanes, then a shared sum;
//   sum_squares: per-block partial sums, then one block over the partials.
// Rules: sizes and pointers are checked before any launch; in-place (out == input) is allowed
// for add, add_broadcast, gelu_forward and causal_mask.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace {

using cuda_detail::Compute;
using cuda_detail::to_compute;
using cuda_detail::to_storage;

constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

template <class T>
__global__ void add_kernel(const T* a, const T* b, T* out, std::int64_t n) {
  STRATA_GRID_STRIDE(i, n) { out[i] = to_storage<T>(to_compute(a[i]) + to_compute(b[i])); }
}

template <class T>
__global__ void add_broadcast_kernel(const T* x, const T* row, T* out, std::int64_t outer,
                                     std::int64_t inner) {
  STRATA_GRID_STRIDE(i, outer * inner) {
    out[i] = to_storage<T>(to_compute(x[i]) + to_compute(row[i % inner]));
  }
}

// Column sums over rows: blockDim (32, 32); threadIdx.x picks the column of a 32-wide tile,
// threadIdx.y the row lane (rows y, y + 32, ...); the 32 lane sums are added in order.
template <class T>
__global__ void reduce_outer_kernel(const T* x, T* out, std::int64_t outer, std::int64_t inner) {
  __shared__ double lanes[32][33];
  const std::int64_t tiles = (inner + 31) / 32;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t j = tile * 32 + threadIdx.x;
    double acc = 0;
    if (j < inner) {
      for (std::int64_t o = threadIdx.y; o < outer; o += 32) acc += to_compute(x[o * inner + j]);
    }
    lanes[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < inner) {
      double s = 0;
      for (int k = 0; k < 32; ++k) s += lanes[k][threadIdx.x];
      out[j] = to_storage<T>(static_cast<Compute<T>>(s));
    }
    __syncthreads();  // lanes is rewritten by the next tile
  }
}

template <class C>
__device__ __forceinline__ C gelu_value(C x) {
  const C t = cuda_detail::tanh_c(static_cast<C>(kSqrt2OverPi) *
                                  (x + static_cast<C>(kGeluCubic) * x * x * x));
  return C(0.5) * x * (C(1) + t);
}
// d/dx [0.5 x (1 + tanh(u))] = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
template <class C>
__device__ __forceinline__ C gelu_grad(C x, C dy) {
  const C c = static_cast<C>(kSqrt2OverPi);
  const C x2 = x * x;
  const C t = cuda_detail::tanh_c(c * (x + static_cast<C>(kGeluCubic) * x2 * x));
  return dy * (C(0.5) * (C(1) + t) +
               C(0.5) * x * (C(1) - t * t) * c * (C(1) + static_cast<C>(3 * kGeluCubic) * x2));
}

// h = x[i] + bias[i mod inner] rounded to T, as add_broadcast would store it (bias null: x[i]).
template <class T>
__device__ __forceinline__ Compute<T> biased(const T* x, const T* bias, std::int64_t inner,
                                             std::int64_t i) {
  if (bias == nullptr) return to_compute(x[i]);
  return to_compute(to_storage<T>(to_compute(x[i]) + to_compute(bias[i % inner])));
}

template <class T>
__global__ void gelu_forward_kernel(const T* x, const T* bias, T* y, std::int64_t n,
                                    std::int64_t inner) {
  STRATA_GRID_STRIDE(i, n) { y[i] = to_storage<T>(gelu_value(biased(x, bias, inner, i))); }
}

template <class T>
__global__ void gelu_backward_kernel(const T* x, const T* bias, const T* dy, T* dx, std::int64_t n,
                                     std::int64_t inner) {
  STRATA_GRID_STRIDE(i, n) {
    dx[i] = to_storage<T>(gelu_grad(biased(x, bias, inner, i), to_compute(dy[i])));
  }
}

// partials[blockIdx.x] = sum of x^2 over this block's grid-stride elements (double).
template <class T>
__global__ void sum_squares_kernel(const T* x, std::int64_t n, double* partials) {
  double s = 0;
  STRATA_GRID_STRIDE(i, n) {
    const double v = to_compute(x[i]);
    s += v * v;
  }
  s = cuda_detail::block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// Element (r, c) of each [rows, cols] matrix is kept when c + col_offset <= r + row_offset.
template <class T>
__global__ void causal_mask_kernel(const T* x, T* y, std::int64_t n, std::int64_t rows,
                                   std::int64_t cols, std::int64_t shift, bool backward) {
  STRATA_GRID_STRIDE(i, n) {
    const std::int64_t c = i % cols;
    const std::int64_t r = (i / cols) % rows;
    if (c <= r + shift) {
      y[i] = x[i];
    } else {
      y[i] = to_storage<T>(backward ? Compute<T>(0) : cuda_detail::neg_inf<Compute<T>>());
    }
  }
}

}  // namespace

void CudaBackend::do_add(DType dtype, const void* a, const void* b, void* out, std::int64_t n) {
  constexpr const char* kM = "add";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (add_kernel<T>), cuda_detail::grid_for(c, n), cuda_detail::kThreads,
                  static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), n);
  });
}

void CudaBackend::do_add_broadcast(DType dtype, const void* x, const void* row, void* out,
                                   std::int64_t outer, std::int64_t inner) {
  constexpr const char* kM = "add_broadcast";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (outer * inner == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (add_broadcast_kernel<T>), cuda_detail::grid_for(c, outer * inner),
                  cuda_detail::kThreads, static_cast<const T*>(x), static_cast<const T*>(row),
                  static_cast<T*>(out), outer, inner);
  });
}

void CudaBackend::do_reduce_sum_outer(DType dtype, const void* x, void* out, std::int64_t outer,
                                      std::int64_t inner) {
  constexpr const char* kM = "reduce_sum_outer";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (inner == 0) return;  // outer == 0 still writes zeros
    const cuda_detail::LaunchCtx c = ctx();
    const std::int64_t tiles = (inner + 31) / 32;
    const unsigned grid = static_cast<unsigned>(
        std::min<std::int64_t>(tiles, static_cast<std::int64_t>(c.sm_count) * 16));
    STRATA_LAUNCH(c, (reduce_outer_kernel<T>), grid, dim3(32, 32), static_cast<const T*>(x),
                  static_cast<T*>(out), outer, inner);
  });
}

void CudaBackend::gelu_impl(DType dtype, const void* x, const void* bias, const void* dy, void* out,
                            std::int64_t n, std::int64_t inner, const char* method) {
  cuda_detail::dispatch_float(dtype, method, [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    const auto* px = static_cast<const T*>(x);
    const auto* pb = static_cast<const T*>(bias);
    if (dy == nullptr) {
      STRATA_LAUNCH(c, (gelu_forward_kernel<T>), cuda_detail::grid_for(c, n), cuda_detail::kThreads,
                    px, pb, static_cast<T*>(out), n, inner);
    } else {
      STRATA_LAUNCH(c, (gelu_backward_kernel<T>), cuda_detail::grid_for(c, n),
                    cuda_detail::kThreads, px, pb, static_cast<const T*>(dy), static_cast<T*>(out),
                    n, inner);
    }
  });
}

void CudaBackend::do_gelu_forward(DType dtype, const void* x, void* y, std::int64_t n) {
  gelu_impl(dtype, x, nullptr, nullptr, y, n, std::max<std::int64_t>(n, 1), "gelu_forward");
}

void CudaBackend::do_gelu_backward(DType dtype, const void* x, const void* dy, void* dx,
                                   std::int64_t n) {
  gelu_impl(dtype, x, nullptr, dy, dx, n, std::max<std::int64_t>(n, 1), "gelu_backward");
}

void CudaBackend::do_bias_gelu_forward(DType dtype, const void* x, const void* bias, void* y,
                                       std::int64_t outer, std::int64_t inner) {
  gelu_impl(dtype, x, bias, nullptr, y, outer * inner, inner, "bias_gelu_forward");
}

void CudaBackend::do_bias_gelu_backward(DType dtype, const void* x, const void* bias,
                                        const void* dy, void* dx, std::int64_t outer,
                                        std::int64_t inner) {
  gelu_impl(dtype, x, bias, dy, dx, outer * inner, inner, "bias_gelu_backward");
}

void CudaBackend::do_sum_squares(DType dtype, const void* x, std::int64_t n, double* out) {
  constexpr const char* kM = "sum_squares";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const cuda_detail::LaunchCtx c = ctx();
    // The grid depends on n only, so the summation tree (and the result) is reproducible.
    const unsigned grid =
        std::min<unsigned>(cuda_detail::grid_for(c, n), static_cast<unsigned>(kMaxPartials));
    if (n > 0) {
      STRATA_LAUNCH(c, (sum_squares_kernel<T>), grid, cuda_detail::kThreads,
                    static_cast<const T*>(x), n, partials_);
    }
    STRATA_LAUNCH(c, (cuda_detail::finalize_sum_kernel<double>), 1, cuda_detail::kFinalThreads,
                  static_cast<const double*>(partials_), n > 0 ? static_cast<int>(grid) : 0, 1.0,
                  1.0, out);
  });
}

void CudaBackend::do_causal_mask(DType dtype, const void* x, void* y, std::int64_t batch,
                                 std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                                 std::int64_t col_offset, bool backward) {
  constexpr const char* kM = "causal_mask";
  const std::int64_t n = batch * rows * cols;
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (causal_mask_kernel<T>), cuda_detail::grid_for(c, n), cuda_detail::kThreads,
                  static_cast<const T*>(x), static_cast<T*>(y), n, rows, cols,
                  row_offset - col_offset, backward);
  });
}

}  // namespace strata::kernels
