// HostBackend cross-entropy loss over logits [rows, vocab] with int32 targets [rows]:
//   loss = mean_r (lse_r - logits[r, target_r]),
//   lse_r = max_r + log(sum_j exp(logits[r, j] - max_r)),
//   dlogits[r, j] = (softmax(logits)[r, j] - [j == target_r]) * dloss / rows,
// and its vocab-parallel pieces (row_max, row_sum_exp, *_shard), which compute the same terms
// from all-reduced max_r and sum_r (sum_r = sum_j exp(logits[r, j] - max_r)) over a column slice.
// Subtracting the row max keeps exp in range; the sums and the loss accumulate in double.
// Rules: targets of the unsharded calls are validated (std::out_of_range) before anything is
// written; the shard calls skip targets outside their slice.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/host/fast_math.h"
#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"
#include "kernels/host/row_reduce.h"

namespace strata::kernels {
namespace {

using detail::host_range;

// The unsharded calls' targets must lie in [0, vocab) (checked before any computing).
void check_targets(const char* method, const std::int32_t* targets, std::int64_t rows,
                   std::int64_t vocab) {
  for (std::int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0 || targets[r] >= vocab) {
      throw std::out_of_range(std::string("HostBackend::") + method + ": target " +
                              std::to_string(targets[r]) + " at row " + std::to_string(r) +
                              " is outside [0, vocab = " + std::to_string(vocab) + ")");
    }
  }
}

// sum_j exp(x_j - mx) of one row, in double. The exponentials go through a small stack buffer
// so they run 4 lanes at a time before the double accumulation.
template <class T>
inline double sum_exp_shifted(const T* xr, std::int64_t cols, T mx) {
  constexpr std::int64_t kBuf = 256;
  T e[kBuf];
  double s = 0;
  for (std::int64_t j0 = 0; j0 < cols; j0 += kBuf) {
    const std::int64_t w = std::min(kBuf, cols - j0);
    detail::exp_shifted(xr + j0, e, w, mx);
    s += detail::sum8(w, [&e](std::int64_t j) { return static_cast<double>(e[j]); });
  }
  return s;
}

// The loss term of one row: lse - x_target, lse = mx + log(s).
template <class T>
inline double nll_term(double mx, double s, T x_target) {
  return (mx + std::log(s)) - static_cast<double>(x_target);
}

// dxr holds exp(x - mx) of one row on entry; leaves (dxr / s - [j == t]) * k, where a t outside
// [0, cols) has no onehot (another slice owns the target).
template <class T>
inline void finish_ce_grad_row(T* dxr, std::int64_t cols, double s, double k, std::int64_t t) {
  const T ks = static_cast<T>(k / s);
  for (std::int64_t j = 0; j < cols; ++j) dxr[j] *= ks;
  if (t >= 0 && t < cols) dxr[t] -= static_cast<T>(k);
}

}  // namespace

void HostBackend::do_cross_entropy_forward(DType dtype, const void* logits,
                                           const std::int32_t* targets, void* loss,
                                           std::int64_t rows, std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_forward";
  check_targets(kM, targets, rows, vocab);
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(logits);
    double total = 0;
    Kokkos::parallel_reduce(
        kM, host_range(rows),
        KOKKOS_LAMBDA(std::int64_t r, double& acc) {
          const T* xr = px + r * vocab;
          const T mx = detail::row_max(xr, vocab);
          acc += nll_term(static_cast<double>(mx), sum_exp_shifted(xr, vocab, mx), xr[targets[r]]);
        },
        total);
    *static_cast<T*>(loss) = static_cast<T>(rows > 0 ? total / static_cast<double>(rows) : 0.0);
  });
}

