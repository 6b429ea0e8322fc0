// CudaBackend row-wise normalisations: layernorm forward/backward and softmax forward/backward.
// One thread block per row (grid-stride over rows), statistics reduced across the block in
// double with fixed trees, then the row is rewritten in the compute type.
// Layernorm (over cols):  xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps) (biased var,
//   two passes over the row),  y = xhat * w + b;  g = dy * w;
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat));  dw = sum_rows dy * xhat;  db = sum_rows dy
//   (dw, db: a 32 x 32 block per tile of 32 columns, as reduce_sum_outer).
// Softmax: y = exp(x - max) / sum exp(x - max); an all -inf row gives zeros.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace {

using cuda_detail::Compute;
using cuda_detail::to_compute;
using cuda_detail::to_storage;

template <class T>
__global__ void layernorm_forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,
                                         std::int64_t rows, std::int64_t cols, double eps) {
  using C = Compute<T>;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double s = 0;
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += to_compute(xr[j]);
    const double mu = cuda_detail::block_sum(s) / static_cast<double>(cols);
    double q = 0;
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double d = static_cast<double>(to_compute(xr[j])) - mu;
      q += d * d;
    }
    const double var = cuda_detail::block_sum(q) / static_cast<double>(cols);
    const double rs = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean[r] = to_storage<T>(static_cast<C>(mu));
      rstd[r] = to_storage<T>(static_cast<C>(rs));
    }
    const C m_c = static_cast<C>(mu);
    const C rs_c = static_cast<C>(rs);
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      yr[j] = to_storage<T>((to_compute(xr[j]) - m_c) * rs_c * to_compute(w[j]) + to_compute(b[j]));
    }
  }
}

template <class T>
__global__ void layernorm_backward_dx_kernel(const T* dy, const T* x, const T* w, const T* mean,
                                             const T* rstd, T* dx, std::int64_t rows,
                                             std::int64_t cols) {
  using C = Compute<T>;
  const double inv_cols = 1.0 / static_cast<double>(cols);
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* dyr = dy + r * cols;
    const T* xr = x + r * cols;
    T* dxr = dx + r * cols;
    const C m = to_compute(mean[r]);
    const C rs = to_compute(rstd[r]);
    double g_sum = 0, gx_sum = 0;
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const C g = to_compute(dyr[j]) * to_compute(w[j]);
      const C xhat = (to_compute(xr[j]) - m) * rs;
      g_sum += g;
      gx_sum += static_cast<double>(g) * static_cast<double>(xhat);
    }
    const C a = static_cast<C>(cuda_detail::block_sum(g_sum) * inv_cols);
    const C bgx = static_cast<C>(cuda_detail::block_sum(gx_sum) * inv_cols);
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const C xhat = (to_compute(xr[j]) - m) * rs;
      dxr[j] = to_storage<T>(rs * (to_compute(dyr[j]) * to_compute(w[j]) - a - xhat * bgx));
    }
  }
}

// dw[j] = sum_r dy[r, j] * xhat[r, j], db[j] = sum_r dy[r, j]; blockDim (32, 32) as in
// reduce_outer_kernel (kernels/cuda/elementwise.cu).
template <class T>
__global__ void layernorm_backward_dw_kernel(const T* dy, const T* x, const T* mean, const T* rstd,
                                             T* dw, T* db, std::int64_t rows, std::int64_t cols) {
  using C = Compute<T>;
  __shared__ double lanes_w[32][33];
  __shared__ double lanes_b[32][33];
  const std::int64_t tiles = (cols + 31) / 32;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t j = tile * 32 + threadIdx.x;
    double acc_w = 0, acc_b = 0;
    if (j < cols) {
      for (std::int64_t r = threadIdx.y; r < rows; r += 32) {
        const C d = to_compute(dy[r * cols + j]);
        const C xhat = (to_compute(x[r * cols + j]) - to_compute(mean[r])) * to_compute(rstd[r]);
        acc_w += static_cast<double>(d * xhat);
        acc_b += static_cast<double>(d);
      }
    }
    lanes_w[threadIdx.y][threadIdx.x] = acc_w;
    lanes_b[threadIdx.y][threadIdx.x] = acc_b;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
      double sw = 0, sb = 0;
      for (int k = 0; k < 32; ++k) {
        sw += lanes_w[k][threadIdx.x];
        sb += lanes_b[k][threadIdx.x];
      }
      dw[j] = to_storage<T>(static_cast<C>(sw));
      db[j] = to_storage<T>(static_cast<C>(sb));
    }
    __syncthreads();
  }
}

