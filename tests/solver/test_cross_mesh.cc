// Cross-mesh transfer tests (solver/intra/cross_mesh.h): plan_cross_mesh against an independent
// oracle on many random (shape, source layout and mesh, destination layout and mesh) cases: every
// element of every destination shard is counted on an explicit grid and must be covered exactly
// once, every piece must lie inside its sender's block and its receiver's block with consistent
// offsets, and the sender must be the header's round-robin choice among the block's holders.
// Plus hand-computed senders for replicated sources, and the partial-layout errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "solver/intra/cross_mesh.h"

using namespace strata::solver;

namespace {

// Meshes 1x1 .. 2x4 (and their transposes), plus 1x3, 3x1 and 2x3 so that source and destination
// splits of one dim need not nest (a dim of 6 cut in 2 and in 3: pieces straddle blocks).
const std::vector<MeshShape> kMeshes = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 4}, {4, 1},
                                        {2, 4}, {4, 2}, {1, 3}, {3, 1}, {2, 3}};

std::int64_t gcd(std::int64_t a, std::int64_t b) { return b == 0 ? a : gcd(b, a % b); }
std::int64_t lcm(std::int64_t a, std::int64_t b) { return a / gcd(a, b) * b; }

// A random non-partial layout of `rank` dims: each mesh axis splits one random dim or nothing;
// both axes on one dim is S01 (axis 0 major, the only order layout.h has).
Layout random_layout(std::size_t rank, std::mt19937& rng) {
  Layout l = Layout::replicated(rank);
  for (int axis = 0; axis < 2; ++axis) {
    std::uniform_int_distribution<int> pick(-1, static_cast<int>(rank) - 1);
    const int d = pick(rng);
    if (d >= 0) l.dims[static_cast<std::size_t>(d)] |= axis_bit(axis);
  }
  return l;
}

// Element count of a box.
std::int64_t volume(const Shape& box) {
  std::int64_t n = 1;
  for (std::int64_t d : box) n *= d;
  return n;
}

// Row-major linear index of `idx` in a box of extents `ext`.
std::int64_t linear(const Shape& idx, const Shape& ext) {
  std::int64_t l = 0;
  for (std::size_t d = 0; d < ext.size(); ++d) l = l * ext[d] + idx[d];
  return l;
}

