// Which dataset rows each step reads (DESIGN.md section 7, "Order").
//   shuffle off: step s (from 1) uses rows [(s-1)*B, s*B) modulo N.
//   shuffle on:  the same global sample index g = (s-1)*B + i reads row perm_e[g mod N] of epoch
//                e = g div N, where perm_e is a Fisher-Yates shuffle of 0..N-1 driven by
//                std::mt19937_64(seed + e) (written out here, since std::shuffle's algorithm is
//                unspecified and runs must be reproducible across platforms).
#pragma once

#include <cstdint>
#include <vector>

#include "app/dataset_file.h"

namespace strata::app {

class DataOrder {
 public:
  DataOrder(std::int64_t rows, std::int64_t global_batch, bool shuffle, std::uint64_t seed);
  // Row indices of step `step` (1-based), global_batch of them.
  std::vector<std::int64_t> rows_of_step(std::int64_t step);

 private:
  const std::vector<std::int64_t>& permutation(std::int64_t epoch);

  std::int64_t rows_, global_batch_;
  bool shuffle_;
  std::uint64_t seed_;
  std::int64_t cached_epoch_ = -1;
  std::vector<std::int64_t> cached_perm_;
};

// The tokens of `row_ids` (each seq_len+1 tokens), concatenated.
std::vector<std::int32_t> gather_rows(const Dataset& data,
                                      const std::vector<std::int64_t>& row_ids);

}  // namespace strata::app
