// Buffer packing: places buffers with known lifetimes in one arena so that buffers never live at
// the same time may share bytes (the runtime's transient tensors, dist_trainer.cc). Pure C++.
//
// Problem: buffers i = 1..n with size b_i, each live during one or more disjoint intervals of
// positions on one timeline (inclusive; a tensor recreated in two bucket executions has two).
// Find offsets o_i with
//   o_i + b_i <= A  for all i,  and  [o_i, o_i + b_i) disjoint from [o_j, o_j + b_j)
//   whenever a live interval of i and one of j share a position,
// minimising the arena size A. A >= max over positions p of sum of b_i live at p (the bound
// below); reaching it is NP-hard in general (dynamic storage allocation).
//
// Method: greedy by size (as TFLite's and XLA's heap simulators offer): largest buffer first
// (ties: earlier first position first), each at the lowest aligned offset that fits between the
// buffers already placed that are live at some common position. Sizes are rounded up to
// `alignment`.
#pragma once

#include <cstdint>
#include <vector>

namespace strata::app {

struct LiveInterval {
  std::int64_t first = 0, last = 0;  // positions, inclusive; first <= last
};

struct BufferLifetime {
  std::int64_t bytes = 0;
  std::vector<LiveInterval> live;  // at least one; sorted and disjoint
};

struct BufferPacking {
  std::vector<std::int64_t> offset;  // per buffer, a multiple of the alignment
  std::int64_t arena_bytes = 0;
};

// Throws std::invalid_argument on a negative size, no interval, intervals out of order or
// overlapping, first > last, or alignment < 1.
BufferPacking pack_buffers(const std::vector<BufferLifetime>& buffers, std::int64_t alignment);

// max over positions of the aligned bytes live there: no packing needs less.
std::int64_t packing_lower_bound(const std::vector<BufferLifetime>& buffers,
                                 std::int64_t alignment);

}  // namespace strata::app
