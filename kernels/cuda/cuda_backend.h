// CudaBackend: the GPU implementation of kernels::Backend (DESIGN.md section 2; STYLE.md 25-27):
// hand-written CUDA kernels plus cuBLAS for GEMM, all on one non-blocking stream the backend owns.
// Rules: compiled only with STRATA_WITH_CUDA; this header includes no CUDA header (STYLE.md 3), so
// plain .cc files may include it. One backend drives one device; it makes that device current on
// the constructing thread, and every call must come from a thread whose current device it is.
// Computes only: no MPI, no NCCL (comm/ owns collectives and may order its streams after ours).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "kernels/backend.h"

// Opaque CUDA handle types (cudaStream_t is CUstream_st*, cublasHandle_t is cublasContext*).
struct CUstream_st;
struct cublasContext;

namespace strata::kernels {

// Thrown by every failed CUDA or cuBLAS call the backend makes; the message names the call, the
// library's reason, the device, the rank (from the launcher's environment), file and line.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace cuda_detail {
struct CudaStreamDeleter {
  void operator()(CUstream_st* stream) const noexcept;
};
struct CublasDeleter {
  void operator()(cublasContext* handle) const noexcept;
};
struct DeviceStatus;  // kernels/cuda/cuda_common.cuh
struct LaunchCtx;     // kernels/cuda/cuda_common.cuh
}  // namespace cuda_detail

