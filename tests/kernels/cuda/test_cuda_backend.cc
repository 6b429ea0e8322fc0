// CudaBackend against HostBackend, the oracle (STYLE.md 38): every Backend call on fresh random
// inputs, in f32 (rtol 1e-5), bf16 (rtol 1e-2, against the host's f32 on the same bf16-rounded
// inputs) and f64 (rtol 1e-11), norm-wise (DESIGN.md section 6). Outputs start as NaN on both
// sides, so an element a kernel forgets to write fails; NaN never passes; infinities must match
// exactly. Every test case returns early with a warning when no GPU is visible, so this binary
// passes (skipped) on GPU-less build machines; `scripts/gpu-check.sh` runs it on a GPU.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/host/host_backend.h"

namespace strata::kernels::test {
namespace {

using Vec = std::vector<double>;
using Shape = std::vector<std::int64_t>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

bool gpu_visible() {
  static const bool visible = visible_cuda_devices() > 0;
  return visible;
}

// Skips the rest of a test case (Catch2 2 has no SKIP): a warning in the report, no failure.
#define STRATA_REQUIRE_GPU()                                    \
  do {                                                          \
    if (!gpu_visible()) {                                       \
      WARN("no CUDA device visible: CudaBackend test skipped"); \
      return;                                                   \
    }                                                           \
  } while (0)

// Built on first use and never destroyed: the CUDA runtime may already be gone at exit.
Backend& gpu() {
  static Backend* backend = make_backend("cuda").release();
  return *backend;
}
Backend& host() {
  static HostBackend backend;
  return backend;
}

// ------------------------------------------------------------------ precisions
struct Precision {
  DType dtype;  // on the GPU
  const char* name;
  double rtol;
};
const std::vector<Precision>& precisions() {
  static const std::vector<Precision> all = {
      {DType::kF32, "f32", 1e-5}, {DType::kBF16, "bf16", 1e-2}, {DType::kF64, "f64", 1e-11}};
  return all;
}
// The host runs f32 for f32 and bf16, f64 for f64.
DType host_dtype(DType gpu_dtype) { return gpu_dtype == DType::kF64 ? DType::kF64 : DType::kF32; }

// bf16 as the GPU rounds: round to nearest even from f32.
std::uint16_t bf16_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}
float bf16_value(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

double round_to(DType dtype, double v) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<float>(v);
    case DType::kBF16:
      return bf16_value(bf16_bits(static_cast<float>(v)));
    default:
      return v;
  }
}

Vec rounded(DType dtype, Vec v) {
  for (double& x : v) x = round_to(dtype, x);
  return v;
}

// Fresh uniform values in [lo, hi), already representable in dtype.
Vec random_in(std::mt19937_64& rng, DType dtype, std::int64_t n, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Vec v(static_cast<std::size_t>(n));
  for (double& x : v) x = round_to(dtype, dist(rng));
  return v;
}

std::vector<unsigned char> encode(DType dtype, const Vec& v) {
  std::vector<unsigned char> bytes(v.size() * dtype_size_bytes(dtype));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kF32) {
      const float f = static_cast<float>(v[i]);
      std::memcpy(&bytes[i * 4], &f, 4);
    } else if (dtype == DType::kF64) {
      std::memcpy(&bytes[i * 8], &v[i], 8);
    } else if (dtype == DType::kBF16) {
      const std::uint16_t b = bf16_bits(static_cast<float>(v[i]));
      std::memcpy(&bytes[i * 2], &b, 2);
    } else {
      FAIL("encode: unsupported dtype");
    }
  }
  return bytes;
}

Vec decode(DType dtype, const std::vector<unsigned char>& bytes) {
  const std::size_t size = dtype_size_bytes(dtype);
  Vec v(bytes.size() / size);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kF32) {
      float f;
      std::memcpy(&f, &bytes[i * 4], 4);
      v[i] = f;
    } else if (dtype == DType::kF64) {
      std::memcpy(&v[i], &bytes[i * 8], 8);
    } else {
      std::uint16_t b;
      std::memcpy(&b, &bytes[i * 2], 2);
      v[i] = bf16_value(b);
    }
  }
  return v;
}

