// Resharding-plan tests: every rule on a 2x4 mesh with hand-computed steps and bytes, S01 cases,
// empty and size-1-axis plans, and two oracles: a simulated mesh that runs every plan between
// all pairs of layouts literally (as the executor will) and checks every device's data, and the
// triangle inequality of shortest paths (no plan beats a detour through a third layout).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <map>

#include "solver/intra/resharding.h"

using namespace strata::solver;

namespace {

constexpr MeshShape kMesh{2, 4};  // rank = c0 * 4 + c1

ReshardPlan plan(const Shape& g, const char* from, const char* to, MeshShape mesh = kMesh) {
  return plan_resharding(g, DType::kF32, parse_layout(from), parse_layout(to), mesh);
}

// "op@axis[dim(->dim_to)]:B" per step, e.g. "reduce_scatter@1[1]:16384".
std::vector<std::string> describe(const ReshardPlan& p) {
  std::vector<std::string> out;
  for (const ReshardStep& s : p.steps) {
    std::string d = std::string(reshard_op_name(s.op)) + "@" + std::to_string(s.axis);
    if (s.dim >= 0) d += "[" + std::to_string(s.dim);
    if (s.dim_to >= 0) d += "->" + std::to_string(s.dim_to);
    if (s.dim >= 0) d += "]";
    out.push_back(d + ":" + std::to_string(s.bytes));
  }
  return out;
}
using Steps = std::vector<std::string>;

}  // namespace

// [8, 1024] f32 on 2x4 throughout: the whole tensor is 8*1024*4 = 32768 bytes.
TEST_CASE("resharding: one rule per step kind", "[intra]") {
  const Shape g{8, 1024};
  // partial -> split: S0,R|P1 -> S0,S1 is one reduce-scatter on axis 1 over dim 1;
  // B = the input each member holds = 8/2 * 1024 * 4 = 16384.
  CHECK(describe(plan(g, "S0,R|P1", "S0,S1")) == Steps{"reduce_scatter@1[1]:16384"});
  // partial -> replicated: all-reduce; B = each member's buffer = 4 * 1024 * 4 = 16384.
  CHECK(describe(plan(g, "S0,R|P1", "S0,R")) == Steps{"all_reduce@1:16384"});
  // split -> replicated: all-gather; B = the gathered result = 32768.
  CHECK(describe(plan(g, "S0,R", "R,R")) == Steps{"all_gather@0[0]:32768"});
  // replicated -> split: a free local slice, listed so the executor slices.
  CHECK(describe(plan(g, "R,R", "R,S1")) == Steps{"slice@1[1]:0"});
  // split dim 0 -> split dim 1 on axis 0: all-to-all; B = sum of the 2 members' buffers
  // = 2 * (4 * 1024 * 4) = 32768 (each sends (n-1)/n^2 B = 8192 bytes).
  CHECK(describe(plan(g, "S0,R", "R,S0")) == Steps{"all_to_all@0[0->1]:32768"});
  // not partial -> partial: free; the member with c1 == 0 keeps the value.
  CHECK(describe(plan(g, "R,R", "R,R|P1")) == Steps{"partialize@1:0"});

  const ReshardPlan rs = plan(g, "S0,R|P1", "S0,S1");
  REQUIRE(rs.steps.size() == 1);
  CHECK(rs.steps[0].before == parse_layout("S0,R|P1"));
  CHECK(rs.steps[0].after == parse_layout("S0,S1"));
  CHECK(rs.steps[0].local_before == Shape{4, 1024});
  CHECK(rs.steps[0].local_after == Shape{4, 256});
  CHECK(rs.steps[0].group_size == 4);
  CHECK(collective_of(rs.steps[0].op) == Collective::kReduceScatter);
  CHECK_THROWS(collective_of(ReshardOp::kSlice));
}

