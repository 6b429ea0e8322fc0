// Backend's public calls: the argument checks every backend shares, then the backend's do_<call>.
// Checking here, once, means the host and CUDA backends reject a bad call with the same words
// (std::invalid_argument "<Class>::<call>: ..." naming the sizes) and their implementations
// hold only computation. What stays in the implementations: the dtypes each supports, and the
// token / target range checks, which the host makes on the CPU before computing and the CUDA
// backend makes on the device (kernels/cuda/cuda_backend.h). This file holds the memory, dense,
// elementwise and normalisation calls; kernels/backend_checks_nn.cc the rest.
// A dtype the backend only emulates (Backend::emulated: bf16 on the host) runs the same do_<call>
// in f32 on converted copies of its buffers, after the same checks: each call is written once,
// through run_maybe_emulated (kernels/f32_emulation.h), naming every buffer as io.in / io.out.
#include <climits>

#include "kernels/arg_checks.h"
#include "kernels/backend.h"
#include "kernels/copy_prep.h"
#include "kernels/f32_emulation.h"

namespace strata::kernels {
namespace {

void check_gemm(const ArgChecks& c, const GemmArgs& g) {
  constexpr const char* kM = "gemm";
  c.require_sizes(kM, "m, n, k, batch", {g.m, g.n, g.k, g.batch});
  c.require(g.stride_a >= 0 && g.stride_b >= 0 && g.stride_c >= 0, kM,
            "batch strides must be >= 0: (stride_a, stride_b, stride_c) = (", g.stride_a, ", ",
            g.stride_b, ", ", g.stride_c, ")");
  // Columns of the stored matrices: A is [m, k] or, transposed, [k, m]; likewise B.
  const std::int64_t a_cols = g.trans_a ? g.m : g.k;
  const std::int64_t b_cols = g.trans_b ? g.k : g.n;
  c.require(g.lda >= a_cols, kM, "lda = ", g.lda, " < ", a_cols, " (m = ", g.m, ", k = ", g.k,
            ", trans_a = ", g.trans_a, ")");
  c.require(g.ldb >= b_cols, kM, "ldb = ", g.ldb, " < ", b_cols, " (k = ", g.k, ", n = ", g.n,
            ", trans_b = ", g.trans_b, ")");
  c.require(g.ldc >= g.n, kM, "ldc = ", g.ldc, " < n = ", g.n);
  // OpenBLAS (Debian's LP64 build) and cuBLAS both take 32-bit dimensions and batch counts.
  for (std::int64_t v : {g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch}) {
    c.require(v <= INT_MAX, kM, "dimension ", v, " exceeds the 32-bit BLAS integer (m = ", g.m,
              ", n = ", g.n, ", k = ", g.k, ", lda/ldb/ldc = ", g.lda, "/", g.ldb, "/", g.ldc,
              ", batch = ", g.batch, ")");
  }
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  c.require(g.c != nullptr, kM, "c is null for m = ", g.m, ", n = ", g.n);
  if (g.k > 0) {
    c.require(g.a != nullptr, kM, "a is null for m = ", g.m, ", k = ", g.k);
    c.require(g.b != nullptr, kM, "b is null for k = ", g.k, ", n = ", g.n);
  }
}

// The elements a strided batched operand spans: rows of ld elements, the last row `cols` long.
std::int64_t span(std::int64_t batch, std::int64_t stride, std::int64_t rows, std::int64_t cols,
                  std::int64_t ld) {
  if (batch == 0 || rows == 0 || cols == 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

// GemmArgs over the operands `io` gives (f32 copies when emulated; C is an output that beta may
// read).
template <class Buffers>
GemmArgs gemm_buffers(Buffers& io, GemmArgs g) {
  const std::int64_t k = g.m > 0 && g.n > 0 ? g.k : 0;  // nothing of A, B is read otherwise
  g.a = io.in(g.a, span(g.batch, g.stride_a, g.trans_a ? k : g.m, g.trans_a ? g.m : k, g.lda));
  g.b = io.in(g.b, span(g.batch, g.stride_b, g.trans_b ? g.n : k, g.trans_b ? k : g.n, g.ldb));
  g.c = io.out(g.c, span(g.batch, g.stride_c, g.m, g.n, g.ldc));
  return g;
}

// n elements in, n out: sizes >= 0 and every buffer present.
void check_unary(const ArgChecks& c, const char* method, std::int64_t n, const void* in,
                 const char* in_name, const void* out, const char* out_name) {
  c.require_sizes(method, "n", {n});
  c.require_ptr(in, n, method, in_name);
  c.require_ptr(out, n, method, out_name);
}

void check_bytes(const ArgChecks& c, const char* method, std::size_t bytes, const void* dst,
                 const void* src) {
  c.require(bytes == 0 || (dst != nullptr && src != nullptr), method, "null pointer for ", bytes,
            " bytes");
}

}  // namespace

ArgChecks Backend::checks() const { return ArgChecks{class_name_}; }

// ---- memory

void Backend::copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
  check_bytes(checks(), "copy_from_host", bytes, dst, host_src);
  do_copy_from_host(dst, host_src, bytes);
}

void Backend::copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
  check_bytes(checks(), "copy_to_host", bytes, host_dst, src);
  do_copy_to_host(host_dst, src, bytes);
}

void Backend::copy(void* dst, const void* src, std::size_t bytes) {
  check_bytes(checks(), "copy", bytes, dst, src);
  if (bytes == 0 || dst == src) return;
  do_copy(dst, src, bytes);
}

void Backend::fill_zero(void* dst, std::size_t bytes) {
  checks().require(bytes == 0 || dst != nullptr, "fill_zero", "null pointer for ", bytes, " bytes");
  if (bytes == 0) return;
  do_fill_zero(dst, bytes);
}

void Backend::convert(DType from, const void* src, DType to, void* dst, std::int64_t n) {
  check_unary(checks(), "convert", n, src, "src", dst, "dst");
  do_convert(from, src, to, dst, n);
}

// ---- dense algebra and data movement

void Backend::gemm(DType dtype, const GemmArgs& args) {
  check_gemm(checks(), args);
  run_maybe_emulated(*this, emulated(dtype), dtype,
                     [&](DType dt, auto& io) { do_gemm(dt, gemm_buffers(io, args)); });
}

void Backend::permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
                      const int* perm, int rank) {
  copy_prep::check_permute(checks(), in, out, in_shape, perm, rank);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    std::int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= in_shape[d];
    do_permute(dt, io.in(in, n), io.out(out, n), in_shape, perm, rank);
  });
}