// ------------------------------------------------------------------ buffers
// n elements of dtype in a backend's memory; NaN until uploaded.
class Buffer {
 public:
  Buffer(Backend& be, DType dtype, std::size_t n)
      : be_(&be), dtype_(dtype), n_(n), ptr_(be.allocate(n * dtype_size_bytes(dtype))) {
    upload(Vec(n, kNaN));
  }
  ~Buffer() { be_->release(ptr_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* get() const { return ptr_; }
  void upload(const Vec& v) {
    REQUIRE(v.size() == n_);
    const auto bytes = encode(dtype_, v);
    be_->copy_from_host(ptr_, bytes.data(), bytes.size());
  }
  Vec download() const {
    std::vector<unsigned char> bytes(n_ * dtype_size_bytes(dtype_));
    be_->copy_to_host(bytes.data(), ptr_, bytes.size());
    return decode(dtype_, bytes);
  }

 private:
  Backend* be_;
  DType dtype_;
  std::size_t n_;
  void* ptr_;
};

enum Side { kGpu = 0, kHost = 1 };
constexpr Side kSides[] = {kGpu, kHost};
Backend& backend(Side s) { return s == kGpu ? gpu() : host(); }
DType dtype_on(const Precision& p, Side s) { return s == kGpu ? p.dtype : host_dtype(p.dtype); }

// The same values on the GPU (in the precision's dtype) and on the host (its oracle dtype).
class Both {
 public:
  Both(DType gpu_dtype, DType host_dtype_, std::size_t n)
      : gpu_(gpu(), gpu_dtype, n), host_(host(), host_dtype_, n) {}
  Both(const Precision& p, std::size_t n) : Both(p.dtype, host_dtype(p.dtype), n) {}
  Both(const Precision& p, const Vec& v) : Both(p, v.size()) { upload(v); }

  void* operator[](Side s) const { return s == kGpu ? gpu_.get() : host_.get(); }
  void upload(const Vec& v) {
    gpu_.upload(v);
    host_.upload(v);
  }
  Vec on_gpu() const { return gpu_.download(); }
  Vec on_host() const { return host_.download(); }

 private:
  Buffer gpu_, host_;
};

// int32 tokens or targets on both sides.
class Tokens {
 public:
  explicit Tokens(const std::vector<std::int32_t>& v)
      : gpu_(static_cast<std::int32_t*>(gpu().allocate(v.size() * 4))),
        host_(static_cast<std::int32_t*>(host().allocate(v.size() * 4))) {
    gpu().copy_from_host(gpu_, v.data(), v.size() * 4);
    host().copy_from_host(host_, v.data(), v.size() * 4);
  }
  ~Tokens() {
    gpu().release(gpu_);
    host().release(host_);
  }
  Tokens(const Tokens&) = delete;
  Tokens& operator=(const Tokens&) = delete;
  const std::int32_t* operator[](Side s) const { return s == kGpu ? gpu_ : host_; }

 private:
  std::int32_t* gpu_;
  std::int32_t* host_;
};

std::vector<std::int32_t> random_tokens(std::mt19937_64& rng, std::int64_t n, std::int64_t lo,
                                        std::int64_t hi) {
  std::uniform_int_distribution<std::int64_t> dist(lo, hi - 1);
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (auto& x : t) x = static_cast<std::int32_t>(dist(rng));
  return t;
}

// ------------------------------------------------------------------ comparison
// ||got - want|| <= rtol ||want|| + atol over the finite entries of want; infinite entries must
// match exactly; NaN anywhere in got fails. Prints the first mismatches.
bool close(const std::string& what, const Vec& got, const Vec& want, double rtol, double atol = 0) {
  if (got.size() != want.size()) {
    std::printf("%s: size %zu != %zu\n", what.c_str(), got.size(), want.size());
    return false;
  }
  double diff2 = 0, ref2 = 0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(want[i]) || std::isinf(want[i]) || std::isinf(got[i])) {
      if (!(got[i] == want[i])) ++bad;  // NaN == NaN is false: NaN never passes
      continue;
    }
    const double d = got[i] - want[i];
    diff2 += d * d;
    ref2 += want[i] * want[i];
  }
  const double diff = std::sqrt(diff2), ref = std::sqrt(ref2);
  const bool ok = bad == 0 && diff <= rtol * ref + atol;
  if (!ok) {
    std::printf(
        "%s: ||got - want|| = %.3e, rtol %.1e * ||want|| %.3e + atol %.1e; %zu non-finite "
        "mismatches\n",
        what.c_str(), diff, rtol, ref, atol, bad);
    int shown = 0;
    for (std::size_t i = 0; i < got.size() && shown < 6; ++i) {
      const double g = got[i], w = want[i];
      if (!(std::abs(g - w) <= rtol * std::abs(w) + atol) && !(g == w)) {
        std::printf("  [%zu] got %.17g want %.17g\n", i, g, w);
        ++shown;
      }
    }
  }
  return ok;
}

#define CHECK_GPU_MATCHES(p, what, both) \
  CHECK(close(std::string((p).name) + " " + (what), (both).on_gpu(), (both).on_host(), (p).rtol))

// ================================================================== tests

TEST_CASE("backend selection follows the visible devices", "[kernels][cuda]") {
  CHECK(backend_available("cuda") == gpu_visible());
  if (!gpu_visible()) {
    CHECK_THROWS_AS(make_backend("cuda"), std::invalid_argument);
    WARN("no CUDA device visible: make_backend(\"cuda\") refused, as it should");
    return;
  }
  CHECK(gpu().name() == "cuda");
  CHECK_THROWS_AS(CudaBackend(visible_cuda_devices()), std::invalid_argument);
}

TEST_CASE("memory is zero-filled, copies, fill_zero and overlapping copy", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  Backend& be = gpu();
  for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{65537}}) {
    void* p = be.allocate(bytes);
    void* q = be.allocate(bytes);
    REQUIRE(p != nullptr);
    CHECK(p != q);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % 256 == 0);
    std::vector<unsigned char> h(bytes, 0xab);
    be.copy_to_host(h.data(), p, bytes);
    CHECK(std::all_of(h.begin(), h.end(), [](unsigned char c) { return c == 0; }));
    be.release(p);
    be.release(q);
  }
  be.release(nullptr);

  std::mt19937_64 rng(1);
  std::vector<std::uint32_t> src(10000);
  for (auto& x : src) x = static_cast<std::uint32_t>(rng());
  auto* d = static_cast<std::uint32_t*>(be.allocate(src.size() * 4));
  auto* e = static_cast<std::uint32_t*>(be.allocate(src.size() * 4));
  be.copy_from_host(d, src.data(), src.size() * 4);
  be.copy(e, d, src.size() * 4);
  std::vector<std::uint32_t> back(src.size());
  be.copy_to_host(back.data(), e, back.size() * 4);
  CHECK(back == src);
  // memmove semantics: shift by 100 elements forwards, then backwards.
  be.copy(d + 100, d, 5000 * 4);
  be.copy_to_host(back.data(), d, back.size() * 4);
  auto want = src;
  std::memmove(want.data() + 100, want.data(), 5000 * 4);
  CHECK(back == want);
  be.copy(d, d + 100, 5000 * 4);
  be.copy_to_host(back.data(), d, back.size() * 4);
  std::memmove(want.data(), want.data() + 100, 5000 * 4);
  CHECK(back == want);
  be.fill_zero(d + 10, 20 * 4);
  be.copy_to_host(back.data(), d, back.size() * 4);
  for (int i = 10; i < 30; ++i) want[i] = 0;
  CHECK(back == want);
  be.release(d);
  be.release(e);
}

TEST_CASE("pinned host blocks round-trip through device memory", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  Backend& be = gpu();
  CHECK_FALSE(be.memory_is_host());
  const std::size_t n = 4099;
  auto* pinned = static_cast<std::uint32_t*>(be.allocate_host(n * 4));
  auto* back = static_cast<std::uint32_t*>(be.allocate_host(n * 4));
  REQUIRE(pinned != nullptr);
  for (std::size_t i = 0; i < n; ++i) pinned[i] = static_cast<std::uint32_t>(i * 2654435761u);
  void* d = be.allocate(n * 4);
  be.copy_from_host(d, pinned, n * 4);
  be.synchronize();  // a copy from pinned memory is asynchronous
  be.copy_to_host(back, d, n * 4);
  CHECK(std::equal(pinned, pinned + n, back));
  be.release(d);
  be.release_host(pinned);
  be.release_host(back);
  be.release_host(nullptr);
  void* empty = be.allocate_host(0);  // a real block, like allocate(0)
  CHECK(empty != nullptr);
  be.release_host(empty);
}

