// What the backends (kernels/host/layout.cc, kernels/cuda/layout.cu) share about a data
// movement: the argument checks of permute, copy_box and split_heads / merge_heads, which
// Backend's public calls make before anything is written (kernels/backend_checks.cc); and the
// strided walks that permute and copy_box simplify their dims into. Header-only, no
// Kokkos or CUDA (CopyWalk is plain data, passed by value to CUDA kernels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/arg_checks.h"

namespace strata::kernels::copy_prep {

constexpr int kMaxRank = 8;  // most dims of a permute or a box

// "[2, 3, 4]", for messages.
inline std::string dims_str(const std::int64_t* v, int rank) {
  std::string s = "[";
  for (int d = 0; d < rank; ++d) s += (d > 0 ? ", " : "") + std::to_string(v[d]);
  return s + "]";
}

// Elements of a dense shape of `rank` dims (1 for rank 0: one scalar).
inline std::int64_t elements(const std::int64_t* dims, int rank) {
  std::int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= dims[d];
  return n;
}

// permute: rank in [0, kMaxRank], shapes >= 0, perm a permutation of [0, rank), buffers present
// for their elements and not aliased. Returns the element count.
inline std::int64_t check_permute(const ArgChecks& checks, const void* in, const void* out,
                                  const std::int64_t* in_shape, const int* perm, int rank) {
  constexpr const char* kM = "permute";
  checks.require(rank >= 0 && rank <= kMaxRank, kM, "rank = ", rank, " outside [0, ", kMaxRank,
                 "]");
  checks.require(rank == 0 || (in_shape != nullptr && perm != nullptr), kM,
                 "in_shape or perm is null (rank = ", rank, ")");
  std::int64_t numel = 1;
  bool seen[kMaxRank] = {};
  for (int d = 0; d < rank; ++d) {
    checks.require(in_shape[d] >= 0, kM, "in_shape[", d, "] = ", in_shape[d], " < 0");
    checks.require(perm[d] >= 0 && perm[d] < rank && !seen[perm[d]], kM, "perm[", d,
                   "] = ", perm[d], " does not make a permutation of [0, ", rank, ")");
    seen[perm[d]] = true;
    numel *= in_shape[d];
  }
  checks.require_ptr(in, numel, kM, "in");
  checks.require_ptr(out, numel, kM, "out");
  checks.require(numel == 0 || in != out, kM, "in and out must not alias (", numel, " elements)");
  return numel;
}

// copy_box: elem_bytes 1, 2, 4 or 8; rank in [0, kMaxRank]; the box inside both shapes at its
// offsets (which also rejects negative shapes); buffers present. Returns the box's elements.
inline std::int64_t check_copy_box(const ArgChecks& checks, std::size_t elem_bytes, const void* src,
                                   const std::int64_t* src_shape, const std::int64_t* src_offset,
                                   const void* dst, const std::int64_t* dst_shape,
                                   const std::int64_t* dst_offset, const std::int64_t* box,
                                   int rank) {
  constexpr const char* kM = "copy_box";
  checks.require(elem_bytes == 1 || elem_bytes == 2 || elem_bytes == 4 || elem_bytes == 8, kM,
                 "elem_bytes = ", elem_bytes, " is not 1, 2, 4 or 8");
  checks.require(rank >= 0 && rank <= kMaxRank, kM, "rank = ", rank, " outside [0, ", kMaxRank,
                 "]");
  checks.require(rank == 0 || (src_shape != nullptr && src_offset != nullptr &&
                               dst_shape != nullptr && dst_offset != nullptr && box != nullptr),
                 kM, "a shape, offset or box array is null (rank = ", rank, ")");
  std::int64_t src_numel = 1, dst_numel = 1, box_numel = 1;
  for (int d = 0; d < rank; ++d) {
    // Also rejects negative shapes: offset + box >= 0 once both are >= 0.
    const bool inside = box[d] >= 0 && src_offset[d] >= 0 && dst_offset[d] >= 0 &&
                        src_offset[d] + box[d] <= src_shape[d] &&
                        dst_offset[d] + box[d] <= dst_shape[d];
    if (!inside) {
      checks.fail(kM, "box ", dims_str(box, rank), " at src_offset ", dims_str(src_offset, rank),
                  " of src_shape ", dims_str(src_shape, rank), " to dst_offset ",
                  dims_str(dst_offset, rank), " of dst_shape ", dims_str(dst_shape, rank),
                  " leaves a shape in dim ", d);
    }
    src_numel *= src_shape[d];
    dst_numel *= dst_shape[d];
    box_numel *= box[d];
  }
  checks.require_ptr(src, src_numel, kM, "src");
  checks.require_ptr(dst, dst_numel, kM, "dst");
  return box_numel;
}

// split_heads / merge_heads: sizes >= 0, the whole buffer present, and every part pointer of
// `bufs` (the parts buffers) present when the parts hold elements.
template <class P>
void check_heads(const ArgChecks& checks, const char* method, const void* whole, const P* bufs,
                 std::int64_t batch, std::int64_t seq, std::int64_t parts, std::int64_t heads,
                 std::int64_t head_dim) {
  checks.require_sizes(method, "batch, seq, parts, heads, head_dim",
                       {batch, seq, parts, heads, head_dim});
  const std::int64_t per_part = batch * heads * seq * head_dim;
  checks.require_ptr(whole, per_part * parts, method, "[batch, seq, parts*heads*head_dim]");
  checks.require_ptr(bufs, parts, method, "the array of part pointers");
  for (std::int64_t p = 0; p < parts && per_part > 0; ++p) {
    checks.require(bufs[p] != nullptr, method, "part ", p, " is null (batch = ", batch,
                   ", seq = ", seq, ", parts = ", parts, ", heads = ", heads,
                   ", head_dim = ", head_dim, ")");
  }
}

// A strided walk: element i of a dense [ext[0], ..., ext[rank - 1]] index space sits at
// src_base + sum idx[d] src_stride[d] in the source and dst_base + sum idx[d] dst_stride[d] in
// the destination (elements). Size-1 dims are dropped and a dim merges into its outer neighbour
// when the neighbour steps over it exactly in both buffers, so a head transpose [b, s, h, d] ->
// [b, h, s, d] keeps a contiguous run of d and an identity permutation is one flat copy; at
// least one dim.
struct CopyWalk {
  std::int64_t ext[kMaxRank];
  std::int64_t src_stride[kMaxRank];
  std::int64_t dst_stride[kMaxRank];
  std::int64_t src_base;
  std::int64_t dst_base;
  int rank;
};

// Appends dim (n, src stride, dst stride) to w, merged as above; size-1 dims are skipped.
inline void append_dim(CopyWalk& w, std::int64_t n, std::int64_t src_stride,
                       std::int64_t dst_stride) {
  if (n == 1) return;
  const int r = w.rank;
  if (r > 0 && w.src_stride[r - 1] == src_stride * n && w.dst_stride[r - 1] == dst_stride * n) {
    w.ext[r - 1] *= n;
    w.src_stride[r - 1] = src_stride;
    w.dst_stride[r - 1] = dst_stride;
  } else {
    w.ext[r] = n;
    w.src_stride[r] = src_stride;
    w.dst_stride[r] = dst_stride;
    w.rank = r + 1;
  }
}

// Row-major strides (elements) of a dense shape.
inline void dense_strides(const std::int64_t* shape, int rank, std::int64_t* stride) {
  for (std::int64_t d = rank - 1, s = 1; d >= 0; --d) {
    stride[d] = s;
    s *= shape[d];
  }
}

inline void at_least_one_dim(CopyWalk& w) {
  if (w.rank > 0) return;  // every dim has size 1 (or rank 0): one element
  w.ext[0] = w.src_stride[0] = w.dst_stride[0] = 1;
  w.rank = 1;
}

// permute of a dense input of in_shape into a dense output: the output's dims in order, each
// with its input stride. Arguments as check_permute accepts them.
inline CopyWalk permute_walk(const std::int64_t* in_shape, const int* perm, int rank) {
  std::int64_t in_stride[kMaxRank], out_shape[kMaxRank], out_stride[kMaxRank];
  dense_strides(in_shape, rank, in_stride);
  for (int j = 0; j < rank; ++j) out_shape[j] = in_shape[perm[j]];
  dense_strides(out_shape, rank, out_stride);
  CopyWalk w{};
  for (int j = 0; j < rank; ++j) append_dim(w, out_shape[j], in_stride[perm[j]], out_stride[j]);
  at_least_one_dim(w);
  return w;
}

// copy_box: the box's dims in order, with both buffers' strides and the box corner's offsets.
// Arguments as check_copy_box accepts them.
inline CopyWalk box_walk(const std::int64_t* src_shape, const std::int64_t* src_offset,
                         const std::int64_t* dst_shape, const std::int64_t* dst_offset,
                         const std::int64_t* box, int rank) {
  std::int64_t src_stride[kMaxRank], dst_stride[kMaxRank];
  dense_strides(src_shape, rank, src_stride);
  dense_strides(dst_shape, rank, dst_stride);
  CopyWalk w{};
  for (int d = 0; d < rank; ++d) {
    w.src_base += src_offset[d] * src_stride[d];
    w.dst_base += dst_offset[d] * dst_stride[d];
    append_dim(w, box[d], src_stride[d], dst_stride[d]);
  }
  at_least_one_dim(w);
  return w;
}

}  // namespace strata::kernels::copy_prep
