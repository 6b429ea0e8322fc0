// HostBackend tests, part 2: layernorm, softmax, causal mask, embeddings, split/merge heads and
// cross-entropy, each in f32 and f64 against plain double references written here, plus the
// f64 finite-difference checks of every backward kernel (central differences of the backend's
// own forward kernel, rtol 1e-6 norm-wise).
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kFdRtol = 1e-6;

struct LayerNormRef {
  std::vector<double> y, mean, rstd;
};

LayerNormRef layernorm_ref(const std::vector<double>& x, const std::vector<double>& w,
                           const std::vector<double>& b, std::int64_t rows, std::int64_t cols,
                           double eps) {
  LayerNormRef r{std::vector<double>(x.size()), std::vector<double>(rows),
                 std::vector<double>(rows)};
  for (std::int64_t i = 0; i < rows; ++i) {
    double mu = 0, var = 0;
    for (std::int64_t j = 0; j < cols; ++j) mu += x[i * cols + j];
    mu /= cols;
    for (std::int64_t j = 0; j < cols; ++j) var += (x[i * cols + j] - mu) * (x[i * cols + j] - mu);
    var /= cols;
    r.mean[i] = mu;
    r.rstd[i] = 1.0 / std::sqrt(var + eps);
    for (std::int64_t j = 0; j < cols; ++j) {
      r.y[i * cols + j] = (x[i * cols + j] - mu) * r.rstd[i] * w[j] + b[j];
    }
  }
  return r;
}

TEMPLATE_TEST_CASE("layernorm forward and backward vs references", "[kernels][host]", float,
                   double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(21);
  const std::int64_t rows = 7, cols = 300;
  const double eps = 1e-5;
  auto x = random_vec<T>(rng, rows * cols, -2.0, 2.0);
  for (std::int64_t j = 0; j < cols; ++j) x[2 * cols + j] += T(5);  // |mean| >> std on a row
  const auto w = random_vec<T>(rng, cols, 0.5, 1.5);
  const auto b = random_vec<T>(rng, cols);
  const auto dy = random_vec<T>(rng, rows * cols);
  Buf<T> dx_in(be, x), dw_in(be, w), db_in(be, b), dy_in(be, dy);
  Buf<T> y(be, rows * cols), mean(be, rows), rstd(be, rows);
  be.layernorm_forward(dt, dx_in.get(), dw_in.get(), db_in.get(), y.get(), mean.get(), rstd.get(),
                       rows, cols, eps);
  const auto ref = layernorm_ref(to_double(x), to_double(w), to_double(b), rows, cols, eps);
  STRATA_CHECK_CLOSE("layernorm y", y.host(), ref.y, ref_rtol<T>(), 0.0);
  STRATA_CHECK_CLOSE("layernorm mean", mean.host(), ref.mean, ref_rtol<T>(), 0.0);
  STRATA_CHECK_CLOSE("layernorm rstd", rstd.host(), ref.rstd, ref_rtol<T>(), 0.0);

  // Backward reference, the textbook form: dx = rstd / N (N g - sum g - xhat sum(g xhat)).
  std::vector<double> want_dx(rows * cols), want_dw(cols, 0.0), want_db(cols, 0.0);
  for (std::int64_t i = 0; i < rows; ++i) {
    double sg = 0, sgx = 0;
    for (std::int64_t j = 0; j < cols; ++j) {
      const double xhat = (double(x[i * cols + j]) - ref.mean[i]) * ref.rstd[i];
      const double g = double(dy[i * cols + j]) * double(w[j]);
      sg += g;
      sgx += g * xhat;
      want_dw[j] += double(dy[i * cols + j]) * xhat;
      want_db[j] += double(dy[i * cols + j]);
    }
    for (std::int64_t j = 0; j < cols; ++j) {
      const double xhat = (double(x[i * cols + j]) - ref.mean[i]) * ref.rstd[i];
      const double g = double(dy[i * cols + j]) * double(w[j]);
      want_dx[i * cols + j] = ref.rstd[i] / cols * (cols * g - sg - xhat * sgx);
    }
  }
  // Outputs are overwritten: start them from garbage.
  Buf<T> gx(be, random_vec<T>(rng, rows * cols)), gw(be, random_vec<T>(rng, cols)),
      gb(be, random_vec<T>(rng, cols));
  be.layernorm_backward(dt, dy_in.get(), dx_in.get(), dw_in.get(), mean.get(), rstd.get(), gx.get(),
                        gw.get(), gb.get(), rows, cols);
  // f32: the saved mean/rstd are rounded to f32 and dx cancels (g - mean g - ...): 1e-5 still
  // holds norm-wise for these sizes.
  STRATA_CHECK_CLOSE("layernorm dx", gx.host(), want_dx, ref_rtol<T>() * 10, 0.0);
  STRATA_CHECK_CLOSE("layernorm dw", gw.host(), want_dw, ref_rtol<T>() * 10, 0.0);
  STRATA_CHECK_CLOSE("layernorm db", gb.host(), want_db, ref_rtol<T>(), 0.0);
}