TEST_CASE("convert between f64, f32, bf16 and f16", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  Backend& be = gpu();
  std::mt19937_64 rng(2);
  const std::int64_t n = 3001;
  Vec v = random_in(rng, DType::kF64, n, -100, 100);
  v[0] = 0, v[1] = -0.0, v[2] = kInf, v[3] = -kInf, v[4] = 1e-30;
  Buffer f64(be, DType::kF64, n), f32(be, DType::kF32, n), bf(be, DType::kBF16, n);
  f64.upload(v);
  be.convert(DType::kF64, f64.get(), DType::kF32, f32.get(), n);
  CHECK(close("f64 -> f32", f32.download(), rounded(DType::kF32, v), 0));
  be.convert(DType::kF32, f32.get(), DType::kBF16, bf.get(), n);
  const Vec bf_want = rounded(DType::kBF16, rounded(DType::kF32, v));
  CHECK(close("f32 -> bf16", bf.download(), bf_want, 0));
  Buffer back(be, DType::kF64, n);
  be.convert(DType::kBF16, bf.get(), DType::kF64, back.get(), n);
  CHECK(close("bf16 -> f64", back.download(), bf_want, 0));
  // f64 -> bf16 rounds once (a double-rounding tie may differ from f32 -> bf16 by one ulp).
  be.convert(DType::kF64, f64.get(), DType::kBF16, bf.get(), n);
  CHECK(close("f64 -> bf16", bf.download(), bf_want, 1e-2));
  // f16 round trip on values f16 holds exactly (multiples of 1/8 below 2048).
  Vec exact(n);
  for (std::int64_t i = 0; i < n; ++i) exact[i] = static_cast<double>(i % 4000 - 2000) / 8;
  Buffer half(be, DType::kF16, n);
  f32.upload(exact);
  be.convert(DType::kF32, f32.get(), DType::kF16, half.get(), n);
  Buffer f32b(be, DType::kF32, n);
  be.convert(DType::kF16, half.get(), DType::kF32, f32b.get(), n);
  CHECK(close("f32 -> f16 -> f32", f32b.download(), exact, 0));
  // Same dtype: a copy.
  be.convert(DType::kF32, f32.get(), DType::kF32, f32b.get(), n);
  CHECK(close("f32 -> f32", f32b.download(), exact, 0));
  CHECK_THROWS_AS(be.convert(DType::kI32, f32.get(), DType::kF32, f32b.get(), n),
                  std::invalid_argument);
}

// ------------------------------------------------------------------ gemm
void run_gemm(std::mt19937_64& rng, const Precision& p, bool ta, bool tb, std::int64_t m,
              std::int64_t n, std::int64_t k, std::int64_t batch, bool bcast_a, bool bcast_b,
              bool c_stride_zero, double alpha, double beta) {
  GemmArgs g;
  g.trans_a = ta, g.trans_b = tb;
  g.m = m, g.n = n, g.k = k, g.batch = batch, g.alpha = alpha, g.beta = beta;
  const std::int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const std::int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  g.lda = a_cols + 2, g.ldb = b_cols + 1, g.ldc = n + 3;
  g.stride_a = bcast_a ? 0 : a_rows * g.lda + 5;
  g.stride_b = bcast_b ? 0 : b_rows * g.ldb + 1;
  g.stride_c = c_stride_zero ? 0 : m * g.ldc + 2;
  const std::int64_t a_n = (bcast_a ? 1 : batch) * (a_rows * g.lda + 5);
  const std::int64_t b_n = (bcast_b ? 1 : batch) * (b_rows * g.ldb + 1);
  const std::int64_t c_n = c_stride_zero ? m * g.ldc + 2 : batch * g.stride_c;
  Vec c0 = random_in(rng, p.dtype, c_n);
  if (beta == 0) {  // C is write-only: poison the elements the product covers
    for (std::int64_t i = 0; i < (c_stride_zero ? 1 : batch); ++i) {
      for (std::int64_t r = 0; r < m; ++r) {
        for (std::int64_t col = 0; col < n; ++col) c0[i * g.stride_c + r * g.ldc + col] = kNaN;
      }
    }
  }
  Both a(p, random_in(rng, p.dtype, a_n)), b(p, random_in(rng, p.dtype, b_n)), c(p, c0);
  for (Side s : kSides) {
    GemmArgs gs = g;
    gs.a = a[s], gs.b = b[s], gs.c = c[s];
    backend(s).gemm(dtype_on(p, s), gs);
  }
  INFO(p.name << " trans_a " << ta << " trans_b " << tb << " m " << m << " n " << n << " k " << k
              << " batch " << batch << " bcast " << bcast_a << bcast_b << " c_stride_zero "
              << c_stride_zero << " alpha " << alpha << " beta " << beta);
  CHECK_GPU_MATCHES(p, "gemm C", c);
}

TEST_CASE("gemm transposes, strides, broadcast, alpha/beta, k = 0", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(3);
  for (const auto& p : precisions()) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        run_gemm(rng, p, ta, tb, 5, 7, 6, 1, false, false, false, 1.0, 0.0);
        run_gemm(rng, p, ta, tb, 33, 17, 29, 3, false, false, false, 0.7, -0.4);
        run_gemm(rng, p, ta, tb, 9, 4, 11, 4, true, false, false, -1.3, 1.0);
        run_gemm(rng, p, ta, tb, 6, 10, 3, 2, false, true, false, 0.5, 0.25);
        run_gemm(rng, p, ta, tb, 130, 70, 257, 2, false, false, false, 1.0, 0.0);
      }
    }
    run_gemm(rng, p, false, false, 4, 5, 0, 2, false, false, false, 1.0, 0.5);  // C = beta C
    run_gemm(rng, p, false, false, 4, 5, 0, 2, false, false, false, 1.0, 0.0);  // C = 0
    run_gemm(rng, p, true, false, 1, 1, 64, 1, false, false, false, 2.0, 0.0);
    // Output stride 0: the items accumulate into one C, one after the other.
    run_gemm(rng, p, false, true, 8, 9, 10, 3, false, false, true, 1.0, 1.0);
    run_gemm(rng, p, false, false, 8, 9, 10, 3, false, false, true, 1.0, 0.0);
  }
}