// Checks one case completely; returns the number of pieces.
std::size_t check_case(const Shape& global, const Layout& src, MeshShape sm, const Layout& dst,
                       MeshShape dm) {
  INFO("global rank " << global.size() << ", src " << to_string(src) << " on " << sm.d0 << "x"
                      << sm.d1 << ", dst " << to_string(dst) << " on " << dm.d0 << "x" << dm.d1);
  const std::vector<CrossMeshPiece> pieces = plan_cross_mesh(global, src, sm, dst, dm);
  const std::size_t rank = global.size();

  // Independent reference: every source device's block, the distinct blocks in order of their
  // first holder (ascending rank), and each block's holders.
  std::vector<std::vector<DimSlice>> src_block(static_cast<std::size_t>(sm.num_devices()));
  for (std::int64_t r = 0; r < sm.num_devices(); ++r)
    src_block[static_cast<std::size_t>(r)] = shard_slice(global, src, sm, r / sm.d1, r % sm.d1);
  std::vector<std::vector<DimSlice>> distinct;
  std::vector<std::vector<std::int64_t>> holders;
  for (std::int64_t r = 0; r < sm.num_devices(); ++r) {
    const auto& b = src_block[static_cast<std::size_t>(r)];
    const auto it = std::find(distinct.begin(), distinct.end(), b);
    if (it == distinct.end()) {
      distinct.push_back(b);
      holders.push_back({r});
    } else {
      holders[static_cast<std::size_t>(it - distinct.begin())].push_back(r);
    }
  }

  // Explicit coverage grids, one per destination device, over its local shard.
  const Shape local = local_shape(global, dst, dm);
  const std::int64_t local_n = volume(local);
  std::vector<std::vector<int>> covered(static_cast<std::size_t>(dm.num_devices()),
                                        std::vector<int>(static_cast<std::size_t>(local_n), 0));
  std::int64_t total = 0;
  std::int64_t prev_dst = -1, prev_block = -1;
  for (const CrossMeshPiece& p : pieces) {
    REQUIRE(p.src_rank >= 0);
    REQUIRE(p.src_rank < sm.num_devices());
    REQUIRE(p.dst_rank >= 0);
    REQUIRE(p.dst_rank < dm.num_devices());
    REQUIRE(p.box.size() == rank);
    REQUIRE(p.global_offset.size() == rank);
    REQUIRE(p.src_offset.size() == rank);
    REQUIRE(p.dst_offset.size() == rank);
    const auto& sb = src_block[static_cast<std::size_t>(p.src_rank)];
    const std::vector<DimSlice> db =
        shard_slice(global, dst, dm, p.dst_rank / dm.d1, p.dst_rank % dm.d1);
    for (std::size_t d = 0; d < rank; ++d) {
      CHECK(p.box[d] > 0);
      // inside the sender's block and the receiver's block
      CHECK(p.global_offset[d] >= sb[d].offset);
      CHECK(p.global_offset[d] + p.box[d] <= sb[d].offset + sb[d].size);
      CHECK(p.global_offset[d] >= db[d].offset);
      CHECK(p.global_offset[d] + p.box[d] <= db[d].offset + db[d].size);
      // offsets consistent: global = src block offset + src_offset = dst block offset + dst_offset
      CHECK(p.global_offset[d] == sb[d].offset + p.src_offset[d]);
      CHECK(p.global_offset[d] == db[d].offset + p.dst_offset[d]);
    }
    CHECK(p.elements() == volume(p.box));
    total += p.elements();

    // The sender is the header's round-robin choice: block b's holder (r + b) mod S.
    const auto it = std::find(distinct.begin(), distinct.end(), sb);
    REQUIRE(it != distinct.end());
    const auto b = static_cast<std::int64_t>(it - distinct.begin());
    const auto& h = holders[static_cast<std::size_t>(b)];
    CHECK(p.src_rank ==
          h[static_cast<std::size_t>((p.dst_rank + b) % static_cast<std::int64_t>(h.size()))]);
    // Ordered by destination rank, then by source block (each block at most once per receiver:
    // blocks and shards are boxes, so their intersection is one box).
    CHECK(p.dst_rank >= prev_dst);
    if (p.dst_rank == prev_dst) CHECK(b > prev_block);
    prev_dst = p.dst_rank;
    prev_block = b;

    // Count coverage element by element on the receiver's grid.
    auto& grid = covered[static_cast<std::size_t>(p.dst_rank)];
    Shape idx(rank, 0);
    for (std::int64_t e = 0; e < p.elements(); ++e) {
      std::int64_t rest = e;
      for (std::size_t d = rank; d-- > 0;) {
        idx[d] = p.dst_offset[d] + rest % p.box[d];
        rest /= p.box[d];
      }
      ++grid[static_cast<std::size_t>(linear(idx, local))];
    }
  }
  for (std::size_t r = 0; r < covered.size(); ++r) {
    INFO("destination rank " << r);
    const auto bad =
        std::count_if(covered[r].begin(), covered[r].end(), [](int c) { return c != 1; });
    CHECK(bad == 0);
  }
  // Exactly the destination layout's total: local elements x devices.
  CHECK(total == local_n * dm.num_devices());
  return pieces.size();
}

}  // namespace

TEST_CASE("cross-mesh pieces cover every destination shard exactly once (random cases)",
          "[cross_mesh]") {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<std::size_t> pick_rank(1, 4);
  std::uniform_int_distribution<std::size_t> pick_mesh(0, kMeshes.size() - 1);
  std::uniform_int_distribution<std::int64_t> pick_mult(1, 2);
  int s01 = 0, replicated_src = 0, multi_holder = 0;
  for (int iter = 0; iter < 600; ++iter) {
    const std::size_t rank = pick_rank(rng);
    const MeshShape sm = kMeshes[pick_mesh(rng)];
    const MeshShape dm = kMeshes[pick_mesh(rng)];
    const Layout src = random_layout(rank, rng);
    const Layout dst = random_layout(rank, rng);
    // Each dim: a multiple of both layouts' chunk counts, so both divide.
    Shape global(rank);
    for (std::size_t d = 0; d < rank; ++d) {
      global[d] = lcm(axes_size(src.dims[d], sm), axes_size(dst.dims[d], dm)) * pick_mult(rng);
    }
    s01 += std::count(src.dims.begin(), src.dims.end(), kBothAxes) +
           std::count(dst.dims.begin(), dst.dims.end(), kBothAxes);
    if (src.used_axes() == kNoAxes) ++replicated_src;
    std::int64_t chunks = 1;  // distinct source blocks
    for (AxisSet a : src.dims) chunks *= axes_size(a, sm);
    if (chunks < sm.num_devices()) ++multi_holder;  // some block has several holders
    check_case(global, src, sm, dst, dm);
  }
  // The generator did reach the interesting cases.
  CHECK(s01 > 20);
  CHECK(replicated_src > 20);
  CHECK(multi_holder > 100);
}

