// Blocks of dense row-major tensors on the host: cutting a device's shard (a box given per dim as
// solver::DimSlice) out of a full tensor and putting it back. Used to load parameter shards and
// to assemble full tensors for checkpoints and model files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "solver/intra/layout.h"

namespace strata::app {

// Calls fn(flat index in the full tensor, index in the block) for every element of the block
// `slice` of a dense row-major tensor of shape `global`, in row-major block order.
template <typename Fn>
void for_each_in_block(const solver::Shape& global, const std::vector<solver::DimSlice>& slice,
                       Fn&& fn) {
  std::int64_t count = 1;
  for (const auto& s : slice) count *= s.size;
  const std::size_t rank = global.size();
  std::vector<std::int64_t> idx(rank, 0);
  for (std::int64_t n = 0; n < count; ++n) {
    std::int64_t flat = 0;
    for (std::size_t d = 0; d < rank; ++d) flat = flat * global[d] + slice[d].offset + idx[d];
    fn(static_cast<std::size_t>(flat), static_cast<std::size_t>(n));
    for (std::size_t d = rank; d-- > 0;) {
      if (++idx[d] < slice[d].size) break;
      idx[d] = 0;
    }
  }
}

// The block `slice` of a dense row-major tensor of shape `global`, as a dense vector.
template <typename T>
std::vector<T> extract_block(const T* full, const solver::Shape& global,
                             const std::vector<solver::DimSlice>& slice) {
  std::int64_t count = 1;
  for (const auto& s : slice) count *= s.size;
  std::vector<T> out(static_cast<std::size_t>(count));
  for_each_in_block(global, slice, [&](std::size_t f, std::size_t b) { out[b] = full[f]; });
  return out;
}

// Writes `block` (dense, the shape of `slice`) into `full` at `slice`.
template <typename T>
void insert_block(std::vector<T>& full, const solver::Shape& global,
                  const std::vector<solver::DimSlice>& slice, const std::vector<T>& block) {
  for_each_in_block(global, slice, [&](std::size_t f, std::size_t b) { full[f] = block[b]; });
}

}  // namespace strata::app
