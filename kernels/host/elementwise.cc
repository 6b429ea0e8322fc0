// HostBackend elementwise kernels and flat reductions: add, add_broadcast, reduce_sum_outer,
// GELU (tanh form) forward/backward, sum_squares, causal_mask. Each is one Kokkos loop over raw
// pointers with a contiguous inner body GCC vectorises; reductions accumulate in double.
// Rules: sizes and pointers are checked before any write; in-place (out == input) is allowed.
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

constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

// Elements per Kokkos work item of the GELU kernels: the item runs a plain 4-lane loop.
constexpr std::int64_t kGeluChunk = 4096;

// GELU value and derivative for one lane type V (float or V4f, f32 tanh approximation) ...
template <class V>
inline V gelu_value(V x) {
  const V t = detail::fast_tanh(static_cast<float>(kSqrt2OverPi) *
                                (x + static_cast<float>(kGeluCubic) * x * x * x));
  return 0.5f * x * (1.0f + t);
}
// d/dx [0.5 x (1 + tanh(u))] = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
template <class V>
inline V gelu_grad(V x, V dy) {
  const float c = static_cast<float>(kSqrt2OverPi);
  const V x2 = x * x;
  const V t = detail::fast_tanh(c * (x + static_cast<float>(kGeluCubic) * x2 * x));
  return dy * (0.5f * (1.0f + t) +
               0.5f * x * (1.0f - t * t) * c * (1.0f + static_cast<float>(3 * kGeluCubic) * x2));
}
// ... and in f64 with libm's tanh (the oracle precision).
inline double gelu_value(double x) {
  return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
}
inline double gelu_grad(double x, double dy) {
  const double x2 = x * x;
  const double t = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x2 * x));
  return dy *
         (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3 * kGeluCubic * x2));
}

inline void gelu_forward_span(const float* x, float* y, std::int64_t n) {
  detail::map_f32(x, y, n, [](auto v) { return gelu_value(v); });
}
inline void gelu_forward_span(const double* x, double* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = gelu_value(x[i]);
}
inline void gelu_backward_span(const float* x, const float* dy, float* dx, std::int64_t n) {
  detail::map2_f32(x, dy, dx, n, [](auto a, auto b) { return gelu_grad(a, b); });
}
inline void gelu_backward_span(const double* x, const double* dy, double* dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = gelu_grad(x[i], dy[i]);
}

constexpr std::int64_t kReduceChunk = 4096;

// h = x + bias[i mod inner] for the n elements from i0 (bias null: h = x), rounded to T as
// add_broadcast stores it, a stack block at a time, each block handed to span(h, i, w).
template <class T, class Span>
inline void with_bias(const T* x, const T* bias, std::int64_t inner, std::int64_t i0,
                      std::int64_t n, Span&& span) {
  if (bias == nullptr) {
    span(x + i0, i0, n);
    return;
  }
  constexpr std::int64_t kBlock = 256;
  T h[kBlock];
  for (std::int64_t done = 0; done < n;) {
    const std::int64_t i = i0 + done, j = i % inner;
    const std::int64_t w = std::min({kBlock, n - done, inner - j});
    for (std::int64_t k = 0; k < w; ++k) h[k] = x[i + k] + bias[j + k];
    span(h, i, w);
    done += w;
  }
}

// gelu_forward / gelu_backward (bias null) and their bias_gelu forms over n = outer * inner
// elements; dy null: forward (out = y), else backward (out = dx).
void gelu_impl(DType dtype, const void* x, const void* bias, const void* dy, void* out,
               std::int64_t n, std::int64_t inner, const char* method) {
  detail::dispatch_float(dtype, method, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pb = static_cast<const T*>(bias);
    const T* pdy = static_cast<const T*>(dy);
    T* po = static_cast<T*>(out);
    const std::int64_t chunks = (n + kGeluChunk - 1) / kGeluChunk;
    Kokkos::parallel_for(
        method, host_range(chunks), KOKKOS_LAMBDA(std::int64_t c) {
          const std::int64_t i0 = c * kGeluChunk;
          with_bias(px, pb, inner, i0, std::min(kGeluChunk, n - i0),
                    [pdy, po](const T* h, std::int64_t i, std::int64_t w) {
                      if (pdy == nullptr) {
                        gelu_forward_span(h, po + i, w);
                      } else {
                        gelu_backward_span(h, pdy + i, po + i, w);
                      }
                    });
        });
  });
}

}  // namespace

void HostBackend::do_add(DType dtype, const void* a, const void* b, void* out, std::int64_t n) {
  detail::dispatch_float(dtype, "add", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    Kokkos::parallel_for(
        "add", host_range(n), KOKKOS_LAMBDA(std::int64_t i) { po[i] = pa[i] + pb[i]; });
  });
}