std::vector<double> softmax_ref(const std::vector<double>& x, std::int64_t rows,
                                std::int64_t cols) {
  std::vector<double> y(x.size());
  for (std::int64_t i = 0; i < rows; ++i) {
    double mx = -kInf;
    for (std::int64_t j = 0; j < cols; ++j) mx = std::max(mx, x[i * cols + j]);
    double s = 0;
    for (std::int64_t j = 0; j < cols; ++j) s += std::exp(x[i * cols + j] - mx);
    for (std::int64_t j = 0; j < cols; ++j) y[i * cols + j] = std::exp(x[i * cols + j] - mx) / s;
  }
  return y;
}

TEMPLATE_TEST_CASE("softmax forward (masked rows, large values) and backward", "[kernels][host]",
                   float, double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(22);
  const std::int64_t rows = 6, cols = 37;
  auto x = random_vec<T>(rng, rows * cols, -5.0, 5.0);
  for (std::int64_t j = 0; j < cols; ++j) x[1 * cols + j] += T(1000);  // overflows without max
  for (std::int64_t j = 10; j < cols; ++j) x[3 * cols + j] = -std::numeric_limits<T>::infinity();
  x[4 * cols + 0] = -std::numeric_limits<T>::infinity();
  Buf<T> dx(be, x), y(be, rows * cols);
  be.softmax_forward(dt, dx.get(), y.get(), rows, cols);
  const auto got = y.host();
  const auto want = softmax_ref(to_double(x), rows, cols);
  STRATA_CHECK_CLOSE("softmax y", got, want, ref_rtol<T>(), 0.0);
  for (std::int64_t j = 10; j < cols; ++j) CHECK(got[3 * cols + j] == T(0));  // exact zeros
  CHECK(got[4 * cols] == T(0));
  for (std::int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < cols; ++j) s += got[i * cols + j];
    CHECK(std::abs(s - 1.0) < (std::is_same_v<T, float> ? 1e-5 : 1e-13));
  }
  // A fully masked row has no distribution: documented zeros, never NaN.
  std::vector<T> all_masked(cols, -std::numeric_limits<T>::infinity());
  Buf<T> dm(be, all_masked);
  be.softmax_forward(dt, dm.get(), dm.get(), 1, cols);
  for (T v : dm.host()) CHECK(v == T(0));

  const auto dy = random_vec<T>(rng, rows * cols);
  Buf<T> ddy(be, dy), gx(be, rows * cols);
  be.softmax_backward(dt, y.get(), ddy.get(), gx.get(), rows, cols);
  std::vector<double> want_dx(rows * cols);
  for (std::int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < cols; ++j)
      s += double(got[i * cols + j]) * double(dy[i * cols + j]);
    for (std::int64_t j = 0; j < cols; ++j) {
      want_dx[i * cols + j] = double(got[i * cols + j]) * (double(dy[i * cols + j]) - s);
    }
  }
  STRATA_CHECK_CLOSE("softmax dx", gx.host(), want_dx, ref_rtol<T>(), 0.0);
}

