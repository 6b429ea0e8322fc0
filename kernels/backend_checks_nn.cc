// Backend's public calls, second half (the first, with the rules, is kernels/backend_checks.cc):
// attention, embeddings and heads, the loss and the optimizer. Each checks its arguments with the
// words every backend shares, then runs the backend's do_<call>, or, for an emulated dtype, the
// same do_<call> in f32 on converted copies (kernels/f32_emulation.h).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/arg_checks.h"
#include "kernels/backend.h"
#include "kernels/copy_prep.h"
#include "kernels/f32_emulation.h"

namespace strata::kernels {
namespace {

// Unsharded cross-entropy: logits [rows, vocab], targets [rows].
void check_ce(const ArgChecks& c, const char* method, const void* logits,
              const std::int32_t* targets, std::int64_t rows, std::int64_t vocab) {
  c.require_sizes(method, "rows, vocab", {rows, vocab});
  c.require(rows == 0 || vocab > 0, method, "vocab = 0 with rows = ", rows);
  c.require_ptr(logits, rows * vocab, method, "logits");
  c.require_ptr(targets, rows, method, "targets");
}

// Vocab-parallel cross-entropy: logits [rows, cols], the row statistics [rows].
void check_ce_shard(const ArgChecks& c, const char* method, const void* logits,
                    const std::int32_t* targets, const void* row_max, const void* row_sum,
                    std::int64_t rows, std::int64_t cols, std::int64_t vocab_offset) {
  c.require_sizes(method, "rows, cols, vocab_offset", {rows, cols, vocab_offset});
  c.require_ptr(logits, rows * cols, method, "logits");
  c.require_ptr(targets, rows, method, "targets");
  c.require_ptr(row_max, rows, method, "row_max");
  c.require_ptr(row_sum, rows, method, "row_sum");
}

// rows x cols in, one value per row out (row_max, row_sum_exp).
void check_rows(const ArgChecks& c, const char* method, std::int64_t rows, std::int64_t cols,
                const void* x, const void* out) {
  c.require_sizes(method, "rows, cols", {rows, cols});
  c.require_ptr(x, rows * cols, method, "x");
  c.require_ptr(out, rows, method, "out");
}

// The embedding calls: tokens [n_tokens], a table [vocab, dim] and rows [n_tokens, dim].
void check_embedding(const ArgChecks& c, const char* method, const std::int32_t* tokens,
                     const void* table, const char* table_name, const void* rows,
                     const char* rows_name, std::int64_t n_tokens, std::int64_t vocab,
                     std::int64_t dim) {
  c.require_sizes(method, "n_tokens, vocab, dim", {n_tokens, vocab, dim});
  c.require_ptr(tokens, n_tokens, method, "tokens");
  c.require_ptr(table, vocab * dim, method, table_name);
  c.require_ptr(rows, n_tokens * dim, method, rows_name);
}

void check_optimizer(const ArgChecks& c, const char* method, std::int64_t n, std::int64_t step,
                     const void* param, const void* grad, const double* norm_scale) {
  c.require_sizes(method, "n", {n});
  c.require(step >= 1, method, "step = ", step, " must be >= 1 (n = ", n, ")");
  c.require_ptr(param, n, method, "param");
  c.require_ptr(grad, n, method, "grad");
  c.require(norm_scale != nullptr, method, "norm_scale is null (n = ", n, ")");
}

}  // namespace

// ---- attention

namespace {

void check_attention(const ArgChecks& c, const char* method, const AttentionArgs& a) {
  c.require_sizes(method, "batch, rows, cols, head_dim", {a.batch, a.rows, a.cols, a.head_dim});
  c.require(a.chunk_rows > 0, method, "chunk_rows = ", a.chunk_rows, " must be > 0");
  c.require(std::isfinite(a.scale), method, "scale = ", a.scale, " is not finite");
  c.require_ptr(a.q, a.batch * a.rows * a.head_dim, method, "q");
  c.require_ptr(a.k, a.batch * a.cols * a.head_dim, method, "k");
  c.require_ptr(a.v, a.batch * a.cols * a.head_dim, method, "v");
  const bool works = a.batch > 0 && a.rows > 0 && a.cols > 0;
  c.require(!works || a.workspace != nullptr, method, "workspace is null for batch = ", a.batch,
            ", rows = ", a.rows, ", cols = ", a.cols);
}

}  // namespace

std::size_t attention_workspace_bytes(DType dtype, const AttentionArgs& args) {
  const std::int64_t chunk = std::min(std::max<std::int64_t>(args.chunk_rows, 1), args.rows);
  return 3 * static_cast<std::size_t>(std::max<std::int64_t>(args.batch * chunk * args.cols, 0)) *
         dtype_size_bytes(dtype);
}

void Backend::attention_forward(DType dtype, const AttentionArgs& args, void* o) {
  constexpr const char* kM = "attention_forward";
  const ArgChecks c = checks();
  check_attention(c, kM, args);
  c.require_ptr(o, args.batch * args.rows * args.head_dim, kM, "o");
  do_attention_forward(dtype, args, o);
}

void Backend::attention_backward(DType dtype, const AttentionArgs& args, const void* o_grad,
                                 void* dq, void* dk, void* dv) {
  constexpr const char* kM = "attention_backward";
  const ArgChecks c = checks();
  check_attention(c, kM, args);
  const std::int64_t q_elems = args.batch * args.rows * args.head_dim;
  const std::int64_t kv_elems = args.batch * args.cols * args.head_dim;
  c.require_ptr(o_grad, q_elems, kM, "o_grad");
  c.require_ptr(dq, q_elems, kM, "dq");
  c.require_ptr(dk, kv_elems, kM, "dk");
  c.require_ptr(dv, kv_elems, kM, "dv");
  do_attention_backward(dtype, args, o_grad, dq, dk, dv);
}

// ---- embeddings and heads

void Backend::embedding_forward(DType dtype, const std::int32_t* tokens, const void* table,
                                void* out, std::int64_t n_tokens, std::int64_t vocab,
                                std::int64_t dim) {
  check_embedding(checks(), "embedding_forward", tokens, table, "table", out, "out", n_tokens,
                  vocab, dim);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_embedding_forward(dt, tokens, io.in(table, vocab * dim), io.out(out, n_tokens * dim),
                         n_tokens, vocab, dim);
  });
}

