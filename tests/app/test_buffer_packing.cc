// Buffer packing (app/buffer_packing.h): every packing is checked pair by pair (buffers whose
// lifetimes overlap never share a byte), against the live-bytes lower bound, and, where the
// optimum is known (equal sizes: interval-graph colouring), against it.
#include <catch2/catch.hpp>
#include <random>

#include "app/buffer_packing.h"

namespace strata {
namespace {

using app::BufferLifetime;

std::int64_t aligned(std::int64_t bytes, std::int64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

// Whether `offsets` place every buffer inside `arena`, aligned, with no two buffers that are
// live at the same position sharing a byte.
bool valid(const std::vector<BufferLifetime>& b, const app::BufferPacking& p,
           std::int64_t alignment) {
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (p.offset[i] < 0 || p.offset[i] % alignment != 0) return false;
    if (p.offset[i] + aligned(b[i].bytes, alignment) > p.arena_bytes) return false;
    for (std::size_t j = i + 1; j < b.size(); ++j) {
      bool together = false;
      for (const auto& x : b[i].live)
        for (const auto& y : b[j].live) together |= x.first <= y.last && y.first <= x.last;
      const bool apart =
          p.offset[i] + b[i].bytes <= p.offset[j] || p.offset[j] + b[j].bytes <= p.offset[i];
      if (together && !apart && b[i].bytes > 0 && b[j].bytes > 0) return false;
    }
  }
  return true;
}

// n buffers of random size (or all 1000 bytes), each live in `intervals` random disjoint
// intervals of positions 0..100.
std::vector<BufferLifetime> random_buffers(std::mt19937& rng, int n, bool equal_sizes,
                                           int intervals = 1) {
  std::uniform_int_distribution<std::int64_t> size(1, 5000), start(0, 40), length(0, 12),
      gap(1, 20);
  std::vector<BufferLifetime> b;
  for (int i = 0; i < n; ++i) {
    BufferLifetime x{equal_sizes ? 1000 : size(rng), {}};
    std::int64_t at = start(rng);
    for (int k = 0; k < intervals; ++k) {
      x.live.push_back({at, at + length(rng)});
      at = x.live.back().last + gap(rng);
    }
    b.push_back(x);
  }
  return b;
}

// Packs `b` (alignment 1) and expects these offsets and an arena equal to the bound.
void check_packing(const std::vector<BufferLifetime>& b, const std::vector<std::int64_t>& offsets,
                   std::int64_t arena) {
  const auto p = app::pack_buffers(b, 1);
  CHECK(p.offset == offsets);
  CHECK(p.arena_bytes == arena);
  CHECK(app::packing_lower_bound(b, 1) == arena);
  CHECK(valid(b, p, 1));
}

TEST_CASE("pack_buffers: disjoint lifetimes share the arena, overlapping ones do not") {
  // a [0, 1] and b [2, 3] never live together: both at offset 0; c [1, 2] overlaps both.
  check_packing({{300, {{0, 1}}}, {200, {{2, 3}}}, {100, {{1, 2}}}}, {0, 0, 300}, 400);
}

TEST_CASE("pack_buffers: a buffer live twice shares with what lives in between") {
  // a lives in [0, 1] and [6, 7] (a copy recreated by two bucket executions), b in [2, 5]: they
  // share offset 0; c [1, 6] meets both and goes above the larger.
  check_packing({{300, {{0, 1}, {6, 7}}}, {200, {{2, 5}}}, {100, {{1, 6}}}}, {0, 0, 300}, 400);
}

TEST_CASE("pack_buffers: sizes round up to the alignment") {
  const std::vector<BufferLifetime> b{{1, {{0, 0}}}, {257, {{0, 0}}}, {0, {{0, 0}}}};
  const auto p = app::pack_buffers(b, 256);
  CHECK(p.arena_bytes == 3 * 256);
  CHECK(app::packing_lower_bound(b, 256) == 3 * 256);
  CHECK(valid(b, p, 256));
}

TEST_CASE("pack_buffers: random lifetimes give valid packings no smaller than the bound") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const auto b = random_buffers(rng, 1 + trial % 40, false, 1 + trial % 3);
    const std::int64_t alignment = trial % 2 ? 256 : 1;
    const auto p = app::pack_buffers(b, alignment);
    INFO("trial " << trial);
    REQUIRE(valid(b, p, alignment));
    const std::int64_t bound = app::packing_lower_bound(b, alignment);
    CHECK(p.arena_bytes >= bound);
    std::int64_t sum = 0;
    for (const auto& x : b) sum += aligned(x.bytes, alignment);
    CHECK(p.arena_bytes <= sum);
  }
}

TEST_CASE("pack_buffers: equal sizes reach the optimum (the most buffers live at once)") {
  // With one size the greedy places buffers in order of their first position at the lowest free
  // slot: first-fit colouring of an interval graph, which uses as many slots as its largest
  // clique, the bound.
  std::mt19937 rng(5);
  for (int trial = 0; trial < 100; ++trial) {
    const auto b = random_buffers(rng, 1 + trial % 50, true);
    const auto p = app::pack_buffers(b, 8);
    INFO("trial " << trial);
    REQUIRE(valid(b, p, 8));
    CHECK(p.arena_bytes == app::packing_lower_bound(b, 8));
  }
}

TEST_CASE("pack_buffers: bad input is refused") {
  using L = std::vector<app::LiveInterval>;
  CHECK_THROWS_AS(app::pack_buffers({{-1, L{{0, 0}}}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(app::pack_buffers({{1, L{{3, 2}}}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(app::pack_buffers({{1, L{}}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(app::pack_buffers({{1, L{{0, 4}, {4, 5}}}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(app::pack_buffers({{1, L{{6, 7}, {0, 1}}}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(app::pack_buffers({{1, L{{0, 0}}}}, 0), std::invalid_argument);
  CHECK(app::pack_buffers({}, 1).arena_bytes == 0);
}

}  // namespace
}  // namespace strata
