// Backend: the compute interface the executor sees (DESIGN.md section 2; STYLE.md 25-27).
// One call per operator on raw buffers in the backend's memory. Kernels compute only: no
// communication, no planning. HostBackend (Kokkos + OpenBLAS) is the oracle every other backend
// is tested against. All tensors are dense row-major. Floating arguments carry a DType; the host
// backend supports kF32 and kF64. Kernels never allocate persistently.
// Argument checks are written once: each operator is a public non-virtual method that checks its
// sizes and pointers (kernels/backend_checks.cc; std::invalid_argument "<Class>::<method>: ..."
// naming the call and the sizes, the same words for every backend) and then calls the backend's
// protected do_<method>, which sees only checked arguments and checks just its dtypes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace strata::kernels {

struct ArgChecks;  // kernels/arg_checks.h

// Mirrors solver::DType on purpose: kernels/ sits below the planner in DESIGN.md section 2 and
// includes none of its headers; app/executor.cc's to_kernel_dtype maps one onto the other.
enum class DType : std::uint8_t { kF64, kF32, kBF16, kF16, kI32 };
std::size_t dtype_size_bytes(DType dtype);
const char* dtype_name(DType dtype);  // "f32", for messages

// Row-major strided batched GEMM, for i in [0, batch):
//   C_i[m, n] = alpha * sum_k op(A_i)[m, k] * op(B_i)[k, n] + beta * C_i[m, n]
// op(A) = A stored [m, k] (lda >= k) or, with trans_a, A stored [k, m] (lda >= m); same for B.
// A_i = a + i * stride_a elements (stride 0 broadcasts one matrix over the batch).
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  std::int64_t m = 0, n = 0, k = 0;
  double alpha = 1.0, beta = 0.0;
  const void* a = nullptr;
  std::int64_t lda = 0, stride_a = 0;
  const void* b = nullptr;
  std::int64_t ldb = 0, stride_b = 0;
  void* c = nullptr;
  std::int64_t ldc = 0, stride_c = 0;
  std::int64_t batch = 1;
};

// torch.optim.AdamW for one step t (1-based), gradients scaled by grad_scale[1] first:
//   p -= lr * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
struct AdamWArgs {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  std::int64_t step = 1;
};
// torch.optim.SGD (dampening 0, no Nesterov): d = g + wd * p; buf = d at step 1, else
// buf = momentum * buf + d; p -= lr * (momentum ? buf : d).
struct SgdArgs {
  double lr = 0, momentum = 0, weight_decay = 0;
  std::int64_t step = 1;
};

