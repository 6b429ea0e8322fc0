// Row reductions for the host kernels: sums accumulated in double over 8 independent partial
// sums, and a row max. One running sum is a serial add chain the compiler may not reorder
// without -ffast-math (about 4 cycles per element); 8 partial sums let it pipeline and
// vectorise. The summation order is fixed, so results are deterministic.
// Rules: header-only, no Kokkos, no allocation; term(i) must be a cheap inlinable lambda.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/host/fast_math.h"

namespace strata::kernels::detail {

// sum_{i < n} term(i), in double.
template <class Term>
inline double sum8(std::int64_t n, Term term) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += term(i + k);
  }
  double tail = 0;
  for (; i < n; ++i) tail += term(i);
  return tail + (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
}

// max_{i < n} x[i] (n >= 1); -inf entries are fine, NaN handling is unspecified.
template <class T>
inline T row_max(const T* x, std::int64_t n) {
  T acc[8];
  for (int k = 0; k < 8; ++k) acc[k] = x[0];
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
  }
  T m = acc[0];
  for (int k = 1; k < 8; ++k) m = acc[k] > m ? acc[k] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// f32: the same with 4-lane vectors (GCC does not if-convert the scalar select loop above).
inline float row_max(const float* x, std::int64_t n) {
  if (n < 8) return row_max<float>(x, n);
  V4f a, b;
  std::memcpy(&a, x, sizeof(a));
  std::memcpy(&b, x + 4, sizeof(b));
  std::int64_t i = 8;
  for (; i + 8 <= n; i += 8) {
    V4f u, v;
    std::memcpy(&u, x + i, sizeof(u));
    std::memcpy(&v, x + i + 4, sizeof(v));
    a = u > a ? u : a;
    b = v > b ? v : b;
  }
  a = b > a ? b : a;
  float m = a[0];
  for (int k = 1; k < 4; ++k) m = a[k] > m ? a[k] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

}  // namespace strata::kernels::detail