TEST_CASE("resharding: order minimises the bytes each device sends", "[intra]") {
  const Shape g{8, 1024};
  // Shrink first: R,R|P0 -> R,S1 slices axis 1 (free) and then all-reduces only a quarter:
  // B = 8 * 256 * 4 = 8192 (all-reducing first would move B = 32768).
  CHECK(describe(plan(g, "R,R|P0", "R,S1")) == Steps{"slice@1[1]:0", "all_reduce@0:8192"});
  // Reduce while the other axis is still split: S0,R|P1 -> R,R all-reduces 16384 on axis 1,
  // then gathers axis 0 (B = 32768).
  CHECK(describe(plan(g, "S0,R|P1", "R,R")) ==
        Steps{"all_reduce@1:16384", "all_gather@0[0]:32768"});
  // Partial over both axes -> R: a hierarchical all-reduce. Reduce-scatter axis 0 (B = 32768,
  // wire 16384), all-reduce axis 1 on half (B = 16384, wire 2*3/4*16384 = 24576), gather axis 0
  // (B = 32768, wire 16384): 57344 bytes per device, vs 16384*2 + 2*3/4*32768 = 81920 for two
  // full all-reduces. Ties with the axis-1-first variant go to axis 0 first.
  const ReshardPlan both = plan(g, "R,R|P01", "R,R");
  CHECK(describe(both) ==
        Steps{"reduce_scatter@0[0]:32768", "all_reduce@1:16384", "all_gather@0[0]:32768"});
  CHECK(wire_bytes_per_device(both) == Approx(57344));
  // Gathers of a 2-D split: equal wire either order (L*(d0*d1 - 1)); minor axis 1 first.
  // S0,S1 local 4*256*4 = 4096: gather axis 1 -> B = 16384, then axis 0 -> B = 32768.
  CHECK(describe(plan(g, "S0,S1", "R,R")) ==
        Steps{"all_gather@1[1]:16384", "all_gather@0[0]:32768"});
}

TEST_CASE("resharding: S01 gathers axis 1 first and slices axis 0 first", "[intra]") {
  const Shape g{8, 1024};
  // S01,R local 1*1024*4 = 4096: gather axis 1 -> S0,R (B = 16384), then axis 0 (B = 32768).
  CHECK(describe(plan(g, "S01,R", "R,R")) ==
        Steps{"all_gather@1[0]:16384", "all_gather@0[0]:32768"});
  CHECK(describe(plan(g, "R,R", "S01,R")) == Steps{"slice@0[0]:0", "slice@1[0]:0"});
  CHECK(describe(plan(g, "S0,R", "S01,R")) == Steps{"slice@1[0]:0"});
  CHECK(describe(plan(g, "S01,R", "S0,R")) == Steps{"all_gather@1[0]:16384"});
  // Partial over both -> S01: reduce-scatter axis 0 (B = 32768), then axis 1 (B = 16384).
  CHECK(describe(plan(g, "R,R|P01", "S01,R")) ==
        Steps{"reduce_scatter@0[0]:32768", "reduce_scatter@1[0]:16384"});
  // S01 -> S1 on the same dim cannot keep axis 1 (S10 does not exist). Gathering twice and
  // slicing sends 3/4*16384 + 1/2*32768 = 28672 bytes per device; the search finds a plan of
  // all-to-alls that keeps the buffer small, 13312 bytes:
  //   all-to-all axis 1, dim 0 -> 1: S01,R -> S0,S1, local 1x1024 (4096 B), B = 4*4096 = 16384,
  //     wire 3/16 * 16384 = 3072;
  //   all-gather axis 0, dim 0: -> R,S1, local 8x256, B = 8192, wire 4096;
  //   all-to-all axis 1, dim 1 -> 0: -> S1,R, B = 4*8192 = 32768, wire 3/16 * 32768 = 6144.
  const ReshardPlan p = plan(g, "S01,R", "S1,R");
  CHECK(describe(p) ==
        Steps{"all_to_all@1[0->1]:16384", "all_gather@0[0]:8192", "all_to_all@1[1->0]:32768"});
  CHECK(wire_bytes_per_device(p) == Approx(13312));
  // The last step always lands on the target.
  CHECK(p.steps.back().after == parse_layout("S1,R"));
  CHECK(p.steps.front().before == parse_layout("S01,R"));
}

TEST_CASE("resharding: empty plans and size-1 axes", "[intra]") {
  const Shape g{8, 1024};
  for (const char* l : {"R,R", "S0,S1", "S01,R", "S1,R|P0"}) {
    const ReshardPlan p = plan(g, l, l);
    CHECK(p.steps.empty());
    CHECK(p.total_bytes() == 0);
    CHECK(bytes_by_kind(p).empty());
  }
  // On a 4x1 mesh axis 1 splits nothing: S1 == R and P1 is complete.
  CHECK(plan(g, "S1,R", "R,R", MeshShape{4, 1}).steps.empty());
  CHECK(plan(g, "R,S0|P1", "R,S0", MeshShape{4, 1}).steps.empty());
  // Only axis 0 matters: S0,R|P1 -> R,S0 on 4x1 is one all-to-all of B = 4 * (2*1024*4) = 32768.
  CHECK(describe(plan(g, "S0,R|P1", "R,S0", MeshShape{4, 1})) == Steps{"all_to_all@0[0->1]:32768"});
  CHECK(plan(g, "S01,R", "R,R", MeshShape{1, 1}).steps.empty());
}