// Fused attention over `batch` independent (batch x heads) items:
//   o[r, :] = sum_c softmax_c(scale * q[r, :] . k[c, :]) v[c, :]
// q, o [batch, rows, head_dim]; k, v [batch, cols, head_dim] (dense). causal: query r sees key c
// only when c + col_offset <= r + row_offset (the causal_softmax_forward rule; offsets place a
// shard in the global sequence); a query that sees no key gets o = 0.
// Memory-efficient (Rabe & Staats' chunking): the queries go in chunks of chunk_rows, and only one
// chunk's scores [batch, chunk, visible cols] exist at a time, in `workspace`; nothing of size
// rows x cols outlives the call, and the backward recomputes the chunk's probabilities instead of
// reading stored ones. A causal chunk touches only the keys its last row sees (about half the
// work of the unfused path). Equal to scores gemm + (causal_)softmax + gemm up to the GEMMs'
// summation order.
struct AttentionArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  std::int64_t batch = 0, rows = 0, cols = 0, head_dim = 0;
  double scale = 1.0;
  bool causal = false;
  std::int64_t row_offset = 0, col_offset = 0;
  std::int64_t chunk_rows = 0;  // > 0; kAttentionChunkRows is what the executor uses
  void* workspace = nullptr;    // attention_workspace_bytes(dtype, args) bytes of backend memory
};
constexpr std::int64_t kAttentionChunkRows = 128;
// Workspace of one attention call, forward or backward: 3 [batch, chunk_rows, cols] blocks.
std::size_t attention_workspace_bytes(DType dtype, const AttentionArgs& args);

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual std::string name() const = 0;

  // ---- memory (bytes; pointers are backend memory)
  virtual void* allocate(std::size_t bytes) = 0;  // zero-filled; throws std::bad_alloc
  virtual void release(void* ptr) noexcept = 0;
  void copy_from_host(void* dst, const void* host_src, std::size_t bytes);
  void copy_to_host(void* host_dst, const void* src, std::size_t bytes);
  void copy(void* dst, const void* src, std::size_t bytes);
  void fill_zero(void* dst, std::size_t bytes);
  // Host staging for libraries that cannot touch backend memory (Open MPI without CUDA support):
  // whether pointers from allocate() are ordinary host memory, and host blocks the backend copies
  // to and from at full speed (page-locked on a GPU; plain memory on the host). allocate_host is
  // not zero-filled and throws std::bad_alloc; release_host(nullptr) does nothing.
  virtual bool memory_is_host() const = 0;
  virtual void* allocate_host(std::size_t bytes) = 0;
  virtual void release_host(void* ptr) noexcept = 0;
  // Element-type conversion of n elements (f32 <-> f64 on the host; + bf16/f16 on devices).
  void convert(DType from, const void* src, DType to, void* dst, std::int64_t n);
  virtual void synchronize() = 0;

  // ---- dense algebra
  void gemm(DType dtype, const GemmArgs& args);
  // out = transpose of in (shape in_shape[rank]) by perm: out dim j = in dim perm[j].
  void permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
               const int* perm, int rank);

  // Copies a box of box[d] elements per dim from src (dense, shape src_shape) starting at
  // src_offset to dst (dense, shape dst_shape) starting at dst_offset; elements of elem_bytes
  // bytes, rank <= 8. The packing primitive of resharding (slices, blocks of gathers and
  // scatters, cross-mesh pieces). Throws std::invalid_argument when a box leaves a shape.
  void copy_box(std::size_t elem_bytes, const void* src, const std::int64_t* src_shape,
                const std::int64_t* src_offset, void* dst, const std::int64_t* dst_shape,
                const std::int64_t* dst_offset, const std::int64_t* box, int rank);

  // ---- elementwise and reductions (n elements)
  void add(DType dtype, const void* a, const void* b, void* out, std::int64_t n);
  // out[o, i] = x[o, i] + row[i] for o < outer, i < inner (bias add, position embedding).
  void add_broadcast(DType dtype, const void* x, const void* row, void* out, std::int64_t outer,
                     std::int64_t inner);
  // out[i] = sum_o x[o, i] (bias and position-embedding gradients). Overwrites out.
  void reduce_sum_outer(DType dtype, const void* x, void* out, std::int64_t outer,
                        std::int64_t inner);
  // y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and its derivative times dy.
  void gelu_forward(DType dtype, const void* x, void* y, std::int64_t n);
  void gelu_backward(DType dtype, const void* x, const void* dy, void* dx, std::int64_t n);
  // Bias add and GELU in one pass (the MLP's fc bias and activation): x [outer, inner], bias
  // [inner]; h = x + bias rounded to the dtype (what add_broadcast stores), then
  // forward: y = gelu(h); backward: dx = gelu'(h) dy. h itself is never stored: the backward
  // recomputes it from x and the bias. Equal to add_broadcast + gelu_forward / gelu_backward.
  void bias_gelu_forward(DType dtype, const void* x, const void* bias, void* y, std::int64_t outer,
                         std::int64_t inner);
  void bias_gelu_backward(DType dtype, const void* x, const void* bias, const void* dy, void* dx,
                          std::int64_t outer, std::int64_t inner);
  // out (f64 scalar in backend memory) = sum x^2, accumulated in double.
  void sum_squares(DType dtype, const void* x, std::int64_t n, double* out);

  // ---- normalisations (rows x cols, normalised over cols)
  // y = (x - mean) * rstd * w + b with rstd = 1/sqrt(var + eps) (biased var); saves mean, rstd
  // (dtype elements, one per row).
  void layernorm_forward(DType dtype, const void* x, const void* w, const void* b, void* y,
                         void* mean, void* rstd, std::int64_t rows, std::int64_t cols, double eps);
  // Overwrites dx, dw, db.
  void layernorm_backward(DType dtype, const void* dy, const void* x, const void* w,
                          const void* mean, const void* rstd, void* dx, void* dw, void* db,
                          std::int64_t rows, std::int64_t cols);
  void softmax_forward(DType dtype, const void* x, void* y, std::int64_t rows, std::int64_t cols);
  // dx = y * (dy - sum(dy * y)) per row.
  void softmax_backward(DType dtype, const void* y, const void* dy, void* dx, std::int64_t rows,
                        std::int64_t cols);
  // The causal mask and the softmax in one pass (attention's masked softmax): batch matrices
  // [rows, cols]; row r keeps the elements c with c + col_offset <= r + row_offset, y is the
  // softmax over those and exact zeros elsewhere (a row that keeps none is all zeros). Equals
  // softmax_forward of causal_mask's output without writing that matrix; softmax_backward of
  // its y is the whole gradient (masked elements of y are 0, so their dx is 0).
  void causal_softmax_forward(DType dtype, const void* x, void* y, std::int64_t batch,
                              std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                              std::int64_t col_offset);
  // batch matrices [rows, cols]; element (r, c) is masked when c + col_offset > r + row_offset
  // (offsets locate a shard in the global matrix). forward: masked -> -inf; backward: -> 0.
  void causal_mask(DType dtype, const void* x, void* y, std::int64_t batch, std::int64_t rows,
                   std::int64_t cols, std::int64_t row_offset, std::int64_t col_offset,
                   bool backward);

  // ---- attention (AttentionArgs above). forward writes o; backward overwrites dq, dk, dv
  // from do (do_grad, shaped as o) and the inputs, recomputing the probabilities.
  void attention_forward(DType dtype, const AttentionArgs& args, void* o);
  void attention_backward(DType dtype, const AttentionArgs& args, const void* o_grad, void* dq,
                          void* dk, void* dv);

  // ---- embeddings and heads
  // out[t, :] = table[tokens[t], :]; tokens outside [0, vocab) throw std::out_of_range.
  void embedding_forward(DType dtype, const std::int32_t* tokens, const void* table, void* out,
                         std::int64_t n_tokens, std::int64_t vocab, std::int64_t dim);
  // dtable = 0; dtable[tokens[t], :] += dout[t, :].
  void embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout, void* dtable,
                          std::int64_t n_tokens, std::int64_t vocab, std::int64_t dim);
  // x [batch, seq, parts*heads*head_dim] -> parts outputs [batch, heads, seq, head_dim].
  void split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                   std::int64_t seq, std::int64_t parts, std::int64_t heads, std::int64_t head_dim);
  // Inverse of split_heads.
  void merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                   std::int64_t seq, std::int64_t parts, std::int64_t heads, std::int64_t head_dim);

  // Vocab-parallel forms (a table or logits slice holding vocabulary rows [vocab_offset,
  // vocab_offset + vocab)). Tokens outside the slice are not errors here: another device owns them.
  // out[t, :] = table[tokens[t] - vocab_offset, :] when the token is in the slice, else 0.
  void embedding_forward_shard(DType dtype, const std::int32_t* tokens, const void* table,
                               void* out, std::int64_t n_tokens, std::int64_t vocab,
                               std::int64_t dim, std::int64_t vocab_offset);
  // dtable = 0; dtable[tokens[t] - vocab_offset, :] += dout[t, :] for tokens in the slice.
  void embedding_backward_shard(DType dtype, const std::int32_t* tokens, const void* dout,
                                void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                std::int64_t dim, std::int64_t vocab_offset);

  // ---- loss: logits [rows, vocab], targets [rows]
  // loss (one dtype element) = mean over rows of (logsumexp(logits) - logits[target]).
  void cross_entropy_forward(DType dtype, const void* logits, const std::int32_t* targets,
                             void* loss, std::int64_t rows, std::int64_t vocab);
  // dlogits = (softmax(logits) - onehot(target)) * dloss[0] / rows.
  void cross_entropy_backward(DType dtype, const void* logits, const std::int32_t* targets,
                              const void* dloss, void* dlogits, std::int64_t rows,
                              std::int64_t vocab);

  // Sharded cross-entropy: logits [rows, cols] hold vocabulary columns [vocab_offset,
  // vocab_offset + cols) of some rows of the batch. The caller all-reduces the statistics over
  // the devices sharing the rows' vocabulary between calls (max for row_max, sum for row_sum),
  // then every device adds only the terms of the targets it owns, scaled by `scale` (1 / the
  // global number of rows), so the devices' losses sum to the global mean.
  // row_max[r] = max_c x[r, c] (dtype elements).
  void row_max(DType dtype, const void* x, void* out, std::int64_t rows, std::int64_t cols);
  // row_sum[r] = sum_c exp(x[r, c] - row_max[r]) (dtype elements, accumulated in double).
  void row_sum_exp(DType dtype, const void* x, const void* row_max, void* out, std::int64_t rows,
                   std::int64_t cols);
  // loss (one dtype element) = scale * sum over rows r whose target t lies in the slice of
  //   (log(row_sum[r]) + row_max[r] - logits[r, t - vocab_offset]).
  void cross_entropy_forward_shard(DType dtype, const void* logits, const std::int32_t* targets,
                                   const void* row_max, const void* row_sum, void* loss,
                                   std::int64_t rows, std::int64_t cols, std::int64_t vocab_offset,
                                   double scale);
  // dlogits[r, c] = (exp(logits[r, c] - row_max[r]) / row_sum[r] - [c + vocab_offset == t_r])
  //                 * dloss[0] * scale.
  void cross_entropy_backward_shard(DType dtype, const void* logits, const std::int32_t* targets,
                                    const void* row_max, const void* row_sum, const void* dloss,
                                    void* dlogits, std::int64_t rows, std::int64_t cols,
                                    std::int64_t vocab_offset, double scale);

  // ---- optimizer (in place; norm_scale: f64 [2] {norm, scale} in backend memory)
  // norm_scale = {sqrt(sum sumsq[i]), max_norm > 0 ? min(1, max_norm / (norm + 1e-6)) : 1}.
  void clip_by_global_norm(const double* const* sumsq, std::int64_t count, double max_norm,
                           double* norm_scale);
  void adamw_update(DType dtype, void* param, const void* grad, void* m, void* v, std::int64_t n,
                    const AdamWArgs& args, const double* norm_scale);
  void sgd_update(DType dtype, void* param, const void* grad, void* buf, std::int64_t n,
                  const SgdArgs& args, const double* norm_scale);

 protected:
  // class_name: the name the argument checks' messages start with ("HostBackend").
  explicit Backend(const char* class_name) : class_name_(class_name) {}
  // Whether the backend has kernels of its own for `dtype`. bf16 without them is emulated: the
  // public calls run the f32 kernels on converted copies (kernels/f32_emulation.h), which gives
  // a bf16 GPU kernel's numerics (f32 arithmetic, one rounding on store) at a copy's cost.
  // do_convert must handle bf16 <-> f32 for that.
  virtual bool native(DType dtype) const {
    (void)dtype;
    return true;
  }
  bool emulated(DType dtype) const { return dtype == DType::kBF16 && !native(dtype); }
  // The argument checks of this backend's calls (messages "<class_name>::<call>: ...").
  ArgChecks checks() const;

  // The implementations behind the public calls of the same names, with the arguments already
  // checked (sizes >= 0, pointers present for their elements, shapes consistent); each checks
  // only the dtypes it supports.
  virtual void do_copy_from_host(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void do_copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual void do_copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void do_fill_zero(void* dst, std::size_t bytes) = 0;
  virtual void do_convert(DType from, const void* src, DType to, void* dst, std::int64_t n) = 0;
  virtual void do_gemm(DType dtype, const GemmArgs& args) = 0;
  virtual void do_permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
                          const int* perm, int rank) = 0;
  virtual void do_copy_box(std::size_t elem_bytes, const void* src, const std::int64_t* src_shape,
                           const std::int64_t* src_offset, void* dst, const std::int64_t* dst_shape,
                           const std::int64_t* dst_offset, const std::int64_t* box, int rank) = 0;
  virtual void do_add(DType dtype, const void* a, const void* b, void* out, std::int64_t n) = 0;
  virtual void do_add_broadcast(DType dtype, const void* x, const void* row, void* out,
                                std::int64_t outer, std::int64_t inner) = 0;
  virtual void do_reduce_sum_outer(DType dtype, const void* x, void* out, std::int64_t outer,
                                   std::int64_t inner) = 0;
  virtual void do_gelu_forward(DType dtype, const void* x, void* y, std::int64_t n) = 0;
  virtual void do_gelu_backward(DType dtype, const void* x, const void* dy, void* dx,
                                std::int64_t n) = 0;
  virtual void do_bias_gelu_forward(DType dtype, const void* x, const void* bias, void* y,
                                    std::int64_t outer, std::int64_t inner) = 0;
  virtual void do_bias_gelu_backward(DType dtype, const void* x, const void* bias, const void* dy,
                                     void* dx, std::int64_t outer, std::int64_t inner) = 0;
  virtual void do_sum_squares(DType dtype, const void* x, std::int64_t n, double* out) = 0;
  virtual void do_layernorm_forward(DType dtype, const void* x, const void* w, const void* b,
                                    void* y, void* mean, void* rstd, std::int64_t rows,
                                    std::int64_t cols, double eps) = 0;
  virtual void do_layernorm_backward(DType dtype, const void* dy, const void* x, const void* w,
                                     const void* mean, const void* rstd, void* dx, void* dw,
                                     void* db, std::int64_t rows, std::int64_t cols) = 0;
  virtual void do_softmax_forward(DType dtype, const void* x, void* y, std::int64_t rows,
                                  std::int64_t cols) = 0;
  virtual void do_softmax_backward(DType dtype, const void* y, const void* dy, void* dx,
                                   std::int64_t rows, std::int64_t cols) = 0;
  virtual void do_causal_softmax_forward(DType dtype, const void* x, void* y, std::int64_t batch,
                                         std::int64_t rows, std::int64_t cols,
                                         std::int64_t row_offset, std::int64_t col_offset) = 0;
  virtual void do_causal_mask(DType dtype, const void* x, void* y, std::int64_t batch,
                              std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                              std::int64_t col_offset, bool backward) = 0;
  // Not pure: the default (kernels/attention.cc) is the chunked composition of this backend's
  // own gemm and softmax calls, so every backend has it; a backend with a fused kernel (a flash
  // kernel on a GPU) overrides these.
  virtual void do_attention_forward(DType dtype, const AttentionArgs& args, void* o);
  virtual void do_attention_backward(DType dtype, const AttentionArgs& args, const void* o_grad,
                                     void* dq, void* dk, void* dv);
  virtual void do_embedding_forward(DType dtype, const std::int32_t* tokens, const void* table,
                                    void* out, std::int64_t n_tokens, std::int64_t vocab,
                                    std::int64_t dim) = 0;
  virtual void do_embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout,
                                     void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                     std::int64_t dim) = 0;
  virtual void do_split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                              std::int64_t seq, std::int64_t parts, std::int64_t heads,
                              std::int64_t head_dim) = 0;
  virtual void do_merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                              std::int64_t seq, std::int64_t parts, std::int64_t heads,
                              std::int64_t head_dim) = 0;
  virtual void do_embedding_forward_shard(DType dtype, const std::int32_t* tokens,
                                          const void* table, void* out, std::int64_t n_tokens,
                                          std::int64_t vocab, std::int64_t dim,
                                          std::int64_t vocab_offset) = 0;
  virtual void do_embedding_backward_shard(DType dtype, const std::int32_t* tokens,
                                           const void* dout, void* dtable, std::int64_t n_tokens,
                                           std::int64_t vocab, std::int64_t dim,
                                           std::int64_t vocab_offset) = 0;
  virtual void do_cross_entropy_forward(DType dtype, const void* logits,
                                        const std::int32_t* targets, void* loss, std::int64_t rows,
                                        std::int64_t vocab) = 0;
  virtual void do_cross_entropy_backward(DType dtype, const void* logits,
                                         const std::int32_t* targets, const void* dloss,
                                         void* dlogits, std::int64_t rows, std::int64_t vocab) = 0;
  virtual void do_row_max(DType dtype, const void* x, void* out, std::int64_t rows,
                          std::int64_t cols) = 0;
  virtual void do_row_sum_exp(DType dtype, const void* x, const void* row_max, void* out,
                              std::int64_t rows, std::int64_t cols) = 0;
  virtual void do_cross_entropy_forward_shard(DType dtype, const void* logits,
                                              const std::int32_t* targets, const void* row_max,
                                              const void* row_sum, void* loss, std::int64_t rows,
                                              std::int64_t cols, std::int64_t vocab_offset,
                                              double scale) = 0;
  virtual void do_cross_entropy_backward_shard(DType dtype, const void* logits,
                                               const std::int32_t* targets, const void* row_max,
                                               const void* row_sum, const void* dloss,
                                               void* dlogits, std::int64_t rows, std::int64_t cols,
                                               std::int64_t vocab_offset, double scale) = 0;
  virtual void do_clip_by_global_norm(const double* const* sumsq, std::int64_t count,
                                      double max_norm, double* norm_scale) = 0;
  virtual void do_adamw_update(DType dtype, void* param, const void* grad, void* m, void* v,
                               std::int64_t n, const AdamWArgs& args, const double* norm_scale) = 0;
  virtual void do_sgd_update(DType dtype, void* param, const void* grad, void* buf, std::int64_t n,
                             const SgdArgs& args, const double* norm_scale) = 0;

 private:
  const char* class_name_;
};

// "host" always; "cuda" when built with STRATA_WITH_CUDA and a GPU is visible. Throws
// std::invalid_argument naming the backend when it is not available in this build or machine.
std::unique_ptr<Backend> make_backend(const std::string& name);
// Whether make_backend(name) would succeed.
bool backend_available(const std::string& name);
// GPUs the CUDA runtime sees (0 in a build without STRATA_WITH_CUDA or on a GPU-less machine).
int visible_cuda_devices();

}  // namespace strata::kernels
