// HostBackend row-wise normalisations: layernorm forward/backward and softmax forward/backward.
// One Kokkos work item per row; statistics (mean, variance, softmax sums, dot products) are
// accumulated in double for f32 too, then the row is rewritten in the dtype.
// Layernorm (over cols):  xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps) (biased var),
//   y = xhat * w + b;  g = dy * w;  dx = rstd * (g - mean(g) - xhat * mean(g * xhat));
//   dw = sum_rows dy * xhat;  db = sum_rows dy   (column blocks, so work items never race).
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/host/fast_math.h"
#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"
#include "kernels/host/row_reduce.h"

namespace strata::kernels {
namespace {

using detail::host_range;

}  // namespace

void HostBackend::do_layernorm_forward(DType dtype, const void* x, const void* w, const void* b,
                                       void* y, void* mean, void* rstd, std::int64_t rows,
                                       std::int64_t cols, double eps) {
  constexpr const char* kM = "layernorm_forward";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pw = static_cast<const T*>(w);
    const T* pb = static_cast<const T*>(b);
    T* py = static_cast<T*>(y);
    T* pmean = static_cast<T*>(mean);
    T* prstd = static_cast<T*>(rstd);
    Kokkos::parallel_for(
        kM, host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          const T* xr = px + r * cols;
          T* yr = py + r * cols;
          const double mu =
              detail::sum8(cols, [xr](std::int64_t j) { return static_cast<double>(xr[j]); }) /
              static_cast<double>(cols);
          // Two-pass variance: no cancellation when |mean| >> std.
          const double var = detail::sum8(cols,
                                          [xr, mu](std::int64_t j) {
                                            const double d = static_cast<double>(xr[j]) - mu;
                                            return d * d;
                                          }) /
                             static_cast<double>(cols);
          const double rs = 1.0 / std::sqrt(var + eps);
          pmean[r] = static_cast<T>(mu);
          prstd[r] = static_cast<T>(rs);
          const T m_t = static_cast<T>(mu);
          const T rs_t = static_cast<T>(rs);
          for (std::int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m_t) * rs_t * pw[j] + pb[j];
        });
  });
}

void HostBackend::do_layernorm_backward(DType dtype, const void* dy, const void* x, const void* w,
                                        const void* mean, const void* rstd, void* dx, void* dw,
                                        void* db, std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "layernorm_backward";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = static_cast<const T*>(dy);
    const T* px = static_cast<const T*>(x);
    const T* pw = static_cast<const T*>(w);
    const T* pmean = static_cast<const T*>(mean);
    const T* prstd = static_cast<const T*>(rstd);
    T* pdx = static_cast<T*>(dx);
    T* pdw = static_cast<T*>(dw);
    T* pdb = static_cast<T*>(db);
    // dx: one item per row.
    Kokkos::parallel_for(
        "layernorm_bwd_dx", host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          const T* dyr = pdy + r * cols;
          const T* xr = px + r * cols;
          T* dxr = pdx + r * cols;
          const T m = pmean[r];
          const T rs = prstd[r];
          const double inv_cols = 1.0 / static_cast<double>(cols);
          const double g_mean = inv_cols * detail::sum8(cols, [dyr, pw](std::int64_t j) {
                                  return static_cast<double>(dyr[j] * pw[j]);
                                });
          const double gx_mean =
              inv_cols * detail::sum8(cols, [dyr, pw, xr, m, rs](std::int64_t j) {
                return static_cast<double>(dyr[j] * pw[j]) * static_cast<double>((xr[j] - m) * rs);
              });
          const T a = static_cast<T>(g_mean);
          const T bgx = static_cast<T>(gx_mean);
          for (std::int64_t j = 0; j < cols; ++j) {
            const T xhat = (xr[j] - m) * rs;
            dxr[j] = rs * (dyr[j] * pw[j] - a - xhat * bgx);
          }
        });
    // dw, db: one item per block of columns, summing over all rows.
    const std::int64_t blocks = (cols + detail::kColBlock - 1) / detail::kColBlock;
    Kokkos::parallel_for(
        "layernorm_bwd_dw", host_range(blocks), KOKKOS_LAMBDA(std::int64_t blk) {
          const std::int64_t j0 = blk * detail::kColBlock;
          const std::int64_t wd = std::min(detail::kColBlock, cols - j0);
          double acc_w[detail::kColBlock];
          double acc_b[detail::kColBlock];
          for (std::int64_t j = 0; j < wd; ++j) acc_w[j] = acc_b[j] = 0;
          for (std::int64_t r = 0; r < rows; ++r) {
            const T* dyr = pdy + r * cols + j0;
            const T* xr = px + r * cols + j0;
            const T m = pmean[r];
            const T rs = prstd[r];
            for (std::int64_t j = 0; j < wd; ++j) {
              acc_w[j] += static_cast<double>(dyr[j] * ((xr[j] - m) * rs));
              acc_b[j] += static_cast<double>(dyr[j]);
            }
          }
          for (std::int64_t j = 0; j < wd; ++j) {
            pdw[j0 + j] = static_cast<T>(acc_w[j]);
            pdb[j0 + j] = static_cast<T>(acc_b[j]);
          }
        });
  });
}