void HostBackend::do_add_broadcast(DType dtype, const void* x, const void* row, void* out,
                                   std::int64_t outer, std::int64_t inner) {
  detail::dispatch_float(dtype, "add_broadcast", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pr = static_cast<const T*>(row);
    T* po = static_cast<T*>(out);
    Kokkos::parallel_for(
        "add_broadcast", host_range(outer), KOKKOS_LAMBDA(std::int64_t o) {
          const T* xr = px + o * inner;
          T* yr = po + o * inner;
          for (std::int64_t i = 0; i < inner; ++i) yr[i] = xr[i] + pr[i];
        });
  });
}

void HostBackend::do_reduce_sum_outer(DType dtype, const void* x, void* out, std::int64_t outer,
                                      std::int64_t inner) {
  detail::dispatch_float(dtype, "reduce_sum_outer", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* po = static_cast<T*>(out);
    const std::int64_t blocks = (inner + detail::kColBlock - 1) / detail::kColBlock;
    // One work item per block of columns: it owns those outputs, so no two items race, and the
    // inner loop runs over contiguous columns of each row.
    Kokkos::parallel_for(
        "reduce_sum_outer", host_range(blocks), KOKKOS_LAMBDA(std::int64_t blk) {
          const std::int64_t j0 = blk * detail::kColBlock;
          const std::int64_t w = std::min(detail::kColBlock, inner - j0);
          double acc[detail::kColBlock];
          for (std::int64_t j = 0; j < w; ++j) acc[j] = 0;
          for (std::int64_t o = 0; o < outer; ++o) {
            const T* xr = px + o * inner + j0;
            for (std::int64_t j = 0; j < w; ++j) acc[j] += static_cast<double>(xr[j]);
          }
          for (std::int64_t j = 0; j < w; ++j) po[j0 + j] = static_cast<T>(acc[j]);
        });
  });
}

void HostBackend::do_gelu_forward(DType dtype, const void* x, void* y, std::int64_t n) {
  gelu_impl(dtype, x, nullptr, nullptr, y, n, std::max<std::int64_t>(n, 1), "gelu_forward");
}

void HostBackend::do_gelu_backward(DType dtype, const void* x, const void* dy, void* dx,
                                   std::int64_t n) {
  gelu_impl(dtype, x, nullptr, dy, dx, n, std::max<std::int64_t>(n, 1), "gelu_backward");
}

void HostBackend::do_bias_gelu_forward(DType dtype, const void* x, const void* bias, void* y,
                                       std::int64_t outer, std::int64_t inner) {
  if (outer * inner == 0) return;
  gelu_impl(dtype, x, bias, nullptr, y, outer * inner, inner, "bias_gelu_forward");
}

void HostBackend::do_bias_gelu_backward(DType dtype, const void* x, const void* bias,
                                        const void* dy, void* dx, std::int64_t outer,
                                        std::int64_t inner) {
  if (outer * inner == 0) return;
  gelu_impl(dtype, x, bias, dy, dx, outer * inner, inner, "bias_gelu_backward");
}

void HostBackend::do_sum_squares(DType dtype, const void* x, std::int64_t n, double* out) {
  detail::dispatch_float(dtype, "sum_squares", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const std::int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
    double total = 0;
    Kokkos::parallel_reduce(
        "sum_squares", host_range(chunks),
        KOKKOS_LAMBDA(std::int64_t c, double& s) {
          const std::int64_t i0 = c * kReduceChunk;
          const T* xc = px + i0;
          s += detail::sum8(std::min(kReduceChunk, n - i0), [xc](std::int64_t i) {
            const double v = static_cast<double>(xc[i]);
            return v * v;
          });
        },
        total);
    *out = total;
  });
}

void HostBackend::do_causal_mask(DType dtype, const void* x, void* y, std::int64_t batch,
                                 std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                                 std::int64_t col_offset, bool backward) {
  detail::dispatch_float(dtype, "causal_mask", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    const T fill = backward ? T(0) : -std::numeric_limits<T>::infinity();
    // Element (r, c) is kept when c + col_offset <= r + row_offset, i.e. c < r + shift + 1: the
    // kept part of each row is a prefix, so every row is one copy and one fill.
    const std::int64_t shift = row_offset - col_offset;
    Kokkos::parallel_for(
        "causal_mask", host_range(batch * rows), KOKKOS_LAMBDA(std::int64_t br) {
          const std::int64_t r = br % rows;
          const std::int64_t keep = std::min(cols, std::max<std::int64_t>(0, r + shift + 1));
          const T* xr = px + br * cols;
          T* yr = py + br * cols;
          if (xr != yr) {
            for (std::int64_t c = 0; c < keep; ++c) yr[c] = xr[c];
          }
          for (std::int64_t c = keep; c < cols; ++c) yr[c] = fill;
        });
  });
}

}  // namespace strata::kernels
