// bf16 on the host backend: conversions round to nearest even as GPUs do, and the emulated calls
// (f32 kernels on converted copies, kernels/f32_emulation.h) agree with double-precision
// references on the same bf16 inputs within bf16 rounding (rtol 1e-2), read strided and
// broadcast operands correctly, accumulate into C with beta, update in place, and move data
// exactly. Every other call's bf16 form is exercised by "every method rejects unsupported dtypes
// by name" and by the bf16 training runs of tests/cli/test_mixed_precision_mpi.sh.
#include <cstdint>
#include <limits>

#include "kernels/bf16_bits.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::test {
namespace {

using Bits = std::vector<std::uint16_t>;

Bits to_bf16(const std::vector<double>& v) {
  Bits out;
  for (double x : v) out.push_back(bf16_from_f32(static_cast<float>(x)));
  return out;
}
std::vector<double> from_bf16(const Bits& b) {
  std::vector<double> out;
  for (std::uint16_t x : b) out.push_back(f32_from_bf16(x));
  return out;
}
// Values already representable in bf16.
std::vector<double> bf16_values(std::mt19937_64& rng, std::size_t n, double lo = -1,
                                double hi = 1) {
  return from_bf16(to_bf16(random_vec<double>(rng, n, lo, hi)));
}

}  // namespace

TEST_CASE("bf16 conversions round to nearest even", "[kernels][host][bf16]") {
  Backend& be = host_backend();
  const double ulp = std::ldexp(1.0, -7);  // bf16 spacing in [1, 2)
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> in = {1.0f,
                                 static_cast<float>(1 + ulp / 2),     // tie: to even, 1
                                 static_cast<float>(1 + 1.5 * ulp),   // tie: to even, 1 + 2 ulp
                                 static_cast<float>(1 + 0.75 * ulp),  // above half: 1 + ulp
                                 -2.5f,
                                 inf,
                                 -inf,
                                 1e-40f};
  const std::vector<double> want = {1, 1, 1 + 2 * ulp, 1 + ulp, -2.5, inf, -inf, 0};
  Buf<float> f(be, in);
  Buf<std::uint16_t> b(be, in.size());
  be.convert(DType::kF32, f.get(), DType::kBF16, b.get(), static_cast<std::int64_t>(in.size()));
  const auto got = from_bf16(b.host());
  for (std::size_t i = 0; i + 1 < want.size(); ++i) CHECK(got[i] == want[i]);
  CHECK(std::abs(got.back()) < 1e-38);  // a subnormal keeps its (tiny) size
  // NaN stays NaN; bf16 -> f64 is exact; f64 -> bf16 rounds the same.
  Buf<float> nan(be, std::vector<float>{std::numeric_limits<float>::quiet_NaN()});
  be.convert(DType::kF32, nan.get(), DType::kBF16, b.get(), 1);
  CHECK(std::isnan(f32_from_bf16(b.host()[0])));
  Buf<double> d(be, want.size());
  be.convert(DType::kF32, f.get(), DType::kBF16, b.get(), static_cast<std::int64_t>(in.size()));
  be.convert(DType::kBF16, b.get(), DType::kF64, d.get(), static_cast<std::int64_t>(in.size()));
  CHECK(d.host() == got);
  Buf<std::uint16_t> b2(be, in.size());
  be.convert(DType::kF64, d.get(), DType::kBF16, b2.get(), static_cast<std::int64_t>(in.size()));
  CHECK(b2.host() == b.host());
}

TEST_CASE("bf16 gemm: transposes, strides, broadcast, beta accumulation", "[kernels][host][bf16]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(71);
  // C_i [m, n] = 0.5 A_i^T B^T + 1 C_i with A_i stored [k, m] (lda = m + 2, batch stride), B one
  // [n, k] matrix broadcast (stride 0, ldb = k + 1), C with ldc = n + 3.
  const std::int64_t batch = 3, m = 5, n = 4, k = 6, lda = m + 2, ldb = k + 1, ldc = n + 3;
  const std::int64_t sa = k * lda, sc = m * ldc;
  const auto a = bf16_values(rng, static_cast<std::size_t>(batch * sa));
  const auto bm = bf16_values(rng, static_cast<std::size_t>(n * ldb));
  const auto c0 = bf16_values(rng, static_cast<std::size_t>(batch * sc));
  Buf<std::uint16_t> ba(be, to_bf16(a)), bb(be, to_bf16(bm)), bc(be, to_bf16(c0));
  GemmArgs g;
  g.trans_a = g.trans_b = true;
  g.m = m, g.n = n, g.k = k, g.alpha = 0.5, g.beta = 1.0;
  g.a = ba.get(), g.lda = lda, g.stride_a = sa;
  g.b = bb.get(), g.ldb = ldb, g.stride_b = 0;
  g.c = bc.get(), g.ldc = ldc, g.stride_c = sc;
  g.batch = batch;
  be.gemm(DType::kBF16, g);
  const auto got = from_bf16(bc.host());
  std::vector<double> want = c0;
  for (std::int64_t i = 0; i < batch; ++i)
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t col = 0; col < n; ++col) {
        double s = 0;
        for (std::int64_t j = 0; j < k; ++j) s += a[i * sa + j * lda + r] * bm[col * ldb + j];
        want[i * sc + r * ldc + col] += 0.5 * s;
      }
  STRATA_CHECK_CLOSE("bf16 gemm", got, want, 1e-2, 0.0);
  for (std::int64_t i = 0; i < batch; ++i)  // padding columns of C untouched
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t col = n; col < ldc && i * sc + r * ldc + col < batch * sc; ++col)
        CHECK(got[i * sc + r * ldc + col] == c0[i * sc + r * ldc + col]);
}