// ------------------------------------------------------------------ layout
std::int64_t numel_of(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

TEST_CASE("permute ranks 0 to 8", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(4);
  std::uniform_int_distribution<int> dim(1, 4);
  for (const auto& p : precisions()) {
    for (int rank = 0; rank <= 8; ++rank) {
      for (int trial = 0; trial < 4; ++trial) {
        Shape shape(rank);
        for (auto& d : shape) d = rank > 5 ? dim(rng) % 3 + 1 : dim(rng) + (trial == 3 ? 20 : 0);
        std::vector<int> perm(rank);
        for (int i = 0; i < rank; ++i) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        const std::int64_t n = numel_of(shape);
        Both in(p, random_in(rng, p.dtype, n)), out(p, static_cast<std::size_t>(n));
        for (Side s : kSides) {
          backend(s).permute(dtype_on(p, s), in[s], out[s], shape.data(), perm.data(), rank);
        }
        INFO("rank " << rank << " trial " << trial);
        CHECK(close(std::string(p.name) + " permute", out.on_gpu(), out.on_host(), 0));
      }
    }
  }
}

template <class E>
void run_copy_box(std::mt19937_64& rng, const Shape& src_shape, const Shape& src_off,
                  const Shape& dst_shape, const Shape& dst_off, const Shape& box) {
  std::vector<E> src(static_cast<std::size_t>(numel_of(src_shape)));
  std::vector<E> dst(static_cast<std::size_t>(numel_of(dst_shape)));
  for (auto& x : src) x = static_cast<E>(rng());
  for (auto& x : dst) x = static_cast<E>(rng());
  std::vector<E> results[2];
  for (Side s : kSides) {
    Backend& be = backend(s);
    void* ds = be.allocate(src.size() * sizeof(E));
    void* dd = be.allocate(dst.size() * sizeof(E));
    be.copy_from_host(ds, src.data(), src.size() * sizeof(E));
    be.copy_from_host(dd, dst.data(), dst.size() * sizeof(E));
    be.copy_box(sizeof(E), ds, src_shape.data(), src_off.data(), dd, dst_shape.data(),
                dst_off.data(), box.data(), static_cast<int>(box.size()));
    results[s].resize(dst.size());
    be.copy_to_host(results[s].data(), dd, dst.size() * sizeof(E));
    be.release(ds);
    be.release(dd);
  }
  CHECK(results[kGpu] == results[kHost]);
}

TEST_CASE("copy_box ranks 0 to 8, element sizes 1 to 8", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> coin(0, 9);
  for (int rank = 0; rank <= 8; ++rank) {
    for (int trial = 0; trial < 12; ++trial) {
      Shape box(rank), src_shape(rank), dst_shape(rank), src_off(rank), dst_off(rank);
      for (int d = 0; d < rank; ++d) {
        const int hi = rank > 5 ? 3 : 6;
        box[d] = std::uniform_int_distribution<int>(coin(rng) == 0 ? 0 : 1, hi)(rng);
        src_off[d] = std::uniform_int_distribution<int>(0, 2)(rng);
        dst_off[d] = std::uniform_int_distribution<int>(0, 2)(rng);
        // Sometimes the box spans a whole dim, so neighbouring dims merge.
        src_shape[d] = coin(rng) < 3 ? box[d] : src_off[d] + box[d] + coin(rng) % 3;
        if (src_shape[d] == box[d]) src_off[d] = 0;
        dst_shape[d] = coin(rng) < 3 ? box[d] : dst_off[d] + box[d] + coin(rng) % 3;
        if (dst_shape[d] == box[d]) dst_off[d] = 0;
      }
      INFO("rank " << rank << " trial " << trial);
      run_copy_box<std::uint8_t>(rng, src_shape, src_off, dst_shape, dst_off, box);
      run_copy_box<std::uint16_t>(rng, src_shape, src_off, dst_shape, dst_off, box);
      run_copy_box<std::uint32_t>(rng, src_shape, src_off, dst_shape, dst_off, box);
      run_copy_box<std::uint64_t>(rng, src_shape, src_off, dst_shape, dst_off, box);
    }
  }
  // A box leaving the source throws before anything runs.
  const Shape s{4, 4}, off{2, 0}, box{3, 4};
  void* a = gpu().allocate(64);
  void* b = gpu().allocate(64);
  CHECK_THROWS_AS(
      gpu().copy_box(4, a, s.data(), off.data(), b, s.data(), Shape{0, 0}.data(), box.data(), 2),
      std::invalid_argument);
  gpu().release(a);
  gpu().release(b);
}

TEST_CASE("split_heads and merge_heads (1, 3 and 10 parts)", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(6);
  for (const auto& p : precisions()) {
    for (std::int64_t parts : {1, 3, 10}) {
      const std::int64_t batch = 2, seq = 5, heads = 3, head_dim = 7;
      const std::int64_t per = batch * seq * heads * head_dim;
      Both x(p, random_in(rng, p.dtype, per * parts));
      std::vector<std::unique_ptr<Both>> outs;
      for (std::int64_t i = 0; i < parts; ++i) outs.push_back(std::make_unique<Both>(p, per));
      for (Side s : kSides) {
        std::vector<void*> ptrs;
        for (auto& o : outs) ptrs.push_back((*o)[s]);
        backend(s).split_heads(dtype_on(p, s), x[s], ptrs.data(), batch, seq, parts, heads,
                               head_dim);
      }
      for (std::int64_t i = 0; i < parts; ++i) {
        CHECK(close(std::string(p.name) + " split_heads part " + std::to_string(i),
                    outs[i]->on_gpu(), outs[i]->on_host(), 0));
      }
      Both merged(p, static_cast<std::size_t>(per * parts));
      for (Side s : kSides) {
        std::vector<const void*> ptrs;
        for (auto& o : outs) ptrs.push_back((*o)[s]);
        backend(s).merge_heads(dtype_on(p, s), ptrs.data(), merged[s], batch, seq, parts, heads,
                               head_dim);
      }
      CHECK(close(std::string(p.name) + " merge_heads", merged.on_gpu(), merged.on_host(), 0));
      CHECK(close(std::string(p.name) + " merge(split(x)) == x", merged.on_gpu(), x.on_gpu(), 0));
    }
  }
}

// ------------------------------------------------------------------ elementwise
TEST_CASE("add, add_broadcast (also in place), reduce_sum_outer", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(7);
  for (const auto& p : precisions()) {
    for (std::int64_t n : {1, 1000, 3000001}) {
      Both a(p, random_in(rng, p.dtype, n)), b(p, random_in(rng, p.dtype, n)), out(p, n);
      for (Side s : kSides) backend(s).add(dtype_on(p, s), a[s], b[s], out[s], n);
      CHECK_GPU_MATCHES(p, "add n=" + std::to_string(n), out);
      for (Side s : kSides) backend(s).add(dtype_on(p, s), a[s], b[s], a[s], n);  // in place
      CHECK_GPU_MATCHES(p, "add in place", a);
    }
    for (auto [outer, inner] :
         {std::pair<std::int64_t, std::int64_t>{1, 1}, {7, 33}, {300, 1000}, {4099, 65}, {0, 17}}) {
      const std::string dims = " " + std::to_string(outer) + "x" + std::to_string(inner);
      Both x(p, random_in(rng, p.dtype, outer * inner)), row(p, random_in(rng, p.dtype, inner));
      Both out(p, outer * inner), sum(p, inner);
      for (Side s : kSides) {
        backend(s).add_broadcast(dtype_on(p, s), x[s], row[s], out[s], outer, inner);
        backend(s).reduce_sum_outer(dtype_on(p, s), x[s], sum[s], outer, inner);
      }
      CHECK_GPU_MATCHES(p, "add_broadcast" + dims, out);
      CHECK_GPU_MATCHES(p, "reduce_sum_outer" + dims, sum);
      for (Side s : kSides)
        backend(s).add_broadcast(dtype_on(p, s), x[s], row[s], x[s], outer, inner);
      CHECK_GPU_MATCHES(p, "add_broadcast in place" + dims, x);
    }
  }
}

TEST_CASE("gelu forward and backward", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(8);
  for (const auto& p : precisions()) {
    for (std::int64_t n : {1, 4097, 1000003}) {
      Both x(p, random_in(rng, p.dtype, n, -5, 5)), dy(p, random_in(rng, p.dtype, n));
      Both y(p, n), dx(p, n);
      for (Side s : kSides) {
        backend(s).gelu_forward(dtype_on(p, s), x[s], y[s], n);
        backend(s).gelu_backward(dtype_on(p, s), x[s], dy[s], dx[s], n);
      }
      CHECK_GPU_MATCHES(p, "gelu_forward", y);
      CHECK_GPU_MATCHES(p, "gelu_backward", dx);
      for (Side s : kSides) backend(s).gelu_forward(dtype_on(p, s), x[s], x[s], n);
      CHECK_GPU_MATCHES(p, "gelu_forward in place", x);
    }
  }
}

TEST_CASE("sum_squares into a double, deterministic", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(9);
  for (const auto& p : precisions()) {
    for (std::int64_t n : {0, 1, 255, 100000, 5000011}) {
      Both x(p, random_in(rng, p.dtype, n)), out(DType::kF64, DType::kF64, 1);
      for (Side s : kSides) {
        backend(s).sum_squares(dtype_on(p, s), x[s], n, static_cast<double*>(out[s]));
      }
      // The sums are exact sums of exactly representable squares up to double rounding.
      CHECK(close(std::string(p.name) + " sum_squares n=" + std::to_string(n), out.on_gpu(),
                  out.on_host(), 1e-12));
      const Vec first = out.on_gpu();
      gpu().sum_squares(p.dtype, x[kGpu], n, static_cast<double*>(out[kGpu]));
      CHECK(out.on_gpu() == first);
    }
  }
}

TEST_CASE("causal_mask forward and backward with offsets", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(10);
  for (const auto& p : precisions()) {
    for (auto [ro, co] : {std::pair<std::int64_t, std::int64_t>{0, 0}, {8, 0}, {0, 5}, {3, 11}}) {
      for (bool backward : {false, true}) {
        const std::int64_t batch = 3, rows = 9, cols = 13, n = batch * rows * cols;
        Both x(p, random_in(rng, p.dtype, n)), y(p, n);
        for (Side s : kSides) {
          backend(s).causal_mask(dtype_on(p, s), x[s], y[s], batch, rows, cols, ro, co, backward);
        }
        const std::string what = std::string("causal_mask offsets ") + std::to_string(ro) + "," +
                                 std::to_string(co) + (backward ? " backward" : " forward");
        CHECK_GPU_MATCHES(p, what, y);
        for (Side s : kSides) {
          backend(s).causal_mask(dtype_on(p, s), x[s], x[s], batch, rows, cols, ro, co, backward);
        }
        CHECK_GPU_MATCHES(p, what + " in place", x);
      }
    }
  }
}

TEST_CASE("bias_gelu forward and backward (fused bias), in place", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(14);
  for (const auto& p : precisions()) {
    for (auto [outer, inner] :
         {std::pair<std::int64_t, std::int64_t>{1, 1}, {7, 300}, {4096, 3072}}) {
      const std::string dims = " " + std::to_string(outer) + "x" + std::to_string(inner);
      const std::int64_t n = outer * inner;
      Both x(p, random_in(rng, p.dtype, n, -4, 4)), bias(p, random_in(rng, p.dtype, inner)),
          dy(p, random_in(rng, p.dtype, n)), y(p, n), dx(p, n);
      for (Side s : kSides) {
        backend(s).bias_gelu_forward(dtype_on(p, s), x[s], bias[s], y[s], outer, inner);
        backend(s).bias_gelu_backward(dtype_on(p, s), x[s], bias[s], dy[s], dx[s], outer, inner);
      }
      CHECK_GPU_MATCHES(p, "bias_gelu_forward" + dims, y);
      CHECK_GPU_MATCHES(p, "bias_gelu_backward" + dims, dx);
      for (Side s : kSides) {
        backend(s).bias_gelu_forward(dtype_on(p, s), x[s], bias[s], x[s], outer, inner);
      }
      CHECK_GPU_MATCHES(p, "bias_gelu_forward in place" + dims, x);
    }
  }
}

TEST_CASE("causal_softmax_forward with offsets, in place", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(13);
  for (const auto& p : precisions()) {
    for (auto [ro, co] :
         {std::pair<std::int64_t, std::int64_t>{0, 0}, {8, 0}, {0, 5}, {3, 11}, {0, 40}}) {
      for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{9, 13}, {256, 1024}}) {
        const std::int64_t batch = 3, n = batch * rows * cols;
        Both x(p, random_in(rng, p.dtype, n, -8, 8)), y(p, n);
        for (Side s : kSides) {
          backend(s).causal_softmax_forward(dtype_on(p, s), x[s], y[s], batch, rows, cols, ro, co);
        }
        const std::string what = "causal_softmax_forward " + std::to_string(rows) + "x" +
                                 std::to_string(cols) + " offsets " + std::to_string(ro) + "," +
                                 std::to_string(co);
        CHECK_GPU_MATCHES(p, what, y);
        for (Side s : kSides) {
          backend(s).causal_softmax_forward(dtype_on(p, s), x[s], x[s], batch, rows, cols, ro, co);
        }
        CHECK_GPU_MATCHES(p, what + " in place", x);
      }
    }
  }
}

