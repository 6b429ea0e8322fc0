// HostBackend: the CPU implementation of kernels::Backend and the oracle every other backend is
// tested against (DESIGN.md section 2; STYLE.md 25-27). Elementwise, row-wise and optimizer
// kernels are Kokkos parallel loops over raw pointers on Kokkos::DefaultHostExecutionSpace (Serial
// in Debian's Kokkos 3.4); GEMM is OpenBLAS cblas_{s,d}gemm. Memory is plain host memory.
// Rules: Kokkos must be initialised by the program before a HostBackend is constructed (app's
// main and tests/test_main.cc hold a Kokkos::ScopeGuard); supports DType::kF32 and kF64 only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/backend.h"

namespace strata::kernels {

// Every method follows the contract documented in kernels/backend.h. Host-specific notes:
//  - The constructor throws std::runtime_error when Kokkos is not initialised.
//  - Any DType other than kF32/kF64 (convert: also same-type copies) throws
//    std::invalid_argument naming the method and the dtype; bad sizes or null pointers with
//    non-zero sizes throw std::invalid_argument naming the method and the sizes.
//  - Reductions (sum_squares, layernorm statistics, softmax sums, logsumexp, reduce_sum_outer,
//    layernorm dw/db) accumulate in double for f32 too.
//  - gemm: beta == 0 does not read C (BLAS semantics). Batch items run in order, so stride_c 0
//    with batch > 1 applies the items one after the other to the same C.
//  - In-place calls (out aliasing an input of the same shape) are allowed for add, add_broadcast,
//    gelu_forward, causal_mask, softmax_forward and causal_softmax_forward; not for permute,
//    split/merge_heads.
//  - cross_entropy_* throws std::out_of_range for a target outside [0, vocab), as
//    embedding_* does for tokens.
//  - softmax_forward of a row that is entirely -inf gives zeros (torch gives NaN); masked (-inf)
//    entries of any other row give exact zeros.
//  - f32 GELU, softmax and cross-entropy use branch-free tanh/exp approximations that vectorise
//    (kernels/host/fast_math.h; tanh within 4e-7 absolute, exp within 1e-7 relative); f64 uses
//    libm and is the oracle precision.
//  - copy_box: elem_bytes must be 1, 2, 4 or 8 and rank in [0, 8] (rank 0 copies one element;
//    shapes, offsets and box may then be null). Offsets and box entries must be >= 0 and
//    offset + box <= shape in every dim of both shapes, checked even for an empty box. The two
//    boxes must not overlap in memory.
//  - Vocab-parallel calls: vocab_offset must be >= 0. A token or target outside the slice
//    (negative ones included) contributes nothing: zero rows in embedding_forward_shard, no
//    term in cross_entropy_forward_shard and no onehot in cross_entropy_backward_shard.
//  - row_max of a row with cols = 0 is -inf (the identity of the max all-reduce) and its
//    row_sum_exp is 0, so a slice holding no vocabulary columns is allowed.
//  - Every call is synchronous: results are complete when it returns.
class HostBackend final : public Backend {
 public:
  HostBackend();
  std::string name() const override { return "host"; }

  // 64-byte aligned, zero-filled; allocate(0) returns a distinct non-null pointer.
  void* allocate(std::size_t bytes) override;
  void release(void* ptr) noexcept override;
  // Backend memory is host memory: allocate_host is allocate, release_host is release.
  bool memory_is_host() const override { return true; }
  void* allocate_host(std::size_t bytes) override { return allocate(bytes); }
  void release_host(void* ptr) noexcept override { release(ptr); }
  void synchronize() override;

 protected:
  // bf16 is emulated (f32 kernels on converted copies: kernels/f32_emulation.h), so bf16 training
  // runs and is tested on the host; it is slower than f32 there, never faster.
  bool native(DType dtype) const override { return dtype != DType::kBF16; }

 private:
  // Backend's public calls check their arguments (kernels/backend_checks.cc), then call these.
  void do_copy_from_host(void* dst, const void* host_src, std::size_t bytes) override;
  void do_copy_to_host(void* host_dst, const void* src, std::size_t bytes) override;
  void do_copy(void* dst, const void* src, std::size_t bytes) override;
  void do_fill_zero(void* dst, std::size_t bytes) override;
  void do_convert(DType from, const void* src, DType to, void* dst, std::int64_t n) override;
  void do_gemm(DType dtype, const GemmArgs& args) override;
  // rank in [0, 8] (0: one scalar); perm must be a permutation of [0, rank); in != out.
  void do_permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
                  const int* perm, int rank) override;
  void do_copy_box(std::size_t elem_bytes, const void* src, const std::int64_t* src_shape,
                   const std::int64_t* src_offset, void* dst, const std::int64_t* dst_shape,
                   const std::int64_t* dst_offset, const std::int64_t* box, int rank) override;