TEMPLATE_TEST_CASE("causal mask with row and column offsets", "[kernels][host]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(23);
  const std::int64_t batch = 2, rows = 5, cols = 7;
  const auto x = random_vec<T>(rng, batch * rows * cols);
  for (auto [ro, co] : {std::pair<int, int>{0, 0}, {3, 0}, {0, 4}, {2, 5}, {0, 20}}) {
    for (bool backward : {false, true}) {
      Buf<T> dx(be, x), dy(be, x.size());
      be.causal_mask(dtype_of<T>(), dx.get(), dy.get(), batch, rows, cols, ro, co, backward);
      const auto got = dy.host();
      be.causal_mask(dtype_of<T>(), dx.get(), dx.get(), batch, rows, cols, ro, co, backward);
      CHECK(dx.host() == got);  // in place gives the same
      for (std::int64_t b = 0; b < batch; ++b) {
        for (std::int64_t r = 0; r < rows; ++r) {
          for (std::int64_t c = 0; c < cols; ++c) {
            const std::size_t i = (b * rows + r) * cols + c;
            const bool masked = c + co > r + ro;
            const T want = masked ? (backward ? T(0) : -std::numeric_limits<T>::infinity()) : x[i];
            INFO("offsets " << ro << "," << co << " backward " << backward << " at " << b << ","
                            << r << "," << c);
            CHECK(got[i] == want);
          }
        }
      }
    }
  }
}

// The fused masked softmax against its definition, the two kernels it replaces: exactly the same
// values (same row maxima and sums), and zeros wherever the mask was.
TEMPLATE_TEST_CASE("causal softmax equals causal mask then softmax", "[kernels][host]", float,
                   double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(24);
  const std::int64_t batch = 3, rows = 5, cols = 7;
  const auto x = random_vec<T>(rng, batch * rows * cols, -4.0, 4.0);
  for (auto [ro, co] : {std::pair<int, int>{0, 0}, {3, 0}, {0, 4}, {2, 5}, {0, 20}, {9, 0}}) {
    INFO("offsets " << ro << "," << co);
    Buf<T> dx(be, x), masked(be, x.size()), want(be, x.size()), got(be, x.size());
    be.causal_mask(dt, dx.get(), masked.get(), batch, rows, cols, ro, co, false);
    be.softmax_forward(dt, masked.get(), want.get(), batch * rows, cols);
    got.upload(std::vector<T>(x.size(), std::numeric_limits<T>::quiet_NaN()));  // unwritten fails
    be.causal_softmax_forward(dt, dx.get(), got.get(), batch, rows, cols, ro, co);
    const auto g = got.host(), w = want.host();
    CHECK(g == w);
    for (std::int64_t i = 0; i < batch * rows; ++i) {
      for (std::int64_t c = 0; c < cols; ++c) {
        if (c + co > i % rows + ro) CHECK(g[i * cols + c] == T(0));
      }
    }
    be.causal_softmax_forward(dt, dx.get(), dx.get(), batch, rows, cols, ro, co);
    CHECK(dx.host() == w);  // in place gives the same
  }
  CHECK_THROWS_WITH(
      be.causal_softmax_forward(dt, nullptr, nullptr, 1, -2, 3, 0, 0),
      Catch::Contains("HostBackend::causal_softmax_forward") && Catch::Contains("-2"));
}