TEST_CASE("resharding: round trips and byte accounting", "[intra]") {
  const Shape g{8, 1024};
  // R -> S0,S1 -> R: two slices out; back, gathers minor axis first.
  CHECK(describe(plan(g, "R,R", "S0,S1")) == Steps{"slice@0[0]:0", "slice@1[1]:0"});
  CHECK(describe(plan(g, "S0,S1", "R,R")) ==
        Steps{"all_gather@1[1]:16384", "all_gather@0[0]:32768"});
  CHECK(plan(g, "R,R", "S0,R").total_bytes() == 0);
  CHECK(plan(g, "S0,R", "R,R").total_bytes() == 32768);

  // bytes_by_kind and time: S0,R|P1 -> R,R = all-reduce 16384 on axis 1 + all-gather 32768 on
  // axis 0. Links: axis 0 alpha 1e-5 s, beta 1e-9 s/B; axis 1 alpha 1e-6 s, beta 1e-10 s/B.
  const ReshardPlan p = plan(g, "S0,R|P1", "R,R");
  const auto bytes = bytes_by_kind(p);
  CHECK(bytes.size() == 2);
  CHECK(bytes.at(Collective::kAllReduce) == 16384);
  CHECK(bytes.at(Collective::kAllGather) == 32768);
  MeshAxisLinks links;
  links.axis[0] = {1e-5, 1e-9};
  links.axis[1] = {1e-6, 1e-10};
  // all-reduce on 4: 1e-6 + 1e-10 * 2*3/4 * 16384; all-gather on 2: 1e-5 + 1e-9 * 1/2 * 32768.
  const double expected = collective_time_s(Collective::kAllReduce, 16384, 4, links.axis[1]) +
                          collective_time_s(Collective::kAllGather, 32768, 2, links.axis[0]);
  CHECK(resharding_time_s(p, links) == Approx(expected));

  // Bad input: a target that does not divide names the target and the dim.
  CHECK_THROWS_WITH(plan({6, 1024}, "R,R", "S1,R"),
                    Catch::Contains("target") && Catch::Contains("dim 0"));
  CHECK_THROWS_WITH(plan(g, "R,R,R", "R,R"), Catch::Contains("source"));
}

// ---------------------------------------------------------------------------------- oracles
namespace {

// All valid layouts of `rank` dims (any split / partial combination).
std::vector<Layout> all_layouts(std::size_t rank) {
  std::vector<Layout> out;
  std::function<void(Layout&, std::size_t)> rec = [&](Layout& l, std::size_t d) {
    if (d == rank) {
      for (AxisSet p = 0; p < 4; ++p) {
        Layout full = l;
        full.partial = p;
        if (is_valid(full)) out.push_back(full);
      }
      return;
    }
    for (AxisSet a = 0; a < 4; ++a) {
      l.dims[d] = a;
      rec(l, d + 1);
    }
  };
  Layout l = Layout::replicated(rank);
  rec(l, 0);
  return out;
}

bool fits(const Shape& g, const Layout& l, MeshShape mesh) {
  try {
    check_layout(g, l, mesh);
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

// A row-major block of doubles.
struct Buffer {
  Shape shape;
  std::vector<double> data;
};

// Block j of n along dim d.
Buffer block(const Buffer& b, std::size_t d, std::int64_t j, std::int64_t n) {
  Buffer out{b.shape, {}};
  out.shape[d] = b.shape[d] / n;
  std::int64_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < d; ++i) outer *= b.shape[i];
  for (std::size_t i = d + 1; i < b.shape.size(); ++i) inner *= b.shape[i];
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t k = j * out.shape[d]; k < (j + 1) * out.shape[d]; ++k) {
      const auto at = b.data.begin() + (o * b.shape[d] + k) * inner;
      out.data.insert(out.data.end(), at, at + inner);
    }
  }
  return out;
}

// Blocks concatenated along dim d.
Buffer concat(const std::vector<Buffer>& parts, std::size_t d) {
  Buffer out{parts[0].shape, {}};
  out.shape[d] = parts[0].shape[d] * static_cast<std::int64_t>(parts.size());
  std::int64_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < d; ++i) outer *= out.shape[i];
  for (std::size_t i = d + 1; i < out.shape.size(); ++i) inner *= out.shape[i];
  const std::int64_t run = parts[0].shape[d] * inner;
  for (std::int64_t o = 0; o < outer; ++o) {
    for (const Buffer& p : parts) {
      const auto at = p.data.begin() + o * run;
      out.data.insert(out.data.end(), at, at + run);
    }
  }
  return out;
}

