// The default fused attention of every backend (backend.h, AttentionArgs): a chunked composition
// of the backend's own gemm and softmax calls, so it runs wherever those run and inherits their
// tests. Per batch item (b, a), for each chunk of query rows R = [r0, r1) and its visible keys
// C = [0, kc) (kc = r1 + row_offset - col_offset clamped to [1, cols] when causal, else cols):
//
//   forward   S = scale Q_R K_C^T              [n, kc]   gemm into workspace block 0
//             P = (causal_)softmax(S)           [n, kc]   block 1 (row_offset + r0, col_offset)
//             O_R = P V_C                        [n, D]    gemm into o
//   backward  (S, P recomputed as above; dK, dV zeroed once)
//             dV_C += P^T dO_R                   [kc, D]
//             dP = dO_R V_C^T                    [n, kc]   block 0
//             dS = P * (dP - rowsum(dP * P))     [n, kc]   softmax_backward into block 2
//             dQ_R = scale dS K_C                [n, D]
//             dK_C += scale dS^T Q_R             [kc, D]
//
// Keys past kc are masked for every row of the chunk, so leaving them out changes nothing but
// the work. No S x S matrix exists at any time: the workspace holds 3 [batch, chunk, cols]
// blocks. The dK, dV accumulation rounds to the dtype once per chunk (the unfused path rounds
// once per GEMM), which matters only in 16-bit dtypes.
#include <algorithm>

#include "kernels/backend.h"

