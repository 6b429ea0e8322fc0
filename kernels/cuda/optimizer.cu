// CudaBackend optimizer kernels, torch.optim semantics (kernels/backend.h), in place:
//   clip: norm = sqrt(sum of the scalars); scale = max_norm > 0 ? min(1, max_norm/(norm+1e-6)) : 1
//   AdamW: g = grad * scale;  p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//     p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   SGD: g = grad * scale;  d = g + wd p;  buf = (t == 1 ? d : momentum buf + d);
//     p -= lr * (momentum != 0 ? buf : d)
// The clip scale is read from device memory (norm_scale[1]) inside the kernels, so the step needs
// no host round trip. Step scalars are folded in double on the host once per call.
#include <cmath>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace {

using cuda_detail::Compute;
using cuda_detail::to_compute;
using cuda_detail::to_storage;

// Device pointers to the per-tensor sums of squares, passed by value (no host buffer outlives
// the call, and no copy of the pointer array is needed).
constexpr int kClipChunk = 128;
struct ClipChunk {
  const double* sums[kClipChunk];
};

// One thread adds the chunk's scalars in order (the host's order) to the running total kept in
// norm_scale[0]; the last chunk turns the total into {norm, scale}.
__global__ void clip_chunk_kernel(ClipChunk chunk, int count, bool first, bool last,
                                  double max_norm, double* norm_scale) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double total = first ? 0.0 : norm_scale[0];
  for (int i = 0; i < count; ++i) total += *chunk.sums[i];
  if (!last) {
    norm_scale[0] = total;
    return;
  }
  const double norm = sqrt(total);
  norm_scale[0] = norm;
  norm_scale[1] = max_norm > 0 ? fmin(1.0, max_norm / (norm + 1e-6)) : 1.0;
}

template <class C>
struct AdamWConsts {
  C decay, b1, b2, one_b1, one_b2, step_size, inv_bc2_sqrt, eps;
};

template <class T>
__global__ void adamw_kernel(T* param, const T* grad, T* m, T* v, std::int64_t n,
                             AdamWConsts<Compute<T>> k, const double* norm_scale) {
  using C = Compute<T>;
  const C gscale = static_cast<C>(norm_scale[1]);
  STRATA_GRID_STRIDE(i, n) {
    const C g = to_compute(grad[i]) * gscale;
    const C p = to_compute(param[i]) * k.decay;
    const C mi = k.b1 * to_compute(m[i]) + k.one_b1 * g;
    const C vi = k.b2 * to_compute(v[i]) + k.one_b2 * g * g;
    m[i] = to_storage<T>(mi);
    v[i] = to_storage<T>(vi);
    param[i] =
        to_storage<T>(p - k.step_size * mi / (cuda_detail::sqrt_c(vi) * k.inv_bc2_sqrt + k.eps));
  }
}

// mode 0: no momentum (buf untouched); 1: first step (buf = d); 2: buf = momentum buf + d.
template <class T>
__global__ void sgd_kernel(T* param, const T* grad, T* buf, std::int64_t n, Compute<T> lr,
                           Compute<T> wd, Compute<T> momentum, int mode, const double* norm_scale) {
  using C = Compute<T>;
  const C gscale = static_cast<C>(norm_scale[1]);
  STRATA_GRID_STRIDE(i, n) {
    const C p = to_compute(param[i]);
    const C d = to_compute(grad[i]) * gscale + wd * p;
    C step = d;
    if (mode == 1) {
      buf[i] = to_storage<T>(d);
    } else if (mode == 2) {
      step = momentum * to_compute(buf[i]) + d;
      buf[i] = to_storage<T>(step);
    }
    param[i] = to_storage<T>(p - lr * step);
  }
}

}  // namespace

void CudaBackend::do_clip_by_global_norm(const double* const* sumsq, std::int64_t count,
                                         double max_norm, double* norm_scale) {
  const cuda_detail::LaunchCtx c = ctx();
  std::int64_t done = 0;
  do {
    const int k = static_cast<int>(std::min<std::int64_t>(kClipChunk, count - done));
    ClipChunk chunk{};
    for (int i = 0; i < k; ++i) chunk.sums[i] = sumsq[done + i];
    const bool first = done == 0;
    done += k;
    STRATA_LAUNCH(c, clip_chunk_kernel, 1, 32, chunk, k, first, done == count, max_norm,
                  norm_scale);
  } while (done < count);
}

void CudaBackend::do_adamw_update(DType dtype, void* param, const void* grad, void* m, void* v,
                                  std::int64_t n, const AdamWArgs& args, const double* norm_scale) {
  constexpr const char* kM = "adamw_update";
  const double t = static_cast<double>(args.step);
  const double bc1 = 1.0 - std::pow(args.beta1, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(args.beta2, t));
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    using C = Compute<T>;
    if (n == 0) return;
    AdamWConsts<C> k;
    k.decay = static_cast<C>(1.0 - args.lr * args.weight_decay);
    k.b1 = static_cast<C>(args.beta1);
    k.b2 = static_cast<C>(args.beta2);
    k.one_b1 = static_cast<C>(1.0 - args.beta1);
    k.one_b2 = static_cast<C>(1.0 - args.beta2);
    k.step_size = static_cast<C>(args.lr / bc1);
    k.inv_bc2_sqrt = static_cast<C>(1.0 / bc2_sqrt);
    k.eps = static_cast<C>(args.eps);
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (adamw_kernel<T>), cuda_detail::grid_for(c, n), cuda_detail::kThreads,
                  static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(m),
                  static_cast<T*>(v), n, k, norm_scale);
  });
}

void CudaBackend::do_sgd_update(DType dtype, void* param, const void* grad, void* buf,
                                std::int64_t n, const SgdArgs& args, const double* norm_scale) {
  constexpr const char* kM = "sgd_update";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    using C = Compute<T>;
    if (n == 0) return;
    const int mode = args.momentum == 0 ? 0 : (args.step == 1 ? 1 : 2);
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (sgd_kernel<T>), cuda_detail::grid_for(c, n), cuda_detail::kThreads,
                  static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(buf), n,
                  static_cast<C>(args.lr), static_cast<C>(args.weight_decay),
                  static_cast<C>(args.momentum), mode, norm_scale);
  });
}

}  // namespace strata::kernels