TEST_CASE("bf16 layernorm, cross-entropy and in-place AdamW against double",
          "[kernels][host][bf16]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(72);
  const std::int64_t rows = 6, cols = 40;
  const auto x = bf16_values(rng, rows * cols, -3, 3);
  const auto w = bf16_values(rng, cols), bias = bf16_values(rng, cols);
  Buf<std::uint16_t> bx(be, to_bf16(x)), bw(be, to_bf16(w)), bb(be, to_bf16(bias));
  Buf<std::uint16_t> y(be, rows * cols), mean(be, rows), rstd(be, rows);
  be.layernorm_forward(DType::kBF16, bx.get(), bw.get(), bb.get(), y.get(), mean.get(), rstd.get(),
                       rows, cols, 1e-5);
  std::vector<double> want(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (std::int64_t c = 0; c < cols; ++c) mu += x[r * cols + c] / cols;
    for (std::int64_t c = 0; c < cols; ++c) var += std::pow(x[r * cols + c] - mu, 2) / cols;
    for (std::int64_t c = 0; c < cols; ++c)
      want[r * cols + c] = (x[r * cols + c] - mu) / std::sqrt(var + 1e-5) * w[c] + bias[c];
  }
  STRATA_CHECK_CLOSE("bf16 layernorm", from_bf16(y.host()), want, 1e-2, 0.0);

  // loss = mean over rows of logsumexp - logit[target]
  const std::vector<std::int32_t> targets = {0, 5, 39, 7, 7, 20};
  Buf<std::int32_t> bt(be, targets);
  Buf<std::uint16_t> loss(be, 1);
  be.cross_entropy_forward(DType::kBF16, bx.get(), bt.get(), loss.get(), rows, cols);
  double want_loss = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (std::int64_t c = 0; c < cols; ++c) s += std::exp(x[r * cols + c]);
    want_loss += (std::log(s) - x[r * cols + targets[static_cast<std::size_t>(r)]]) / rows;
  }
  CHECK(std::abs(f32_from_bf16(loss.host()[0]) - want_loss) <= 1e-2 * want_loss);

  // AdamW step 1 updates p, m, v in place: m = 0.1 g, v = 0.001 g^2, p -= lr g / (|g| + eps')
  const auto p0 = bf16_values(rng, 64), grad = bf16_values(rng, 64, 0.5, 1.0);
  Buf<std::uint16_t> p(be, to_bf16(p0)), bg(be, to_bf16(grad)), m(be, 64), v(be, 64);
  Buf<double> ns(be, std::vector<double>{1.0, 1.0});
  AdamWArgs args;
  args.lr = 0.25;
  be.adamw_update(DType::kBF16, p.get(), bg.get(), m.get(), v.get(), 64, args, ns.get());
  std::vector<double> want_p(64), want_m(64);
  for (std::size_t i = 0; i < 64; ++i) {
    want_m[i] = 0.1 * grad[i];
    want_p[i] = p0[i] - 0.25 * grad[i] / (std::abs(grad[i]) + 1e-8);
  }
  STRATA_CHECK_CLOSE("bf16 adamw p", from_bf16(p.host()), want_p, 1e-2, 0.0);
  STRATA_CHECK_CLOSE("bf16 adamw m", from_bf16(m.host()), want_m, 1e-2, 0.0);
}

TEST_CASE("bf16 data movement is exact: split / merge heads, permute", "[kernels][host][bf16]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(73);
  const std::int64_t B = 2, S = 3, P = 3, A = 2, D = 4, part = B * S * A * D;
  const Bits x = to_bf16(random_vec<double>(rng, static_cast<std::size_t>(part * P)));
  Buf<std::uint16_t> bx(be, x), q(be, part), k(be, part), v(be, part), back(be, part * P);
  void* outs[3] = {q.get(), k.get(), v.get()};
  be.split_heads(DType::kBF16, bx.get(), outs, B, S, P, A, D);
  // q[b, a, s, d] = x[b, s, 0, a, d]
  const Bits qh = q.host();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t a = 0; a < A; ++a)
      for (std::int64_t s = 0; s < S; ++s)
        for (std::int64_t d = 0; d < D; ++d)
          CHECK(qh[((b * A + a) * S + s) * D + d] == x[(((b * S + s) * P + 0) * A + a) * D + d]);
  const void* ins[3] = {q.get(), k.get(), v.get()};
  be.merge_heads(DType::kBF16, ins, back.get(), B, S, P, A, D);
  CHECK(back.host() == x);
  const std::int64_t shape[2] = {6, 8};
  const int perm[2] = {1, 0};
  Buf<std::uint16_t> t(be, 48), tt(be, 48);
  be.permute(DType::kBF16, bx.get(), t.get(), shape, perm, 2);
  const std::int64_t tshape[2] = {8, 6};
  be.permute(DType::kBF16, t.get(), tt.get(), tshape, perm, 2);
  CHECK(tt.host() == Bits(x.begin(), x.begin() + 48));
}

}  // namespace strata::kernels::test