namespace {

// Softmax of `n_rows` rows of `cols` over each row's first keep(r) entries, zeros after them:
// keep(r) = clamp((r mod rows_per_matrix) + shift + 1, 0, cols), the causal prefix of a row of a
// batch of [rows_per_matrix, cols] matrices (shift = row_offset - col_offset); shift >= cols
// keeps whole rows (plain softmax). A row whose kept entries are all -inf (or none) is zeros.
void softmax_prefix(DType dtype, const void* x, void* y, std::int64_t n_rows, std::int64_t cols,
                    std::int64_t rows_per_matrix, std::int64_t shift, const char* method) {
  if (cols == 0) return;
  detail::dispatch_float(dtype, method, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    Kokkos::parallel_for(
        method, host_range(n_rows), KOKKOS_LAMBDA(std::int64_t r) {
          const T* xr = px + r * cols;
          T* yr = py + r * cols;
          const std::int64_t keep =
              std::min(cols, std::max<std::int64_t>(0, r % rows_per_matrix + shift + 1));
          for (std::int64_t j = keep; j < cols; ++j) yr[j] = T(0);
          const T mx = keep > 0 ? detail::row_max(xr, keep) : -std::numeric_limits<T>::infinity();
          if (mx == -std::numeric_limits<T>::infinity()) {
            // Every entry masked: no distribution exists; give zeros rather than NaN.
            for (std::int64_t j = 0; j < keep; ++j) yr[j] = T(0);
            return;
          }
          // exp(-inf - mx) is exactly 0, so masked entries stay exact zeros.
          detail::exp_shifted(xr, yr, keep, mx);
          const double s =
              detail::sum8(keep, [yr](std::int64_t j) { return static_cast<double>(yr[j]); });
          const T inv = static_cast<T>(1.0 / s);
          for (std::int64_t j = 0; j < keep; ++j) yr[j] *= inv;
        });
  });
}

}  // namespace

void HostBackend::do_softmax_forward(DType dtype, const void* x, void* y, std::int64_t rows,
                                     std::int64_t cols) {
  softmax_prefix(dtype, x, y, rows, cols, std::max<std::int64_t>(rows, 1), cols, "softmax_forward");
}

void HostBackend::do_causal_softmax_forward(DType dtype, const void* x, void* y, std::int64_t batch,
                                            std::int64_t rows, std::int64_t cols,
                                            std::int64_t row_offset, std::int64_t col_offset) {
  if (rows == 0) return;
  softmax_prefix(dtype, x, y, batch * rows, cols, rows, row_offset - col_offset,
                 "causal_softmax_forward");
}

void HostBackend::do_softmax_backward(DType dtype, const void* y, const void* dy, void* dx,
                                      std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "softmax_backward";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* py = static_cast<const T*>(y);
    const T* pdy = static_cast<const T*>(dy);
    T* pdx = static_cast<T*>(dx);
    Kokkos::parallel_for(
        kM, host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          const T* yr = py + r * cols;
          const T* dyr = pdy + r * cols;
          T* dxr = pdx + r * cols;
          const T dot = static_cast<T>(detail::sum8(cols, [yr, dyr](std::int64_t j) {
            return static_cast<double>(yr[j]) * static_cast<double>(dyr[j]);
          }));
          for (std::int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
        });
  });
}

}  // namespace strata::kernels