TEMPLATE_TEST_CASE("embedding forward/backward, repeated and out-of-range tokens",
                   "[kernels][host]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(24);
  const std::int64_t vocab = 11, dim = 300, n = 17;
  std::vector<std::int32_t> tokens(n);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  for (auto& t : tokens) t = tok(rng);
  tokens[3] = tokens[9] = tokens[12] = 4;  // repeats accumulate
  const auto table = random_vec<T>(rng, vocab * dim);
  const auto dout = random_vec<T>(rng, n * dim);
  Buf<T> dtab(be, table), out(be, n * dim), ddout(be, dout),
      gtab(be, random_vec<T>(rng, vocab * dim));
  be.embedding_forward(dt, tokens.data(), dtab.get(), out.get(), n, vocab, dim);
  std::vector<double> want(n * dim), want_g(vocab * dim, 0.0);
  for (std::int64_t t = 0; t < n; ++t) {
    for (std::int64_t j = 0; j < dim; ++j) {
      want[t * dim + j] = table[tokens[t] * dim + j];
      want_g[tokens[t] * dim + j] += double(dout[t * dim + j]);
    }
  }
  CHECK(to_double(out.host()) == want);
  be.embedding_backward(dt, tokens.data(), ddout.get(), gtab.get(), n, vocab, dim);
  STRATA_CHECK_CLOSE("embedding dtable", gtab.host(), want_g, ref_rtol<T>(), 0.0);

  for (std::int32_t bad : {-1, static_cast<std::int32_t>(vocab)}) {
    auto bad_tokens = tokens;
    bad_tokens[5] = bad;
    CHECK_THROWS_AS(
        be.embedding_forward(dt, bad_tokens.data(), dtab.get(), out.get(), n, vocab, dim),
        std::out_of_range);
    CHECK_THROWS_AS(
        be.embedding_backward(dt, bad_tokens.data(), ddout.get(), gtab.get(), n, vocab, dim),
        std::out_of_range);
  }
}

TEMPLATE_TEST_CASE("split_heads / merge_heads indices and round trip", "[kernels][host]", float,
                   double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(25);
  const std::int64_t B = 2, S = 3, P = 3, H = 2, D = 4;
  const auto x = random_vec<T>(rng, B * S * P * H * D);
  Buf<T> dx(be, x), back(be, x.size());
  std::vector<std::unique_ptr<Buf<T>>> parts;
  std::vector<void*> outs;
  std::vector<const void*> ins;
  for (std::int64_t p = 0; p < P; ++p) {
    parts.push_back(std::make_unique<Buf<T>>(be, B * H * S * D));
    outs.push_back(parts.back()->get());
    ins.push_back(parts.back()->get());
  }
  be.split_heads(dt, dx.get(), outs.data(), B, S, P, H, D);
  for (std::int64_t p = 0; p < P; ++p) {
    const auto part = parts[p]->host();
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t s = 0; s < S; ++s)
          for (std::int64_t d = 0; d < D; ++d) {
            const T want = x[((b * S + s) * P * H + p * H + h) * D + d];
            CHECK(part[((b * H + h) * S + s) * D + d] == want);
          }
  }
  be.merge_heads(dt, ins.data(), back.get(), B, S, P, H, D);
  CHECK(back.host() == x);
}

// loss = mean_r (logsumexp(x_r) - x_r[t_r]) with a plain logsumexp.
double cross_entropy_ref(const std::vector<double>& x, const std::vector<std::int32_t>& t,
                         std::int64_t rows, std::int64_t vocab) {
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double mx = -kInf;
    for (std::int64_t j = 0; j < vocab; ++j) mx = std::max(mx, x[r * vocab + j]);
    double s = 0;
    for (std::int64_t j = 0; j < vocab; ++j) s += std::exp(x[r * vocab + j] - mx);
    total += mx + std::log(s) - x[r * vocab + t[r]];
  }
  return total / rows;
}