void Backend::copy_box(std::size_t elem_bytes, const void* src, const std::int64_t* src_shape,
                       const std::int64_t* src_offset, void* dst, const std::int64_t* dst_shape,
                       const std::int64_t* dst_offset, const std::int64_t* box, int rank) {
  copy_prep::check_copy_box(checks(), elem_bytes, src, src_shape, src_offset, dst, dst_shape,
                            dst_offset, box, rank);
  do_copy_box(elem_bytes, src, src_shape, src_offset, dst, dst_shape, dst_offset, box, rank);
}

// ---- elementwise and reductions

void Backend::add(DType dtype, const void* a, const void* b, void* out, std::int64_t n) {
  check_unary(checks(), "add", n, a, "a", b, "b");
  checks().require_ptr(out, n, "add", "out");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_add(dt, io.in(a, n), io.in(b, n), io.out(out, n), n);
  });
}

void Backend::add_broadcast(DType dtype, const void* x, const void* row, void* out,
                            std::int64_t outer, std::int64_t inner) {
  constexpr const char* kM = "add_broadcast";
  const ArgChecks c = checks();
  c.require_sizes(kM, "outer, inner", {outer, inner});
  c.require_ptr(x, outer * inner, kM, "x");
  c.require_ptr(row, outer > 0 ? inner : 0, kM, "row");
  c.require_ptr(out, outer * inner, kM, "out");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_add_broadcast(dt, io.in(x, outer * inner), io.in(row, outer > 0 ? inner : 0),
                     io.out(out, outer * inner), outer, inner);
  });
}