  void do_add(DType dtype, const void* a, const void* b, void* out, std::int64_t n) override;
  void do_add_broadcast(DType dtype, const void* x, const void* row, void* out, std::int64_t outer,
                        std::int64_t inner) override;
  void do_reduce_sum_outer(DType dtype, const void* x, void* out, std::int64_t outer,
                           std::int64_t inner) override;
  void do_gelu_forward(DType dtype, const void* x, void* y, std::int64_t n) override;
  void do_gelu_backward(DType dtype, const void* x, const void* dy, void* dx,
                        std::int64_t n) override;
  void do_bias_gelu_forward(DType dtype, const void* x, const void* bias, void* y,
                            std::int64_t outer, std::int64_t inner) override;
  void do_bias_gelu_backward(DType dtype, const void* x, const void* bias, const void* dy, void* dx,
                             std::int64_t outer, std::int64_t inner) override;
  void do_sum_squares(DType dtype, const void* x, std::int64_t n, double* out) override;

  void do_layernorm_forward(DType dtype, const void* x, const void* w, const void* b, void* y,
                            void* mean, void* rstd, std::int64_t rows, std::int64_t cols,
                            double eps) override;
  void do_layernorm_backward(DType dtype, const void* dy, const void* x, const void* w,
                             const void* mean, const void* rstd, void* dx, void* dw, void* db,
                             std::int64_t rows, std::int64_t cols) override;
  void do_softmax_forward(DType dtype, const void* x, void* y, std::int64_t rows,
                          std::int64_t cols) override;
  void do_softmax_backward(DType dtype, const void* y, const void* dy, void* dx, std::int64_t rows,
                           std::int64_t cols) override;
  void do_causal_softmax_forward(DType dtype, const void* x, void* y, std::int64_t batch,
                                 std::int64_t rows, std::int64_t cols, std::int64_t row_offset,
                                 std::int64_t col_offset) override;
  void do_causal_mask(DType dtype, const void* x, void* y, std::int64_t batch, std::int64_t rows,
                      std::int64_t cols, std::int64_t row_offset, std::int64_t col_offset,
                      bool backward) override;

  void do_embedding_forward(DType dtype, const std::int32_t* tokens, const void* table, void* out,
                            std::int64_t n_tokens, std::int64_t vocab, std::int64_t dim) override;
  void do_embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout,
                             void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                             std::int64_t dim) override;
  void do_split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                      std::int64_t seq, std::int64_t parts, std::int64_t heads,
                      std::int64_t head_dim) override;
  void do_merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                      std::int64_t seq, std::int64_t parts, std::int64_t heads,
                      std::int64_t head_dim) override;
  void do_embedding_forward_shard(DType dtype, const std::int32_t* tokens, const void* table,
                                  void* out, std::int64_t n_tokens, std::int64_t vocab,
                                  std::int64_t dim, std::int64_t vocab_offset) override;
  void do_embedding_backward_shard(DType dtype, const std::int32_t* tokens, const void* dout,
                                   void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                   std::int64_t dim, std::int64_t vocab_offset) override;

  void do_cross_entropy_forward(DType dtype, const void* logits, const std::int32_t* targets,
                                void* loss, std::int64_t rows, std::int64_t vocab) override;
  void do_cross_entropy_backward(DType dtype, const void* logits, const std::int32_t* targets,
                                 const void* dloss, void* dlogits, std::int64_t rows,
                                 std::int64_t vocab) override;
  void do_row_max(DType dtype, const void* x, void* out, std::int64_t rows,
                  std::int64_t cols) override;
  void do_row_sum_exp(DType dtype, const void* x, const void* row_max, void* out, std::int64_t rows,
                      std::int64_t cols) override;
  void do_cross_entropy_forward_shard(DType dtype, const void* logits, const std::int32_t* targets,
                                      const void* row_max, const void* row_sum, void* loss,
                                      std::int64_t rows, std::int64_t cols,
                                      std::int64_t vocab_offset, double scale) override;
  void do_cross_entropy_backward_shard(DType dtype, const void* logits, const std::int32_t* targets,
                                       const void* row_max, const void* row_sum, const void* dloss,
                                       void* dlogits, std::int64_t rows, std::int64_t cols,
                                       std::int64_t vocab_offset, double scale) override;

  void do_clip_by_global_norm(const double* const* sumsq, std::int64_t count, double max_norm,
                              double* norm_scale) override;
  void do_adamw_update(DType dtype, void* param, const void* grad, void* m, void* v, std::int64_t n,
                       const AdamWArgs& args, const double* norm_scale) override;
  void do_sgd_update(DType dtype, void* param, const void* grad, void* buf, std::int64_t n,
                     const SgdArgs& args, const double* norm_scale) override;
};

}  // namespace strata::kernels
