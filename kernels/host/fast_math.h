// Branch-free float tanh and exp, written once for a scalar float and for a 4-wide GCC/Clang
// vector (V4f), plus span helpers that run them 4 lanes at a time. Why: glibc's tanhf/expf are
// scalar calls, and GCC will not if-convert the clamps of a plain loop without
// -fno-trapping-math, so GELU and softmax stayed scalar (5 ns per element) and would cost more
// than their matmuls in a GPT step. Used for f32 only; f64 (the oracle precision) uses <cmath>.
// Accuracy (checked in tests/kernels): tanh within 4e-7 absolute, exp within 1e-7 relative.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace strata::kernels::detail {

using V4f = float __attribute__((vector_size(16)));
using V4i = std::int32_t __attribute__((vector_size(16)));

template <class V>
inline V splat(float k) {
  return V{} + k;  // scalar: k; vector: k in every lane
}
inline std::int32_t to_int(float v) { return static_cast<std::int32_t>(v); }
inline V4i to_int(V4f v) { return __builtin_convertvector(v, V4i); }
inline float bits_to_float(std::int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}
inline V4f bits_to_float(V4i b) { return reinterpret_cast<V4f>(b); }

// Rational minimax approximation of tanh on [-7.905, 7.905] (odd numerator of degree 13, even
// denominator of degree 6; the constants Eigen and XLA use). Beyond the clamp tanh rounds to +-1.
template <class V>
inline V fast_tanh(V x) {
  constexpr float kClamp = 7.90531110763549805f;
  x = x > splat<V>(kClamp) ? splat<V>(kClamp) : x;
  x = x < splat<V>(-kClamp) ? splat<V>(-kClamp) : x;
  const V x2 = x * x;
  V p = splat<V>(-2.76076847742355e-16f);
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  V q = splat<V>(1.19825839466702e-06f);
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}

// exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (Cody-Waite split of ln 2), exp(r) by
// the Cephes degree-7 polynomial on |r| <= ln2 / 2. Below -87.34 (FLT_MIN; includes the -inf of
// causal masks) the result is exactly 0; above 88 it saturates, so callers pass x <= 0 (softmax
// and logsumexp subtract the row max first).
template <class V>
inline V fast_exp(V x) {
  constexpr float kLow = -87.33654f;
  const auto underflow = x < splat<V>(kLow);
  V xc = underflow ? splat<V>(kLow) : x;
  xc = xc > splat<V>(88.0f) ? splat<V>(88.0f) : xc;  // keeps n <= 127
  // Round to nearest with the 1.5 * 2^23 trick (exact in f32 arithmetic, no lrintf call).
  const V n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  V r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^n from its exponent bits; n in [-126, 127] keeps it a normal float.
  const V scale = bits_to_float((to_int(n) + 127) << 23);
  return underflow ? splat<V>(0.0f) : p * scale;
}

// y[i] = fn(x[i]) for i < n, 4 lanes at a time; fn is a generic lambda taking float or V4f.
// y may equal x.
template <class Fn>
inline void map_f32(const float* x, float* y, std::int64_t n, Fn fn) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V4f v;
    std::memcpy(&v, x + i, sizeof(v));
    const V4f r = fn(v);
    std::memcpy(y + i, &r, sizeof(r));
  }
  for (; i < n; ++i) y[i] = fn(x[i]);
}

// z[i] = fn(x[i], y[i]) for i < n, 4 lanes at a time. z may equal x or y.
template <class Fn>
inline void map2_f32(const float* x, const float* y, float* z, std::int64_t n, Fn fn) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V4f a, b;
    std::memcpy(&a, x + i, sizeof(a));
    std::memcpy(&b, y + i, sizeof(b));
    const V4f r = fn(a, b);
    std::memcpy(z + i, &r, sizeof(r));
  }
  for (; i < n; ++i) z[i] = fn(x[i], y[i]);
}

// y[i] = exp(x[i] - shift): f32 through fast_exp, f64 through libm. y may equal x.
inline void exp_shifted(const float* x, float* y, std::int64_t n, float shift) {
  map_f32(x, y, n, [shift](auto v) { return fast_exp(v - shift); });
}
inline void exp_shifted(const double* x, double* y, std::int64_t n, double shift) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
}

}  // namespace strata::kernels::detail