void Backend::embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout,
                                 void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                 std::int64_t dim) {
  check_embedding(checks(), "embedding_backward", tokens, dtable, "dtable", dout, "dout", n_tokens,
                  vocab, dim);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_embedding_backward(dt, tokens, io.in(dout, n_tokens * dim), io.out(dtable, vocab * dim),
                          n_tokens, vocab, dim);
  });
}

void Backend::split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                          std::int64_t seq, std::int64_t parts, std::int64_t heads,
                          std::int64_t head_dim) {
  copy_prep::check_heads(checks(), "split_heads", x, outs, batch, seq, parts, heads, head_dim);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    const std::int64_t part = batch * seq * heads * head_dim;
    std::vector<void*> part_outs;  // each part's buffer as the call sees it
    for (std::int64_t i = 0; i < parts; ++i) part_outs.push_back(io.out(outs[i], part));
    do_split_heads(dt, io.in(x, part * parts), part_outs.data(), batch, seq, parts, heads,
                   head_dim);
  });
}

void Backend::merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                          std::int64_t seq, std::int64_t parts, std::int64_t heads,
                          std::int64_t head_dim) {
  copy_prep::check_heads(checks(), "merge_heads", out, ins, batch, seq, parts, heads, head_dim);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    const std::int64_t part = batch * seq * heads * head_dim;
    std::vector<const void*> part_ins;  // each part's buffer as the call sees it
    for (std::int64_t i = 0; i < parts; ++i) part_ins.push_back(io.in(ins[i], part));
    do_merge_heads(dt, part_ins.data(), io.out(out, part * parts), batch, seq, parts, heads,
                   head_dim);
  });
}

void Backend::embedding_forward_shard(DType dtype, const std::int32_t* tokens, const void* table,
                                      void* out, std::int64_t n_tokens, std::int64_t vocab,
                                      std::int64_t dim, std::int64_t vocab_offset) {
  constexpr const char* kM = "embedding_forward_shard";
  checks().require_sizes(kM, "vocab_offset", {vocab_offset});
  check_embedding(checks(), kM, tokens, table, "table", out, "out", n_tokens, vocab, dim);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_embedding_forward_shard(dt, tokens, io.in(table, vocab * dim), io.out(out, n_tokens * dim),
                               n_tokens, vocab, dim, vocab_offset);
  });
}

void Backend::embedding_backward_shard(DType dtype, const std::int32_t* tokens, const void* dout,
                                       void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                       std::int64_t dim, std::int64_t vocab_offset) {
  constexpr const char* kM = "embedding_backward_shard";
  checks().require_sizes(kM, "vocab_offset", {vocab_offset});
  check_embedding(checks(), kM, tokens, dtable, "dtable", dout, "dout", n_tokens, vocab, dim);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_embedding_backward_shard(dt, tokens, io.in(dout, n_tokens * dim),
                                io.out(dtable, vocab * dim), n_tokens, vocab, dim, vocab_offset);
  });
}

// ---- loss

void Backend::cross_entropy_forward(DType dtype, const void* logits, const std::int32_t* targets,
                                    void* loss, std::int64_t rows, std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_forward";
  check_ce(checks(), kM, logits, targets, rows, vocab);
  checks().require(loss != nullptr, kM, "loss is null (rows = ", rows, ", vocab = ", vocab, ")");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_cross_entropy_forward(dt, io.in(logits, rows * vocab), targets, io.out(loss, 1), rows,
                             vocab);
  });
}

