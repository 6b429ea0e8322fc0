// CudaBackend cross-entropy over logits [rows, vocab] with int32 targets [rows]:
//   loss = mean_r (lse_r - logits[r, target_r]),  lse_r = max_r + log(sum_j exp(x_rj - max_r)),
//   dlogits[r, j] = (softmax(logits)[r, j] - [j == target_r]) * dloss / rows,
// and its vocab-parallel pieces (row_max, row_sum_exp, *_shard). One block per row for the row
// statistics; the loss is a deterministic two-stage sum (per-block partials in double, then one
// block over the partials), never an atomic.
// Rules: targets of the unsharded calls are checked on the device; a bad one is recorded in the
// status word (reported by the next synchronisation) and its row contributes nothing.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace {

using cuda_detail::Compute;
using cuda_detail::to_compute;
using cuda_detail::to_storage;

// Row max and sum_j exp(x_j - max) (double) of one row, across the block.
template <class T>
__device__ Compute<T> block_row_max(const T* xr, std::int64_t cols) {
  using C = Compute<T>;
  C mx = cuda_detail::neg_inf<C>();
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const C v = to_compute(xr[j]);
    mx = v > mx ? v : mx;
  }
  return cuda_detail::block_max(mx);
}
template <class T>
__device__ double block_row_sum_exp(const T* xr, std::int64_t cols, Compute<T> mx) {
  double s = 0;
  for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    s += cuda_detail::exp_c(to_compute(xr[j]) - mx);
  }
  return cuda_detail::block_sum(s);
}

// partials[blockIdx.x] = sum over this block's rows of (lse - x[target]); bad targets reported.
template <class T>
__global__ void ce_forward_kernel(const T* logits, const std::int32_t* targets, std::int64_t rows,
                                  std::int64_t vocab, double* partials,
                                  cuda_detail::DeviceStatus* status) {
  double acc = 0;  // meaningful in thread 0
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = logits + r * vocab;
    const auto mx = block_row_max(xr, vocab);
    const double s = block_row_sum_exp(xr, vocab, mx);
    if (threadIdx.x == 0) {
      const std::int64_t t = targets[r];
      if (t < 0 || t >= vocab) {
        cuda_detail::report_bad_index(status, cuda_detail::kStatusCrossEntropyForward, r, t, vocab);
      } else {
        acc += (static_cast<double>(mx) + log(s)) - static_cast<double>(to_compute(xr[t]));
      }
    }
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// dx[r, j] = exp(x - mx) * (k / s) - [j == t] k with k = dloss * mul (mul: 1 / rows or scale),
// and mx, s either computed here (row_max/row_sum null) or read from the shard statistics.
template <class T>
__global__ void ce_backward_kernel(const T* logits, const std::int32_t* targets, const T* row_max,
                                   const T* row_sum, const T* dloss, double mul, T* dlogits,
                                   std::int64_t rows, std::int64_t cols, std::int64_t vocab_offset,
                                   bool check, cuda_detail::DeviceStatus* status) {
  using C = Compute<T>;
  const double k = static_cast<double>(to_compute(dloss[0])) * mul;
  const C k_c = static_cast<C>(k);
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = logits + r * cols;
    T* dxr = dlogits + r * cols;
    C mx;
    double s;
    if (row_max == nullptr) {
      mx = block_row_max(xr, cols);
      s = block_row_sum_exp(xr, cols, mx);
    } else {
      mx = to_compute(row_max[r]);
      s = to_compute(row_sum[r]);
    }
    const std::int64_t t = static_cast<std::int64_t>(targets[r]) - vocab_offset;
    if (check && threadIdx.x == 0 && (t < 0 || t >= cols)) {
      cuda_detail::report_bad_index(status, cuda_detail::kStatusCrossEntropyBackward, r, targets[r],
                                    cols);
    }
    const C ks = static_cast<C>(k / s);
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      C v = cuda_detail::exp_c(to_compute(xr[j]) - mx) * ks;
      if (j == t) v -= k_c;
      dxr[j] = to_storage<T>(v);
    }
  }
}

template <class T>
__global__ void row_max_kernel(const T* x, T* out, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const auto mx = block_row_max(x + r * cols, cols);  // -inf for cols == 0
    if (threadIdx.x == 0) out[r] = to_storage<T>(mx);
  }
}

template <class T>
__global__ void row_sum_exp_kernel(const T* x, const T* row_max, T* out, std::int64_t rows,
                                   std::int64_t cols) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const double s = block_row_sum_exp(x + r * cols, cols, to_compute(row_max[r]));
    if (threadIdx.x == 0) out[r] = to_storage<T>(static_cast<Compute<T>>(s));
  }
}

