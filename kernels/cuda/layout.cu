// CudaBackend data-movement kernels: permute and box copies (rank up to 8), embedding
// forward/backward (whole table or a vocab slice) and attention split/merge of heads.
// Shapes and strides are simplified on the host exactly as kernels/host/layout.cc does (size-1
// dims dropped, neighbours that stay neighbours merged) and passed to the kernels by value; each
// thread then maps one output element to its source by decomposing its index.
// Embedding backward is deterministic: a stable radix sort (CUB) groups equal token ids with
// their positions in token order, and one block per distinct id sums that id's rows in token
// order (the host's order) in the compute type, then writes the table row once. No atomics.
#include <cub/device/device_radix_sort.cuh>
#include <string>

#include "kernels/copy_prep.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace {

using cuda_detail::Compute;
using cuda_detail::to_compute;
using cuda_detail::to_storage;

// Unsigned integer of `bytes` bytes: data movement copies bits.
template <int kBytes>
struct Bits;
template <>
struct Bits<1> {
  using type = std::uint8_t;
};
template <>
struct Bits<2> {
  using type = std::uint16_t;
};
template <>
struct Bits<4> {
  using type = std::uint32_t;
};
template <>
struct Bits<8> {
  using type = std::uint64_t;
};

// Calls fn(std::integral_constant<int, bytes>) for 1, 2, 4 or 8.
template <class Fn>
void dispatch_bytes(std::size_t bytes, Fn&& fn) {
  switch (bytes) {
    case 1:
      fn(std::integral_constant<int, 1>{});
      return;
    case 2:
      fn(std::integral_constant<int, 2>{});
      return;
    case 4:
      fn(std::integral_constant<int, 4>{});
      return;
    default:
      fn(std::integral_constant<int, 8>{});
      return;
  }
}

template <class E>
__global__ void walk_copy_kernel(const E* src, E* dst, std::int64_t numel, copy_prep::CopyWalk w) {
  STRATA_GRID_STRIDE(i, numel) {
    std::int64_t rem = i, s = 0, d = 0;
    for (int j = w.rank - 1; j >= 0; --j) {
      const std::int64_t idx = rem % w.ext[j];
      rem /= w.ext[j];
      s += idx * w.src_stride[j];
      d += idx * w.dst_stride[j];
    }
    dst[d] = src[s];
  }
}

// out[t, j] = table[tokens[t] - vocab_offset, j] for tokens in the slice, else 0 (and, when
// `check`, the token is reported as out of range).
template <class T>
__global__ void embedding_forward_kernel(const std::int32_t* tokens, const T* table, T* out,
                                         std::int64_t n_tokens, std::int64_t vocab,
                                         std::int64_t dim, std::int64_t vocab_offset, bool check,
                                         cuda_detail::DeviceStatus* status) {
  STRATA_GRID_STRIDE(i, n_tokens * dim) {
    const std::int64_t t = i / dim, j = i % dim;
    const std::int64_t v = static_cast<std::int64_t>(tokens[t]) - vocab_offset;
    if (v < 0 || v >= vocab) {
      out[i] = to_storage<T>(Compute<T>(0));
      if (check && j == 0) {
        cuda_detail::report_bad_index(status, cuda_detail::kStatusEmbeddingForward, t, tokens[t],
                                      vocab);
      }
    } else {
      out[i] = table[v * dim + j];
    }
  }
}

// Token check alone, for calls with dim == 0 (nothing else to launch).
__global__ void check_tokens_kernel(const std::int32_t* tokens, std::int64_t n_tokens,
                                    std::int64_t vocab, int method,
                                    cuda_detail::DeviceStatus* status) {
  STRATA_GRID_STRIDE(t, n_tokens) {
    if (tokens[t] < 0 || tokens[t] >= vocab) {
      cuda_detail::report_bad_index(status, method, t, tokens[t], vocab);
    }
  }
}

__global__ void iota_kernel(std::int32_t* out, std::int64_t n) {
  STRATA_GRID_STRIDE(i, n) { out[i] = static_cast<std::int32_t>(i); }
}

