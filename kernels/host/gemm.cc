// HostBackend::gemm: row-major strided batched GEMM on OpenBLAS (cblas_sgemm / cblas_dgemm), one
// BLAS call per batch item in order. Sizes are checked before any call because CBLAS reports
// bad arguments by printing and returning (xerbla), which would hide the error.
// Rules: Debian's OpenBLAS uses 32-bit BLAS integers, so every dimension and leading dimension
// must fit in int; pointer offsets (batch strides) are 64-bit.
#include <cblas.h>

#include <algorithm>
#include <climits>

#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"

namespace strata::kernels {
namespace {

void gemm_call(float, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
               const void* a, int lda, const void* b, int ldb, double beta, void* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, static_cast<float>(alpha),
              static_cast<const float*>(a), lda, static_cast<const float*>(b), ldb,
              static_cast<float>(beta), static_cast<float*>(c), ldc);
}

void gemm_call(double, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
               const void* a, int lda, const void* b, int ldb, double beta, void* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, static_cast<const double*>(a), lda,
              static_cast<const double*>(b), ldb, beta, static_cast<double*>(c), ldc);
}

template <class T>
void gemm_impl(const GemmArgs& g) {
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  const CBLAS_TRANSPOSE ta = g.trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = g.trans_b ? CblasTrans : CblasNoTrans;
  // CBLAS demands ld >= max(1, cols) even when k == 0 and nothing is read.
  const int lda = static_cast<int>(std::max<std::int64_t>(g.lda, 1));
  const int ldb = static_cast<int>(std::max<std::int64_t>(g.ldb, 1));
  const int ldc = static_cast<int>(std::max<std::int64_t>(g.ldc, 1));
  const T* a = static_cast<const T*>(g.a);
  const T* b = static_cast<const T*>(g.b);
  T* c = static_cast<T*>(g.c);
  for (std::int64_t i = 0; i < g.batch; ++i) {
    gemm_call(T{}, ta, tb, static_cast<int>(g.m), static_cast<int>(g.n), static_cast<int>(g.k),
              g.alpha, g.k > 0 ? a + i * g.stride_a : a, lda, g.k > 0 ? b + i * g.stride_b : b, ldb,
              g.beta, c + i * g.stride_c, ldc);
  }
}

}  // namespace

void HostBackend::do_gemm(DType dtype, const GemmArgs& args) {
  detail::dispatch_float(dtype, "gemm", [&](auto t) { gemm_impl<decltype(t)>(args); });
}

}  // namespace strata::kernels