TEMPLATE_TEST_CASE("cross-entropy forward and backward vs logsumexp", "[kernels][host]", float,
                   double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(26);
  const std::int64_t rows = 9, vocab = 300;
  auto x = random_vec<T>(rng, rows * vocab, -4.0, 4.0);
  for (std::int64_t j = 0; j < vocab; ++j) x[2 * vocab + j] += T(500);  // needs the max shift
  std::vector<std::int32_t> t(rows);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  for (auto& v : t) v = tok(rng);
  Buf<T> dx(be, x), loss(be, 1), dloss(be, std::vector<T>{T(1.7)}), g(be, rows * vocab);
  be.cross_entropy_forward(dt, dx.get(), t.data(), loss.get(), rows, vocab);
  const double want = cross_entropy_ref(to_double(x), t, rows, vocab);
  STRATA_CHECK_CLOSE("cross-entropy loss", loss.host(), std::vector<double>{want}, ref_rtol<T>(),
                     0.0);

  be.cross_entropy_backward(dt, dx.get(), t.data(), dloss.get(), g.get(), rows, vocab);
  const auto p = softmax_ref(to_double(x), rows, vocab);
  std::vector<double> want_g(rows * vocab);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < vocab; ++j) {
      want_g[r * vocab + j] = (p[r * vocab + j] - (j == t[r] ? 1.0 : 0.0)) * double(T(1.7)) / rows;
    }
  }
  STRATA_CHECK_CLOSE("cross-entropy dlogits", g.host(), want_g, ref_rtol<T>(), 0.0);

  auto bad = t;
  bad[4] = static_cast<std::int32_t>(vocab);
  CHECK_THROWS_AS(be.cross_entropy_forward(dt, dx.get(), bad.data(), loss.get(), rows, vocab),
                  std::out_of_range);
  bad[4] = -2;
  CHECK_THROWS_AS(
      be.cross_entropy_backward(dt, dx.get(), bad.data(), dloss.get(), g.get(), rows, vocab),
      std::out_of_range);
}

// ---------------------------------------------------------------- finite differences (f64)

TEST_CASE("finite differences: gelu backward", "[kernels][host][fd]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(31);
  const std::int64_t n = 40;
  const auto x = random_vec<double>(rng, n, -4.0, 4.0);
  const auto dy = random_vec<double>(rng, n);
  Buf<double> bx(be, x), by(be, n), bdy(be, dy), bdx(be, n);
  be.gelu_backward(DType::kF64, bx.get(), bdy.get(), bdx.get(), n);
  const auto fd = fd_gradient(x, [&](const std::vector<double>& xv) {
    bx.upload(xv);
    be.gelu_forward(DType::kF64, bx.get(), by.get(), n);
    return dot(by.host(), dy);
  });
  STRATA_CHECK_CLOSE("gelu dx vs fd", bdx.host(), fd, kFdRtol, 0.0);
}

TEST_CASE("finite differences: layernorm backward (dx, dw, db)", "[kernels][host][fd]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(32);
  const std::int64_t rows = 3, cols = 9;
  const double eps = 1e-5;
  const auto x = random_vec<double>(rng, rows * cols, -2.0, 2.0);
  const auto w = random_vec<double>(rng, cols, 0.5, 1.5);
  const auto b = random_vec<double>(rng, cols);
  const auto dy = random_vec<double>(rng, rows * cols);
  Buf<double> bx(be, x), bw(be, w), bb(be, b), bdy(be, dy);
  Buf<double> y(be, rows * cols), mean(be, rows), rstd(be, rows);
  Buf<double> gx(be, rows * cols), gw(be, cols), gb(be, cols);
  be.layernorm_forward(DType::kF64, bx.get(), bw.get(), bb.get(), y.get(), mean.get(), rstd.get(),
                       rows, cols, eps);
  be.layernorm_backward(DType::kF64, bdy.get(), bx.get(), bw.get(), mean.get(), rstd.get(),
                        gx.get(), gw.get(), gb.get(), rows, cols);
  // L = <dy, layernorm(x, w, b)>, perturbing one of x, w, b at a time.
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                  const std::vector<double>& bv) {
    Buf<double> px(be, xv), pw(be, wv), pb(be, bv), py(be, rows * cols), pm(be, rows), pr(be, rows);
    be.layernorm_forward(DType::kF64, px.get(), pw.get(), pb.get(), py.get(), pm.get(), pr.get(),
                         rows, cols, eps);
    return dot(py.host(), dy);
  };
  const auto fd_x = fd_gradient(x, [&](const std::vector<double>& v) { return loss(v, w, b); });
  const auto fd_w = fd_gradient(w, [&](const std::vector<double>& v) { return loss(x, v, b); });
  const auto fd_b = fd_gradient(b, [&](const std::vector<double>& v) { return loss(x, w, v); });
  STRATA_CHECK_CLOSE("layernorm dx vs fd", gx.host(), fd_x, kFdRtol, 0.0);
  STRATA_CHECK_CLOSE("layernorm dw vs fd", gw.host(), fd_w, kFdRtol, 0.0);
  STRATA_CHECK_CLOSE("layernorm db vs fd", gb.host(), fd_b, kFdRtol, 0.0);
}