// keys: token ids sorted (stable); pos: their positions in token order within equal ids. The
// block at the first position p of each run of equal ids sums dout rows pos[p .. end) in order.
template <class T>
__global__ void embedding_grad_kernel(const std::int32_t* keys, const std::int32_t* pos,
                                      const T* dout, T* dtable, std::int64_t n_tokens,
                                      std::int64_t vocab, std::int64_t dim,
                                      std::int64_t vocab_offset, bool check,
                                      cuda_detail::DeviceStatus* status) {
  using C = Compute<T>;
  __shared__ std::int64_t run_end;
  for (std::int64_t p = blockIdx.x; p < n_tokens; p += gridDim.x) {
    const std::int32_t key = keys[p];
    if (p > 0 && keys[p - 1] == key) continue;  // not the start of a run (uniform per block)
    const std::int64_t v = static_cast<std::int64_t>(key) - vocab_offset;
    if (v < 0 || v >= vocab) {
      if (check && threadIdx.x == 0) {
        cuda_detail::report_bad_index(status, cuda_detail::kStatusEmbeddingBackward, pos[p], key,
                                      vocab);
      }
      continue;
    }
    if (threadIdx.x == 0) {
      std::int64_t e = p + 1;
      while (e < n_tokens && keys[e] == key) ++e;
      run_end = e;
    }
    __syncthreads();
    const std::int64_t end = run_end;
    for (std::int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      C acc = 0;
      for (std::int64_t q = p; q < end; ++q) acc += to_compute(dout[pos[q] * dim + j]);
      dtable[v * dim + j] = to_storage<T>(acc);
    }
    __syncthreads();  // run_end is rewritten by the next run
  }
}

// Part pointers of split_heads / merge_heads, passed by value, up to kPartsPerLaunch at a time.
constexpr int kPartsPerLaunch = 8;
struct PartPtrs {
  void* ptr[kPartsPerLaunch];
};

// Element i of parts [p0, p0 + np) enumerates (b, s, part, h, d) with d fastest, so the whole
// buffer [batch, seq, parts*heads*head_dim] is walked contiguously.
struct HeadsShape {
  std::int64_t batch, seq, parts, heads, head_dim, p0, np;
};

template <class T, bool kSplit>
__global__ void heads_kernel(T* whole, PartPtrs parts, HeadsShape h) {
  const std::int64_t n = h.batch * h.seq * h.np * h.heads * h.head_dim;
  STRATA_GRID_STRIDE(i, n) {
    const std::int64_t d = i % h.head_dim;
    std::int64_t rest = i / h.head_dim;
    const std::int64_t hh = rest % h.heads;
    rest /= h.heads;
    const std::int64_t pl = rest % h.np;
    const std::int64_t bs = rest / h.np;
    const std::int64_t b = bs / h.seq, s = bs % h.seq;
    T* w = whole + (bs * h.parts + h.p0 + pl) * h.heads * h.head_dim + hh * h.head_dim + d;
    T* part = static_cast<T*>(parts.ptr[pl]) + ((b * h.heads + hh) * h.seq + s) * h.head_dim + d;
    if (kSplit) {
      *part = *w;
    } else {
      *w = *part;
    }
  }
}

}  // namespace

void CudaBackend::do_permute(DType dtype, const void* in, void* out, const std::int64_t* in_shape,
                             const int* perm, int rank) {
  const std::int64_t numel = copy_prep::elements(in_shape, rank);
  const std::size_t elem = dtype_size_bytes(dtype);  // any dtype: permute moves bits
  if (numel == 0) return;

  // Output dims with their input strides, simplified as on the host (copy_prep.h).
  const copy_prep::CopyWalk w = copy_prep::permute_walk(in_shape, perm, rank);
  const cuda_detail::LaunchCtx c = ctx();
  dispatch_bytes(elem, [&](auto bytes) {
    using E = typename Bits<decltype(bytes)::value>::type;
    STRATA_LAUNCH(c, (walk_copy_kernel<E>), cuda_detail::grid_for(c, numel), cuda_detail::kThreads,
                  static_cast<const E*>(in), static_cast<E*>(out), numel, w);
  });
}

