// HostBackend tests, part 1: memory and conversion, GEMM (all transposes, padded leading
// dimensions, batch strides, stride-0 broadcast, alpha/beta, k = 0, argument checks), permute,
// the elementwise kernels and flat reductions, and the unsupported-dtype errors of every method.
// Each kernel runs in f32 and f64 against a plain double loop written here.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "kernels/host/fast_math.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::test {
namespace {

TEST_CASE("host memory: aligned zeroed allocations, copies, fill, convert", "[kernels][host]") {
  Backend& be = host_backend();
  CHECK(be.name() == "host");
  CHECK(backend_available("host"));
  CHECK(make_backend("host")->name() == "host");
  for (std::size_t bytes :
       {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{4096 + 8}}) {
    auto* p = static_cast<unsigned char*>(be.allocate(bytes));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
    CHECK(std::all_of(p, p + bytes, [](unsigned char c) { return c == 0; }));
    be.release(p);
  }
  be.release(nullptr);  // like free(nullptr)

  CHECK(be.memory_is_host());  // MPI may read backend memory directly (app/message_staging.h)
  void* staged = be.allocate_host(16);
  CHECK(staged != nullptr);
  be.release_host(staged);

  std::mt19937_64 rng(11);
  const auto src = random_vec<double>(rng, 37);
  Buf<double> a(be, src), b(be, src.size());
  be.copy(b.get(), a.get(), src.size() * sizeof(double));
  CHECK(b.host() == src);
  be.fill_zero(b.get(), 5 * sizeof(double));
  auto z = b.host();
  CHECK(std::all_of(z.begin(), z.begin() + 5, [](double v) { return v == 0; }));
  CHECK(std::equal(z.begin() + 5, z.end(), src.begin() + 5));

  Buf<float> f(be, src.size());
  be.convert(DType::kF64, a.get(), DType::kF32, f.get(), 37);
  const auto fh = f.host();
  for (std::size_t i = 0; i < src.size(); ++i) CHECK(fh[i] == static_cast<float>(src[i]));
  Buf<double> back(be, src.size());
  be.convert(DType::kF32, f.get(), DType::kF64, back.get(), 37);
  CHECK(back.host() == to_double(fh));
  Buf<double> same(be, src.size());
  be.convert(DType::kF64, a.get(), DType::kF64, same.get(), 37);
  CHECK(same.host() == src);
  CHECK_THROWS_AS(be.convert(DType::kF16, a.get(), DType::kF32, f.get(), 37),
                  std::invalid_argument);
  CHECK_THROWS_AS(be.convert(DType::kF64, a.get(), DType::kF32, f.get(), -1),
                  std::invalid_argument);
  be.synchronize();
}

// Plain reference: C_i = alpha * op(A_i) op(B_i) + beta * C_i on the stored (padded) buffers.
void gemm_reference(const GemmArgs& g, const std::vector<double>& a, const std::vector<double>& b,
                    std::vector<double>& c) {
  for (std::int64_t i = 0; i < g.batch; ++i) {
    for (std::int64_t r = 0; r < g.m; ++r) {
      for (std::int64_t col = 0; col < g.n; ++col) {
        double s = 0;
        for (std::int64_t q = 0; q < g.k; ++q) {
          const double av =
              g.trans_a ? a[i * g.stride_a + q * g.lda + r] : a[i * g.stride_a + r * g.lda + q];
          const double bv =
              g.trans_b ? b[i * g.stride_b + col * g.ldb + q] : b[i * g.stride_b + q * g.ldb + col];
          s += av * bv;
        }
        double& cv = c[i * g.stride_c + r * g.ldc + col];
        cv = g.alpha * s + (g.beta == 0 ? 0.0 : g.beta * cv);
      }
    }
  }
}

template <class T>
void run_gemm_case(std::mt19937_64& rng, bool ta, bool tb, std::int64_t m, std::int64_t n,
                   std::int64_t k, std::int64_t batch, bool bcast_a, bool bcast_b, double alpha,
                   double beta) {
  Backend& be = host_backend();
  GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m, g.n = n, g.k = k, g.batch = batch, g.alpha = alpha, g.beta = beta;
  // Padded leading dimensions and gaps between batch items, so wrong strides show up.
  const std::int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const std::int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  g.lda = a_cols + 2, g.ldb = b_cols + 1, g.ldc = n + 3;
  g.stride_a = bcast_a ? 0 : a_rows * g.lda + 5;
  g.stride_b = bcast_b ? 0 : b_rows * g.ldb + 1;
  g.stride_c = m * g.ldc + 2;
  const auto a = random_vec<T>(rng, (bcast_a ? 1 : batch) * (a_rows * g.lda + 5));
  const auto b = random_vec<T>(rng, (bcast_b ? 1 : batch) * (b_rows * g.ldb + 1));
  const auto c0 = random_vec<T>(rng, batch * g.stride_c);
  Buf<T> da(be, a), db(be, b), dc(be, c0);
  g.a = da.get(), g.b = db.get(), g.c = dc.get();
  be.gemm(dtype_of<T>(), g);
  std::vector<double> want = to_double(c0);
  gemm_reference(g, to_double(a), to_double(b), want);
  INFO("trans_a " << ta << " trans_b " << tb << " m " << m << " n " << n << " k " << k << " batch "
                  << batch << " bcast " << bcast_a << bcast_b);
  STRATA_CHECK_CLOSE("gemm C", dc.host(), want, ref_rtol<T>(), 0.0);
}

TEMPLATE_TEST_CASE("gemm: transposes, strides, broadcast, alpha/beta", "[kernels][host][gemm]",
                   float, double) {
  std::mt19937_64 rng(1234);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      run_gemm_case<TestType>(rng, ta, tb, 5, 7, 6, 1, false, false, 1.0, 0.0);
      run_gemm_case<TestType>(rng, ta, tb, 33, 17, 29, 3, false, false, 0.7, -0.4);
      run_gemm_case<TestType>(rng, ta, tb, 9, 4, 11, 4, true, false, -1.3, 1.0);
      run_gemm_case<TestType>(rng, ta, tb, 6, 10, 3, 2, false, true, 0.5, 0.25);
    }
  }
  run_gemm_case<TestType>(rng, false, false, 4, 5, 0, 2, false, false, 1.0, 0.5);  // C = beta C
  run_gemm_case<TestType>(rng, true, false, 1, 1, 64, 1, false, false, 2.0, 0.0);
}

