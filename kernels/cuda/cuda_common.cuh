// Private helpers shared by the CudaBackend .cu files: the CUDA/cuBLAS check macros (the
// STRATA_CHECK_GEN shape of comm/mpi_session.h, throwing kernels::CudaError), the launch helper
// that checks every launch, argument checks that throw std::invalid_argument naming the call,
// dtype dispatch, bf16/f32/f64 load-store conversions, warp and block reductions, and the
// device status word through which kernels report bad token ids.
// Rules: included only from kernels/cuda/*.cu (device code, STYLE.md 3). Kernels use 64-bit
// indices and grid-stride loops, so any size runs with a bounded grid. Helpers live in
// cuda_detail, not detail: kernels/host has helpers of the same names (require, fail, ...) in
// the same library, and inline functions of one name must have one definition.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/arg_checks.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"

namespace strata::kernels::cuda_detail {

// ------------------------------------------------------------------ library checks
[[noreturn]] void cuda_failed(cudaError_t rc, const char* expr, const char* file, int line);
[[noreturn]] void cublas_failed(cublasStatus_t rc, const char* expr, const char* file, int line);

// Evaluates `expr` once; on a result other than `ok` calls fail_fn(rc, "expr", file, line), which
// throws CudaError (or aborts for a sticky CUDA error).
#define STRATA_CUDA_CHECK_GEN(expr, ok, fail_fn)            \
  do {                                                      \
    const auto strata_check_rc_ = (expr);                   \
    if (strata_check_rc_ != (ok)) {                         \
      fail_fn(strata_check_rc_, #expr, __FILE__, __LINE__); \
    }                                                       \
  } while (0)
#define STRATA_CUDA_CHECK(expr) \
  STRATA_CUDA_CHECK_GEN(expr, cudaSuccess, ::strata::kernels::cuda_detail::cuda_failed)
#define STRATA_CUBLAS_CHECK(expr) \
  STRATA_CUDA_CHECK_GEN(expr, CUBLAS_STATUS_SUCCESS, ::strata::kernels::cuda_detail::cublas_failed)

// ------------------------------------------------------------------ device status word
// Where kernels record the first out-of-range token or target; CudaBackend copies it back at
// every stream synchronisation and throws std::out_of_range (kernels/cuda/cuda_backend.h).
enum StatusMethod : int {
  kStatusNone = 0,
  kStatusEmbeddingForward = 1,
  kStatusEmbeddingBackward = 2,
  kStatusCrossEntropyForward = 3,
  kStatusCrossEntropyBackward = 4,
};
struct DeviceStatus {
  int flag;    // 0: clean; 1: an error is recorded
  int method;  // StatusMethod
  long long index, value, bound;
};

__device__ __forceinline__ void report_bad_index(DeviceStatus* st, int method, long long index,
                                                 long long value, long long bound) {
  if (atomicCAS(&st->flag, 0, 1) == 0) {  // first reporter wins; the host reads after a sync
    st->method = method;
    st->index = index;
    st->value = value;
    st->bound = bound;
  }
}

// ------------------------------------------------------------------ launches
struct LaunchCtx {
  cudaStream_t stream;
  bool sync_check;  // STRATA_SYNC_CHECK=1: synchronise after every launch
  int sm_count;
  DeviceStatus* status;
};

constexpr int kThreads = 256;  // default block size of elementwise kernels

// for (i = global thread index; i < n; i += all threads): the loop of every flat kernel.
#define STRATA_GRID_STRIDE(i, n)                                                                   \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

// Blocks for a grid-stride loop over n items with `threads` per block: enough to fill the
// device a few times over, at least 1 (callers skip launches that have nothing to do).
inline unsigned grid_for(const LaunchCtx& ctx, std::int64_t n, int threads = kThreads) {
  const std::int64_t want = (n + threads - 1) / threads;
  const std::int64_t cap = static_cast<std::int64_t>(ctx.sm_count) * 32;
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min(want, cap)));
}

// Blocks for one block per row: at most a few waves; kernels grid-stride over further rows.
inline unsigned row_grid(const LaunchCtx& ctx, std::int64_t rows) {
  const std::int64_t cap = static_cast<std::int64_t>(ctx.sm_count) * 32;
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min(rows, cap)));
}

// Threads for one block per row: a multiple of 32 covering cols, at most 1024.
inline int row_threads(std::int64_t cols) {
  const std::int64_t t = (cols + 31) / 32 * 32;
  return static_cast<int>(std::max<std::int64_t>(32, std::min<std::int64_t>(1024, t)));
}