// In place (y == x) is safe: each element is read and then written by the same thread, after
// the block-wide reductions that read the row.
// Row r's softmax runs over its first keep(r) = clamp((r mod rows_per_matrix) + shift + 1, 0,
// cols) entries and writes zeros after them: the causal prefix of a batch of [rows_per_matrix,
// cols] matrices (shift = row_offset - col_offset); shift >= cols keeps whole rows.
template <class T>
__global__ void softmax_forward_kernel(const T* x, T* y, std::int64_t rows, std::int64_t cols,
                                       std::int64_t rows_per_matrix, std::int64_t shift) {
  using C = Compute<T>;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const std::int64_t keep = min(cols, max(std::int64_t{0}, r % rows_per_matrix + shift + 1));
    for (std::int64_t j = keep + threadIdx.x; j < cols; j += blockDim.x)
      yr[j] = to_storage<T>(C(0));
    C mx = cuda_detail::neg_inf<C>();
    for (std::int64_t j = threadIdx.x; j < keep; j += blockDim.x) {
      const C v = to_compute(xr[j]);
      mx = v > mx ? v : mx;
    }
    mx = cuda_detail::block_max(mx);
    if (mx == cuda_detail::neg_inf<C>()) {  // every entry masked: zeros rather than NaN
      for (std::int64_t j = threadIdx.x; j < keep; j += blockDim.x) yr[j] = to_storage<T>(C(0));
      continue;  // uniform across the block: mx is the block's common value
    }
    double s = 0;
    for (std::int64_t j = threadIdx.x; j < keep; j += blockDim.x) {
      s += cuda_detail::exp_c(to_compute(xr[j]) - mx);
    }
    const C inv = static_cast<C>(1.0 / cuda_detail::block_sum(s));
    for (std::int64_t j = threadIdx.x; j < keep; j += blockDim.x) {
      yr[j] = to_storage<T>(cuda_detail::exp_c(to_compute(xr[j]) - mx) * inv);
    }
  }
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, std::int64_t rows,
                                        std::int64_t cols) {
  using C = Compute<T>;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    double s = 0;
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      s += static_cast<double>(to_compute(yr[j])) * static_cast<double>(to_compute(dyr[j]));
    }
    const C dot = static_cast<C>(cuda_detail::block_sum(s));
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      dxr[j] = to_storage<T>(to_compute(yr[j]) * (to_compute(dyr[j]) - dot));
    }
  }
}

}  // namespace

void CudaBackend::do_layernorm_forward(DType dtype, const void* x, const void* w, const void* b,
                                       void* y, void* mean, void* rstd, std::int64_t rows,
                                       std::int64_t cols, double eps) {
  constexpr const char* kM = "layernorm_forward";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (layernorm_forward_kernel<T>), cuda_detail::row_grid(c, rows),
                  cuda_detail::row_threads(cols), static_cast<const T*>(x),
                  static_cast<const T*>(w), static_cast<const T*>(b), static_cast<T*>(y),
                  static_cast<T*>(mean), static_cast<T*>(rstd), rows, cols, eps);
  });
}

void CudaBackend::do_layernorm_backward(DType dtype, const void* dy, const void* x, const void* w,
                                        const void* mean, const void* rstd, void* dx, void* dw,
                                        void* db, std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "layernorm_backward";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (cols == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    if (rows > 0) {
      STRATA_LAUNCH(c, (layernorm_backward_dx_kernel<T>), cuda_detail::row_grid(c, rows),
                    cuda_detail::row_threads(cols), static_cast<const T*>(dy),
                    static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean),
                    static_cast<const T*>(rstd), static_cast<T*>(dx), rows, cols);
    }
    // rows == 0 still writes dw = db = 0.
    const std::int64_t tiles = (cols + 31) / 32;
    const unsigned grid = static_cast<unsigned>(
        std::min<std::int64_t>(tiles, static_cast<std::int64_t>(c.sm_count) * 16));
    STRATA_LAUNCH(c, (layernorm_backward_dw_kernel<T>), grid, dim3(32, 32),
                  static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<const T*>(mean),
                  static_cast<const T*>(rstd), static_cast<T*>(dw), static_cast<T*>(db), rows,
                  cols);
  });
}

void CudaBackend::softmax_prefix(DType dtype, const void* x, void* y, std::int64_t n_rows,
                                 std::int64_t cols, std::int64_t rows_per_matrix,
                                 std::int64_t shift, const char* method) {
  if (cols == 0) return;
  cuda_detail::dispatch_float(dtype, method, [&](auto tag) {
    using T = decltype(tag);
    if (n_rows == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (softmax_forward_kernel<T>), cuda_detail::row_grid(c, n_rows),
                  cuda_detail::row_threads(cols), static_cast<const T*>(x), static_cast<T*>(y),
                  n_rows, cols, rows_per_matrix, shift);
  });
}

void CudaBackend::do_softmax_forward(DType dtype, const void* x, void* y, std::int64_t rows,
                                     std::int64_t cols) {
  softmax_prefix(dtype, x, y, rows, cols, std::max<std::int64_t>(rows, 1), cols, "softmax_forward");
}

void CudaBackend::do_causal_softmax_forward(DType dtype, const void* x, void* y, std::int64_t batch,
                                            std::int64_t rows, std::int64_t cols,
                                            std::int64_t row_offset, std::int64_t col_offset) {
  if (rows == 0) return;
  softmax_prefix(dtype, x, y, batch * rows, cols, rows, row_offset - col_offset,
                 "causal_softmax_forward");
}

void CudaBackend::do_softmax_backward(DType dtype, const void* y, const void* dy, void* dx,
                                      std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "softmax_backward";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (rows * cols == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (softmax_backward_kernel<T>), cuda_detail::row_grid(c, rows),
                  cuda_detail::row_threads(cols), static_cast<const T*>(y),
                  static_cast<const T*>(dy), static_cast<T*>(dx), rows, cols);
  });
}

}  // namespace strata::kernels
