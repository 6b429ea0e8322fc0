// Fused attention (Backend::attention_forward / attention_backward, kernels/attention.cc) on the
// host backend against a direct double-precision evaluation of softmax(scale q k^T) v and its
// gradient, over causal and full masks, shard offsets and chunk sizes that do and do not divide
// the rows; then central finite differences of the backward, and the argument checks.
#include <limits>

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::test {
namespace {

struct Shape {
  std::int64_t batch, rows, cols, dim;
  bool causal;
  std::int64_t row_offset, col_offset;
};

struct Reference {
  std::vector<double> o, dq, dk, dv;
};

// The textbook form, one query row at a time, in double.
Reference reference(const Shape& s, double scale, const std::vector<double>& q,
                    const std::vector<double>& k, const std::vector<double>& v,
                    const std::vector<double>& d_o) {
  const std::int64_t D = s.dim;
  Reference r{std::vector<double>(q.size()), std::vector<double>(q.size()),
              std::vector<double>(k.size()), std::vector<double>(v.size())};
  for (std::int64_t b = 0; b < s.batch; ++b) {
    for (std::int64_t i = 0; i < s.rows; ++i) {
      const double* qi = &q[(b * s.rows + i) * D];
      const double* doi = &d_o[(b * s.rows + i) * D];
      std::vector<double> p(s.cols, 0.0), dp(s.cols, 0.0);
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      const auto seen = [&](std::int64_t c) {
        return !s.causal || c + s.col_offset <= i + s.row_offset;
      };
      for (std::int64_t c = 0; c < s.cols; ++c) {
        if (!seen(c)) continue;
        double dotv = 0;
        for (std::int64_t d = 0; d < D; ++d) dotv += qi[d] * k[(b * s.cols + c) * D + d];
        p[c] = scale * dotv;
        mx = std::max(mx, p[c]);
      }
      for (std::int64_t c = 0; c < s.cols; ++c) {
        p[c] = seen(c) ? std::exp(p[c] - mx) : 0.0;
        sum += p[c];
      }
      double pdp = 0;
      for (std::int64_t c = 0; c < s.cols; ++c) {
        if (sum > 0) p[c] /= sum;
        for (std::int64_t d = 0; d < D; ++d) {
          r.o[(b * s.rows + i) * D + d] += p[c] * v[(b * s.cols + c) * D + d];
          dp[c] += doi[d] * v[(b * s.cols + c) * D + d];
        }
        pdp += p[c] * dp[c];
      }
      for (std::int64_t c = 0; c < s.cols; ++c) {
        const double ds = p[c] * (dp[c] - pdp);
        for (std::int64_t d = 0; d < D; ++d) {
          r.dq[(b * s.rows + i) * D + d] += scale * ds * k[(b * s.cols + c) * D + d];
          r.dk[(b * s.cols + c) * D + d] += scale * ds * qi[d];
          r.dv[(b * s.cols + c) * D + d] += p[c] * doi[d];
        }
      }
    }
  }
  return r;
}

template <class T>
struct Run {
  std::vector<T> o, dq, dk, dv;
};

template <class T>
Run<T> run(Backend& be, const Shape& s, double scale, std::int64_t chunk, const std::vector<T>& q,
           const std::vector<T>& k, const std::vector<T>& v, const std::vector<T>& d_o) {
  const DType dt = dtype_of<T>();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  Buf<T> bq(be, q), bk(be, k), bv(be, v), bdo(be, d_o);
  Buf<T> o(be, std::vector<T>(q.size(), nan)), dq(be, std::vector<T>(q.size(), nan));
  Buf<T> dk(be, std::vector<T>(k.size(), nan)), dv(be, std::vector<T>(v.size(), nan));
  AttentionArgs a;
  a.q = bq.get();
  a.k = bk.get();
  a.v = bv.get();
  a.batch = s.batch;
  a.rows = s.rows;
  a.cols = s.cols;
  a.head_dim = s.dim;
  a.scale = scale;
  a.causal = s.causal;
  a.row_offset = s.row_offset;
  a.col_offset = s.col_offset;
  a.chunk_rows = chunk;
  // Poisoned workspace: a block read before it is written fails the comparison.
  const std::size_t ws_elems = attention_workspace_bytes(dt, a) / sizeof(T);
  Buf<T> ws(be, std::vector<T>(ws_elems, nan));
  a.workspace = ws.get();
  be.attention_forward(dt, a, o.get());
  be.attention_backward(dt, a, bdo.get(), dq.get(), dk.get(), dv.get());
  return {o.host(), dq.host(), dk.host(), dv.host()};
}

}  // namespace

TEMPLATE_TEST_CASE("fused attention forward and backward vs the direct formula",
                   "[kernels][host][attention]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  std::mt19937_64 rng(61);
  const std::vector<Shape> shapes = {
      {3, 7, 7, 4, true, 0, 0},   // square causal, as in GPT
      {2, 5, 9, 3, true, 4, 0},   // a later block of query rows (rows split over devices)
      {2, 6, 6, 5, true, 0, 3},   // keys offset past some rows: those rows see none
      {2, 4, 7, 2, false, 0, 0},  // no mask, rows != cols
      {1, 9, 9, 8, true, 0, 0}};  //
  for (const Shape& s : shapes) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.dim));
    const auto q = random_vec<T>(rng, s.batch * s.rows * s.dim, -2.0, 2.0);
    const auto k = random_vec<T>(rng, s.batch * s.cols * s.dim, -2.0, 2.0);
    const auto v = random_vec<T>(rng, s.batch * s.cols * s.dim);
    const auto d_o = random_vec<T>(rng, s.batch * s.rows * s.dim);
    const Reference want =
        reference(s, scale, to_double(q), to_double(k), to_double(v), to_double(d_o));
    for (std::int64_t chunk : {1, 2, 3, 128}) {
      INFO("batch " << s.batch << " rows " << s.rows << " cols " << s.cols << " causal " << s.causal
                    << " offsets " << s.row_offset << "," << s.col_offset << " chunk " << chunk);
      const Run<T> got = run(be, s, scale, chunk, q, k, v, d_o);
      const double rtol = ref_rtol<T>() * 10;  // a softmax and three GEMMs deep
      STRATA_CHECK_CLOSE("o", got.o, want.o, rtol, 0.0);
      STRATA_CHECK_CLOSE("dq", got.dq, want.dq, rtol, 0.0);
      STRATA_CHECK_CLOSE("dk", got.dk, want.dk, rtol, 0.0);
      STRATA_CHECK_CLOSE("dv", got.dv, want.dv, rtol, 0.0);
    }
  }
}