// Fused attention: the default chunked composition (kernels/attention.cc) over the CUDA gemm and
// softmax calls, against the same composition on the host; chunk 48 does not divide 130 rows,
// and a causal chunk reads only the keys it sees. bf16 accumulates dk, dv once per chunk in
// bf16 (attention.cc), so its tolerance is the bf16 one of the other calls.
TEST_CASE("attention forward and backward (chunked, causal, offsets)", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(17);
  for (const auto& p : precisions()) {
    for (auto [causal, ro, co] :
         {std::tuple<bool, std::int64_t, std::int64_t>{true, 0, 0}, {true, 64, 0}, {false, 0, 0}}) {
      const std::int64_t batch = 6, rows = 130, cols = causal && ro == 0 ? 130 : 194, dim = 64;
      Both q(p, random_in(rng, p.dtype, batch * rows * dim, -2, 2));
      Both k(p, random_in(rng, p.dtype, batch * cols * dim, -2, 2));
      Both v(p, random_in(rng, p.dtype, batch * cols * dim));
      Both d_o(p, random_in(rng, p.dtype, batch * rows * dim));
      Both o(p, batch * rows * dim), dq(p, batch * rows * dim);
      Both dk(p, batch * cols * dim), dv(p, batch * cols * dim);
      for (Side s : kSides) {
        AttentionArgs a;
        a.q = q[s];
        a.k = k[s];
        a.v = v[s];
        a.batch = batch;
        a.rows = rows;
        a.cols = cols;
        a.head_dim = dim;
        a.scale = 0.125;
        a.causal = causal;
        a.row_offset = ro;
        a.col_offset = co;
        a.chunk_rows = 48;
        const DType dt = dtype_on(p, s);
        Buffer ws(backend(s), dt, attention_workspace_bytes(dt, a) / dtype_size_bytes(dt));
        a.workspace = ws.get();
        backend(s).attention_forward(dt, a, o[s]);
        backend(s).attention_backward(dt, a, d_o[s], dq[s], dk[s], dv[s]);
        backend(s).synchronize();
      }
      const std::string what = std::string("attention causal ") + (causal ? "1" : "0") +
                               " offsets " + std::to_string(ro) + "," + std::to_string(co);
      CHECK_GPU_MATCHES(p, what + " o", o);
      CHECK_GPU_MATCHES(p, what + " dq", dq);
      CHECK_GPU_MATCHES(p, what + " dk", dk);
      CHECK_GPU_MATCHES(p, what + " dv", dv);
    }
  }
}

