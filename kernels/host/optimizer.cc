// HostBackend optimizer kernels, torch.optim semantics (kernels/backend.h), in place:
//   clip: norm = sqrt(sum of the scalars); scale = max_norm > 0 ? min(1, max_norm/(norm+1e-6)) : 1
//   AdamW: g = grad * scale;  p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//     p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   SGD: g = grad * scale;  d = g + wd p;  buf = (t == 1 ? d : momentum buf + d);
//     p -= lr * (momentum != 0 ? buf : d)
// Step scalars are folded in double once per call; the per-element math runs in the dtype.
#include <algorithm>
#include <cmath>

#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"

namespace strata::kernels {

using detail::host_range;

void HostBackend::do_clip_by_global_norm(const double* const* sumsq, std::int64_t count,
                                         double max_norm, double* norm_scale) {
  double total = 0;
  for (std::int64_t i = 0; i < count; ++i) total += *sumsq[i];
  const double norm = std::sqrt(total);
  norm_scale[0] = norm;
  norm_scale[1] = max_norm > 0 ? std::min(1.0, max_norm / (norm + 1e-6)) : 1.0;
}

void HostBackend::do_adamw_update(DType dtype, void* param, const void* grad, void* m, void* v,
                                  std::int64_t n, const AdamWArgs& args, const double* norm_scale) {
  constexpr const char* kM = "adamw_update";
  const double t = static_cast<double>(args.step);
  const double bc1 = 1.0 - std::pow(args.beta1, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(args.beta2, t));
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    T* pp = static_cast<T*>(param);
    const T* pg = static_cast<const T*>(grad);
    T* pm = static_cast<T*>(m);
    T* pv = static_cast<T*>(v);
    const T gscale = static_cast<T>(norm_scale[1]);
    const T decay = static_cast<T>(1.0 - args.lr * args.weight_decay);
    const T b1 = static_cast<T>(args.beta1);
    const T b2 = static_cast<T>(args.beta2);
    const T one_b1 = static_cast<T>(1.0 - args.beta1);
    const T one_b2 = static_cast<T>(1.0 - args.beta2);
    const T step_size = static_cast<T>(args.lr / bc1);
    const T inv_bc2_sqrt = static_cast<T>(1.0 / bc2_sqrt);
    const T eps = static_cast<T>(args.eps);
    Kokkos::parallel_for(
        kM, host_range(n), KOKKOS_LAMBDA(std::int64_t i) {
          const T g = pg[i] * gscale;
          const T p = pp[i] * decay;
          const T mi = b1 * pm[i] + one_b1 * g;
          const T vi = b2 * pv[i] + one_b2 * g * g;
          pm[i] = mi;
          pv[i] = vi;
          pp[i] = p - step_size * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps);
        });
  });
}

void HostBackend::do_sgd_update(DType dtype, void* param, const void* grad, void* buf,
                                std::int64_t n, const SgdArgs& args, const double* norm_scale) {
  constexpr const char* kM = "sgd_update";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    T* pp = static_cast<T*>(param);
    const T* pg = static_cast<const T*>(grad);
    T* pb = static_cast<T*>(buf);
    const T gscale = static_cast<T>(norm_scale[1]);
    const T wd = static_cast<T>(args.weight_decay);
    const T lr = static_cast<T>(args.lr);
    const T mom = static_cast<T>(args.momentum);
    if (args.momentum == 0) {
      // No momentum buffer is read or written (buf may be null).
      Kokkos::parallel_for(
          kM, host_range(n), KOKKOS_LAMBDA(std::int64_t i) {
            const T d = pg[i] * gscale + wd * pp[i];
            pp[i] -= lr * d;
          });
    } else if (args.step == 1) {
      Kokkos::parallel_for(
          kM, host_range(n), KOKKOS_LAMBDA(std::int64_t i) {
            const T d = pg[i] * gscale + wd * pp[i];
            pb[i] = d;
            pp[i] -= lr * d;
          });
    } else {
      Kokkos::parallel_for(
          kM, host_range(n), KOKKOS_LAMBDA(std::int64_t i) {
            const T d = pg[i] * gscale + wd * pp[i];
            const T b = mom * pb[i] + d;
            pb[i] = b;
            pp[i] -= lr * b;
          });
    }
  });
}

}  // namespace strata::kernels