TEST_CASE("cross-mesh hand-picked cases: S01, replicated and straddling blocks", "[cross_mesh]") {
  // S01 source on 2x4 (8 chunks of dim 1) into S01 destination on 2x2 (4 chunks): each
  // destination device takes two whole source chunks, one piece each. 4 x 2 = 8 pieces.
  CHECK(check_case({2, 16}, parse_layout("R,S01"), {2, 4}, parse_layout("R,S01"), {2, 2}) == 8);
  // Dim 0 of 6 cut in 2 (source, S0 on 2x1) and in 3 (destination, S1 on 1x3): destination 1
  // needs rows [2, 4), straddling source blocks [0, 3) and [3, 6): 1 + 2 + 1 = 4 pieces.
  CHECK(check_case({6, 4}, parse_layout("S0,R"), {2, 1}, parse_layout("S1,R"), {1, 3}) == 4);
  // Replicated to replicated: every destination device gets the whole tensor in one piece.
  CHECK(check_case({4, 4}, parse_layout("R,R"), {2, 2}, parse_layout("R,R"), {1, 3}) == 3);
  // Scalars (rank 0): one block, held by both source devices; destination rank r gets the
  // value from holder (r + 0) mod 2 = r.
  const auto scalar = plan_cross_mesh({}, parse_layout("-"), {1, 2}, parse_layout("-"), {2, 1});
  REQUIRE(scalar.size() == 2);
  CHECK(scalar[0].src_rank == 0);
  CHECK(scalar[1].src_rank == 1);
  CHECK(scalar[1].dst_rank == 1);
  CHECK(scalar[0].elements() == 1);
  // Rank-1, same mesh and layout: one piece per device, from the device of the same rank.
  const auto same = plan_cross_mesh({8}, parse_layout("S01"), {2, 2}, parse_layout("S01"), {2, 2});
  REQUIRE(same.size() == 4);
  for (std::size_t r = 0; r < 4; ++r) {
    CHECK(same[r].dst_rank == static_cast<std::int64_t>(r));
    CHECK(same[r].src_rank == static_cast<std::int64_t>(r));
    CHECK(same[r].box == Shape{2});
    CHECK(same[r].global_offset == Shape{2 * static_cast<std::int64_t>(r)});
  }
}

// R,R on 1x4: one distinct block (b = 0) held by S = 4 devices {0, 1, 2, 3}. Destination R,S1 on
// 1x4: rank r needs columns [2r, 2r + 2) of [4, 8]; its piece comes from holder (r + 0) mod 4 = r.
// So each source device sends exactly one piece, 4 x 2 = 8 elements.
TEST_CASE("cross-mesh round robin: a replicated source shares the load", "[cross_mesh]") {
  const auto pieces =
      plan_cross_mesh({4, 8}, parse_layout("R,R"), {1, 4}, parse_layout("R,S1"), {1, 4});
  REQUIRE(pieces.size() == 4);
  std::vector<int> sent(4, 0);
  for (std::size_t i = 0; i < 4; ++i) {
    const CrossMeshPiece& p = pieces[i];
    const auto r = static_cast<std::int64_t>(i);
    CHECK(p.dst_rank == r);
    CHECK(p.src_rank == (r + 0) % 4);
    CHECK(p.box == Shape{4, 2});
    CHECK(p.global_offset == Shape{0, 2 * r});
    CHECK(p.src_offset == Shape{0, 2 * r});  // the source holds the whole tensor
    CHECK(p.dst_offset == Shape{0, 0});
    ++sent[static_cast<std::size_t>(p.src_rank)];
  }
  CHECK(sent == std::vector<int>{1, 1, 1, 1});

  // S0,R on 2x2: block 0 (rows [0, 2)) held by ranks {0, 1}, block 1 (rows [2, 4)) by {2, 3}.
  // Destination R,S1 on 1x4 (columns [2r, 2r + 2), all rows) needs both blocks:
  //   block 0 from holders0[(r + 0) mod 2], block 1 from holders1[(r + 1) mod 2]
  //   r = 0: 0, 3   r = 1: 1, 2   r = 2: 0, 3   r = 3: 1, 2
  // so every source device sends exactly two pieces.
  const auto two =
      plan_cross_mesh({4, 8}, parse_layout("S0,R"), {2, 2}, parse_layout("R,S1"), {1, 4});
  REQUIRE(two.size() == 8);
  const std::vector<std::int64_t> expected_src = {0, 3, 1, 2, 0, 3, 1, 2};
  std::vector<int> count(4, 0);
  for (std::size_t i = 0; i < 8; ++i) {
    const auto r = static_cast<std::int64_t>(i / 2);
    CHECK(two[i].dst_rank == r);
    CHECK(two[i].src_rank == expected_src[i]);
    CHECK(two[i].box == Shape{2, 2});
    CHECK(two[i].global_offset == Shape{i % 2 == 0 ? 0 : 2, 2 * r});
    CHECK(two[i].src_offset == Shape{0, 2 * r});
    CHECK(two[i].dst_offset == Shape{i % 2 == 0 ? 0 : 2, 0});
    ++count[static_cast<std::size_t>(two[i].src_rank)];
  }
  CHECK(count == std::vector<int>{2, 2, 2, 2});
}