// cudaGetLastError after the launch; with STRATA_SYNC_CHECK=1 also synchronises the stream so a
// fault inside the kernel is reported here, naming the kernel.
void check_launch(const LaunchCtx& ctx, const char* kernel, const char* file, int line);

template <class... KArgs, class... Args>
inline void launch_kernel(const LaunchCtx& ctx, const char* file, int line, const char* name,
                          void (*kernel)(KArgs...), dim3 grid, dim3 block, Args&&... args) {
  kernel<<<grid, block, 0, ctx.stream>>>(static_cast<KArgs>(args)...);
  check_launch(ctx, name, file, line);
}
// STRATA_LAUNCH(ctx, (kernel<T>), grid, block, args...): launch on ctx.stream and check it.
#define STRATA_LAUNCH(ctx, kernel, grid, block, ...)                                        \
  ::strata::kernels::cuda_detail::launch_kernel((ctx), __FILE__, __LINE__, #kernel, kernel, \
                                                (grid), (block), __VA_ARGS__)

// ------------------------------------------------------------------ argument checks
[[noreturn]] void throw_bad_dtype(const char* method, DType dtype);

// Argument checks: CudaBackend::<method>: ... (kernels/arg_checks.h).
inline constexpr ArgChecks checks{"CudaBackend"};

// Calls fn(T{}) with T = float, double or __nv_bfloat16; throws for any other dtype.
template <class Fn>
inline void dispatch_float(DType dtype, const char* method, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kF64:
      fn(double{});
      return;
    case DType::kBF16:
      fn(__nv_bfloat16{});
      return;
    default:
      throw_bad_dtype(method, dtype);
  }
}

// ------------------------------------------------------------------ element types
// Compute type: f32 for f32 and bf16 storage, f64 for f64.
template <class T>
struct ComputeOf {
  using type = float;
};
template <>
struct ComputeOf<double> {
  using type = double;
};
template <class T>
using Compute = typename ComputeOf<T>::type;

__device__ __forceinline__ float to_compute(float x) { return x; }
__device__ __forceinline__ double to_compute(double x) { return x; }
__device__ __forceinline__ float to_compute(__nv_bfloat16 x) { return __bfloat162float(x); }

// Rounds a compute value to the storage type (bf16: round to nearest even).
template <class T>
__device__ __forceinline__ T to_storage(Compute<T> v);
template <>
__device__ __forceinline__ float to_storage<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ double to_storage<double>(double v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 to_storage<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

__device__ __forceinline__ float exp_c(float x) { return expf(x); }
__device__ __forceinline__ double exp_c(double x) { return exp(x); }
__device__ __forceinline__ float tanh_c(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_c(double x) { return tanh(x); }
__device__ __forceinline__ float sqrt_c(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_c(double x) { return sqrt(x); }

template <class C>
__device__ __forceinline__ C neg_inf() {
  return static_cast<C>(-INFINITY);
}

// ------------------------------------------------------------------ reductions
// Fixed shuffle trees: results are deterministic for a given block size.
template <class V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class V>
__device__ __forceinline__ V warp_max(V v) {
  for (int o = 16; o > 0; o >>= 1) {
    const V u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

// Block-wide sum / max; every thread of the block must call it (blockDim.x a multiple of 32,
// blockDim.y == 1) and every thread gets the result.
template <class V>
__device__ V block_sum(V v) {
  __shared__ V shared[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // the previous call's readers are done with `shared`
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  if (warp == 0) {
    v = lane < warps ? shared[lane] : V(0);
    v = warp_sum(v);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}
template <class V>
__device__ V block_max(V v) {
  __shared__ V shared[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  if (warp == 0) {
    v = lane < warps ? shared[lane] : neg_inf<V>();
    v = warp_max(v);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

// out[0] = to_storage(mul * sum(partials[0 .. count)) / div), one block of kFinalThreads.
constexpr int kFinalThreads = 1024;
template <class T>
__global__ void finalize_sum_kernel(const double* partials, int count, double mul, double div,
                                    T* out) {
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
  s = block_sum(s);
  if (threadIdx.x == 0)
    out[0] = static_cast<T>(to_storage<T>(static_cast<Compute<T>>(mul * s / div)));
}

}  // namespace strata::kernels::cuda_detail