// ------------------------------------------------------------------ normalisations
TEST_CASE("layernorm forward and backward", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(11);
  for (const auto& p : precisions()) {
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 1},
                              {5, 7},
                              {64, 1024},
                              {300, 3000},
                              {5000, 40},
                              {0, 8}}) {
      const std::string dims = " " + std::to_string(rows) + "x" + std::to_string(cols);
      Vec xv = random_in(rng, p.dtype, rows * cols, -2, 3);
      Both x(p, xv), w(p, random_in(rng, p.dtype, cols, 0.5, 1.5)),
          b(p, random_in(rng, p.dtype, cols));
      Both y(p, rows * cols), mean(p, rows), rstd(p, rows);
      for (Side s : kSides) {
        backend(s).layernorm_forward(dtype_on(p, s), x[s], w[s], b[s], y[s], mean[s], rstd[s], rows,
                                     cols, 1e-5);
      }
      CHECK_GPU_MATCHES(p, "layernorm_forward y" + dims, y);
      CHECK_GPU_MATCHES(p, "layernorm_forward mean" + dims, mean);
      CHECK_GPU_MATCHES(p, "layernorm_forward rstd" + dims, rstd);
      // Backward from the host's statistics, rounded to the dtype, on both sides.
      const Vec mv = rounded(p.dtype, mean.on_host()), rv = rounded(p.dtype, rstd.on_host());
      mean.upload(mv);
      rstd.upload(rv);
      Both dy(p, random_in(rng, p.dtype, rows * cols)), dx(p, rows * cols), dw(p, cols),
          db(p, cols);
      for (Side s : kSides) {
        backend(s).layernorm_backward(dtype_on(p, s), dy[s], x[s], w[s], mean[s], rstd[s], dx[s],
                                      dw[s], db[s], rows, cols);
      }
      if (rows > 0) CHECK_GPU_MATCHES(p, "layernorm_backward dx" + dims, dx);
      CHECK_GPU_MATCHES(p, "layernorm_backward dw" + dims, dw);
      CHECK_GPU_MATCHES(p, "layernorm_backward db" + dims, db);
    }
  }
}

TEST_CASE("softmax forward (masked rows, in place) and backward", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(12);
  for (const auto& p : precisions()) {
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 1},
                              {6, 9},
                              {128, 1024},
                              {40, 5000},
                              {10000, 33}}) {
      const std::string dims = " " + std::to_string(rows) + "x" + std::to_string(cols);
      Vec xv = random_in(rng, p.dtype, rows * cols, -8, 8);
      // A causal-style mask in every row, and one row entirely masked.
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
          if (c > r % cols + 1 || r == rows / 2) xv[r * cols + c] = -kInf;
        }
      }
      Both x(p, xv), y(p, rows * cols);
      for (Side s : kSides) backend(s).softmax_forward(dtype_on(p, s), x[s], y[s], rows, cols);
      CHECK_GPU_MATCHES(p, "softmax_forward" + dims, y);
      for (Side s : kSides) backend(s).softmax_forward(dtype_on(p, s), x[s], x[s], rows, cols);
      CHECK_GPU_MATCHES(p, "softmax_forward in place" + dims, x);
      y.upload(rounded(p.dtype, y.on_host()));
      Both dy(p, random_in(rng, p.dtype, rows * cols)), dx(p, rows * cols);
      for (Side s : kSides) {
        backend(s).softmax_backward(dtype_on(p, s), y[s], dy[s], dx[s], rows, cols);
      }
      CHECK_GPU_MATCHES(p, "softmax_backward" + dims, dx);
    }
  }
}