TEST_CASE("finite differences: fused attention backward (dq, dk, dv)",
          "[kernels][host][fd][attention]") {
  Backend& be = host_backend();
  std::mt19937_64 rng(62);
  const Shape s{2, 5, 5, 3, true, 0, 0};
  const double scale = 0.7;
  const auto q = random_vec<double>(rng, s.batch * s.rows * s.dim);
  const auto k = random_vec<double>(rng, s.batch * s.cols * s.dim);
  const auto v = random_vec<double>(rng, s.batch * s.cols * s.dim);
  const auto w = random_vec<double>(rng, q.size());  // f = <o, w>, so do = w
  const Run<double> got = run(be, s, scale, 2, q, k, v, w);
  const auto f_of = [&](int which) {
    return [&, which](const std::vector<double>& x) {
      const Run<double> r =
          run(be, s, scale, 2, which == 0 ? x : q, which == 1 ? x : k, which == 2 ? x : v, w);
      return dot(to_double(r.o), w);
    };
  };
  STRATA_CHECK_CLOSE("dq vs fd", got.dq, fd_gradient(q, f_of(0)), 1e-7, 0.0);
  STRATA_CHECK_CLOSE("dk vs fd", got.dk, fd_gradient(k, f_of(1)), 1e-7, 0.0);
  STRATA_CHECK_CLOSE("dv vs fd", got.dv, fd_gradient(v, f_of(2)), 1e-7, 0.0);
}

TEST_CASE("fused attention argument checks", "[kernels][host][attention]") {
  Backend& be = host_backend();
  std::vector<float> x(16, 1.0f), ws(64, 0.0f), o(16);
  AttentionArgs a;
  a.q = a.k = a.v = x.data();
  a.batch = 1;
  a.rows = a.cols = 4;
  a.head_dim = 4;
  a.chunk_rows = 0;
  a.workspace = ws.data();
  CHECK_THROWS_WITH(
      be.attention_forward(DType::kF32, a, o.data()),
      Catch::Contains("HostBackend::attention_forward") && Catch::Contains("chunk_rows = 0"));
  a.chunk_rows = 2;
  a.workspace = nullptr;
  CHECK_THROWS_WITH(
      be.attention_backward(DType::kF32, a, x.data(), o.data(), o.data(), o.data()),
      Catch::Contains("HostBackend::attention_backward") && Catch::Contains("workspace is null"));
  a.workspace = ws.data();
  a.rows = -1;
  CHECK_THROWS_WITH(be.attention_forward(DType::kF32, a, o.data()), Catch::Contains("-1"));
  CHECK(attention_workspace_bytes(DType::kF32, AttentionArgs{nullptr, nullptr, nullptr, 2, 5, 7, 3,
                                                             1.0, true, 0, 0, 2, nullptr}) ==
        3u * 2 * 2 * 7 * 4);
}

}  // namespace strata::kernels::test