TEST_CASE("gemm: argument checks name the sizes", "[kernels][host][gemm]") {
  Backend& be = host_backend();
  std::vector<double> a(64), b(64), c(64);
  GemmArgs g;
  g.m = 4, g.n = 4, g.k = 4, g.lda = 4, g.ldb = 4, g.ldc = 4;
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  be.gemm(DType::kF64, g);  // valid baseline
  GemmArgs bad = g;
  bad.lda = 3;
  CHECK_THROWS_WITH(be.gemm(DType::kF64, bad), Catch::Contains("lda = 3"));
  bad = g;
  bad.trans_b = true, bad.k = 5;  // B stored [n, k] needs ldb >= 5
  bad.lda = 5;
  CHECK_THROWS_WITH(be.gemm(DType::kF64, bad), Catch::Contains("ldb = 4"));
  bad = g;
  bad.ldc = 2;
  CHECK_THROWS_WITH(be.gemm(DType::kF64, bad), Catch::Contains("ldc = 2"));
  bad = g;
  bad.m = -1;
  CHECK_THROWS_WITH(be.gemm(DType::kF64, bad), Catch::Contains("-1"));
  bad = g;
  bad.a = nullptr;
  CHECK_THROWS_AS(be.gemm(DType::kF64, bad), std::invalid_argument);
  bad = g;
  bad.stride_b = -4;
  CHECK_THROWS_AS(be.gemm(DType::kF64, bad), std::invalid_argument);
  bad = g;
  bad.m = bad.n = 0, bad.a = bad.b = nullptr, bad.c = nullptr;
  CHECK_NOTHROW(be.gemm(DType::kF64, bad));  // nothing to compute, nothing dereferenced
}

