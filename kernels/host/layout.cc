// HostBackend data-movement kernels: permute (any rank up to 8), embedding forward/backward and
// attention split/merge of heads. Pure copies (and sums for the embedding gradient), so every
// kernel keeps its innermost loop on a contiguous run of the output.
// Rules: no heap allocation; token ids are validated before anything is written, so a throw
// leaves outputs untouched.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"

namespace strata::kernels {
namespace {

using detail::host_range;
constexpr int kMaxRank = 8;

void check_tokens(const char* method, const std::int32_t* tokens, std::int64_t n_tokens,
                  std::int64_t vocab) {
  for (std::int64_t t = 0; t < n_tokens; ++t) {
    if (tokens[t] < 0 || tokens[t] >= vocab) {
      throw std::out_of_range(std::string("HostBackend::") + method + ": token " +
                              std::to_string(tokens[t]) + " at index " + std::to_string(t) +
                              " is outside [0, vocab = " + std::to_string(vocab) + ")");
    }
  }
}

}  // namespace

void HostBackend::permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
                          const int* perm, int rank) {
  constexpr const char* kM = "permute";
  detail::require(rank >= 0 && rank <= kMaxRank, kM, "rank = ", rank, " outside [0, ", kMaxRank,
                  "]");
  detail::require(rank == 0 || (in_shape != nullptr && perm != nullptr), kM,
                  "in_shape or perm is null (rank = ", rank, ")");
  std::int64_t numel = 1;
  bool seen[kMaxRank] = {};
  for (int d = 0; d < rank; ++d) {
    detail::require(in_shape[d] >= 0, kM, "in_shape[", d, "] = ", in_shape[d], " < 0");
    detail::require(perm[d] >= 0 && perm[d] < rank && !seen[perm[d]], kM, "perm[", d,
                    "] = ", perm[d], " does not make a permutation of [0, ", rank, ")");
    seen[perm[d]] = true;
    numel *= in_shape[d];
  }
  detail::require_ptr(in, numel, kM, "in");
  detail::require_ptr(out, numel, kM, "out");
  detail::require(numel == 0 || in != out, kM, "in and out must not alias (", numel, " elements)");
  if (numel == 0) return;

  // Output dims with their input strides; size-1 dims are dropped and neighbours that are also
  // neighbours in the input are merged, so a head transpose [b, s, h, d] -> [b, h, s, d] becomes
  // rank 4 with a contiguous run of d, and an identity permutation becomes one flat copy.
  std::int64_t in_stride[kMaxRank];
  for (std::int64_t d = rank - 1, s = 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= in_shape[d];
  }
  std::int64_t shape[kMaxRank];
  std::int64_t stride[kMaxRank];
  int r = 0;
  for (int j = 0; j < rank; ++j) {
    const std::int64_t n = in_shape[perm[j]];
    const std::int64_t st = in_stride[perm[j]];
    if (n == 1) continue;
    if (r > 0 && stride[r - 1] == st * n) {
      shape[r - 1] *= n;
      stride[r - 1] = st;
    } else {
      shape[r] = n;
      stride[r] = st;
      ++r;
    }
  }
  if (r == 0) {  // every dim has size 1
    shape[0] = 1;
    stride[0] = 1;
    r = 1;
  }
  const std::int64_t inner = shape[r - 1];
  const std::int64_t inner_stride = stride[r - 1];
  const std::int64_t outer = numel / inner;
  const int outer_rank = r - 1;

  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    Kokkos::parallel_for(
        kM, host_range(outer), KOKKOS_LAMBDA(std::int64_t o) {
          // Input offset of output row o: decompose o over the outer output dims.
          std::int64_t rem = o;
          std::int64_t src = 0;
          for (int j = outer_rank - 1; j >= 0; --j) {
            const std::int64_t idx = rem % shape[j];
            rem /= shape[j];
            src += idx * stride[j];
          }
          const T* ip = pin + src;
          T* op = pout + o * inner;
          if (inner_stride == 1) {
            for (std::int64_t i = 0; i < inner; ++i) op[i] = ip[i];
          } else {
            for (std::int64_t i = 0; i < inner; ++i) op[i] = ip[i * inner_stride];
          }
        });
  });
}

void HostBackend::embedding_forward(DType dtype, const std::int32_t* tokens, const void* table,
                                    void* out, std::int64_t n_tokens, std::int64_t vocab,
                                    std::int64_t dim) {
  constexpr const char* kM = "embedding_forward";
  detail::require_sizes(kM, "n_tokens, vocab, dim", {n_tokens, vocab, dim});
  detail::require_ptr(tokens, n_tokens, kM, "tokens");
  detail::require_ptr(table, vocab * dim, kM, "table");
  detail::require_ptr(out, n_tokens * dim, kM, "out");
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    check_tokens(kM, tokens, n_tokens, vocab);
    const T* ptab = static_cast<const T*>(table);
    T* pout = static_cast<T*>(out);
    Kokkos::parallel_for(
        kM, host_range(n_tokens), KOKKOS_LAMBDA(std::int64_t t) {
          const T* src = ptab + static_cast<std::int64_t>(tokens[t]) * dim;
          T* dst = pout + t * dim;
          for (std::int64_t j = 0; j < dim; ++j) dst[j] = src[j];
        });
  });
}