void Backend::reduce_sum_outer(DType dtype, const void* x, void* out, std::int64_t outer,
                               std::int64_t inner) {
  constexpr const char* kM = "reduce_sum_outer";
  const ArgChecks c = checks();
  c.require_sizes(kM, "outer, inner", {outer, inner});
  c.require_ptr(x, outer * inner, kM, "x");
  c.require_ptr(out, inner, kM, "out");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_reduce_sum_outer(dt, io.in(x, outer * inner), io.out(out, inner), outer, inner);
  });
}

void Backend::gelu_forward(DType dtype, const void* x, void* y, std::int64_t n) {
  check_unary(checks(), "gelu_forward", n, x, "x", y, "y");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_gelu_forward(dt, io.in(x, n), io.out(y, n), n);
  });
}

void Backend::gelu_backward(DType dtype, const void* x, const void* dy, void* dx, std::int64_t n) {
  check_unary(checks(), "gelu_backward", n, x, "x", dy, "dy");
  checks().require_ptr(dx, n, "gelu_backward", "dx");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_gelu_backward(dt, io.in(x, n), io.in(dy, n), io.out(dx, n), n);
  });
}

namespace {

// The bias + GELU calls: x and out [outer, inner], bias [inner].
void check_bias_gelu(const ArgChecks& c, const char* method, const void* x, const void* bias,
                     const void* out, const char* out_name, std::int64_t outer,
                     std::int64_t inner) {
  c.require_sizes(method, "outer, inner", {outer, inner});
  c.require_ptr(x, outer * inner, method, "x");
  c.require_ptr(bias, outer > 0 ? inner : 0, method, "bias");
  c.require_ptr(out, outer * inner, method, out_name);
}

}  // namespace

void Backend::bias_gelu_forward(DType dtype, const void* x, const void* bias, void* y,
                                std::int64_t outer, std::int64_t inner) {
  check_bias_gelu(checks(), "bias_gelu_forward", x, bias, y, "y", outer, inner);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_bias_gelu_forward(dt, io.in(x, outer * inner), io.in(bias, outer > 0 ? inner : 0),
                         io.out(y, outer * inner), outer, inner);
  });
}

void Backend::bias_gelu_backward(DType dtype, const void* x, const void* bias, const void* dy,
                                 void* dx, std::int64_t outer, std::int64_t inner) {
  check_bias_gelu(checks(), "bias_gelu_backward", x, bias, dx, "dx", outer, inner);
  checks().require_ptr(dy, outer * inner, "bias_gelu_backward", "dy");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_bias_gelu_backward(dt, io.in(x, outer * inner), io.in(bias, outer > 0 ? inner : 0),
                          io.in(dy, outer * inner), io.out(dx, outer * inner), outer, inner);
  });
}

void Backend::sum_squares(DType dtype, const void* x, std::int64_t n, double* out) {
  constexpr const char* kM = "sum_squares";
  checks().require_sizes(kM, "n", {n});
  checks().require_ptr(x, n, kM, "x");
  checks().require(out != nullptr, kM, "out is null (n = ", n, ")");
  run_maybe_emulated(*this, emulated(dtype), dtype,
                     [&](DType dt, auto& io) { do_sum_squares(dt, io.in(x, n), n, out); });
}

// ---- normalisations

void Backend::layernorm_forward(DType dtype, const void* x, const void* w, const void* b, void* y,
                                void* mean, void* rstd, std::int64_t rows, std::int64_t cols,
                                double eps) {
  constexpr const char* kM = "layernorm_forward";
  const ArgChecks c = checks();
  c.require_sizes(kM, "rows, cols", {rows, cols});
  c.require(eps >= 0, kM, "eps = ", eps, " must be >= 0 (rows = ", rows, ", cols = ", cols, ")");
  c.require(rows == 0 || cols > 0, kM, "cols = 0 with rows = ", rows);
  c.require_ptr(x, rows * cols, kM, "x");
  c.require_ptr(w, rows > 0 ? cols : 0, kM, "w");
  c.require_ptr(b, rows > 0 ? cols : 0, kM, "b");
  c.require_ptr(y, rows * cols, kM, "y");
  c.require_ptr(mean, rows, kM, "mean");
  c.require_ptr(rstd, rows, kM, "rstd");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_layernorm_forward(dt, io.in(x, rows * cols), io.in(w, rows > 0 ? cols : 0),
                         io.in(b, rows > 0 ? cols : 0), io.out(y, rows * cols), io.out(mean, rows),
                         io.out(rstd, rows), rows, cols, eps);
  });
}