// out[o] with o the output multi-index: in[i] where i[perm[j]] = o[j].
std::vector<double> permute_reference(const std::vector<double>& in,
                                      const std::vector<std::int64_t>& shape,
                                      const std::vector<int>& perm) {
  const int rank = static_cast<int>(shape.size());
  std::vector<std::int64_t> in_stride(rank, 1), out_shape(rank);
  for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * shape[d + 1];
  for (int j = 0; j < rank; ++j) out_shape[j] = shape[perm[j]];
  std::vector<double> out(in.size());
  std::vector<std::int64_t> idx(rank, 0);
  for (std::size_t lin = 0; lin < out.size(); ++lin) {
    std::int64_t src = 0;
    for (int j = 0; j < rank; ++j) src += idx[j] * in_stride[perm[j]];
    out[lin] = in[src];
    for (int j = rank - 1; j >= 0; --j) {  // odometer over the output index
      if (++idx[j] < out_shape[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

TEMPLATE_TEST_CASE("permute: ranks 0 to 8 against an index reference", "[kernels][host]", float,
                   double) {
  Backend& be = host_backend();
  std::mt19937_64 rng(77);
  std::vector<std::vector<std::int64_t>> shapes = {
      {}, {7}, {3, 5}, {4, 1, 6}, {2, 3, 4, 5}, {3, 1, 2, 4, 2}, {2, 3, 1, 2, 2, 1, 3, 2}};
  for (const auto& shape : shapes) {
    const int rank = static_cast<int>(shape.size());
    std::int64_t numel = 1;
    for (auto s : shape) numel *= s;
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<int> perm(rank);
      std::iota(perm.begin(), perm.end(), 0);
      if (trial > 0) std::shuffle(perm.begin(), perm.end(), rng);
      const auto in = random_vec<TestType>(rng, numel);
      Buf<TestType> din(be, in), dout(be, numel);
      be.permute(dtype_of<TestType>(), din.get(), dout.get(), shape.data(), perm.data(), rank);
      INFO("rank " << rank << " trial " << trial);
      CHECK(to_double(dout.host()) == permute_reference(to_double(in), shape, perm));
    }
  }
  std::vector<double> x(8), y(8);
  std::int64_t shape[9] = {2, 2, 2, 1, 1, 1, 1, 1, 1};
  int dup[3] = {0, 0, 1};
  CHECK_THROWS_AS(be.permute(DType::kF64, x.data(), y.data(), shape, dup, 3),
                  std::invalid_argument);
  int perm9[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_THROWS_WITH(be.permute(DType::kF64, x.data(), y.data(), shape, perm9, 9),
                    Catch::Contains("rank = 9"));
}

TEMPLATE_TEST_CASE("add, add_broadcast, reduce_sum_outer", "[kernels][host]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(5);
  const DType dt = dtype_of<T>();
  const std::int64_t outer = 13, inner = 301;  // inner > one 256-column block, not a multiple
  const auto x = random_vec<T>(rng, outer * inner);
  const auto y = random_vec<T>(rng, outer * inner);
  const auto row = random_vec<T>(rng, inner);
  Buf<T> dx(be, x), dy(be, y), drow(be, row), dout(be, outer * inner), dsum(be, inner);

  be.add(dt, dx.get(), dy.get(), dout.get(), outer * inner);
  std::vector<double> want(outer * inner);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = double(x[i]) + double(y[i]);
  STRATA_CHECK_CLOSE("add", dout.host(), want, ref_rtol<T>(), 0.0);
  be.add(dt, dx.get(), dy.get(), dx.get(), outer * inner);  // in place
  STRATA_CHECK_CLOSE("add in place", dx.host(), want, ref_rtol<T>(), 0.0);
  dx.upload(x);

  be.add_broadcast(dt, dx.get(), drow.get(), dout.get(), outer, inner);
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t i = 0; i < inner; ++i)
      want[o * inner + i] = double(x[o * inner + i]) + double(row[i]);
  }
  STRATA_CHECK_CLOSE("add_broadcast", dout.host(), want, ref_rtol<T>(), 0.0);

  // reduce_sum_outer overwrites: start from garbage.
  dsum.upload(random_vec<T>(rng, inner, 5.0, 9.0));
  be.reduce_sum_outer(dt, dx.get(), dsum.get(), outer, inner);
  std::vector<double> col(inner, 0.0);
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t i = 0; i < inner; ++i) col[i] += double(x[o * inner + i]);
  }
  STRATA_CHECK_CLOSE("reduce_sum_outer", dsum.host(), col, ref_rtol<T>(), 0.0);
}

constexpr double kPi = 3.14159265358979323846;

double gelu_ref(double x) {
  const double c = std::sqrt(2.0 / kPi);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}
// d/dx gelu_ref, by the product and chain rules.
double gelu_grad_ref(double x) {
  const double c = std::sqrt(2.0 / kPi);
  const double u = c * (x + 0.044715 * x * x * x);
  const double du = c * (1.0 + 3.0 * 0.044715 * x * x);
  const double th = std::tanh(u);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
}

TEMPLATE_TEST_CASE("gelu forward and backward", "[kernels][host]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(6);
  auto x = random_vec<T>(rng, 997, -6.0, 6.0);
  // Edges: zero, tiny, the fast-tanh clamp region, far tails.
  for (double v : {0.0, 1e-6, -1e-6, 3e-4, -3e-4, 7.9, -7.9, 9.0, -9.0, 30.0, -30.0})
    x.push_back(T(v));
  const auto dy = random_vec<T>(rng, x.size());
  Buf<T> dx(be, x), ddy(be, dy), dy_out(be, x.size()), dgrad(be, x.size());
  be.gelu_forward(dtype_of<T>(), dx.get(), dy_out.get(), x.size());
  be.gelu_backward(dtype_of<T>(), dx.get(), ddy.get(), dgrad.get(), x.size());
  std::vector<double> want_y(x.size()), want_dx(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    want_y[i] = gelu_ref(x[i]);
    want_dx[i] = double(dy[i]) * gelu_grad_ref(x[i]);
  }
  STRATA_CHECK_CLOSE("gelu y", dy_out.host(), want_y, ref_rtol<T>(), 0.0);
  STRATA_CHECK_CLOSE("gelu dx", dgrad.host(), want_dx, ref_rtol<T>(), 0.0);
  // Elementwise too: the f32 rational tanh must not hide a bad region inside the norm. In the
  // far negative tail 1 + tanh(u) cancels in any f32 implementation, so allow an absolute
  // ~eps(f32) * |x| there.
  const auto got = dy_out.host();
  const double rel = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  const double abs_per_x = std::is_same_v<T, float> ? 2e-7 : 1e-15;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double tol =
        rel * std::abs(want_y[i]) + abs_per_x * std::max(1.0, std::abs(double(x[i])));
    if (!(std::abs(got[i] - want_y[i]) <= tol)) {
      if (++bad <= 5)
        std::printf("gelu x %.9g got %.9g want %.9g\n", double(x[i]), double(got[i]), want_y[i]);
    }
  }
  CHECK(bad == 0);
  be.gelu_forward(dtype_of<T>(), dx.get(), dx.get(), x.size());  // in place
  CHECK(dx.host() == got);
}