// The block of the global tensor T[i] = i + 1 given by per-dim slices.
Buffer global_block(const Shape& g, const std::vector<DimSlice>& s) {
  Buffer b{g, {}};
  for (std::int64_t i = 0; i < num_elements(g); ++i) b.data.push_back(static_cast<double>(i + 1));
  for (std::size_t d = 0; d < g.size(); ++d) {
    b = block(b, d, s[d].offset / s[d].size, g[d] / s[d].size);
  }
  return b;
}

// The distributed tensor: device (c0, c1) holds its shard; a partial layout splits each value
// over the partial axes with weights (c + 1) / (n (n + 1) / 2), which sum to 1 over the group.
std::vector<Buffer> distribute(const Shape& g, const Layout& l, MeshShape mesh) {
  std::vector<Buffer> bufs;
  for (std::int64_t r = 0; r < mesh.num_devices(); ++r) {
    const MeshCoord c = mesh_coords(mesh, r);
    Buffer b = global_block(g, shard_slice(g, l, mesh, c.c0, c.c1));
    double w = 1;
    if (l.partial & kAxis0) w *= (c.c0 + 1) / (mesh.d0 * (mesh.d0 + 1) / 2.0);
    if (l.partial & kAxis1) w *= (c.c1 + 1) / (mesh.d1 * (mesh.d1 + 1) / 2.0);
    for (double& x : b.data) x *= w;
    bufs.push_back(b);
  }
  return bufs;
}

// Whether `bufs` hold the tensor in layout `l`: each device's buffer, summed over the devices
// that differ from it only on partial axes, equals its shard of T.
bool holds(const Shape& g, const Layout& l, MeshShape mesh, const std::vector<Buffer>& bufs) {
  for (std::int64_t r = 0; r < mesh.num_devices(); ++r) {
    const MeshCoord c = mesh_coords(mesh, r);
    const Buffer want = global_block(g, shard_slice(g, l, mesh, c.c0, c.c1));
    std::vector<double> sum(want.data.size(), 0.0);
    for (std::int64_t q = 0; q < mesh.num_devices(); ++q) {
      const MeshCoord e = mesh_coords(mesh, q);
      if (e.c0 != c.c0 && !(l.partial & kAxis0)) continue;
      if (e.c1 != c.c1 && !(l.partial & kAxis1)) continue;
      if (bufs[q].shape != want.shape) return false;
      for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += bufs[q].data[i];
    }
    for (std::size_t i = 0; i < sum.size(); ++i) {
      if (std::abs(sum[i] - want.data[i]) > 1e-9 * (1 + std::abs(want.data[i]))) return false;
    }
  }
  return true;
}

// Runs one step literally on every device, as the executor will (resharding.h's semantics).
std::vector<Buffer> run_step(const ReshardStep& s, MeshShape mesh, const std::vector<Buffer>& in) {
  std::vector<Buffer> out = in;
  const std::int64_t n = s.group_size;
  for (std::int64_t r = 0; r < mesh.num_devices(); ++r) {
    const MeshCoord c = mesh_coords(mesh, r);
    const std::int64_t me = s.axis == 0 ? c.c0 : c.c1;
    std::vector<const Buffer*> group;  // members of my axis group, by coordinate
    for (std::int64_t j = 0; j < n; ++j) {
      group.push_back(&in[mesh_rank(mesh, s.axis == 0 ? j : c.c0, s.axis == 0 ? c.c1 : j)]);
    }
    const auto sum_of = [&](std::function<Buffer(const Buffer&)> f) {
      Buffer acc = f(*group[0]);
      for (std::int64_t j = 1; j < n; ++j) {
        const Buffer b = f(*group[j]);
        for (std::size_t i = 0; i < acc.data.size(); ++i) acc.data[i] += b.data[i];
      }
      return acc;
    };
    const auto d = static_cast<std::size_t>(s.dim);
    switch (s.op) {
      case ReshardOp::kAllReduce:
        out[r] = sum_of([](const Buffer& b) { return b; });
        break;
      case ReshardOp::kReduceScatter:
        out[r] = sum_of([&](const Buffer& b) { return block(b, d, me, n); });
        break;
      case ReshardOp::kAllGather: {
        std::vector<Buffer> parts;
        for (const Buffer* b : group) parts.push_back(*b);
        out[r] = concat(parts, d);
        break;
      }
      case ReshardOp::kAllToAll: {
        std::vector<Buffer> parts;
        for (const Buffer* b : group) parts.push_back(block(*b, s.dim_to, me, n));
        out[r] = concat(parts, d);
        break;
      }
      case ReshardOp::kSlice:
        out[r] = block(in[r], d, me, n);
        break;
      case ReshardOp::kPartialize:
        if (me != 0) std::fill(out[r].data.begin(), out[r].data.end(), 0.0);
        break;
    }
  }
  return out;
}

