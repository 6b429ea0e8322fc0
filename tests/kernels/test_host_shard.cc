// HostBackend tests, part 4: the resharding and vocab-parallel kernels. copy_box against a naive
// multi-index loop; the embedding and cross-entropy shard kernels against the unsharded kernels
// on the whole table or logits, by splitting the vocabulary (and the rows) into slices and
// combining the slices exactly as the executor does around its all-reduces.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::test {
namespace {

using Shape = std::vector<std::int64_t>;

// Row-major linear index of idx + off in shape.
std::int64_t linear(const Shape& shape, const Shape& off, const Shape& idx) {
  std::int64_t lin = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) lin = lin * shape[d] + off[d] + idx[d];
  return lin;
}

// dst with the box copied in, one element at a time over the box's multi-index.
template <class T>
std::vector<T> copy_box_reference(const std::vector<T>& src, const Shape& src_shape,
                                  const Shape& src_off, std::vector<T> dst, const Shape& dst_shape,
                                  const Shape& dst_off, const Shape& box) {
  std::int64_t numel = 1;
  for (auto b : box) numel *= b;
  Shape idx(box.size(), 0);
  for (std::int64_t i = 0; i < numel; ++i) {
    dst[linear(dst_shape, dst_off, idx)] = src[linear(src_shape, src_off, idx)];
    for (int d = static_cast<int>(box.size()) - 1; d >= 0; --d) {
      if (++idx[d] < box[d]) break;
      idx[d] = 0;
    }
  }
  return dst;
}

template <class T>
std::vector<T> random_bits(std::mt19937_64& rng, std::int64_t n) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng());
  return v;
}