// The fused bias + GELU against its definition, add_broadcast then gelu: bit for bit (the sum is
// rounded to T first in both), rows longer and shorter than the kernel's blocks, in place.
TEMPLATE_TEST_CASE("bias_gelu equals add_broadcast then gelu", "[kernels][host]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(7);
  for (auto [outer, inner] : {std::pair<std::int64_t, std::int64_t>{3, 5}, {7, 300}, {2, 5000}}) {
    INFO(outer << " x " << inner);
    const std::int64_t n = outer * inner;
    const auto x = random_vec<T>(rng, n, -4.0, 4.0);
    const auto bias = random_vec<T>(rng, inner);
    const auto dy = random_vec<T>(rng, n);
    const T nan = std::numeric_limits<T>::quiet_NaN();
    Buf<T> dx(be, x), db(be, bias), ddy(be, dy), h(be, n), want_y(be, n), want_dx(be, n);
    Buf<T> y(be, std::vector<T>(n, nan)), gx(be, std::vector<T>(n, nan));
    be.add_broadcast(dt, dx.get(), db.get(), h.get(), outer, inner);
    be.gelu_forward(dt, h.get(), want_y.get(), n);
    be.gelu_backward(dt, h.get(), ddy.get(), want_dx.get(), n);
    be.bias_gelu_forward(dt, dx.get(), db.get(), y.get(), outer, inner);
    be.bias_gelu_backward(dt, dx.get(), db.get(), ddy.get(), gx.get(), outer, inner);
    CHECK(y.host() == want_y.host());
    CHECK(gx.host() == want_dx.host());
    be.bias_gelu_forward(dt, dx.get(), db.get(), dx.get(), outer, inner);  // in place
    CHECK(dx.host() == want_y.host());
  }
  CHECK_THROWS_WITH(
      be.bias_gelu_forward(dt, nullptr, nullptr, nullptr, 2, 3),
      Catch::Contains("HostBackend::bias_gelu_forward") && Catch::Contains("x is null"));
}

