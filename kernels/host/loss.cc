// HostBackend cross-entropy loss over logits [rows, vocab] with int32 targets [rows]:
//   loss = mean_r (lse_r - logits[r, target_r]),  lse_r = max_r + log(sum_j exp(logits[r, j] -
//   max_r)) dlogits[r, j] = (softmax(logits)[r, j] - [j == target_r]) * dloss / rows
// Subtracting the row max keeps exp in range; the sums and the mean accumulate in double.
// Rules: targets are validated (std::out_of_range) before anything is written.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/host/fast_math.h"
#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"
#include "kernels/host/row_reduce.h"

namespace strata::kernels {
namespace {

using detail::host_range;

void check_ce(const char* method, const void* logits, const std::int32_t* targets,
              std::int64_t rows, std::int64_t vocab) {
  detail::require_sizes(method, "rows, vocab", {rows, vocab});
  detail::require(rows == 0 || vocab > 0, method, "vocab = 0 with rows = ", rows);
  detail::require_ptr(logits, rows * vocab, method, "logits");
  detail::require_ptr(targets, rows, method, "targets");
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
inline double row_sum_exp(const T* xr, std::int64_t vocab, T mx) {
  constexpr std::int64_t kBuf = 256;
  T e[kBuf];
  double s = 0;
  for (std::int64_t j0 = 0; j0 < vocab; j0 += kBuf) {
    const std::int64_t w = std::min(kBuf, vocab - j0);
    detail::exp_shifted(xr + j0, e, w, mx);
    s += detail::sum8(w, [&e](std::int64_t j) { return static_cast<double>(e[j]); });
  }
  return s;
}

}  // namespace

void HostBackend::cross_entropy_forward(DType dtype, const void* logits,
                                        const std::int32_t* targets, void* loss, std::int64_t rows,
                                        std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_forward";
  check_ce(kM, logits, targets, rows, vocab);
  detail::require(loss != nullptr, kM, "loss is null (rows = ", rows, ", vocab = ", vocab, ")");
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(logits);
    double total = 0;
    Kokkos::parallel_reduce(
        kM, host_range(rows),
        KOKKOS_LAMBDA(std::int64_t r, double& acc) {
          const T* xr = px + r * vocab;
          const T mx = detail::row_max(xr, vocab);
          const double lse = static_cast<double>(mx) + std::log(row_sum_exp(xr, vocab, mx));
          acc += lse - static_cast<double>(xr[targets[r]]);
        },
        total);
    *static_cast<T*>(loss) = static_cast<T>(rows > 0 ? total / static_cast<double>(rows) : 0.0);
  });
}

void HostBackend::cross_entropy_backward(DType dtype, const void* logits,
                                         const std::int32_t* targets, const void* dloss,
                                         void* dlogits, std::int64_t rows, std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_backward";
  check_ce(kM, logits, targets, rows, vocab);
  detail::require_ptr(dloss, 1, kM, "dloss");
  detail::require_ptr(dlogits, rows * vocab, kM, "dlogits");
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
          const T k = static_cast<T>(scale / s);
          for (std::int64_t j = 0; j < vocab; ++j) dxr[j] *= k;
          dxr[targets[r]] -= static_cast<T>(scale);
        });
  });
}

}  // namespace strata::kernels
