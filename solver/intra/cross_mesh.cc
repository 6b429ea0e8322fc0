// plan_cross_mesh: boxes intersected dim by dim; replicas picked round-robin.
#include "solver/intra/cross_mesh.h"

#include <algorithm>
#include <stdexcept>

namespace strata::solver {

std::int64_t CrossMeshPiece::elements() const {
  std::int64_t n = 1;
  for (std::int64_t d : box) n *= d;
  return n;
}

namespace {

using Block = std::vector<DimSlice>;

std::vector<Block> device_blocks(const Shape& global, const Layout& layout, MeshShape mesh) {
  std::vector<Block> blocks;
  for (std::int64_t r = 0; r < mesh.num_devices(); ++r) {
    const MeshCoord c = mesh_coords(mesh, r);
    blocks.push_back(shard_slice(global, layout, mesh, c.c0, c.c1));
  }
  return blocks;
}

}  // namespace

std::vector<CrossMeshPiece> plan_cross_mesh(const Shape& global, const Layout& src,
                                            MeshShape src_mesh, const Layout& dst,
                                            MeshShape dst_mesh) {
  if (src.partial != kNoAxes || dst.partial != kNoAxes) {
    throw std::invalid_argument("cross-mesh transfer of a partial layout (" + to_string(src) +
                                " -> " + to_string(dst) + "): reduce it first");
  }
  check_layout(global, src, src_mesh, "cross-mesh source");
  check_layout(global, dst, dst_mesh, "cross-mesh destination");
  // Distinct source blocks, each with the ranks holding it (ascending).
  std::vector<Block> blocks;
  std::vector<std::vector<std::int64_t>> holders;
  const std::vector<Block> src_blocks = device_blocks(global, src, src_mesh);
  for (std::size_t r = 0; r < src_blocks.size(); ++r) {
    const auto it = std::find(blocks.begin(), blocks.end(), src_blocks[r]);
    if (it == blocks.end()) {
      blocks.push_back(src_blocks[r]);
      holders.push_back({static_cast<std::int64_t>(r)});
    } else {
      holders[static_cast<std::size_t>(it - blocks.begin())].push_back(
          static_cast<std::int64_t>(r));
    }
  }
  std::vector<CrossMeshPiece> pieces;
  const std::vector<Block> dst_blocks = device_blocks(global, dst, dst_mesh);
  for (std::size_t r = 0; r < dst_blocks.size(); ++r) {
    const Block& need = dst_blocks[r];
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      CrossMeshPiece p;
      bool empty = false;
      for (std::size_t d = 0; d < global.size() && !empty; ++d) {
        const std::int64_t lo = std::max(need[d].offset, blocks[b][d].offset);
        const std::int64_t hi =
            std::min(need[d].offset + need[d].size, blocks[b][d].offset + blocks[b][d].size);
        empty = hi <= lo;
        p.box.push_back(hi - lo);
        p.global_offset.push_back(lo);
        p.src_offset.push_back(lo - blocks[b][d].offset);
        p.dst_offset.push_back(lo - need[d].offset);
      }
      if (empty) continue;
      const auto& h = holders[b];
      p.src_rank = h[(r + b) % h.size()];
      p.dst_rank = static_cast<std::int64_t>(r);
      pieces.push_back(std::move(p));
    }
  }
  return pieces;
}

Layout landing_layout(const Shape& global, const Layout& dst, MeshShape dst_mesh) {
  if (dst.partial != kNoAxes) {
    throw std::invalid_argument("landing layout of a partial layout " + to_string(dst));
  }
  check_layout(global, dst, dst_mesh, "transfer destination");
  Layout land = dst;
  for (int axis = 0; axis < 2; ++axis) {
    if (dst_mesh.axis_size(axis) == 1 || (land.used_axes() & axis_bit(axis))) continue;
    for (std::size_t d = 0; d < land.dims.size(); ++d) {
      const AxisSet now = land.dims[d];
      if (now != kNoAxes && !(axis == 1 && now == kAxis0)) continue;
      const AxisSet next = static_cast<AxisSet>(now | axis_bit(axis));
      if (global[d] % axes_size(next, dst_mesh) != 0) continue;
      land.dims[d] = next;
      break;
    }
  }
  return land;
}

}  // namespace strata::solver