TEST_CASE("f32 fast tanh and exp: accuracy sweep, scalar and 4-lane agree", "[kernels][host]") {
  // The f32 GELU, softmax and logsumexp use these instead of libm (kernels/host/fast_math.h).
  double worst_tanh = 0, worst_exp = 0;
  for (int i = -200000; i <= 200000; ++i) {
    const float x = static_cast<float>(i) * 1e-4f;  // [-20, 20]
    worst_tanh =
        std::max(worst_tanh, std::abs(double(detail::fast_tanh(x)) - std::tanh(double(x))));
    const float xe = -static_cast<float>(i + 200000) * 2.2e-4f;  // [-88, 0]
    const double e = std::exp(double(xe));
    if (e >= 1.2e-38)
      worst_exp = std::max(worst_exp, std::abs(double(detail::fast_exp(xe)) - e) / e);
  }
  INFO("max |tanh err| " << worst_tanh << ", max exp rel err " << worst_exp);
  CHECK(worst_tanh < 1e-6);
  CHECK(worst_exp < 5e-7);  // a few f32 ulp
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(detail::fast_exp(-inf) == 0.0f);
  CHECK(detail::fast_exp(-100.0f) == 0.0f);
  CHECK(detail::fast_exp(0.0f) == 1.0f);
  CHECK(detail::fast_tanh(0.0f) == 0.0f);
  CHECK(detail::fast_tanh(inf) == detail::fast_tanh(100.0f));
  const detail::V4f v = {-3.5f, -inf, 0.25f, 7.0f};
  const detail::V4f ev = detail::fast_exp(v - 7.0f), tv = detail::fast_tanh(v);
  for (int k = 0; k < 4; ++k) {
    CHECK(ev[k] == detail::fast_exp(v[k] - 7.0f));
    CHECK(tv[k] == detail::fast_tanh(v[k]));
  }
}

TEMPLATE_TEST_CASE("sum_squares accumulates in double", "[kernels][host]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(7);
  for (std::int64_t n : {0, 1, 7, 8, 9, 4096, 10007}) {
    const auto x = random_vec<T>(rng, n, -3.0, 3.0);
    Buf<T> dx(be, x);
    Buf<double> out(be, 1);
    be.sum_squares(dtype_of<T>(), dx.get(), n, out.get());
    double want = 0;
    for (T v : x) want += double(v) * double(v);  // exact products of floats in double
    INFO("n = " << n);
    CHECK(std::abs(out.host()[0] - want) <= 1e-12 * want);
  }
}

