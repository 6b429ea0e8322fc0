// HostBackend data-movement kernels: permute and box copies (any rank up to 8), embedding
// forward/backward (whole table or a vocab slice) and attention split/merge of heads. Pure
// copies (and sums for the embedding gradient), so every kernel keeps its innermost loop on a
// contiguous run of the output.
// Rules: no heap allocation; token ids, shapes and boxes are validated before anything is
// written, so a throw leaves outputs untouched.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/copy_prep.h"
#include "kernels/host/host_backend.h"
#include "kernels/host/host_common.h"

namespace strata::kernels {
namespace {

using detail::host_range;

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

// out[t, :] = table[tokens[t] - vocab_offset, :] for tokens in the slice [vocab_offset,
// vocab_offset + vocab), else 0. The unsharded call is vocab_offset 0 after check_tokens.
template <class T>
void embedding_rows(const char* method, const std::int32_t* tokens, const T* table, T* out,
                    std::int64_t n_tokens, std::int64_t vocab, std::int64_t dim,
                    std::int64_t vocab_offset) {
  Kokkos::parallel_for(
      method, host_range(n_tokens), KOKKOS_LAMBDA(std::int64_t t) {
        const std::int64_t v = static_cast<std::int64_t>(tokens[t]) - vocab_offset;
        T* dst = out + t * dim;
        if (v < 0 || v >= vocab) {
          for (std::int64_t j = 0; j < dim; ++j) dst[j] = T(0);
          return;
        }
        const T* src = table + v * dim;
        for (std::int64_t j = 0; j < dim; ++j) dst[j] = src[j];
      });
}

// dtable = 0; dtable[tokens[t] - vocab_offset, :] += dout[t, :] for tokens in the slice.
template <class T>
void embedding_grad_rows(const char* method, const std::int32_t* tokens, const T* dout, T* dtable,
                         std::int64_t n_tokens, std::int64_t vocab, std::int64_t dim,
                         std::int64_t vocab_offset) {
  // One item per block of columns: repeated tokens add into the same row, so items split the
  // columns, never the tokens, and the sum order (token order) is deterministic.
  const std::int64_t blocks = (dim + detail::kColBlock - 1) / detail::kColBlock;
  Kokkos::parallel_for(
      method, host_range(blocks), KOKKOS_LAMBDA(std::int64_t blk) {
        const std::int64_t j0 = blk * detail::kColBlock;
        const std::int64_t w = std::min(detail::kColBlock, dim - j0);
        for (std::int64_t v = 0; v < vocab; ++v) {
          T* row = dtable + v * dim + j0;
          for (std::int64_t j = 0; j < w; ++j) row[j] = T(0);
        }
        for (std::int64_t t = 0; t < n_tokens; ++t) {
          const std::int64_t v = static_cast<std::int64_t>(tokens[t]) - vocab_offset;
          if (v < 0 || v >= vocab) continue;  // another slice owns it
          T* row = dtable + v * dim + j0;
          const T* src = dout + t * dim + j0;
          for (std::int64_t j = 0; j < w; ++j) row[j] += src[j];
        }
      });
}

// Copies the walk `w` (copy_prep.h) of `numel` elements as runs of its innermost dim: run o
// starts at the offset of its index decomposed over the outer dims and steps the innermost
// strides (1 and 1: a contiguous run in both buffers, one memcpy).
template <std::size_t kBytes>
void copy_runs(const char* src, char* dst, const copy_prep::CopyWalk& w, std::int64_t numel) {
  constexpr auto kB = static_cast<std::int64_t>(kBytes);
  const int outer_rank = w.rank - 1;
  const std::int64_t inner = w.ext[outer_rank];
  const std::int64_t src_step = w.src_stride[outer_rank], dst_step = w.dst_stride[outer_rank];
  Kokkos::parallel_for(
      "copy_box", host_range(numel / inner), KOKKOS_LAMBDA(std::int64_t o) {
        std::int64_t rem = o;
        std::int64_t s = 0, d = 0;
        for (int j = outer_rank - 1; j >= 0; --j) {
          const std::int64_t idx = rem % w.ext[j];
          rem /= w.ext[j];
          s += idx * w.src_stride[j];
          d += idx * w.dst_stride[j];
        }
        const char* sp = src + s * kB;
        char* dp = dst + d * kB;
        if (src_step == 1 && dst_step == 1) {
          std::memcpy(dp, sp, static_cast<std::size_t>(inner) * kBytes);
        } else {
          // Fixed-size memcpy: one load and one store, and safe on unaligned buffers.
          for (std::int64_t i = 0; i < inner; ++i) {
            std::memcpy(dp + i * dst_step * kB, sp + i * src_step * kB, kBytes);
          }
        }
      });
}

}  // namespace

void HostBackend::do_permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
                             const int* perm, int rank) {
  constexpr const char* kM = "permute";
  const std::int64_t numel = copy_prep::elements(in_shape, rank);
  if (numel == 0) return;

  // Output dims with their input strides (copy_prep.h CopyWalk); each task copies one run of
  // the innermost dim.
  const copy_prep::CopyWalk w = copy_prep::permute_walk(in_shape, perm, rank);
  const std::int64_t inner = w.ext[w.rank - 1];
  const std::int64_t inner_stride = w.src_stride[w.rank - 1];
  const std::int64_t outer = numel / inner;
  const int outer_rank = w.rank - 1;

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
            const std::int64_t idx = rem % w.ext[j];
            rem /= w.ext[j];
            src += idx * w.src_stride[j];
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

void HostBackend::do_copy_box(std::size_t elem_bytes, const void* src,
                              const std::int64_t* src_shape, const std::int64_t* src_offset,
                              void* dst, const std::int64_t* dst_shape,
                              const std::int64_t* dst_offset, const std::int64_t* box, int rank) {
  const std::int64_t box_numel = copy_prep::elements(box, rank);
  if (box_numel == 0) return;

  // Box dims with their strides in both buffers (copy_prep.h CopyWalk): a box of whole rows
  // becomes one run and a slice of columns one run per row.
  const copy_prep::CopyWalk w =
      copy_prep::box_walk(src_shape, src_offset, dst_shape, dst_offset, box, rank);
  const auto bytes = static_cast<std::int64_t>(elem_bytes);
  const char* s0 = static_cast<const char*>(src) + w.src_base * bytes;
  char* d0 = static_cast<char*>(dst) + w.dst_base * bytes;
  switch (elem_bytes) {
    case 1:
      copy_runs<1>(s0, d0, w, box_numel);
      break;
    case 2:
      copy_runs<2>(s0, d0, w, box_numel);
      break;
    case 4:
      copy_runs<4>(s0, d0, w, box_numel);
      break;
    default:
      copy_runs<8>(s0, d0, w, box_numel);
      break;
  }
}

void HostBackend::do_embedding_forward(DType dtype, const std::int32_t* tokens, const void* table,
                                       void* out, std::int64_t n_tokens, std::int64_t vocab,
                                       std::int64_t dim) {
  constexpr const char* kM = "embedding_forward";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    check_tokens(kM, tokens, n_tokens, vocab);
    embedding_rows(kM, tokens, static_cast<const T*>(table), static_cast<T*>(out), n_tokens, vocab,
                   dim, 0);
  });
}