namespace strata::kernels {
namespace {

// One chunk of query rows and the keys it sees.
struct Chunk {
  std::int64_t r0 = 0, n = 0, kc = 0;
};

Chunk chunk_at(const AttentionArgs& a, std::int64_t r0) {
  Chunk ch;
  ch.r0 = r0;
  ch.n = std::min(a.chunk_rows, a.rows - r0);
  ch.kc = a.cols;
  if (a.causal)
    ch.kc = std::clamp<std::int64_t>(r0 + ch.n + a.row_offset - a.col_offset, 1, a.cols);
  return ch;
}

// Byte offset helpers: `elements` elements of `dtype` past p.
const void* at(const void* p, std::int64_t elements, DType dtype) {
  return static_cast<const char*>(p) +
         elements * static_cast<std::int64_t>(dtype_size_bytes(dtype));
}
void* at(void* p, std::int64_t elements, DType dtype) {
  return static_cast<char*>(p) + elements * static_cast<std::int64_t>(dtype_size_bytes(dtype));
}

// Block i of the workspace: [batch, chunk_rows, cols] elements each.
void* block(const AttentionArgs& a, int i, DType dtype) {
  const std::int64_t chunk = std::min(a.chunk_rows, a.rows);
  return at(a.workspace, i * a.batch * chunk * a.cols, dtype);
}

// One strided batched GEMM over the batch items: C_i = alpha op(A_i) op(B_i) + beta C_i.
struct Operand {
  const void* p;
  std::int64_t ld, stride;
};
void batched(Backend& be, DType dt, std::int64_t batch, bool ta, bool tb, std::int64_t m,
             std::int64_t n, std::int64_t k, double alpha, Operand a, Operand b, void* c,
             std::int64_t ldc, std::int64_t stride_c, double beta) {
  GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = alpha;
  g.beta = beta;
  g.a = a.p;
  g.lda = a.ld;
  g.stride_a = a.stride;
  g.b = b.p;
  g.ldb = b.ld;
  g.stride_b = b.stride;
  g.c = c;
  g.ldc = ldc;
  g.stride_c = stride_c;
  g.batch = batch;
  be.gemm(dt, g);
}

// S = scale Q_R K_C^T into block 0, P = softmax of it into block 1.
void probabilities(Backend& be, DType dt, const AttentionArgs& a, const Chunk& ch) {
  const std::int64_t D = a.head_dim, score_stride = ch.n * ch.kc;
  void* s = block(a, 0, dt);
  void* p = block(a, 1, dt);
  batched(be, dt, a.batch, false, true, ch.n, ch.kc, D, a.scale,
          {at(a.q, ch.r0 * D, dt), D, a.rows * D}, {a.k, D, a.cols * D}, s, ch.kc, score_stride,
          0.0);
  if (a.causal) {
    be.causal_softmax_forward(dt, s, p, a.batch, ch.n, ch.kc, a.row_offset + ch.r0, a.col_offset);
  } else {
    be.softmax_forward(dt, s, p, a.batch * ch.n, ch.kc);
  }
}

}  // namespace

void Backend::do_attention_forward(DType dt, const AttentionArgs& a, void* o) {
  if (a.batch == 0 || a.rows == 0) return;
  const std::int64_t D = a.head_dim;
  if (a.cols == 0) {  // no keys: every query sees none
    fill_zero(o, static_cast<std::size_t>(a.batch * a.rows * D) * dtype_size_bytes(dt));
    return;
  }
  for (std::int64_t r0 = 0; r0 < a.rows; r0 += a.chunk_rows) {
    const Chunk ch = chunk_at(a, r0);
    probabilities(*this, dt, a, ch);
    batched(*this, dt, a.batch, false, false, ch.n, D, ch.kc, 1.0,
            {block(a, 1, dt), ch.kc, ch.n * ch.kc}, {a.v, D, a.cols * D}, at(o, r0 * D, dt), D,
            a.rows * D, 0.0);
  }
}

void Backend::do_attention_backward(DType dt, const AttentionArgs& a, const void* o_grad, void* dq,
                                    void* dk, void* dv) {
  const std::int64_t D = a.head_dim;
  const std::size_t elem = dtype_size_bytes(dt);
  fill_zero(dk, static_cast<std::size_t>(a.batch * a.cols * D) * elem);
  fill_zero(dv, static_cast<std::size_t>(a.batch * a.cols * D) * elem);
  if (a.batch == 0 || a.rows == 0) return;
  if (a.cols == 0) {
    fill_zero(dq, static_cast<std::size_t>(a.batch * a.rows * D) * elem);
    return;
  }
  for (std::int64_t r0 = 0; r0 < a.rows; r0 += a.chunk_rows) {
    const Chunk ch = chunk_at(a, r0);
    const std::int64_t score_stride = ch.n * ch.kc;
    probabilities(*this, dt, a, ch);
    const Operand p{block(a, 1, dt), ch.kc, score_stride};
    const Operand d_o{at(o_grad, r0 * D, dt), D, a.rows * D};
    // dV_C += P^T dO_R
    batched(*this, dt, a.batch, true, false, ch.kc, D, ch.n, 1.0, p, d_o, dv, D, a.cols * D, 1.0);
    // dP = dO_R V_C^T, then dS = softmax_backward(P, dP)
    void* dp = block(a, 0, dt);
    void* ds = block(a, 2, dt);
    batched(*this, dt, a.batch, false, true, ch.n, ch.kc, D, 1.0, d_o, {a.v, D, a.cols * D}, dp,
            ch.kc, score_stride, 0.0);
    softmax_backward(dt, p.p, dp, ds, a.batch * ch.n, ch.kc);
    const Operand d_s{ds, ch.kc, score_stride};
    // dQ_R = scale dS K_C;  dK_C += scale dS^T Q_R
    batched(*this, dt, a.batch, false, false, ch.n, D, ch.kc, a.scale, d_s, {a.k, D, a.cols * D},
            at(dq, r0 * D, dt), D, a.rows * D, 0.0);
    batched(*this, dt, a.batch, true, false, ch.kc, D, ch.n, a.scale, d_s,
            {at(a.q, r0 * D, dt), D, a.rows * D}, dk, D, a.cols * D, 1.0);
  }
}

}  // namespace strata::kernels