TEST_CASE("every method rejects unsupported dtypes by name", "[kernels][host]") {
  Backend& be = host_backend();
  std::vector<double> a(64, 0.5), b(64, 0.5), c(64, 0.5), d(64, 0.5), e(64, 0.5);
  std::vector<std::int32_t> tok(4, 1);
  std::int64_t shape[2] = {2, 2};
  int perm[2] = {1, 0};
  void* outs[1] = {b.data()};
  const void* ins[1] = {b.data()};
  double ns[2] = {1.0, 1.0};
  double sq = 0;
  GemmArgs g;
  g.m = g.n = g.k = g.lda = g.ldb = g.ldc = 2;
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  const std::vector<std::pair<const char*, std::function<void(DType)>>> calls = {
      {"gemm", [&](DType t) { be.gemm(t, g); }},
      {"permute", [&](DType t) { be.permute(t, a.data(), b.data(), shape, perm, 2); }},
      {"add", [&](DType t) { be.add(t, a.data(), b.data(), c.data(), 4); }},
      {"add_broadcast", [&](DType t) { be.add_broadcast(t, a.data(), b.data(), c.data(), 2, 2); }},
      {"reduce_sum_outer", [&](DType t) { be.reduce_sum_outer(t, a.data(), b.data(), 2, 2); }},
      {"gelu_forward", [&](DType t) { be.gelu_forward(t, a.data(), b.data(), 4); }},
      {"gelu_backward", [&](DType t) { be.gelu_backward(t, a.data(), b.data(), c.data(), 4); }},
      {"sum_squares", [&](DType t) { be.sum_squares(t, a.data(), 4, &sq); }},
      {"layernorm_forward",
       [&](DType t) {
         be.layernorm_forward(t, a.data(), b.data(), c.data(), d.data(), e.data(), e.data() + 8, 2,
                              2, 1e-5);
       }},
      {"layernorm_backward",
       [&](DType t) {
         be.layernorm_backward(t, a.data(), b.data(), c.data(), d.data(), d.data() + 8, e.data(),
                               e.data() + 8, e.data() + 16, 2, 2);
       }},
      {"softmax_forward", [&](DType t) { be.softmax_forward(t, a.data(), b.data(), 2, 2); }},
      {"softmax_backward",
       [&](DType t) { be.softmax_backward(t, a.data(), b.data(), c.data(), 2, 2); }},
      {"causal_mask",
       [&](DType t) { be.causal_mask(t, a.data(), b.data(), 1, 2, 2, 0, 0, false); }},
      {"embedding_forward",
       [&](DType t) { be.embedding_forward(t, tok.data(), a.data(), b.data(), 4, 2, 2); }},
      {"embedding_backward",
       [&](DType t) { be.embedding_backward(t, tok.data(), a.data(), b.data(), 4, 2, 2); }},
      {"embedding_forward_shard",
       [&](DType t) { be.embedding_forward_shard(t, tok.data(), a.data(), b.data(), 4, 2, 2, 1); }},
      {"embedding_backward_shard",
       [&](DType t) {
         be.embedding_backward_shard(t, tok.data(), a.data(), b.data(), 4, 2, 2, 1);
       }},
      {"split_heads", [&](DType t) { be.split_heads(t, a.data(), outs, 1, 2, 1, 1, 2); }},
      {"merge_heads", [&](DType t) { be.merge_heads(t, ins, a.data(), 1, 2, 1, 1, 2); }},
      {"cross_entropy_forward",
       [&](DType t) { be.cross_entropy_forward(t, a.data(), tok.data(), b.data(), 2, 2); }},
      {"cross_entropy_backward",
       [&](DType t) {
         be.cross_entropy_backward(t, a.data(), tok.data(), b.data(), c.data(), 2, 2);
       }},
      {"row_max", [&](DType t) { be.row_max(t, a.data(), b.data(), 2, 2); }},
      {"row_sum_exp", [&](DType t) { be.row_sum_exp(t, a.data(), b.data(), c.data(), 2, 2); }},
      {"cross_entropy_forward_shard",
       [&](DType t) {
         be.cross_entropy_forward_shard(t, a.data(), tok.data(), b.data(), c.data(), d.data(), 2, 2,
                                        0, 0.5);
       }},
      {"cross_entropy_backward_shard",
       [&](DType t) {
         be.cross_entropy_backward_shard(t, a.data(), tok.data(), b.data(), c.data(), d.data(),
                                         e.data(), 2, 2, 0, 0.5);
       }},
      {"adamw_update",
       [&](DType t) {
         be.adamw_update(t, a.data(), b.data(), c.data(), d.data(), 4, AdamWArgs{}, ns);
       }},
      {"sgd_update",
       [&](DType t) { be.sgd_update(t, a.data(), b.data(), c.data(), 4, SgdArgs{}, ns); }},
  };
  for (const auto& [name, call] : calls) {
    INFO(name);
    for (DType t : {DType::kF16, DType::kI32}) {
      CHECK_THROWS_AS(call(t), std::invalid_argument);
      CHECK_THROWS_WITH(call(t), Catch::Contains(name));
    }
    CHECK_THROWS_WITH(call(DType::kF16), Catch::Contains("f16"));
    CHECK_NOTHROW(call(DType::kBF16));  // emulated through the f32 kernels (f32_emulation.h)
    CHECK_NOTHROW(call(DType::kF64));   // the same arguments are valid in f64
  }
}

}  // namespace
}  // namespace strata::kernels::test