std::int64_t numel_of(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// Runs copy_box on random data and checks the whole dst (outside the box too) against the
// reference. Returns false on a mismatch.
template <class T>
bool check_copy_box(std::mt19937_64& rng, const Shape& src_shape, const Shape& src_off,
                    const Shape& dst_shape, const Shape& dst_off, const Shape& box) {
  Backend& be = host_backend();
  const auto src = random_bits<T>(rng, numel_of(src_shape));
  const auto dst0 = random_bits<T>(rng, numel_of(dst_shape));
  Buf<T> dsrc(be, src), ddst(be, dst0);
  be.copy_box(sizeof(T), dsrc.get(), src_shape.data(), src_off.data(), ddst.get(), dst_shape.data(),
              dst_off.data(), box.data(), static_cast<int>(box.size()));
  return ddst.host() == copy_box_reference(src, src_shape, src_off, dst0, dst_shape, dst_off, box);
}

TEMPLATE_TEST_CASE("copy_box: random boxes of rank 1 to 5 against an index loop",
                   "[kernels][host][shard]", std::uint8_t, std::uint16_t, std::uint32_t,
                   std::uint64_t) {
  using T = TestType;
  std::mt19937_64 rng(91);
  std::uniform_int_distribution<int> coin(0, 9);
  for (int rank = 1; rank <= 5; ++rank) {
    for (int trial = 0; trial < 40; ++trial) {
      Shape box(rank), src_shape(rank), dst_shape(rank), src_off(rank), dst_off(rank);
      for (int d = 0; d < rank; ++d) {
        box[d] = std::uniform_int_distribution<std::int64_t>(1, 4)(rng);
        // Often the whole dim, so neighbouring dims merge into longer runs.
        src_shape[d] = box[d] + (coin(rng) < 4 ? 0 : coin(rng) % 4);
        dst_shape[d] = box[d] + (coin(rng) < 4 ? 0 : coin(rng) % 4);
        src_off[d] = std::uniform_int_distribution<std::int64_t>(0, src_shape[d] - box[d])(rng);
        dst_off[d] = std::uniform_int_distribution<std::int64_t>(0, dst_shape[d] - box[d])(rng);
      }
      if (trial == 39) box[rank / 2] = 0;  // an empty box copies nothing
      INFO("rank " << rank << " trial " << trial);
      CHECK(check_copy_box<T>(rng, src_shape, src_off, dst_shape, dst_off, box));
    }
  }
  // Fixed layouts that the merging of dims must get right:
  // whole tensor (one run), a column slice (one run per row), a strided innermost dim (box 1 in
  // a dim of size > 1), size-1 dims between merged ones, rank 8 and rank 0 (one element).
  CHECK(check_copy_box<T>(rng, {3, 4, 5}, {0, 0, 0}, {3, 4, 5}, {0, 0, 0}, {3, 4, 5}));
  CHECK(check_copy_box<T>(rng, {6, 10}, {1, 3}, {5, 4}, {0, 0}, {5, 4}));
  CHECK(check_copy_box<T>(rng, {4, 6}, {0, 2}, {4, 3}, {0, 1}, {4, 1}));
  CHECK(check_copy_box<T>(rng, {2, 1, 3, 1, 5}, {0, 0, 0, 0, 0}, {4, 1, 3, 1, 5}, {2, 0, 0, 0, 0},
                          {2, 1, 3, 1, 5}));
  CHECK(check_copy_box<T>(rng, {2, 3, 2, 2, 3, 1, 2, 2}, {1, 0, 1, 0, 1, 0, 0, 1},
                          {3, 2, 2, 3, 2, 2, 2, 1}, {0, 0, 0, 1, 0, 1, 0, 0},
                          {1, 2, 1, 2, 2, 1, 2, 1}));
  CHECK(check_copy_box<T>(rng, {}, {}, {}, {}, {}));
}

TEST_CASE("copy_box: boxes leaving a shape and bad arguments throw", "[kernels][host][shard]") {
  Backend& be = host_backend();
  std::vector<float> src(24, 1.0f), dst(24, 2.0f);
  const Shape shape = {4, 6}, zero = {0, 0};
  auto call = [&](const Shape& src_off, const Shape& dst_off, const Shape& box,
                  std::size_t elem_bytes = 4) {
    be.copy_box(elem_bytes, src.data(), shape.data(), src_off.data(), dst.data(), shape.data(),
                dst_off.data(), box.data(), 2);
  };
  // src_offset 3 + box 2 > 6 in dim 1 of src; then the same in dst; then a negative offset.
  CHECK_THROWS_AS(call({0, 3}, zero, {2, 4}), std::invalid_argument);
  CHECK_THROWS_WITH(call({0, 3}, zero, {2, 4}),
                    Catch::Contains("copy_box") && Catch::Contains("box [2, 4]") &&
                        Catch::Contains("src_offset [0, 3]") &&
                        Catch::Contains("src_shape [4, 6]") && Catch::Contains("dim 1"));
  CHECK_THROWS_WITH(call(zero, {3, 0}, {2, 6}),
                    Catch::Contains("dst_offset [3, 0]") && Catch::Contains("dim 0"));
  CHECK_THROWS_AS(call({-1, 0}, zero, {1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(call(zero, zero, {5, 1}), std::invalid_argument);
  CHECK_THROWS_AS(call(zero, zero, {-1, 1}), std::invalid_argument);
  CHECK_THROWS_WITH(call({4, 0}, zero, {1, 0}), Catch::Contains("dim 0"));  // empty, still outside
  CHECK_THROWS_WITH(call(zero, zero, {1, 1}, 3), Catch::Contains("elem_bytes = 3"));
  CHECK(dst == std::vector<float>(24, 2.0f));  // a throw writes nothing
  std::int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, o9[9] = {};
  CHECK_THROWS_WITH(be.copy_box(4, src.data(), s9, o9, dst.data(), s9, o9, s9, 9),
                    Catch::Contains("rank = 9"));
  CHECK_NOTHROW(call({4, 6}, {4, 6}, {0, 0}));  // an empty box at the very end is inside
}

// Vocabulary slice bounds: slice s of n holds rows [bounds[s], bounds[s + 1]) of vocab.
std::vector<std::int64_t> slice_bounds(std::int64_t vocab, int n) {
  std::vector<std::int64_t> b(n + 1);
  for (int s = 0; s <= n; ++s) b[s] = vocab * s / n;
  return b;
}

TEMPLATE_TEST_CASE("embedding shards: slices sum to the whole forward, stack to the backward",
                   "[kernels][host][shard]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(92);
  const std::int64_t vocab = 13, dim = 300, n = 23;  // dim > one 256-column block
  std::vector<std::int32_t> tokens(n);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  for (auto& t : tokens) t = tok(rng);
  tokens[2] = tokens[8] = tokens[19] = 5;  // repeats accumulate
  tokens[0] = 0;
  tokens[n - 1] = static_cast<std::int32_t>(vocab - 1);
  const auto table = random_vec<T>(rng, vocab * dim);
  const auto dout = random_vec<T>(rng, n * dim);
  Buf<T> dtab(be, table), ddout(be, dout), whole_out(be, n * dim), whole_g(be, vocab * dim);
  be.embedding_forward(dt, tokens.data(), dtab.get(), whole_out.get(), n, vocab, dim);
  be.embedding_backward(dt, tokens.data(), ddout.get(), whole_g.get(), n, vocab, dim);

  for (int slices : {2, 4}) {
    const auto bounds = slice_bounds(vocab, slices);
    std::vector<double> sum_out(n * dim, 0.0);
    std::vector<T> stacked_g;
    for (int s = 0; s < slices; ++s) {
      const std::int64_t lo = bounds[s], rows = bounds[s + 1] - bounds[s];
      Buf<T> part(be, std::vector<T>(table.begin() + lo * dim, table.begin() + (lo + rows) * dim));
      // Start from garbage: both calls overwrite every element.
      Buf<T> out(be, random_vec<T>(rng, n * dim, 5.0, 9.0));
      Buf<T> g(be, random_vec<T>(rng, rows * dim, 5.0, 9.0));
      be.embedding_forward_shard(dt, tokens.data(), part.get(), out.get(), n, rows, dim, lo);
      be.embedding_backward_shard(dt, tokens.data(), ddout.get(), g.get(), n, rows, dim, lo);
      const auto o = out.host();
      for (std::int64_t i = 0; i < n * dim; ++i) sum_out[i] += double(o[i]);
      const auto gh = g.host();
      stacked_g.insert(stacked_g.end(), gh.begin(), gh.end());
    }
    INFO(slices << " slices");
    // One slice holds each token and the others add exact zeros; the per-slice gradient sums the
    // same tokens in the same order: both are exact.
    CHECK(sum_out == to_double(whole_out.host()));
    CHECK(stacked_g == whole_g.host());
  }

  // Tokens outside the slice, negative ones included: zero rows forward, skipped backward.
  const std::int64_t lo = 4, rows = 5;
  const std::vector<std::int32_t> odd = {-1, 3, 4, 8, 9, -7, 6, 6};
  const std::int64_t m = static_cast<std::int64_t>(odd.size());
  Buf<T> part(be, std::vector<T>(table.begin() + lo * dim, table.begin() + (lo + rows) * dim));
  Buf<T> out(be, random_vec<T>(rng, m * dim, 5.0, 9.0)), g(be, rows * dim);
  be.embedding_forward_shard(dt, odd.data(), part.get(), out.get(), m, rows, dim, lo);
  be.embedding_backward_shard(dt, odd.data(), ddout.get(), g.get(), m, rows, dim, lo);
  std::vector<double> want(m * dim, 0.0), want_g(rows * dim, 0.0);
  for (std::int64_t t = 0; t < m; ++t) {
    const std::int64_t v = odd[t] - lo;
    if (v < 0 || v >= rows) continue;
    for (std::int64_t j = 0; j < dim; ++j) {
      want[t * dim + j] = table[(lo + v) * dim + j];
      want_g[v * dim + j] += double(dout[t * dim + j]);
    }
  }
  CHECK(to_double(out.host()) == want);
  STRATA_CHECK_CLOSE("embedding shard dtable", g.host(), want_g, ref_rtol<T>(), 0.0);

  CHECK_THROWS_WITH(
      be.embedding_forward_shard(dt, odd.data(), part.get(), out.get(), m, rows, dim, -1),
      Catch::Contains("embedding_forward_shard") && Catch::Contains("-1"));
  CHECK_THROWS_AS(
      be.embedding_backward_shard(dt, odd.data(), ddout.get(), g.get(), m, -rows, dim, lo),
      std::invalid_argument);
}

// Columns [lo, lo + cols) of x [rows, vocab].
template <class T>
std::vector<T> column_slice(const std::vector<T>& x, std::int64_t rows, std::int64_t vocab,
                            std::int64_t lo, std::int64_t cols) {
  std::vector<T> out(rows * cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::copy(x.begin() + r * vocab + lo, x.begin() + r * vocab + lo + cols,
              out.begin() + r * cols);
  }
  return out;
}

// The sharded cross-entropy of rows [r0, r0 + rows) of logits [*, vocab] over `slices` column
// slices, combined as the executor does: all-reduce max of row_max, then all-reduce sum of
// row_sum_exp (taken with the global max), then the losses summed and the gradient slices
// concatenated. scale = 1 / global_rows.
template <class T>
struct ShardedCe {
  double loss = 0;
  std::vector<T> dlogits;  // [rows, vocab]
};

template <class T>
ShardedCe<T> sharded_ce(const std::vector<T>& x, const std::vector<std::int32_t>& targets,
                        std::int64_t r0, std::int64_t rows, std::int64_t vocab, int slices,
                        double scale, T dloss) {
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  const auto bounds = slice_bounds(vocab, slices);
  const std::vector<T> xr(x.begin() + r0 * vocab, x.begin() + (r0 + rows) * vocab);
  const std::vector<std::int32_t> tr(targets.begin() + r0, targets.begin() + r0 + rows);
  std::vector<std::unique_ptr<Buf<T>>> parts;
  for (int s = 0; s < slices; ++s) {
    parts.push_back(std::make_unique<Buf<T>>(
        be, column_slice(xr, rows, vocab, bounds[s], bounds[s + 1] - bounds[s])));
  }
  // all-reduce max
  std::vector<T> gmax(rows, -std::numeric_limits<T>::infinity());
  for (int s = 0; s < slices; ++s) {
    Buf<T> m(be, rows);
    be.row_max(dt, parts[s]->get(), m.get(), rows, bounds[s + 1] - bounds[s]);
    const auto mh = m.host();
    for (std::int64_t r = 0; r < rows; ++r) gmax[r] = std::max(gmax[r], mh[r]);
  }
  // all-reduce sum, each slice shifted by the global max
  Buf<T> dmax(be, gmax);
  std::vector<T> gsum(rows, T(0));
  for (int s = 0; s < slices; ++s) {
    Buf<T> sum(be, rows);
    be.row_sum_exp(dt, parts[s]->get(), dmax.get(), sum.get(), rows, bounds[s + 1] - bounds[s]);
    const auto sh = sum.host();
    for (std::int64_t r = 0; r < rows; ++r) gsum[r] += sh[r];
  }
  Buf<T> dsum(be, gsum), ddloss(be, std::vector<T>{dloss});
  ShardedCe<T> out;
  out.dlogits.assign(rows * vocab, T(0));
  for (int s = 0; s < slices; ++s) {
    const std::int64_t lo = bounds[s], cols = bounds[s + 1] - bounds[s];
    Buf<T> loss(be, 1), g(be, rows * cols);
    be.cross_entropy_forward_shard(dt, parts[s]->get(), tr.data(), dmax.get(), dsum.get(),
                                   loss.get(), rows, cols, lo, scale);
    be.cross_entropy_backward_shard(dt, parts[s]->get(), tr.data(), dmax.get(), dsum.get(),
                                    ddloss.get(), g.get(), rows, cols, lo, scale);
    out.loss += double(loss.host()[0]);
    const auto gh = g.host();
    for (std::int64_t r = 0; r < rows; ++r) {
      std::copy(gh.begin() + r * cols, gh.begin() + (r + 1) * cols,
                out.dlogits.begin() + r * vocab + lo);
    }
  }
  return out;
}

TEMPLATE_TEST_CASE("cross-entropy shards: column and row splits match the whole loss",
                   "[kernels][host][shard]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  std::mt19937_64 rng(93);
  const std::int64_t rows = 9, vocab = 301;
  auto x = random_vec<T>(rng, rows * vocab, -4.0, 4.0);
  for (std::int64_t j = 0; j < vocab; ++j) x[2 * vocab + j] += T(500);  // needs the max shift
  x[5 * vocab + 290] = T(30);  // the max of row 5 sits in the last slice
  std::vector<std::int32_t> t(rows);
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  for (auto& v : t) v = tok(rng);
  t[0] = 0;
  t[1] = static_cast<std::int32_t>(vocab - 1);
  t[3] = static_cast<std::int32_t>(vocab / 2);  // on a slice boundary for 2 slices
  const T dloss = T(1.7);
  Buf<T> dx(be, x), loss(be, 1), ddloss(be, std::vector<T>{dloss}), g(be, rows * vocab);
  be.cross_entropy_forward(dt, dx.get(), t.data(), loss.get(), rows, vocab);
  be.cross_entropy_backward(dt, dx.get(), t.data(), ddloss.get(), g.get(), rows, vocab);
  const double whole = double(loss.host()[0]);
  const auto whole_g = g.host();

  for (int slices : {1, 2, 3}) {
    INFO(slices << " column slices");
    const auto sh = sharded_ce(x, t, 0, rows, vocab, slices, 1.0 / rows, dloss);
    STRATA_CHECK_CLOSE("sharded loss", std::vector<double>{sh.loss}, std::vector<double>{whole},
                       ref_rtol<T>(), 0.0);
    STRATA_CHECK_CLOSE("sharded dlogits", sh.dlogits, whole_g, ref_rtol<T>(), 0.0);
  }

  // Rows split into halves (scale 1 / global rows), each half over 2 column slices: the two
  // partial losses sum to the whole mean and the gradient rows stack.
  const std::int64_t half = rows / 2;
  const auto a = sharded_ce(x, t, 0, half, vocab, 2, 1.0 / rows, dloss);
  const auto b = sharded_ce(x, t, half, rows - half, vocab, 2, 1.0 / rows, dloss);
  STRATA_CHECK_CLOSE("row-split loss", std::vector<double>{a.loss + b.loss},
                     std::vector<double>{whole}, ref_rtol<T>(), 0.0);
  auto stacked = a.dlogits;
  stacked.insert(stacked.end(), b.dlogits.begin(), b.dlogits.end());
  STRATA_CHECK_CLOSE("row-split dlogits", stacked, whole_g, ref_rtol<T>(), 0.0);
}

TEMPLATE_TEST_CASE("cross-entropy shard pieces: empty slices, foreign targets, bad sizes",
                   "[kernels][host][shard]", float, double) {
  using T = TestType;
  Backend& be = host_backend();
  const DType dt = dtype_of<T>();
  const std::int64_t rows = 2, cols = 3;
  // Row 0: logits 0, ln 2, ln 3 with max ln 3 and sum (1 + 2 + 3) / 3 = 2.
  const std::vector<T> x = {T(0), T(std::log(2.0)), T(std::log(3.0)), T(1), T(1), T(1)};
  const std::vector<T> mx = {T(std::log(3.0)), T(1)}, sum = {T(2), T(3)};
  Buf<T> dx(be, x), m(be, rows), s(be, rows), dmx(be, mx), dsum(be, sum);
  be.row_max(dt, dx.get(), m.get(), rows, cols);
  CHECK(m.host() == mx);
  be.row_sum_exp(dt, dx.get(), dmx.get(), s.get(), rows, cols);
  STRATA_CHECK_CLOSE("row_sum_exp", s.host(), to_double(sum), ref_rtol<T>(), 0.0);

  // A slice with no columns: the identities of the max and sum all-reduces.
  be.row_max(dt, dx.get(), m.get(), rows, 0);
  CHECK(m.host() == std::vector<T>(rows, -std::numeric_limits<T>::infinity()));
  be.row_sum_exp(dt, dx.get(), dmx.get(), s.get(), rows, 0);
  CHECK(s.host() == std::vector<T>(rows, T(0)));

  // Targets owned by other slices (or negative) add no loss term and no onehot.
  // Slice at vocab_offset 10: row 0 targets 11 (column 1), row 1 targets -3 (nobody).
  const std::vector<std::int32_t> tg = {11, -3};
  Buf<T> loss(be, 1), ddloss(be, std::vector<T>{T(2)}), g(be, rows * cols);
  be.cross_entropy_forward_shard(dt, dx.get(), tg.data(), dmx.get(), dsum.get(), loss.get(), rows,
                                 cols, 10, 0.5);
  // 0.5 * (log 2 + ln 3 - ln 2) = 0.5 ln 3.
  STRATA_CHECK_CLOSE("foreign-target loss", loss.host(), std::vector<double>{0.5 * std::log(3.0)},
                     ref_rtol<T>(), 0.0);
  be.cross_entropy_backward_shard(dt, dx.get(), tg.data(), dmx.get(), dsum.get(), ddloss.get(),
                                  g.get(), rows, cols, 10, 0.5);
  // k = dloss * scale = 1: row 0 softmax {1/6, 2/6, 3/6} minus the onehot at column 1; row 1
  // exp(0) / 3 everywhere.
  const std::vector<double> want_g = {1.0 / 6, 2.0 / 6 - 1, 3.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 3};
  STRATA_CHECK_CLOSE("foreign-target dlogits", g.host(), want_g, ref_rtol<T>(), 0.0);

  CHECK_THROWS_WITH(be.cross_entropy_forward_shard(dt, dx.get(), tg.data(), dmx.get(), dsum.get(),
                                                   loss.get(), rows, cols, -1, 0.5),
                    Catch::Contains("cross_entropy_forward_shard") && Catch::Contains("-1"));
  CHECK_THROWS_AS(be.cross_entropy_backward_shard(dt, dx.get(), tg.data(), dmx.get(), nullptr,
                                                  ddloss.get(), g.get(), rows, cols, 0, 0.5),
                  std::invalid_argument);
  CHECK_THROWS_WITH(be.row_max(dt, dx.get(), m.get(), rows, -3), Catch::Contains("row_max"));
}

}  // namespace
}  // namespace strata::kernels::test
