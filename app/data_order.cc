// Step -> dataset rows; see the header for the rule.
#include "app/data_order.h"

#include <limits>
#include <random>
#include <stdexcept>

namespace strata::app {

DataOrder::DataOrder(std::int64_t rows, std::int64_t global_batch, bool shuffle, std::uint64_t seed)
    : rows_(rows), global_batch_(global_batch), shuffle_(shuffle), seed_(seed) {
  if (rows_ < 1 || global_batch_ < 1)
    throw std::invalid_argument("DataOrder: empty dataset or batch");
}

const std::vector<std::int64_t>& DataOrder::permutation(std::int64_t epoch) {
  if (epoch == cached_epoch_) return cached_perm_;
  cached_perm_.resize(static_cast<std::size_t>(rows_));
  for (std::int64_t i = 0; i < rows_; ++i) cached_perm_[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed_ + static_cast<std::uint64_t>(epoch));
  for (std::int64_t i = rows_ - 1; i > 0; --i) {
    // Unbiased draw in [0, i] by rejection, so the sequence depends on the generator alone.
    const std::uint64_t range = static_cast<std::uint64_t>(i) + 1;
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                                std::numeric_limits<std::uint64_t>::max() % range;
    std::uint64_t draw = rng();
    while (draw >= limit) draw = rng();
    std::swap(cached_perm_[static_cast<std::size_t>(i)], cached_perm_[draw % range]);
  }
  cached_epoch_ = epoch;
  return cached_perm_;
}

std::vector<std::int64_t> DataOrder::rows_of_step(std::int64_t step) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(global_batch_));
  for (std::int64_t i = 0; i < global_batch_; ++i) {
    const std::int64_t g = (step - 1) * global_batch_ + i;
    out[static_cast<std::size_t>(i)] =
        shuffle_ ? permutation(g / rows_)[static_cast<std::size_t>(g % rows_)] : g % rows_;
  }
  return out;
}

std::vector<std::int32_t> gather_rows(const Dataset& data,
                                      const std::vector<std::int64_t>& row_ids) {
  const std::int64_t width = data.seq_len + 1;
  std::vector<std::int32_t> out;
  out.reserve(row_ids.size() * static_cast<std::size_t>(width));
  for (std::int64_t r : row_ids) {
    const auto first = data.tokens.begin() + r * width;
    out.insert(out.end(), first, first + width);
  }
  return out;
}

}  // namespace strata::app