// Runs every plan between all pairs of layouts that fit `g`, checking each step's data, shapes
// and bytes; returns the number of plans run.
int simulate_all(const Shape& g, MeshShape mesh) {
  int plans = 0;
  const std::int64_t elem = 4;
  std::vector<Layout> layouts;
  for (const Layout& l : all_layouts(g.size())) {
    if (fits(g, l, mesh)) layouts.push_back(l);
  }
  for (const Layout& from : layouts) {
    for (const Layout& to : layouts) {
      const ReshardPlan p = plan_resharding(g, DType::kF32, from, to, mesh);
      std::vector<Buffer> bufs = distribute(g, from, mesh);
      Layout at = normalized(from, mesh);
      for (const ReshardStep& s : p.steps) {
        INFO(to_string(from) << " -> " << to_string(to) << " step " << reshard_op_name(s.op));
        REQUIRE(s.before == at);
        bufs = run_step(s, mesh, bufs);
        REQUIRE(holds(g, s.after, mesh, bufs));
        REQUIRE(bufs[0].shape == s.local_after);
        const std::int64_t before = num_elements(s.local_before) * elem;
        const std::int64_t after = num_elements(s.local_after) * elem;
        switch (s.op) {
          case ReshardOp::kAllReduce:
            REQUIRE(s.bytes == before);
            break;
          case ReshardOp::kReduceScatter:
            REQUIRE(s.bytes == before);
            break;
          case ReshardOp::kAllGather:
            REQUIRE(s.bytes == after);
            break;
          case ReshardOp::kAllToAll:
            REQUIRE(s.bytes == s.group_size * before);
            break;
          default:
            REQUIRE(s.bytes == 0);
            break;
        }
        at = s.after;
      }
      INFO(to_string(from) << " -> " << to_string(to));
      REQUIRE(at == normalized(to, mesh));
      REQUIRE(holds(g, to, mesh, bufs));
      ++plans;
    }
  }
  return plans;
}

}  // namespace

TEST_CASE("resharding: every plan between all layouts runs correctly on a simulated mesh",
          "[intra]") {
  // Rank 2 has 16 layouts (each axis: dim 0, dim 1, partial or unused; S01 axis-0-major only),
  // rank 3 has 25. [8, 8] on 2x4: every layout fits (8 divides by 2, 4 and 8): 16^2 plans.
  CHECK(simulate_all({8, 8}, kMesh) == 256);
  // [2, 4, 8]: S1 and S01 do not fit dim 0 (19 layouts fit); plans must avoid undividable
  // intermediates.
  CHECK(simulate_all({2, 4, 8}, kMesh) == 19 * 19);
  CHECK(simulate_all({4, 6}, MeshShape{2, 3}) > 50);
  // 4x1: axis 1 splits nothing; all 16 layouts fit and are run.
  CHECK(simulate_all({8, 4}, MeshShape{4, 1}) == 256);
}

TEST_CASE("resharding: no plan beats a detour through a third layout", "[intra]") {
  // Shortest paths satisfy wire(a->c) <= wire(a->b) + wire(b->c) for every b.
  const Shape g{4, 8};
  std::vector<Layout> layouts;
  for (const Layout& l : all_layouts(2)) {
    if (fits(g, l, kMesh)) layouts.push_back(l);
  }
  std::map<std::pair<Layout, Layout>, double> wire;
  for (const Layout& a : layouts) {
    for (const Layout& b : layouts) {
      wire[{a, b}] = wire_bytes_per_device(plan_resharding(g, DType::kF32, a, b, kMesh));
    }
  }
  int violations = 0;
  for (const Layout& a : layouts) {
    for (const Layout& b : layouts) {
      for (const Layout& c : layouts) {
        if (wire[{a, c}] > wire[{a, b}] + wire[{b, c}] + 1e-9) ++violations;
      }
    }
  }
  CHECK(violations == 0);
}

TEST_CASE("resharding: deterministic", "[intra]") {
  const Shape g{8, 1024};
  for (const char* from : {"S01,R", "R,R|P01", "S1,R|P0"}) {
    const auto a = describe(plan(g, from, "S0,S1"));
    const auto b = describe(plan(g, from, "S0,S1"));
    CHECK(a == b);
  }
}