TEST_CASE("finite differences: softmax backward", "[kernels][host][fd]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(33);
  const std::int64_t rows = 4, cols = 9;
  const auto x = random_vec<double>(rng, rows * cols, -3.0, 3.0);
  const auto dy = random_vec<double>(rng, rows * cols);
  Buf<double> bx(be, x), y(be, rows * cols), bdy(be, dy), gx(be, rows * cols);
  be.softmax_forward(DType::kF64, bx.get(), y.get(), rows, cols);
  be.softmax_backward(DType::kF64, y.get(), bdy.get(), gx.get(), rows, cols);
  const auto fd = fd_gradient(x, [&](const std::vector<double>& v) {
    bx.upload(v);
    be.softmax_forward(DType::kF64, bx.get(), y.get(), rows, cols);
    return dot(y.host(), dy);
  });
  STRATA_CHECK_CLOSE("softmax dx vs fd", gx.host(), fd, kFdRtol, 0.0);
}

TEST_CASE("finite differences: cross-entropy backward", "[kernels][host][fd]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(34);
  const std::int64_t rows = 5, vocab = 11;
  const auto x = random_vec<double>(rng, rows * vocab, -3.0, 3.0);
  const std::vector<std::int32_t> t = {3, 0, 10, 3, 7};
  const double dl = 0.8;
  Buf<double> bx(be, x), loss(be, 1), dloss(be, std::vector<double>{dl}), g(be, rows * vocab);
  be.cross_entropy_backward(DType::kF64, bx.get(), t.data(), dloss.get(), g.get(), rows, vocab);
  const auto fd = fd_gradient(x, [&](const std::vector<double>& v) {
    bx.upload(v);
    be.cross_entropy_forward(DType::kF64, bx.get(), t.data(), loss.get(), rows, vocab);
    return dl * loss.host()[0];
  });
  STRATA_CHECK_CLOSE("cross-entropy dlogits vs fd", g.host(), fd, kFdRtol, 0.0);
}

TEST_CASE("finite differences: embedding backward", "[kernels][host][fd]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(35);
  const std::int64_t vocab = 6, dim = 5, n = 8;
  const std::vector<std::int32_t> t = {1, 4, 1, 0, 5, 1, 4, 2};  // token 3 unused: zero gradient
  const auto table = random_vec<double>(rng, vocab * dim);
  const auto dout = random_vec<double>(rng, n * dim);
  Buf<double> tab(be, table), out(be, n * dim), bdout(be, dout), g(be, vocab * dim);
  be.embedding_backward(DType::kF64, t.data(), bdout.get(), g.get(), n, vocab, dim);
  const auto fd = fd_gradient(table, [&](const std::vector<double>& v) {
    tab.upload(v);
    be.embedding_forward(DType::kF64, t.data(), tab.get(), out.get(), n, vocab, dim);
    return dot(out.host(), dout);
  });
  STRATA_CHECK_CLOSE("embedding dtable vs fd", g.host(), fd, kFdRtol, 0.0);
}

}  // namespace
}  // namespace strata::kernels::test