// Every method follows the contract documented in kernels/backend.h. CUDA-specific notes:
//  - Dtypes: kF32, kBF16 and kF64 for floating ops. bf16 is storage only: every kernel loads
//    bf16, computes in f32 and rounds the result to bf16 (round to nearest even); GEMM runs with
//    f32 accumulation (CUBLAS_COMPUTE_32F). Reductions (sum_squares, row sums, layernorm and
//    softmax statistics, losses, reduce_sum_outer, dw/db) accumulate in double for every dtype.
//    convert() also handles kF16. permute accepts any dtype (it moves bits). Other dtypes throw
//    std::invalid_argument naming the method and the dtype.
//  - Asynchrony: every call only enqueues work on the backend's stream and returns. Results are
//    complete after synchronize() or copy_to_host() (which synchronises the stream). No call
//    synchronises the device. Pointers from allocate() are stream-ordered on that stream
//    (cudaMallocAsync / cudaFreeAsync): another stream must wait for an event recorded on
//    stream() before it touches them, and release() must be called only once the other stream
//    is done with them (ordered before on stream()).
//  - Host arguments: shape, perm, box and offset arrays, the part-pointer arrays of
//    split_heads/merge_heads and the pointer array of clip_by_global_norm are read during the
//    call (passed to kernels by value), so they may be reused as soon as it returns. The
//    pointers inside them, and every other pointer, are device memory.
//  - copy_from_host enqueues cudaMemcpyAsync: pageable host memory is staged by the driver
//    before the call returns; pinned host memory (cudaMallocHost) must stay unchanged until the
//    next synchronize().
//  - Token and target checks run on the device: a token or target outside [0, vocab) in the
//    unsharded embedding_* and cross_entropy_* calls throws std::out_of_range (naming the call,
//    index and value) from the next synchronize() or copy_to_host(), not from the call itself.
//    The faulty call writes zeros for that token's output row, adds nothing for it in the
//    embedding gradient, and leaves its row out of the loss and the onehot.
//  - Determinism: every kernel is run-to-run deterministic (fixed reduction trees, no float
//    atomics). embedding_backward sorts the token ids (stable radix sort) and sums each token's
//    rows in token order, as the host does, so f32 and f64 gradients equal the host's bit for bit
//    when additions are not contracted; bf16 gradients are summed in f32 and rounded once.
//  - gemm: beta == 0 does not read C. k == 0 scales C by beta. Batches whose C matrices overlap
//    (stride_c 0 with batch > 1, or a stride smaller than one matrix) run one item after the
//    other, like the host. m, n, k and the leading dimensions must fit in int.
//  - copy: overlapping ranges are allowed (memmove semantics; through a temporary buffer).
//  - allocate: zero-filled, 256-byte aligned; allocate(0) returns a distinct non-null pointer.
//    Throws std::bad_alloc when the device is out of memory.
//  - CUDA and cuBLAS failures throw kernels::CudaError (file, line, call and reason). Sticky
//    device errors (illegal address, launch failure, ...) print that message and abort, since
//    the CUDA context is unusable afterwards (STYLE.md 16). STRATA_SYNC_CHECK=1 in the
//    environment synchronises the stream after every launch, so a kernel fault names its call.
//  - softmax_forward of an all -inf row gives zeros; row_max of cols = 0 gives -inf and
//    row_sum_exp 0, as on the host.
class CudaBackend final : public Backend {
 public:
  // Makes `device` current, creates the stream (cudaStreamNonBlocking) and the cuBLAS handle,
  // and keeps freed memory cached in the device's default memory pool (release threshold max).
  // Throws std::invalid_argument for a device index outside [0, visible_cuda_devices()), and
  // CudaError when the device cannot be initialised.
  explicit CudaBackend(int device = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  int device() const { return device_; }
  // The raw cudaStream_t every call enqueues on (for event-based overlap in comm/).
  CUstream_st* stream() const { return stream_.get(); }

  void* allocate(std::size_t bytes) override;
  void release(void* ptr) noexcept override;
  // Device memory: MPI (not CUDA-aware here) must go through allocate_host's pinned blocks
  // (cudaMallocHost), which stay valid for copies on stream() until release_host.
  bool memory_is_host() const override { return false; }
  void* allocate_host(std::size_t bytes) override;
  void release_host(void* ptr) noexcept override;
  void synchronize() override;

 private:
  // Backend's public calls check their arguments (kernels/backend_checks.cc), then call these.
  void do_copy_from_host(void* dst, const void* host_src, std::size_t bytes) override;
  void do_copy_to_host(void* host_dst, const void* src, std::size_t bytes) override;
  void do_copy(void* dst, const void* src, std::size_t bytes) override;
  void do_fill_zero(void* dst, std::size_t bytes) override;
  void do_convert(DType from, const void* src, DType to, void* dst, std::int64_t n) override;
  void do_gemm(DType dtype, const GemmArgs& args) override;
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

 private:
  // Device scratch for the partial sums of two-stage reductions (kMaxPartials doubles); reused
  // by every call, which is safe because all work is ordered on stream_.
  static constexpr int kMaxPartials = 1024;

  // Stream-ordered temporary device memory, freed (stream-ordered) by release_temp.
  void* allocate_temp(std::size_t bytes);
  // After a stream synchronisation: throws std::out_of_range for a token or target error that
  // a kernel recorded in status_ since the last check, and clears it.
  void check_device_status();
  void sync_stream();
  void free_buffers() noexcept;  // partials_, status_, status_host_
  // Stream, sync-check flag, SM count and status word, for the launch helpers.
  cuda_detail::LaunchCtx ctx() const;
  // gelu_forward / gelu_backward (bias null) and their bias_gelu forms; dy null: forward.
  void gelu_impl(DType dtype, const void* x, const void* bias, const void* dy, void* out,
                 std::int64_t n, std::int64_t inner, const char* method);
  // softmax_forward and causal_softmax_forward: the softmax of each row's causal prefix
  // (kernels/cuda/normalization.cu).
  void softmax_prefix(DType dtype, const void* x, void* y, std::int64_t n_rows, std::int64_t cols,
                      std::int64_t rows_per_matrix, std::int64_t shift, const char* method);
  void embedding_backward_impl(const char* method, DType dtype, const std::int32_t* tokens,
                               const void* dout, void* dtable, std::int64_t n_tokens,
                               std::int64_t vocab, std::int64_t dim, std::int64_t vocab_offset,
                               bool check);

  int device_ = 0;
  int sm_count_ = 1;
  bool sync_check_ = false;  // STRATA_SYNC_CHECK=1
  std::unique_ptr<CUstream_st, cuda_detail::CudaStreamDeleter> stream_;
  std::unique_ptr<cublasContext, cuda_detail::CublasDeleter> cublas_;
  double* partials_ = nullptr;                        // device, kMaxPartials
  cuda_detail::DeviceStatus* status_ = nullptr;       // device
  cuda_detail::DeviceStatus* status_host_ = nullptr;  // pinned host mirror
};

}  // namespace strata::kernels