void HostBackend::do_cross_entropy_backward(DType dtype, const void* logits,
                                            const std::int32_t* targets, const void* dloss,
                                            void* dlogits, std::int64_t rows, std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_backward";
  check_targets(kM, targets, rows, vocab);
  if (rows == 0) return;
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(logits);
    T* pdx = static_cast<T*>(dlogits);
    const double scale =
        static_cast<double>(*static_cast<const T*>(dloss)) / static_cast<double>(rows);
    Kokkos::parallel_for(
        kM, host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          const T* xr = px + r * vocab;
          T* dxr = pdx + r * vocab;
          const T mx = detail::row_max(xr, vocab);
          detail::exp_shifted(xr, dxr, vocab, mx);
          const double s =
              detail::sum8(vocab, [dxr](std::int64_t j) { return static_cast<double>(dxr[j]); });
          finish_ce_grad_row(dxr, vocab, s, scale, targets[r]);
        });
  });
}

void HostBackend::do_row_max(DType dtype, const void* x, void* out, std::int64_t rows,
                             std::int64_t cols) {
  constexpr const char* kM = "row_max";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* pout = static_cast<T*>(out);
    Kokkos::parallel_for(
        kM, host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          // An empty slice gives the identity of the max all-reduce.
          pout[r] =
              cols > 0 ? detail::row_max(px + r * cols, cols) : -std::numeric_limits<T>::infinity();
        });
  });
}

void HostBackend::do_row_sum_exp(DType dtype, const void* x, const void* row_max, void* out,
                                 std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "row_sum_exp";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pmax = static_cast<const T*>(row_max);
    T* pout = static_cast<T*>(out);
    Kokkos::parallel_for(
        kM, host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          pout[r] = static_cast<T>(sum_exp_shifted(px + r * cols, cols, pmax[r]));
        });
  });
}

void HostBackend::do_cross_entropy_forward_shard(DType dtype, const void* logits,
                                                 const std::int32_t* targets, const void* row_max,
                                                 const void* row_sum, void* loss, std::int64_t rows,
                                                 std::int64_t cols, std::int64_t vocab_offset,
                                                 double scale) {
  constexpr const char* kM = "cross_entropy_forward_shard";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(logits);
    const T* pmax = static_cast<const T*>(row_max);
    const T* psum = static_cast<const T*>(row_sum);
    double total = 0;
    Kokkos::parallel_reduce(
        kM, host_range(rows),
        KOKKOS_LAMBDA(std::int64_t r, double& acc) {
          const std::int64_t c = static_cast<std::int64_t>(targets[r]) - vocab_offset;
          if (c < 0 || c >= cols) return;  // another slice owns the target
          acc += nll_term(static_cast<double>(pmax[r]), static_cast<double>(psum[r]),
                          px[r * cols + c]);
        },
        total);
    *static_cast<T*>(loss) = static_cast<T>(scale * total);
  });
}

void HostBackend::do_cross_entropy_backward_shard(DType dtype, const void* logits,
                                                  const std::int32_t* targets, const void* row_max,
                                                  const void* row_sum, const void* dloss,
                                                  void* dlogits, std::int64_t rows,
                                                  std::int64_t cols, std::int64_t vocab_offset,
                                                  double scale) {
  constexpr const char* kM = "cross_entropy_backward_shard";
  if (rows == 0 || cols == 0) return;
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(logits);
    const T* pmax = static_cast<const T*>(row_max);
    const T* psum = static_cast<const T*>(row_sum);
    T* pdx = static_cast<T*>(dlogits);
    const double k = static_cast<double>(*static_cast<const T*>(dloss)) * scale;
    Kokkos::parallel_for(
        kM, host_range(rows), KOKKOS_LAMBDA(std::int64_t r) {
          T* dxr = pdx + r * cols;
          detail::exp_shifted(px + r * cols, dxr, cols, pmax[r]);
          finish_ce_grad_row(dxr, cols, static_cast<double>(psum[r]), k,
                             static_cast<std::int64_t>(targets[r]) - vocab_offset);
        });
  });
}

}  // namespace strata::kernels