void HostBackend::do_embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout,
                                        void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                        std::int64_t dim) {
  constexpr const char* kM = "embedding_backward";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    check_tokens(kM, tokens, n_tokens, vocab);
    embedding_grad_rows(kM, tokens, static_cast<const T*>(dout), static_cast<T*>(dtable), n_tokens,
                        vocab, dim, 0);
  });
}

void HostBackend::do_embedding_forward_shard(DType dtype, const std::int32_t* tokens,
                                             const void* table, void* out, std::int64_t n_tokens,
                                             std::int64_t vocab, std::int64_t dim,
                                             std::int64_t vocab_offset) {
  constexpr const char* kM = "embedding_forward_shard";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    embedding_rows(kM, tokens, static_cast<const T*>(table), static_cast<T*>(out), n_tokens, vocab,
                   dim, vocab_offset);
  });
}

void HostBackend::do_embedding_backward_shard(DType dtype, const std::int32_t* tokens,
                                              const void* dout, void* dtable, std::int64_t n_tokens,
                                              std::int64_t vocab, std::int64_t dim,
                                              std::int64_t vocab_offset) {
  constexpr const char* kM = "embedding_backward_shard";
  detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    embedding_grad_rows(kM, tokens, static_cast<const T*>(dout), static_cast<T*>(dtable), n_tokens,
                        vocab, dim, vocab_offset);
  });
}

void HostBackend::do_split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                                 std::int64_t seq, std::int64_t parts, std::int64_t heads,
                                 std::int64_t head_dim) {
  constexpr const char* kM = "split_heads";
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

void HostBackend::do_merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                                 std::int64_t seq, std::int64_t parts, std::int64_t heads,
                                 std::int64_t head_dim) {
  constexpr const char* kM = "merge_heads";
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
