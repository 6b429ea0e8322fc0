// Layout (sharding spec) of a tensor on a 2-D logical mesh (DESIGN.md section 4; ALPA_FACTS 1.2):
// per tensor dim the mesh axes splitting it, plus the mesh axes over which it is a partial sum.
// Local shard shapes and the [offset, size) slice each device holds follow from it; the executor
// loads shards and the cross-mesh transfer computes needed slices with the same functions.
// Rules: each mesh axis is used at most once (by one dim, or by the partial set); a dim split on
// both axes is always axis-0-major (S01; "S10" does not exist). Pure C++, deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "solver/ir/tensor.h"

namespace strata::solver {

// The shape of a 2-D logical mesh: d0 x d1 devices, row-major (rank = c0 * d1 + c1). Axis 1 joins
// devices c0*d1 .. c0*d1 + d1-1; axis 0 joins devices c1, c1 + d1, c1 + 2 d1, ...
// Same fields as inter/stage_dp.h's LogicalMesh, defined here because solver/intra sits below
// solver/inter (the stage DP calls the intra-op pass, never the reverse).
struct MeshShape {
  std::int64_t d0 = 1, d1 = 1;
  std::int64_t axis_size(int axis) const { return axis == 0 ? d0 : d1; }
  std::int64_t num_devices() const { return d0 * d1; }
};
// Throws std::invalid_argument when d0 or d1 < 1.
void validate(const MeshShape& mesh);

// A set of mesh axes as a bit mask: bit m set = mesh axis m. 0 = none, 3 = both.
using AxisSet = std::uint8_t;
inline constexpr AxisSet kNoAxes = 0;
inline constexpr AxisSet kAxis0 = 1;
inline constexpr AxisSet kAxis1 = 2;
inline constexpr AxisSet kBothAxes = 3;
inline constexpr AxisSet axis_bit(int axis) { return static_cast<AxisSet>(1u << axis); }
// Product of the sizes of the axes in `axes` (1 for none): the chunks a dim split on them has.
std::int64_t axes_size(AxisSet axes, MeshShape mesh);

// Layout of one tensor. Notation (to_string / parse_layout; it appears in plan JSON):
//   layout := dims ["|P" axes]       dims := dim ("," dim)*  |  "-"   (rank 0: a scalar)
//   dim    := "R" | "S0" | "S1" | "S01"                        axes := "0" | "1" | "01"
// e.g. "S0,R" (rows split over axis 0, replicated over axis 1), "S0,R|P1" (same, and a partial
// sum over axis 1), "R,S01" (columns over all devices, axis 0 major), "-|P0" (a scalar partial
// over axis 0), "-" (a replicated scalar).
struct Layout {
  std::vector<AxisSet> dims;  // per tensor dim: the axes splitting it (kBothAxes = S01)
  AxisSet partial = kNoAxes;  // axes over which the held value is a partial sum (pending reduce)

  static Layout replicated(std::size_t rank) { return Layout{std::vector<AxisSet>(rank), 0}; }
  std::size_t rank() const { return dims.size(); }
  AxisSet used_axes() const;  // union of every dim's axes and the partial axes
  // The tensor dim split on `axis`, or -1.
  int dim_of_axis(int axis) const;
  bool operator==(const Layout& o) const { return dims == o.dims && partial == o.partial; }
  bool operator!=(const Layout& o) const { return !(*this == o); }
  bool operator<(const Layout& o) const {
    return dims != o.dims ? dims < o.dims : partial < o.partial;
  }
};

// Whether each axis is used at most once across dims and partial, and only axes 0, 1 occur.
bool is_valid(const Layout& layout);
std::string to_string(const Layout& layout);
std::string to_string(AxisSet dim_axes);  // "R", "S0", "S1", "S01"
// Operand layouts joined by " x " ("()" when empty): the halves of a strategy name.
std::string join_layouts(const std::vector<Layout>& layouts);
// Inverse of to_string; throws std::invalid_argument naming the text and what is wrong
// (unknown token, an axis used twice).
Layout parse_layout(const std::string& text);

// The layout with every use of a size-1 mesh axis removed. Such axes split nothing and a partial
// sum over one device is complete, so the two layouts describe the same shards.
Layout normalized(const Layout& layout, MeshShape mesh);

// Throws std::invalid_argument when `layout` is invalid, its rank differs from `global`'s, or a
// dim does not divide by the product of its axes' sizes (the message names `what` and the dim).
void check_layout(const Shape& global, const Layout& layout, MeshShape mesh,
                  const std::string& what = "tensor");

// Per-device shard shape: global dim / product of the sizes of the axes splitting it.
// Throws as check_layout.
Shape local_shape(const Shape& global, const Layout& layout, MeshShape mesh);
std::int64_t local_bytes(const Shape& global, DType dtype, const Layout& layout, MeshShape mesh);

// The half-open slice [offset, offset + size) of one global dim.
struct DimSlice {
  std::int64_t offset = 0, size = 0;
  bool operator==(const DimSlice& o) const { return offset == o.offset && size == o.size; }
};

// The block of the global tensor held by the device at mesh coordinates (c0, c1), per dim:
//   R   -> [0, n)                      S0  -> chunk c0 of d0        S1 -> chunk c1 of d1
//   S01 -> chunk c0 * d1 + c1 of d0 * d1 (axis 0 major)
// A partial layout holds that block's partial sum (summing over the partial axes gives the
// value). Throws as check_layout, or std::out_of_range when the coordinates are off the mesh.
std::vector<DimSlice> shard_slice(const Shape& global, const Layout& layout, MeshShape mesh,
                                  std::int64_t c0, std::int64_t c1);

// Row-major device numbering of the mesh: rank = c0 * d1 + c1 (ranks are mesh-local).
// Both throw std::out_of_range when off the mesh.
struct MeshCoord {
  std::int64_t c0 = 0, c1 = 0;
};
std::int64_t mesh_rank(MeshShape mesh, std::int64_t c0, std::int64_t c1);
MeshCoord mesh_coords(MeshShape mesh, std::int64_t rank);

}  // namespace strata::solver