void Backend::layernorm_backward(DType dtype, const void* dy, const void* x, const void* w,
                                 const void* mean, const void* rstd, void* dx, void* dw, void* db,
                                 std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "layernorm_backward";
  const ArgChecks c = checks();
  c.require_sizes(kM, "rows, cols", {rows, cols});
  c.require_ptr(dy, rows * cols, kM, "dy");
  c.require_ptr(x, rows * cols, kM, "x");
  c.require_ptr(w, cols, kM, "w");
  c.require_ptr(mean, rows, kM, "mean");
  c.require_ptr(rstd, rows, kM, "rstd");
  c.require_ptr(dx, rows * cols, kM, "dx");
  c.require_ptr(dw, cols, kM, "dw");
  c.require_ptr(db, cols, kM, "db");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_layernorm_backward(dt, io.in(dy, rows * cols), io.in(x, rows * cols), io.in(w, cols),
                          io.in(mean, rows), io.in(rstd, rows), io.out(dx, rows * cols),
                          io.out(dw, cols), io.out(db, cols), rows, cols);
  });
}

void Backend::softmax_forward(DType dtype, const void* x, void* y, std::int64_t rows,
                              std::int64_t cols) {
  constexpr const char* kM = "softmax_forward";
  const ArgChecks c = checks();
  c.require_sizes(kM, "rows, cols", {rows, cols});
  c.require_ptr(x, rows * cols, kM, "x");
  c.require_ptr(y, rows * cols, kM, "y");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_softmax_forward(dt, io.in(x, rows * cols), io.out(y, rows * cols), rows, cols);
  });
}

void Backend::softmax_backward(DType dtype, const void* y, const void* dy, void* dx,
                               std::int64_t rows, std::int64_t cols) {
  constexpr const char* kM = "softmax_backward";
  const ArgChecks c = checks();
  c.require_sizes(kM, "rows, cols", {rows, cols});
  c.require_ptr(y, rows * cols, kM, "y");
  c.require_ptr(dy, rows * cols, kM, "dy");
  c.require_ptr(dx, rows * cols, kM, "dx");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_softmax_backward(dt, io.in(y, rows * cols), io.in(dy, rows * cols), io.out(dx, rows * cols),
                        rows, cols);
  });
}

namespace {

// The causal-mask calls: batch matrices [rows, cols] in x and y.
void check_masked(const ArgChecks& c, const char* method, const void* x, const void* y,
                  std::int64_t batch, std::int64_t rows, std::int64_t cols) {
  c.require_sizes(method, "batch, rows, cols", {batch, rows, cols});
  c.require_ptr(x, batch * rows * cols, method, "x");
  c.require_ptr(y, batch * rows * cols, method, "y");
}

}  // namespace

void Backend::causal_softmax_forward(DType dtype, const void* x, void* y, std::int64_t batch,
                                     std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                                     std::int64_t col_offset) {
  check_masked(checks(), "causal_softmax_forward", x, y, batch, rows, cols);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    const std::int64_t n = batch * rows * cols;
    do_causal_softmax_forward(dt, io.in(x, n), io.out(y, n), batch, rows, cols, row_offset,
                              col_offset);
  });
}

void Backend::causal_mask(DType dtype, const void* x, void* y, std::int64_t batch,
                          std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                          std::int64_t col_offset, bool backward) {
  check_masked(checks(), "causal_mask", x, y, batch, rows, cols);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    const std::int64_t n = batch * rows * cols;
    do_causal_mask(dt, io.in(x, n), io.out(y, n), batch, rows, cols, row_offset, col_offset,
                   backward);
  });
}

}  // namespace strata::kernels
