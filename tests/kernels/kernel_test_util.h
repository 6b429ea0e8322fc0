// Helpers for the kernel tests: the host backend under test, fixed-seed random data, RAII buffers
// in backend memory, the norm-wise comparison ||got - want|| <= rtol ||want|| + atol (DESIGN.md
// section 6) that prints the first mismatches, and central finite differences.
// Rules: references are computed in double from the same (dtype-rounded) inputs; every test
// seeds its own std::mt19937_64, so tests are independent of order.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/backend.h"
#include "kernels/host/host_backend.h"

namespace strata::kernels::test {

// One backend for the whole binary, built on first use (after the test main initialised Kokkos).
inline Backend& host_backend() {
  static HostBackend backend;
  return backend;
}

template <class T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::kF32 : DType::kF64;
}

// Tolerance of a kernel against a double-precision reference computed from the same inputs.
template <class T>
constexpr double ref_rtol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
std::vector<T> random_vec(std::mt19937_64& rng, std::size_t n, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Elements of type T in backend memory; owns them.
template <class T>
class Buf {
 public:
  Buf(Backend& be, std::size_t n)
      : be_(&be), n_(n), ptr_(static_cast<T*>(be.allocate(n * sizeof(T)))) {}
  Buf(Backend& be, const std::vector<T>& host) : Buf(be, host.size()) { upload(host); }
  ~Buf() { be_->release(ptr_); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;

  T* get() { return ptr_; }
  const T* get() const { return ptr_; }
  std::size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    be_->copy_from_host(ptr_, host.data(), n_ * sizeof(T));
  }
  std::vector<T> host() const {
    std::vector<T> out(n_);
    be_->copy_to_host(out.data(), ptr_, n_ * sizeof(T));
    return out;
  }

 private:
  Backend* be_;
  std::size_t n_;
  T* ptr_;
};

// ||got - want||_2 <= rtol * ||want||_2 + atol. On failure prints the norms and the first few
// elements whose own error exceeds rtol * |want| + atol.
template <class A, class B>
bool close_normwise(const std::string& what, const std::vector<A>& got, const std::vector<B>& want,
                    double rtol, double atol = 0.0) {
  if (got.size() != want.size()) {
    std::printf("%s: size %zu != expected %zu\n", what.c_str(), got.size(), want.size());
    return false;
  }
  double diff2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
    diff2 += d * d;
    ref2 += static_cast<double>(want[i]) * static_cast<double>(want[i]);
  }
  const double diff = std::sqrt(diff2), ref = std::sqrt(ref2);
  const bool ok = diff <= rtol * ref + atol;  // false for NaN
  if (!ok) {
    std::printf("%s: ||got - want|| = %.3e > rtol %.1e * ||want|| %.3e + atol %.1e\n", what.c_str(),
                diff, rtol, ref, atol);
    int shown = 0;
    for (std::size_t i = 0; i < got.size() && shown < 6; ++i) {
      const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
      if (!(std::abs(g - w) <= rtol * std::abs(w) + atol)) {
        std::printf("  [%zu] got %.17g want %.17g\n", i, g, w);
        ++shown;
      }
    }
  }
  return ok;
}

#define STRATA_CHECK_CLOSE(what, got, want, rtol, atol) \
  CHECK(::strata::kernels::test::close_normwise((what), (got), (want), (rtol), (atol)))

// Central differences of a scalar function: grad_i = (f(x + h e_i) - f(x - h e_i)) / (2 h).
inline std::vector<double> fd_gradient(std::vector<double> x,
                                       const std::function<double(const std::vector<double>&)>& f,
                                       double h = 1e-5) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace strata::kernels::test
