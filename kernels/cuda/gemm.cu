// CudaBackend::gemm: row-major strided batched GEMM on cuBLAS (cublasGemmStridedBatchedEx).
// cuBLAS is column-major; a row-major [r, c] matrix with leading dimension ld is the
// column-major [c, r] matrix of its transpose, so the row-major product C = op(A) op(B) is
// computed as the column-major C^T = op(B)^T op(A)^T: swap A and B, and m and n, keep each
// operand's transpose flag. f32 and bf16 accumulate in f32 (CUBLAS_COMPUTE_32F: no TF32), f64 in
// f64; alpha and beta are f32 (f64 for f64) host scalars.
// Rules: sizes are checked like the host's (32-bit dimensions); k == 0 and overlapping output
// batches have their own paths (see kernels/cuda/cuda_backend.h).
#include <climits>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace {

using cuda_detail::Compute;
using cuda_detail::to_compute;
using cuda_detail::to_storage;

// C_i = beta * C_i over `batch` matrices [m, n] (k == 0: nothing to multiply); beta == 0 writes
// zeros without reading C, as BLAS does.
template <class T>
__global__ void scale_c_kernel(T* c, std::int64_t batch, std::int64_t m, std::int64_t n,
                               std::int64_t ldc, std::int64_t stride_c, double beta) {
  using C = Compute<T>;
  const std::int64_t per = m * n;
  STRATA_GRID_STRIDE(i, batch * per) {
    const std::int64_t b = i / per, r = (i % per) / n, col = i % n;
    T* p = c + b * stride_c + r * ldc + col;
    *p = beta == 0 ? to_storage<T>(C(0)) : to_storage<T>(static_cast<C>(beta) * to_compute(*p));
  }
}

template <class T>
struct CublasTypes;
template <>
struct CublasTypes<float> {
  static constexpr cudaDataType_t kData = CUDA_R_32F;
  static constexpr cublasComputeType_t kCompute = CUBLAS_COMPUTE_32F;
  using Scalar = float;
};
template <>
struct CublasTypes<__nv_bfloat16> {
  static constexpr cudaDataType_t kData = CUDA_R_16BF;
  static constexpr cublasComputeType_t kCompute = CUBLAS_COMPUTE_32F;
  using Scalar = float;
};
template <>
struct CublasTypes<double> {
  static constexpr cudaDataType_t kData = CUDA_R_64F;
  static constexpr cublasComputeType_t kCompute = CUBLAS_COMPUTE_64F;
  using Scalar = double;
};

}  // namespace

void CudaBackend::do_gemm(DType dtype, const GemmArgs& args) {
  cuda_detail::dispatch_float(dtype, "gemm", [&](auto tag) {
    using T = decltype(tag);
    const GemmArgs& g = args;
    if (g.batch == 0 || g.m == 0 || g.n == 0) return;
    // Output matrices overlap (stride_c 0 with batch > 1, or a stride below one matrix): run the
    // items one after the other, as the host does, instead of racing inside one batched call.
    const std::int64_t c_span = (g.m - 1) * g.ldc + g.n;
    const bool sequential = g.batch > 1 && g.stride_c < c_span;
    const std::int64_t groups = sequential ? g.batch : 1;
    const std::int64_t per_call = sequential ? 1 : g.batch;
    T* c_ptr = static_cast<T*>(g.c);
    const cuda_detail::LaunchCtx c = ctx();

    if (g.k == 0) {
      for (std::int64_t i = 0; i < groups; ++i) {
        STRATA_LAUNCH(c, (scale_c_kernel<T>), cuda_detail::grid_for(c, per_call * g.m * g.n),
                      cuda_detail::kThreads, c_ptr + i * g.stride_c, per_call, g.m, g.n, g.ldc,
                      g.stride_c, g.beta);
      }
      return;
    }

    using Types = CublasTypes<T>;
    const typename Types::Scalar alpha = static_cast<typename Types::Scalar>(g.alpha);
    const typename Types::Scalar beta = static_cast<typename Types::Scalar>(g.beta);
    const T* a_ptr = static_cast<const T*>(g.a);
    const T* b_ptr = static_cast<const T*>(g.b);
    // Column-major view: C^T [n, m] = op(B)^T [n, k] * op(A)^T [k, m].
    const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    for (std::int64_t i = 0; i < groups; ++i) {
      STRATA_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          cublas_.get(), op_b, op_a, static_cast<int>(g.n), static_cast<int>(g.m),
          static_cast<int>(g.k), &alpha, b_ptr + i * g.stride_b, Types::kData,
          static_cast<int>(std::max<std::int64_t>(g.ldb, 1)), g.stride_b, a_ptr + i * g.stride_a,
          Types::kData, static_cast<int>(std::max<std::int64_t>(g.lda, 1)), g.stride_a, &beta,
          c_ptr + i * g.stride_c, Types::kData, static_cast<int>(std::max<std::int64_t>(g.ldc, 1)),
          g.stride_c, static_cast<int>(per_call), Types::kCompute, CUBLAS_GEMM_DEFAULT));
    }
    if (sync_check_) STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
  });
}

}  // namespace strata::kernels