// ------------------------------------------------------------------ embeddings
TEST_CASE("embedding forward and backward, whole table and vocab slices", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(13);
  for (const auto& p : precisions()) {
    for (auto [n_tokens, vocab, dim] :
         {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 1, 1},
          {37, 11, 5},
          {2048, 300, 64},
          {4096, 7, 1500}}) {
      const std::string dims =
          " " + std::to_string(n_tokens) + "/" + std::to_string(vocab) + "/" + std::to_string(dim);
      Tokens tok(random_tokens(rng, n_tokens, 0, vocab));
      Both table(p, random_in(rng, p.dtype, vocab * dim)), out(p, n_tokens * dim);
      Both dout(p, random_in(rng, p.dtype, n_tokens * dim)), dtable(p, vocab * dim);
      for (Side s : kSides) {
        backend(s).embedding_forward(dtype_on(p, s), tok[s], table[s], out[s], n_tokens, vocab,
                                     dim);
        backend(s).embedding_backward(dtype_on(p, s), tok[s], dout[s], dtable[s], n_tokens, vocab,
                                      dim);
      }
      CHECK_GPU_MATCHES(p, "embedding_forward" + dims, out);
      CHECK_GPU_MATCHES(p, "embedding_backward" + dims, dtable);
      if (p.dtype != DType::kBF16) {  // same summation order as the host: equal in f32 and f64
        CHECK(dtable.on_gpu() == dtable.on_host());
      }
      const Vec first = dtable.on_gpu();
      gpu().embedding_backward(p.dtype, tok[kGpu], dout[kGpu], dtable[kGpu], n_tokens, vocab, dim);
      CHECK(dtable.on_gpu() == first);  // deterministic

      // A slice [offset, offset + slice) of a larger vocabulary; tokens cover the whole range
      // and some fall below and above it (negative ones included).
      const std::int64_t offset = vocab / 3, slice = std::max<std::int64_t>(1, vocab / 2);
      Tokens stok(random_tokens(rng, n_tokens, -2, vocab + 3));
      Both stab(p, random_in(rng, p.dtype, slice * dim)), sout(p, n_tokens * dim),
          sdtable(p, slice * dim);
      for (Side s : kSides) {
        backend(s).embedding_forward_shard(dtype_on(p, s), stok[s], stab[s], sout[s], n_tokens,
                                           slice, dim, offset);
        backend(s).embedding_backward_shard(dtype_on(p, s), stok[s], dout[s], sdtable[s], n_tokens,
                                            slice, dim, offset);
      }
      CHECK_GPU_MATCHES(p, "embedding_forward_shard" + dims, sout);
      CHECK_GPU_MATCHES(p, "embedding_backward_shard" + dims, sdtable);
    }
  }
}

TEST_CASE("bad token ids and targets throw std::out_of_range at the next sync", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  Backend& be = gpu();
  const Precision& p = precisions()[0];
  std::mt19937_64 rng(14);
  const std::int64_t n = 6, vocab = 5, dim = 3;
  std::vector<std::int32_t> bad = {0, 1, 7, 2, -1, 4};
  Tokens tok(bad);
  Both table(p, random_in(rng, p.dtype, vocab * dim)), out(p, n * dim);
  be.embedding_forward(p.dtype, tok[kGpu], table[kGpu], out[kGpu], n, vocab, dim);
  CHECK_THROWS_AS(be.synchronize(), std::out_of_range);
  CHECK_NOTHROW(be.synchronize());  // reported once, then cleared
  const Vec got = out.on_gpu();
  for (std::int64_t j = 0; j < dim; ++j) CHECK(got[2 * dim + j] == 0);  // bad rows are zeros
  Both dtable(p, vocab * dim);
  be.embedding_backward(p.dtype, tok[kGpu], out[kGpu], dtable[kGpu], n, vocab, dim);
  CHECK_THROWS_AS(dtable.on_gpu(), std::out_of_range);  // copy_to_host reports it too
  Both logits(p, random_in(rng, p.dtype, n * vocab)), loss(p, 1), dloss(p, Vec{1.0});
  be.cross_entropy_forward(p.dtype, logits[kGpu], tok[kGpu], loss[kGpu], n, vocab);
  CHECK_THROWS_AS(be.synchronize(), std::out_of_range);
  Both dlogits(p, n * vocab);
  be.cross_entropy_backward(p.dtype, logits[kGpu], tok[kGpu], dloss[kGpu], dlogits[kGpu], n, vocab);
  CHECK_THROWS_AS(be.synchronize(), std::out_of_range);
  CHECK_NOTHROW(be.synchronize());
}

// ------------------------------------------------------------------ loss
TEST_CASE("cross-entropy forward and backward", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(15);
  for (const auto& p : precisions()) {
    for (auto [rows, vocab] : {std::pair<std::int64_t, std::int64_t>{1, 1},
                               {7, 10},
                               {256, 1000},
                               {33, 50257},
                               {5000, 64},
                               {0, 5}}) {
      const std::string dims = " " + std::to_string(rows) + "x" + std::to_string(vocab);
      Both logits(p, random_in(rng, p.dtype, rows * vocab, -4, 4));
      Tokens targets(random_tokens(rng, rows, 0, vocab));
      Both loss(p, 1), dloss(p, Vec{round_to(p.dtype, 0.75)}), dlogits(p, rows * vocab);
      for (Side s : kSides) {
        backend(s).cross_entropy_forward(dtype_on(p, s), logits[s], targets[s], loss[s], rows,
                                         vocab);
        backend(s).cross_entropy_backward(dtype_on(p, s), logits[s], targets[s], dloss[s],
                                          dlogits[s], rows, vocab);
      }
      CHECK_GPU_MATCHES(p, "cross_entropy_forward" + dims, loss);
      CHECK_GPU_MATCHES(p, "cross_entropy_backward" + dims, dlogits);
    }
  }
}

