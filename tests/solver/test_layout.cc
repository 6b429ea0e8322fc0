// Layout tests: notation round trips, validity, local shapes, per-device slices on a 2x4 mesh.
// Mesh 2x4: rank = c0 * 4 + c1; axis 0 has 2 devices, axis 1 has 4.
#include <catch2/catch.hpp>

#include "solver/intra/layout.h"

using namespace strata::solver;

namespace {
constexpr MeshShape kMesh{2, 4};
}

TEST_CASE("layout notation round-trips and rejects bad text", "[intra]") {
  for (const char* text : {"R", "S0", "S1", "S01", "S0,R", "S0,R|P1", "R,S01", "R,R|P01", "S1,S0",
                           "-", "-|P0", "R,S1,R|P0"}) {
    CHECK(to_string(parse_layout(text)) == text);
  }
  const Layout l = parse_layout("S0,R|P1");
  CHECK(l.dims == std::vector<AxisSet>{kAxis0, kNoAxes});
  CHECK(l.partial == kAxis1);
  CHECK(l.dim_of_axis(0) == 0);
  CHECK(l.dim_of_axis(1) == -1);
  CHECK(l.used_axes() == kBothAxes);
  CHECK(parse_layout("-").rank() == 0);

  CHECK_THROWS_WITH(parse_layout("S0,S0"), Catch::Contains("more than once"));
  CHECK_THROWS_WITH(parse_layout("S0|P0"), Catch::Contains("more than once"));
  CHECK_THROWS_WITH(parse_layout("S01,S1"), Catch::Contains("more than once"));
  CHECK_THROWS_WITH(parse_layout("S2,R"), Catch::Contains("dim 0 'S2'"));
  CHECK_THROWS_WITH(parse_layout("S10"), Catch::Contains("dim 0"));  // axis-1-major: no such thing
  CHECK_THROWS_WITH(parse_layout("R|Q1"), Catch::Contains("P0, P1 or P01"));
  CHECK_THROWS(parse_layout(""));
  CHECK_THROWS(parse_layout("R,,R"));
}

TEST_CASE("layout validity", "[intra]") {
  CHECK(is_valid(Layout{{kAxis0, kAxis1}, kNoAxes}));
  CHECK(is_valid(Layout{{kBothAxes, kNoAxes}, kNoAxes}));
  CHECK_FALSE(is_valid(Layout{{kAxis0, kAxis0}, kNoAxes}));
  CHECK_FALSE(is_valid(Layout{{kAxis1, kNoAxes}, kAxis1}));
  CHECK_FALSE(is_valid(Layout{{4}, kNoAxes}));  // no axis 2
}

TEST_CASE("local shapes divide by the splitting axes", "[intra]") {
  const Shape g{8, 1024};
  CHECK(local_shape(g, parse_layout("R,R"), kMesh) == Shape{8, 1024});
  CHECK(local_shape(g, parse_layout("S0,R"), kMesh) == Shape{4, 1024});   // 8/2
  CHECK(local_shape(g, parse_layout("S0,S1"), kMesh) == Shape{4, 256});   // 1024/4
  CHECK(local_shape(g, parse_layout("S01,R"), kMesh) == Shape{1, 1024});  // 8/(2*4)
  CHECK(local_shape(g, parse_layout("R,S01"), kMesh) == Shape{8, 128});
  CHECK(local_bytes(g, DType::kF32, parse_layout("S0,S1"), kMesh) == 4 * 256 * 4);
  CHECK(local_shape({}, parse_layout("-|P0"), kMesh).empty());

  // 6 rows do not divide by 4: the message names the dim.
  CHECK_THROWS_WITH(local_shape({6, 8}, parse_layout("S1,R"), kMesh),
                    Catch::Contains("dim 0") && Catch::Contains("does not divide by 4"));
  CHECK_THROWS_WITH(local_shape({8, 6}, parse_layout("R,S01"), kMesh),
                    Catch::Contains("dim 1") && Catch::Contains("does not divide by 8"));
  CHECK_THROWS_WITH(local_shape({8}, parse_layout("R,R"), kMesh), Catch::Contains("rank"));
  CHECK_THROWS(local_shape({8}, parse_layout("R"), MeshShape{0, 4}));
}

TEST_CASE("shard slices per device coordinate", "[intra]") {
  const Shape g{8, 16};
  // S0,S1: device (1, 2) holds rows [4, 8) (chunk 1 of 2) and columns [8, 12) (chunk 2 of 4).
  CHECK(shard_slice(g, parse_layout("S0,S1"), kMesh, 1, 2) ==
        std::vector<DimSlice>{{4, 4}, {8, 4}});
  // S01 is axis-0-major: device (1, 2) holds chunk 1*4 + 2 = 6 of 8 -> rows [6, 7).
  CHECK(shard_slice(g, parse_layout("S01,R"), kMesh, 1, 2) ==
        std::vector<DimSlice>{{6, 1}, {0, 16}});
  // S1 on columns: device (0, 3) holds chunk 3 of 4 -> [12, 16); partial changes no slice.
  CHECK(shard_slice(g, parse_layout("R,S1|P0"), kMesh, 0, 3) ==
        std::vector<DimSlice>{{0, 8}, {12, 4}});
  CHECK_THROWS_AS(shard_slice(g, parse_layout("S0,S1"), kMesh, 2, 0), std::out_of_range);

  // The S01 slices of all 8 devices tile the dim exactly once, in rank order.
  for (std::int64_t r = 0; r < kMesh.num_devices(); ++r) {
    const MeshCoord c = mesh_coords(kMesh, r);
    CHECK(mesh_rank(kMesh, c.c0, c.c1) == r);
    CHECK(shard_slice(g, parse_layout("R,S01"), kMesh, c.c0, c.c1)[1] == DimSlice{2 * r, 2});
  }
}

TEST_CASE("normalized drops size-1 axes", "[intra]") {
  CHECK(normalized(parse_layout("S1,S0"), MeshShape{4, 1}) == parse_layout("R,S0"));
  CHECK(normalized(parse_layout("R,S0|P1"), MeshShape{4, 1}) == parse_layout("R,S0"));
  CHECK(normalized(parse_layout("S01,R"), MeshShape{1, 8}) == parse_layout("S1,R"));
  CHECK(normalized(parse_layout("R,S1|P0"), MeshShape{1, 8}) == parse_layout("R,S1"));
  CHECK(normalized(parse_layout("R,S1|P0"), kMesh) == parse_layout("R,S1|P0"));
}