void CudaBackend::do_copy_box(std::size_t elem_bytes, const void* src,
                              const std::int64_t* src_shape, const std::int64_t* src_offset,
                              void* dst, const std::int64_t* dst_shape,
                              const std::int64_t* dst_offset, const std::int64_t* box, int rank) {
  const std::int64_t box_numel = copy_prep::elements(box, rank);
  if (box_numel == 0) return;

  // Box dims with their strides in both buffers, simplified as on the host.
  const copy_prep::CopyWalk w =
      copy_prep::box_walk(src_shape, src_offset, dst_shape, dst_offset, box, rank);
  const auto bytes_per = static_cast<std::int64_t>(elem_bytes);
  const char* s0 = static_cast<const char*>(src) + w.src_base * bytes_per;
  char* d0 = static_cast<char*>(dst) + w.dst_base * bytes_per;
  const cuda_detail::LaunchCtx c = ctx();
  dispatch_bytes(elem_bytes, [&](auto bytes) {
    using E = typename Bits<decltype(bytes)::value>::type;
    STRATA_LAUNCH(c, (walk_copy_kernel<E>), cuda_detail::grid_for(c, box_numel),
                  cuda_detail::kThreads, reinterpret_cast<const E*>(s0), reinterpret_cast<E*>(d0),
                  box_numel, w);
  });
}

void CudaBackend::do_embedding_forward(DType dtype, const std::int32_t* tokens, const void* table,
                                       void* out, std::int64_t n_tokens, std::int64_t vocab,
                                       std::int64_t dim) {
  constexpr const char* kM = "embedding_forward";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (n_tokens == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    if (dim == 0) {
      STRATA_LAUNCH(c, check_tokens_kernel, cuda_detail::grid_for(c, n_tokens),
                    cuda_detail::kThreads, tokens, n_tokens, vocab,
                    static_cast<int>(cuda_detail::kStatusEmbeddingForward), c.status);
      return;
    }
    STRATA_LAUNCH(c, (embedding_forward_kernel<T>), cuda_detail::grid_for(c, n_tokens * dim),
                  cuda_detail::kThreads, tokens, static_cast<const T*>(table), static_cast<T*>(out),
                  n_tokens, vocab, dim, std::int64_t{0}, true, c.status);
  });
}

void CudaBackend::do_embedding_forward_shard(DType dtype, const std::int32_t* tokens,
                                             const void* table, void* out, std::int64_t n_tokens,
                                             std::int64_t vocab, std::int64_t dim,
                                             std::int64_t vocab_offset) {
  constexpr const char* kM = "embedding_forward_shard";
  cuda_detail::dispatch_float(dtype, kM, [&](auto tag) {
    using T = decltype(tag);
    if (n_tokens * dim == 0) return;
    const cuda_detail::LaunchCtx c = ctx();
    STRATA_LAUNCH(c, (embedding_forward_kernel<T>), cuda_detail::grid_for(c, n_tokens * dim),
                  cuda_detail::kThreads, tokens, static_cast<const T*>(table), static_cast<T*>(out),
                  n_tokens, vocab, dim, vocab_offset, false, c.status);
  });
}

void CudaBackend::embedding_backward_impl(const char* method, DType dtype,
                                          const std::int32_t* tokens, const void* dout,
                                          void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                          std::int64_t dim, std::int64_t vocab_offset, bool check) {
  cuda_detail::checks.require(n_tokens <= INT32_MAX, method, "n_tokens = ", n_tokens,
                              " exceeds the int32 positions of the sort");
  cuda_detail::dispatch_float(dtype, method, [&](auto tag) {
    using T = decltype(tag);
    const cuda_detail::LaunchCtx c = ctx();
    if (vocab * dim > 0) {
      STRATA_CUDA_CHECK(cudaMemsetAsync(
          dtable, 0, static_cast<std::size_t>(vocab * dim) * sizeof(T), stream_.get()));
    }
    if (n_tokens == 0) return;
    if (dim == 0) {
      if (check) {
        STRATA_LAUNCH(c, check_tokens_kernel, cuda_detail::grid_for(c, n_tokens),
                      cuda_detail::kThreads, tokens, n_tokens, vocab,
                      static_cast<int>(cuda_detail::kStatusEmbeddingBackward), c.status);
      }
      return;
    }
    const int n = static_cast<int>(n_tokens);
    // One temporary block: sorted keys, positions in, positions out, then CUB's scratch.
    std::size_t sort_bytes = 0;
    STRATA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
        nullptr, sort_bytes, static_cast<const std::int32_t*>(nullptr),
        static_cast<std::int32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
        static_cast<std::int32_t*>(nullptr), n, 0, 32, stream_.get()));
    const std::size_t ints = (static_cast<std::size_t>(n) + 63) / 64 * 64;  // 256-byte aligned
    auto* base = static_cast<std::int32_t*>(allocate_temp(3 * ints * 4 + sort_bytes));
    std::int32_t* keys = base;
    std::int32_t* pos_in = base + ints;
    std::int32_t* pos = base + 2 * ints;
    void* sort_tmp = base + 3 * ints;
    STRATA_LAUNCH(c, iota_kernel, cuda_detail::grid_for(c, n_tokens), cuda_detail::kThreads, pos_in,
                  n_tokens);
    STRATA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_tmp, sort_bytes, tokens, keys,
                                                      static_cast<const std::int32_t*>(pos_in), pos,
                                                      n, 0, 32, stream_.get()));
    STRATA_LAUNCH(c, (embedding_grad_kernel<T>), cuda_detail::row_grid(c, n_tokens),
                  cuda_detail::row_threads(dim), static_cast<const std::int32_t*>(keys),
                  static_cast<const std::int32_t*>(pos), static_cast<const T*>(dout),
                  static_cast<T*>(dtable), n_tokens, vocab, dim, vocab_offset, check, c.status);
    release(base);  // stream-ordered: freed after the kernel has run
  });
}