void HostBackend::embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout,
                                     void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                     std::int64_t dim) {
  constexpr const char* kM = "embedding_backward";
  detail::require_sizes(kM, "n_tokens, vocab, dim", {n_tokens, vocab, dim});
  detail::require_ptr(tokens, n_tokens, kM, "tokens");
  detail::require_ptr(dout, n_tokens * dim, kM, "dout");
  detail::require_ptr(dtable, vocab * dim, kM, "dtable");
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    check_tokens(kM, tokens, n_tokens, vocab);
    const T* pdout = static_cast<const T*>(dout);
    T* ptab = static_cast<T*>(dtable);
    // One item per block of columns: repeated tokens add into the same row, so items split the
    // columns, never the tokens, and the sum order (token order) is deterministic.
    const std::int64_t blocks = (dim + detail::kColBlock - 1) / detail::kColBlock;
    Kokkos::parallel_for(
        kM, host_range(blocks), KOKKOS_LAMBDA(std::int64_t blk) {
          const std::int64_t j0 = blk * detail::kColBlock;
          const std::int64_t w = std::min(detail::kColBlock, dim - j0);
          for (std::int64_t v = 0; v < vocab; ++v) {
            T* row = ptab + v * dim + j0;
            for (std::int64_t j = 0; j < w; ++j) row[j] = T(0);
          }
          for (std::int64_t t = 0; t < n_tokens; ++t) {
            T* row = ptab + static_cast<std::int64_t>(tokens[t]) * dim + j0;
            const T* src = pdout + t * dim + j0;
            for (std::int64_t j = 0; j < w; ++j) row[j] += src[j];
          }
        });
  });
}

namespace {

// Shared checks of split_heads / merge_heads; `bufs` are the parts buffers.
template <class P>
void check_heads(const char* method, const void* whole, const P* bufs, std::int64_t batch,
                 std::int64_t seq, std::int64_t parts, std::int64_t heads, std::int64_t head_dim) {
  detail::require_sizes(method, "batch, seq, parts, heads, head_dim",
                        {batch, seq, parts, heads, head_dim});
  const std::int64_t per_part = batch * heads * seq * head_dim;
  detail::require_ptr(whole, per_part * parts, method, "[batch, seq, parts*heads*head_dim]");
  detail::require_ptr(bufs, parts, method, "the array of part pointers");
  for (std::int64_t p = 0; p < parts && per_part > 0; ++p) {
    detail::require(bufs[p] != nullptr, method, "part ", p, " is null (batch = ", batch,
                    ", seq = ", seq, ", parts = ", parts, ", heads = ", heads,
                    ", head_dim = ", head_dim, ")");
  }
}

}  // namespace

void HostBackend::split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                              std::int64_t seq, std::int64_t parts, std::int64_t heads,
                              std::int64_t head_dim) {
  constexpr const char* kM = "split_heads";
  check_heads(kM, x, outs, batch, seq, parts, heads, head_dim);
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const std::int64_t row = parts * heads * head_dim;
    // x[b, s, (p*heads + h)*head_dim + d] -> outs[p][b, h, s, d]; one item per (b, s).
    Kokkos::parallel_for(
        kM, host_range(batch * seq), KOKKOS_LAMBDA(std::int64_t bs) {
          const std::int64_t b = bs / seq;
          const std::int64_t s = bs % seq;
          const T* src = px + bs * row;
          for (std::int64_t p = 0; p < parts; ++p) {
            T* dst_part = static_cast<T*>(outs[p]);
            for (std::int64_t h = 0; h < heads; ++h) {
              const T* sp = src + (p * heads + h) * head_dim;
              T* dp = dst_part + ((b * heads + h) * seq + s) * head_dim;
              for (std::int64_t d = 0; d < head_dim; ++d) dp[d] = sp[d];
            }
          }
        });
  });
}

void HostBackend::merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                              std::int64_t seq, std::int64_t parts, std::int64_t heads,
                              std::int64_t head_dim) {
  constexpr const char* kM = "merge_heads";
  check_heads(kM, out, ins, batch, seq, parts, heads, head_dim);
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    T* pout = static_cast<T*>(out);
    const std::int64_t row = parts * heads * head_dim;
    // ins[p][b, h, s, d] -> out[b, s, (p*heads + h)*head_dim + d]; one item per (b, s), so each
    // item writes one contiguous output row.
    Kokkos::parallel_for(
        kM, host_range(batch * seq), KOKKOS_LAMBDA(std::int64_t bs) {
          const std::int64_t b = bs / seq;
          const std::int64_t s = bs % seq;
          T* dst = pout + bs * row;
          for (std::int64_t p = 0; p < parts; ++p) {
            const T* src_part = static_cast<const T*>(ins[p]);
            for (std::int64_t h = 0; h < heads; ++h) {
              const T* sp = src_part + ((b * heads + h) * seq + s) * head_dim;
              T* dp = dst + (p * heads + h) * head_dim;
              for (std::int64_t d = 0; d < head_dim; ++d) dp[d] = sp[d];
            }
          }
        });
  });
}

}  // namespace strata::kernels