void Backend::cross_entropy_backward(DType dtype, const void* logits, const std::int32_t* targets,
                                     const void* dloss, void* dlogits, std::int64_t rows,
                                     std::int64_t vocab) {
  constexpr const char* kM = "cross_entropy_backward";
  check_ce(checks(), kM, logits, targets, rows, vocab);
  checks().require_ptr(dloss, 1, kM, "dloss");
  checks().require_ptr(dlogits, rows * vocab, kM, "dlogits");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_cross_entropy_backward(dt, io.in(logits, rows * vocab), targets, io.in(dloss, 1),
                              io.out(dlogits, rows * vocab), rows, vocab);
  });
}

void Backend::row_max(DType dtype, const void* x, void* out, std::int64_t rows, std::int64_t cols) {
  check_rows(checks(), "row_max", rows, cols, x, out);
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_row_max(dt, io.in(x, rows * cols), io.out(out, rows), rows, cols);
  });
}

void Backend::row_sum_exp(DType dtype, const void* x, const void* row_max, void* out,
                          std::int64_t rows, std::int64_t cols) {
  check_rows(checks(), "row_sum_exp", rows, cols, x, out);
  checks().require_ptr(row_max, rows, "row_sum_exp", "row_max");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_row_sum_exp(dt, io.in(x, rows * cols), io.in(row_max, rows), io.out(out, rows), rows, cols);
  });
}

void Backend::cross_entropy_forward_shard(DType dtype, const void* logits,
                                          const std::int32_t* targets, const void* row_max,
                                          const void* row_sum, void* loss, std::int64_t rows,
                                          std::int64_t cols, std::int64_t vocab_offset,
                                          double scale) {
  constexpr const char* kM = "cross_entropy_forward_shard";
  check_ce_shard(checks(), kM, logits, targets, row_max, row_sum, rows, cols, vocab_offset);
  checks().require(loss != nullptr, kM, "loss is null (rows = ", rows, ", cols = ", cols, ")");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_cross_entropy_forward_shard(dt, io.in(logits, rows * cols), targets, io.in(row_max, rows),
                                   io.in(row_sum, rows), io.out(loss, 1), rows, cols, vocab_offset,
                                   scale);
  });
}

void Backend::cross_entropy_backward_shard(DType dtype, const void* logits,
                                           const std::int32_t* targets, const void* row_max,
                                           const void* row_sum, const void* dloss, void* dlogits,
                                           std::int64_t rows, std::int64_t cols,
                                           std::int64_t vocab_offset, double scale) {
  constexpr const char* kM = "cross_entropy_backward_shard";
  check_ce_shard(checks(), kM, logits, targets, row_max, row_sum, rows, cols, vocab_offset);
  checks().require_ptr(dloss, 1, kM, "dloss");
  checks().require_ptr(dlogits, rows * cols, kM, "dlogits");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_cross_entropy_backward_shard(dt, io.in(logits, rows * cols), targets, io.in(row_max, rows),
                                    io.in(row_sum, rows), io.in(dloss, 1),
                                    io.out(dlogits, rows * cols), rows, cols, vocab_offset, scale);
  });
}

// ---- optimizer

void Backend::clip_by_global_norm(const double* const* sumsq, std::int64_t count, double max_norm,
                                  double* norm_scale) {
  constexpr const char* kM = "clip_by_global_norm";
  const ArgChecks c = checks();
  c.require_sizes(kM, "count", {count});
  c.require_ptr(sumsq, count, kM, "sumsq");
  c.require(norm_scale != nullptr, kM, "norm_scale is null (count = ", count, ")");
  for (std::int64_t i = 0; i < count; ++i)
    c.require(sumsq[i] != nullptr, kM, "sumsq[", i, "] is null (count = ", count, ")");
  do_clip_by_global_norm(sumsq, count, max_norm, norm_scale);
}

void Backend::adamw_update(DType dtype, void* param, const void* grad, void* m, void* v,
                           std::int64_t n, const AdamWArgs& args, const double* norm_scale) {
  check_optimizer(checks(), "adamw_update", n, args.step, param, grad, norm_scale);
  checks().require_ptr(m, n, "adamw_update", "m");
  checks().require_ptr(v, n, "adamw_update", "v");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_adamw_update(dt, io.out(param, n), io.in(grad, n), io.out(m, n), io.out(v, n), n, args,
                    norm_scale);
  });
}

void Backend::sgd_update(DType dtype, void* param, const void* grad, void* buf, std::int64_t n,
                         const SgdArgs& args, const double* norm_scale) {
  check_optimizer(checks(), "sgd_update", n, args.step, param, grad, norm_scale);
  checks().require_ptr(buf, args.momentum != 0 ? n : 0, "sgd_update", "buf");
  run_maybe_emulated(*this, emulated(dtype), dtype, [&](DType dt, auto& io) {
    do_sgd_update(dt, io.out(param, n), io.in(grad, n), io.out(buf, n), n, args, norm_scale);
  });
}

}  // namespace strata::kernels