void CudaBackend::do_embedding_backward(DType dtype, const std::int32_t* tokens, const void* dout,
                                        void* dtable, std::int64_t n_tokens, std::int64_t vocab,
                                        std::int64_t dim) {
  constexpr const char* kM = "embedding_backward";
  embedding_backward_impl(kM, dtype, tokens, dout, dtable, n_tokens, vocab, dim, 0, true);
}

void CudaBackend::do_embedding_backward_shard(DType dtype, const std::int32_t* tokens,
                                              const void* dout, void* dtable, std::int64_t n_tokens,
                                              std::int64_t vocab, std::int64_t dim,
                                              std::int64_t vocab_offset) {
  constexpr const char* kM = "embedding_backward_shard";
  embedding_backward_impl(kM, dtype, tokens, dout, dtable, n_tokens, vocab, dim, vocab_offset,
                          false);
}

namespace {

template <bool kSplit>
void run_heads(const cuda_detail::LaunchCtx& c, const char* method, DType dtype, void* whole,
               const void* const* parts_ptrs, std::int64_t batch, std::int64_t seq,
               std::int64_t parts, std::int64_t heads, std::int64_t head_dim) {
  cuda_detail::dispatch_float(dtype, method, [&](auto tag) {
    using T = decltype(tag);
    if (batch * seq * heads * head_dim == 0) return;
    for (std::int64_t p0 = 0; p0 < parts; p0 += kPartsPerLaunch) {
      const std::int64_t np = std::min<std::int64_t>(kPartsPerLaunch, parts - p0);
      PartPtrs ptrs{};
      for (std::int64_t k = 0; k < np; ++k) ptrs.ptr[k] = const_cast<void*>(parts_ptrs[p0 + k]);
      const HeadsShape h{batch, seq, parts, heads, head_dim, p0, np};
      STRATA_LAUNCH(c, (heads_kernel<T, kSplit>),
                    cuda_detail::grid_for(c, batch * seq * np * heads * head_dim),
                    cuda_detail::kThreads, static_cast<T*>(whole), ptrs, h);
    }
  });
}

}  // namespace

void CudaBackend::do_split_heads(DType dtype, const void* x, void* const* outs, std::int64_t batch,
                                 std::int64_t seq, std::int64_t parts, std::int64_t heads,
                                 std::int64_t head_dim) {
  constexpr const char* kM = "split_heads";
  // x is only read (kSplit); the kernel's pointer type is shared with merge_heads.
  run_heads<true>(ctx(), kM, dtype, const_cast<void*>(x), const_cast<const void* const*>(outs),
                  batch, seq, parts, heads, head_dim);
}

void CudaBackend::do_merge_heads(DType dtype, const void* const* ins, void* out, std::int64_t batch,
                                 std::int64_t seq, std::int64_t parts, std::int64_t heads,
                                 std::int64_t head_dim) {
  constexpr const char* kM = "merge_heads";
  run_heads<false>(ctx(), kM, dtype, out, ins, batch, seq, parts, heads, head_dim);
}

}  // namespace strata::kernels