TEST_CASE("cross-mesh rejects partial layouts and layouts that do not fit", "[cross_mesh]") {
  const Shape g{4, 8};
  CHECK_THROWS_AS(plan_cross_mesh(g, parse_layout("R,R|P0"), {2, 2}, parse_layout("R,R"), {2, 2}),
                  std::invalid_argument);
  CHECK_THROWS_AS(plan_cross_mesh(g, parse_layout("S0,R"), {2, 2}, parse_layout("R,R|P1"), {1, 2}),
                  std::invalid_argument);
  CHECK_THROWS_AS(plan_cross_mesh(g, parse_layout("R,S1|P0"), {2, 2}, parse_layout("R,S1"), {2, 2}),
                  std::invalid_argument);
  // a partial over a size-1 axis is still refused (the header says: a partial layout throws)
  CHECK_THROWS_AS(plan_cross_mesh(g, parse_layout("R,R|P0"), {1, 2}, parse_layout("R,R"), {1, 2}),
                  std::invalid_argument);
  // dims that do not divide, and a rank mismatch (check_layout)
  CHECK_THROWS_AS(
      plan_cross_mesh({3, 8}, parse_layout("S0,R"), {2, 1}, parse_layout("R,R"), {1, 1}),
      std::invalid_argument);
  CHECK_THROWS_AS(plan_cross_mesh(g, parse_layout("R"), {1, 1}, parse_layout("R,R"), {1, 1}),
                  std::invalid_argument);
}

// landing_layout: every unused mesh axis of size > 1 goes to the first dim (in dim order) that
// can take it (unsplit, or for axis 1 a dim split on axis 0 only -> S01) and divides; axis 0 is
// placed before axis 1.
TEST_CASE("cross-mesh landing layout: one copy crosses a replicating destination", "[cross_mesh]") {
  const auto land = [](const Shape& g, const char* dst, MeshShape m) {
    return to_string(landing_layout(g, parse_layout(dst), m));
  };
  // 1x4: axis 0 has size 1 and is never added; axis 1 goes to dim 0 (4 % 4 == 0).
  CHECK(land({4, 8}, "R,R", {1, 4}) == "S1,R");
  // dim 0 = 3 does not divide by 4: axis 1 goes to dim 1.
  CHECK(land({3, 8}, "R,R", {1, 4}) == "R,S1");
  // 2x2: axis 0 -> dim 0 (S0), then axis 1 joins it as S01 (4 % (2 x 2) == 0).
  CHECK(land({4, 8}, "R,R", {2, 2}) == "S01,R");
  // dim 0 = 2 takes S0 but not S01 (2 % 4 != 0): axis 1 goes to dim 1.
  CHECK(land({2, 8}, "R,R", {2, 2}) == "S0,S1");
  // Already split on axis 0: axis 1 extends it to S01.
  CHECK(land({4, 8}, "S0,R", {2, 2}) == "S01,R");
  // Split on axis 1 only: axis 0 cannot join a dim split on axis 1 (no S10), so dim 1 takes it.
  CHECK(land({4, 8}, "S1,R", {2, 2}) == "S1,S0");
  // Fully split destinations and single devices land as they are.
  CHECK(land({4, 8}, "S0,S1", {2, 2}) == "S0,S1");
  CHECK(land({4, 8}, "R,S01", {2, 2}) == "R,S01");
  CHECK(land({4, 8}, "R,R", {1, 1}) == "R,R");
  // Nothing divides: unchanged. A scalar cannot be split either.
  CHECK(land({3}, "R", {2, 2}) == "R");
  CHECK(land({}, "-", {2, 4}) == "-");
  // 2x1: only axis 0 is added.
  CHECK(land({4, 8}, "R,R", {2, 1}) == "S0,R");
  // A partial destination and a misfit throw.
  CHECK_THROWS_AS(landing_layout({4, 8}, parse_layout("R,R|P0"), {2, 2}), std::invalid_argument);
  CHECK_THROWS_AS(landing_layout({3, 8}, parse_layout("S0,R"), {2, 2}), std::invalid_argument);

  // One copy crosses: from R,R on 1x4 to a replicated 2x2 destination landing as S01,R, the
  // pieces carry the tensor once (32 elements), not 4 times.
  std::int64_t total = 0;
  for (const CrossMeshPiece& p :
       plan_cross_mesh({4, 8}, parse_layout("R,R"), {1, 4},
                       landing_layout({4, 8}, parse_layout("R,R"), {2, 2}), {2, 2}))
    total += p.elements();
  CHECK(total == 32);
}