// One thread per row: partials[blockIdx.x] = sum of the terms of the targets in this slice.
template <class T>
__global__ void ce_forward_shard_kernel(const T* logits, const std::int32_t* targets,
                                        const T* row_max, const T* row_sum, std::int64_t rows,
                                        std::int64_t cols, std::int64_t vocab_offset,
                                        double* partials) {
  double acc = 0;
  STRATA_GRID_STRIDE(r, rows) {
    const std::int64_t c = static_cast<std::int64_t>(targets[r]) - vocab_offset;
    if (c < 0 || c >= cols) continue;  // another slice owns the target
    acc += (static_cast<double>(to_compute(row_max[r])) +
            log(static_cast<double>(to_compute(row_sum[r])))) -
           static_cast<double>(to_compute(logits[r * cols + c]));
  }
  acc = cuda_detail::block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// The kernels compare int32 targets with column indices.
void check_vocab_fits_int32(const char* method, std::int64_t vocab) {
  cuda_detail::checks.require(vocab <= INT32_MAX, method, "vocab = ", vocab,
                              " exceeds int32 token ids");
}

}  // namespace

void CudaBackend::do_cross_entropy_forward(DType dtype, const void* logits,
                                           const std::int32_t* targets, void* loss,
                                           std::int64_t rows, std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_forward";
  check_vocab_fits_int32(kM, vocab);
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const cuda_detail::LaunchCtx c = ctx();
    const unsigned grid = std::min<unsigned>(cuda_detail::row_grid(c, rows), kMaxPartials);
    if (rows > 0) {
      STRATA_LAUNCH(c, (ce_forward_kernel<T>), grid, cuda_detail::row_threads(vocab),
                    static_cast<const T*>(logits), targets, rows, vocab, partials_, c.status);
    }
    STRATA_LAUNCH(c, (cuda_detail::finalize_sum_kernel<T>), 1, cuda_detail::kFinalThreads,
                  partials_, rows > 0 ? static_cast<int>(grid) : 0, 1.0,
                  rows > 0 ? static_cast<double>(rows) : 1.0, static_cast<T*>(loss));
  });
}

void CudaBackend::do_cross_entropy_backward(DType dtype, const void* logits,
                                            const std::int32_t* targets, const void* dloss,
                                            void* dlogits, std::int64_t rows, std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_backward";
  check_vocab_fits_int32(kM, vocab);
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (ce_backward_kernel<T>), cuda_detail::row_grid(c, rows),
                  cuda_detail::row_threads(vocab), static_cast<const T*>(logits), targets,
                  static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                  static_cast<const T*>(dloss), 1.0 / static_cast<double>(rows),
                  static_cast<T*>(dlogits), rows, vocab, std::int64_t{0}, true, c.status);
  });
}

void CudaBackend::do_row_max(DType dtype, const void* x, void* out, std::int64_t rows,
                             std::int64_t cols) {
  constexpr const char* kM = "row_max";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (row_max_kernel<T>), cuda_detail::row_grid(c, rows),
                  cuda_detail::row_threads(cols), static_cast<const T*>(x), static_cast<T*>(out),
                  rows, cols);
  });
}

void CudaBackend::do_row_sum_exp(DType dtype, const void* x, const void* row_max, void* out,
                                 std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "row_sum_exp";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (row_sum_exp_kernel<T>), cuda_detail::row_grid(c, rows),
                  cuda_detail::row_threads(cols), static_cast<const T*>(x),
                  static_cast<const T*>(row_max), static_cast<T*>(out), rows, cols);
  });
}

void CudaBackend::do_cross_entropy_forward_shard(DType dtype, const void* logits,
                                                 const std::int32_t* targets, const void* row_max,
                                                 const void* row_sum, void* loss, std::int64_t rows,
                                                 std::int64_t cols, std::int64_t vocab_offset,
                                                 double scale) {
  constexpr const char* kM = "cross_entropy_forward_shard";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const cuda_detail::LaunchCtx c = ctx();
    const unsigned grid = std::min<unsigned>(cuda_detail::grid_for(c, rows), kMaxPartials);
    if (rows > 0) {
      STRATA_LAUNCH(c, (ce_forward_shard_kernel<T>), grid, cuda_detail::kThreads,
                    static_cast<const T*>(logits), targets, static_cast<const T*>(row_max),
                    static_cast<const T*>(row_sum), rows, cols, vocab_offset, partials_);
    }
    STRATA_LAUNCH(c, (cuda_detail::finalize_sum_kernel<T>), 1, cuda_detail::kFinalThreads,
                  partials_, rows > 0 ? static_cast<int>(grid) : 0, scale, 1.0,
                  static_cast<T*>(loss));
  });
}

void CudaBackend::do_cross_entropy_backward_shard(DType dtype, const void* logits,
                                                  const std::int32_t* targets, const void* row_max,
                                                  const void* row_sum, const void* dloss,
                                                  void* dlogits, std::int64_t rows,
                                                  std::int64_t cols, std::int64_t vocab_offset,
                                                  double scale) {
  constexpr const char* kM = "cross_entropy_backward_shard";
  if (rows == 0 || cols == 0) return;
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (ce_backward_kernel<T>), cuda_detail::row_grid(c, rows),
                  cuda_detail::row_threads(cols), static_cast<const T*>(logits), targets,
                  static_cast<const T*>(row_max), static_cast<const T*>(row_sum),
                  static_cast<const T*>(dloss), scale, static_cast<T*>(dlogits), rows, cols,
                  vocab_offset, false, c.status);
  });
}

}  // namespace strata::kernels
