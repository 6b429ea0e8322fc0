// HostBackend tests, part 3: clip_by_global_norm, AdamW and SGD (three steps each, with and
// without weight decay / momentum, gradients scaled by norm_scale[1]) against the formulas of
// kernels/backend.h written out in double; and a hidden timing case ("[.bench]") for the kernels
// of one GPT training step at the benchmark's sizes (run: test_kernels "[.bench]").
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::test {
namespace {

TEST_CASE("clip_by_global_norm", "[kernels][host][optim]") {
  Backend& be = host_backend();
  const double s0 = 1.5, s1 = 2.25, s2 = 0.25;  // sum 4 -> norm 2
  const double* sumsq[3] = {&s0, &s1, &s2};
  double ns[2] = {-1, -1};
  be.clip_by_global_norm(sumsq, 3, 1.0, ns);
  CHECK(ns[0] == 2.0);
  CHECK(ns[1] == 1.0 / (2.0 + 1e-6));
  be.clip_by_global_norm(sumsq, 3, 5.0, ns);  // below the limit: no scaling
  CHECK(ns[1] == 1.0);
  be.clip_by_global_norm(sumsq, 3, 0.0, ns);  // clipping off
  CHECK(ns[0] == 2.0);
  CHECK(ns[1] == 1.0);
  be.clip_by_global_norm(sumsq, 0, 1.0, ns);  // no gradients: norm 0, scale min(1, 1e6)
  CHECK(ns[0] == 0.0);
  CHECK(ns[1] == 1.0);
}

TEMPLATE_TEST_CASE("adamw: three steps vs the torch.optim formulas", "[kernels][host][optim]",
                   float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(41);
  const std::int64_t n = 1001;
  for (double wd : {0.0, 0.1}) {
    AdamWArgs args;
    args.lr = 1e-2, args.beta1 = 0.9, args.beta2 = 0.95, args.eps = 1e-8, args.weight_decay = wd;
    const auto p0 = random_vec<T>(rng, n);
    Buf<T> p(be, p0), m(be, n), v(be, n);
    std::vector<double> rp = to_double(p0), rm(n, 0.0), rv(n, 0.0);
    Buf<double> ns(be, std::vector<double>{3.0, 0.5});
    for (std::int64_t t = 1; t <= 3; ++t) {
      const auto g = random_vec<T>(rng, n, -2.0, 2.0);
      Buf<T> dg(be, g);
      args.step = t;
      be.adamw_update(dtype_of<T>(), p.get(), dg.get(), m.get(), v.get(), n, args, ns.get());
      const double bc1 = 1 - std::pow(args.beta1, t), bc2 = 1 - std::pow(args.beta2, t);
      for (std::int64_t i = 0; i < n; ++i) {
        const double gi = 0.5 * double(g[i]);
        rp[i] -= args.lr * wd * rp[i];
        rm[i] = args.beta1 * rm[i] + (1 - args.beta1) * gi;
        rv[i] = args.beta2 * rv[i] + (1 - args.beta2) * gi * gi;
        rp[i] -= (args.lr / bc1) * rm[i] / (std::sqrt(rv[i]) / std::sqrt(bc2) + args.eps);
      }
      INFO("wd " << wd << " step " << t);
      STRATA_CHECK_CLOSE("adamw p", p.host(), rp, ref_rtol<T>(), 0.0);
      STRATA_CHECK_CLOSE("adamw m", m.host(), rm, ref_rtol<T>(), 0.0);
      STRATA_CHECK_CLOSE("adamw v", v.host(), rv, ref_rtol<T>(), 0.0);
    }
  }
}

TEMPLATE_TEST_CASE("sgd: three steps with/without momentum and weight decay",
                   "[kernels][host][optim]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(42);
  const std::int64_t n = 517;
  for (double momentum : {0.0, 0.9}) {
    for (double wd : {0.0, 0.01}) {
      SgdArgs args;
      args.lr = 0.05, args.momentum = momentum, args.weight_decay = wd;
      const auto p0 = random_vec<T>(rng, n);
      Buf<T> p(be, p0), buf(be, random_vec<T>(rng, n, 5.0, 6.0));  // step 1 must ignore it
      std::vector<double> rp = to_double(p0), rb(n, 0.0);
      Buf<double> ns(be, std::vector<double>{1.0, 0.8});
      for (std::int64_t t = 1; t <= 3; ++t) {
        const auto g = random_vec<T>(rng, n);
        Buf<T> dg(be, g);
        args.step = t;
        // Without momentum the buffer is unused, so it may be null.
        be.sgd_update(dtype_of<T>(), p.get(), dg.get(), momentum != 0 ? buf.get() : nullptr, n,
                      args, ns.get());
        for (std::int64_t i = 0; i < n; ++i) {
          const double d = 0.8 * double(g[i]) + wd * rp[i];
          rb[i] = t == 1 ? d : momentum * rb[i] + d;
          rp[i] -= args.lr * (momentum != 0 ? rb[i] : d);
        }
        INFO("momentum " << momentum << " wd " << wd << " step " << t);
        STRATA_CHECK_CLOSE("sgd p", p.host(), rp, ref_rtol<T>(), 0.0);
        if (momentum != 0) STRATA_CHECK_CLOSE("sgd buf", buf.host(), rb, ref_rtol<T>(), 0.0);
      }
    }
  }
}

// ---------------------------------------------------------------- timing (hidden)

template <class Fn>
double time_ms(Fn&& fn, int reps = 5) {
  fn();  // warm up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

TEST_CASE("host kernel timings at GPT benchmark sizes (f32)", "[.bench]") {
  // 4 layers, hidden 256, heads 8, seq 128, vocab 256, batch 8: tokens = 1024.
  Backend& be = host_backend();
  const DType f = DType::kF32;
  std::mt19937_64 rng(99);
  const std::int64_t tok = 1024, hid = 256, ff = 1024, heads = 8, seq = 128, vocab = 256;
  const std::int64_t att = 8 * heads * seq * seq;
  Buf<float> a(be, random_vec<float>(rng, tok * ff)), b(be, random_vec<float>(rng, tok * ff)),
      c(be, tok * ff), w(be, random_vec<float>(rng, hid)), bias(be, random_vec<float>(rng, hid)),
      mean(be, tok), rstd(be, tok), s(be, random_vec<float>(rng, att)), s2(be, att),
      m(be, 4 * 1024 * 1024), v(be, 4 * 1024 * 1024),
      p(be, random_vec<float>(rng, 4 * 1024 * 1024));
  std::vector<std::int32_t> targets(tok, 3);
  Buf<double> ns(be, std::vector<double>{1.0, 1.0});
  Buf<double> out(be, 1);
  std::printf("gelu fwd [1024x1024]      %8.3f ms\n",
              time_ms([&] { be.gelu_forward(f, a.get(), c.get(), tok * ff); }));
  std::printf("gelu bwd [1024x1024]      %8.3f ms\n",
              time_ms([&] { be.gelu_backward(f, a.get(), b.get(), c.get(), tok * ff); }));
  std::printf("layernorm fwd [1024x256]  %8.3f ms\n", time_ms([&] {
                be.layernorm_forward(f, a.get(), w.get(), bias.get(), c.get(), mean.get(),
                                     rstd.get(), tok, hid, 1e-5);
              }));
  std::printf("layernorm bwd [1024x256]  %8.3f ms\n", time_ms([&] {
                be.layernorm_backward(f, b.get(), a.get(), w.get(), mean.get(), rstd.get(), c.get(),
                                      m.get(), v.get(), tok, hid);
              }));
  std::printf("causal mask [8x8x128x128] %8.3f ms\n",
              time_ms([&] { be.causal_mask(f, s.get(), s2.get(), 64, seq, seq, 0, 0, false); }));
  std::printf("softmax fwd [8x8x128x128] %8.3f ms\n",
              time_ms([&] { be.softmax_forward(f, s2.get(), c.get(), att / seq, seq); }));
  std::printf("softmax bwd [8x8x128x128] %8.3f ms\n",
              time_ms([&] { be.softmax_backward(f, c.get(), s.get(), b.get(), att / seq, seq); }));
  std::printf("xent fwd+bwd [1024x256]   %8.3f ms\n", time_ms([&] {
                be.cross_entropy_forward(f, a.get(), targets.data(), out.get(), tok, vocab);
                be.cross_entropy_backward(f, a.get(), targets.data(), w.get(), c.get(), tok, vocab);
              }));
  std::printf("sum_squares [4M]          %8.3f ms\n",
              time_ms([&] { be.sum_squares(f, p.get(), 4 * 1024 * 1024, out.get()); }));
  AdamWArgs args;
  args.lr = 1e-4, args.weight_decay = 0.01;
  std::printf("adamw [4M]                %8.3f ms\n", time_ms([&] {
                be.adamw_update(f, p.get(), a.get(), m.get(), v.get(), tok * ff, args, ns.get());
              }));
  std::int64_t shape[4] = {8, seq, heads, hid / heads};
  int perm[4] = {0, 2, 1, 3};
  std::printf("permute [8,128,8,32]->0213 %7.3f ms\n",
              time_ms([&] { be.permute(f, a.get(), c.get(), shape, perm, 4); }));
  std::printf("reduce_sum_outer [1024x1024] %5.3f ms\n",
              time_ms([&] { be.reduce_sum_outer(f, a.get(), c.get(), tok, ff); }));
  GemmArgs g;
  g.m = tok, g.n = ff, g.k = hid, g.lda = hid, g.ldb = ff, g.ldc = ff;
  g.a = a.get(), g.b = b.get(), g.c = c.get();
  const double ms = time_ms([&] { be.gemm(f, g); });
  std::printf("sgemm 1024x1024x256       %8.3f ms (%.1f GFLOP/s)\n", ms,
              2.0 * tok * ff * hid / ms / 1e6);
  SUCCEED();
}

}  // namespace
}  // namespace strata::kernels::test