TEST_CASE("vocab-parallel cross-entropy pieces", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(16);
  for (const auto& p : precisions()) {
    for (auto [rows, cols, offset] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 1, 0},
                                      {9, 10, 5},
                                      {256, 1000, 1000},
                                      {20, 30000, 7},
                                      {6, 0, 3},
                                      {0, 4, 0}}) {
      const std::string dims =
          " " + std::to_string(rows) + "x" + std::to_string(cols) + "@" + std::to_string(offset);
      Both x(p, random_in(rng, p.dtype, rows * cols, -4, 4));
      // Targets inside and outside the slice, negative ones included.
      Tokens targets(random_tokens(rng, rows, -1, offset + cols + 3));
      Both rmax(p, rows), rsum(p, rows);
      for (Side s : kSides) backend(s).row_max(dtype_on(p, s), x[s], rmax[s], rows, cols);
      CHECK_GPU_MATCHES(p, "row_max" + dims, rmax);
      // The statistics as another device's all-reduce would leave them: a larger max.
      Vec mv = rmax.on_host();
      for (double& v : mv) v = round_to(p.dtype, (std::isinf(v) ? 0.0 : v) + 0.5);
      rmax.upload(mv);
      for (Side s : kSides) {
        backend(s).row_sum_exp(dtype_on(p, s), x[s], rmax[s], rsum[s], rows, cols);
      }
      CHECK_GPU_MATCHES(p, "row_sum_exp" + dims, rsum);
      Vec sv = rsum.on_host();
      for (double& v : sv) v = round_to(p.dtype, v + 1.25);  // plus the other slices' terms
      rsum.upload(sv);
      const double scale = 1.0 / 64;
      Both loss(p, 1), dloss(p, Vec{round_to(p.dtype, 1.5)}), dx(p, rows * cols);
      for (Side s : kSides) {
        backend(s).cross_entropy_forward_shard(dtype_on(p, s), x[s], targets[s], rmax[s], rsum[s],
                                               loss[s], rows, cols, offset, scale);
        backend(s).cross_entropy_backward_shard(dtype_on(p, s), x[s], targets[s], rmax[s], rsum[s],
                                                dloss[s], dx[s], rows, cols, offset, scale);
      }
      CHECK_GPU_MATCHES(p, "cross_entropy_forward_shard" + dims, loss);
      if (rows * cols > 0) CHECK_GPU_MATCHES(p, "cross_entropy_backward_shard" + dims, dx);
    }
  }
}

// ------------------------------------------------------------------ optimizer
TEST_CASE("clip_by_global_norm over many device scalars", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(17);
  for (std::int64_t count : {0, 1, 5, 300}) {
    for (double max_norm : {0.0, 0.5, 1e6}) {
      const Vec sums = random_in(rng, DType::kF64, count, 0, 3);
      std::vector<std::unique_ptr<Both>> scalars;
      for (double v : sums) {
        scalars.push_back(std::make_unique<Both>(DType::kF64, DType::kF64, 1));
        scalars.back()->upload(Vec{v});
      }
      Both norm_scale(DType::kF64, DType::kF64, 2);
      for (Side s : kSides) {
        std::vector<const double*> ptrs;
        for (auto& b : scalars) ptrs.push_back(static_cast<const double*>((*b)[s]));
        backend(s).clip_by_global_norm(ptrs.data(), count, max_norm,
                                       static_cast<double*>(norm_scale[s]));
      }
      // Same order of additions as the host: equal.
      INFO("count " << count << " max_norm " << max_norm);
      CHECK(norm_scale.on_gpu() == norm_scale.on_host());
    }
  }
}

TEST_CASE("adamw and sgd updates over several steps", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  std::mt19937_64 rng(18);
  for (const auto& p : precisions()) {
    const std::int64_t n = 100003;
    Both norm_scale(DType::kF64, DType::kF64, 2);
    norm_scale.upload(Vec{2.0, 0.6});
    const double* ns[2] = {static_cast<const double*>(norm_scale[kGpu]),
                           static_cast<const double*>(norm_scale[kHost])};
    {
      Both param(p, random_in(rng, p.dtype, n)), m(p, Vec(n, 0.0)), v(p, Vec(n, 0.0));
      AdamWArgs args;
      args.lr = 1e-2, args.weight_decay = 0.1, args.beta2 = 0.99;
      for (std::int64_t step = 1; step <= 3; ++step) {
        Both grad(p, random_in(rng, p.dtype, n));
        args.step = step;
        for (Side s : kSides) {
          backend(s).adamw_update(dtype_on(p, s), param[s], grad[s], m[s], v[s], n, args, ns[s]);
        }
        const std::string what = "adamw step " + std::to_string(step);
        CHECK_GPU_MATCHES(p, what + " param", param);
        CHECK_GPU_MATCHES(p, what + " m", m);
        CHECK_GPU_MATCHES(p, what + " v", v);
        // Continue both sides from the same (rounded) state.
        param.upload(rounded(p.dtype, param.on_host()));
        m.upload(rounded(p.dtype, m.on_host()));
        v.upload(rounded(p.dtype, v.on_host()));
      }
    }
    for (double momentum : {0.0, 0.9}) {
      Both param(p, random_in(rng, p.dtype, n)), buf(p, n);
      SgdArgs args;
      args.lr = 0.05, args.momentum = momentum, args.weight_decay = 0.01;
      for (std::int64_t step = 1; step <= 3; ++step) {
        Both grad(p, random_in(rng, p.dtype, n));
        args.step = step;
        for (Side s : kSides) {
          backend(s).sgd_update(dtype_on(p, s), param[s], grad[s], buf[s], n, args, ns[s]);
        }
        const std::string what =
            "sgd momentum " + std::to_string(momentum) + " step " + std::to_string(step);
        CHECK_GPU_MATCHES(p, what + " param", param);
        if (momentum != 0) CHECK_GPU_MATCHES(p, what + " buf", buf);
        param.upload(rounded(p.dtype, param.on_host()));
        if (momentum != 0) buf.upload(rounded(p.dtype, buf.on_host()));
      }
    }
  }
}

// ------------------------------------------------------------------ argument checks
TEST_CASE("bad dtypes and sizes throw std::invalid_argument naming the call", "[kernels][cuda]") {
  STRATA_REQUIRE_GPU();
  Backend& be = gpu();
  void* a = be.allocate(64);
  CHECK_THROWS_WITH(be.add(DType::kF16, a, a, a, 4),
                    Catch::Contains("CudaBackend::add") && Catch::Contains("f16"));
  CHECK_THROWS_WITH(be.gelu_forward(DType::kF32, a, a, -1),
                    Catch::Contains("CudaBackend::gelu_forward") && Catch::Contains("-1"));
  CHECK_THROWS_AS(be.softmax_forward(DType::kF32, nullptr, a, 2, 2), std::invalid_argument);
  GemmArgs g;
  g.m = 2, g.n = 2, g.k = 2, g.lda = 1, g.ldb = 2, g.ldc = 2, g.a = a, g.b = a, g.c = a;
  CHECK_THROWS_WITH(be.gemm(DType::kF32, g), Catch::Contains("lda"));
  be.release(a);
}

}  // namespace
}  // namespace strata::kernels::test
