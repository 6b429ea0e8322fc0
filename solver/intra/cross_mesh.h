// Cross-mesh resharding (DESIGN.md section 6): how a tensor held in one layout on one stage's mesh
// reaches another stage's mesh in another layout, as point-to-point pieces. Each destination
// device computes the block it needs (shard_slice of the destination layout) and cuts it by the
// distinct blocks the source devices hold; each piece is sent by one of the source devices
// holding it, chosen round-robin so that replicated sources share the load. The planner prices
// these pieces and the runtime sends exactly them. Pure C++, deterministic.
#pragma once

#include <cstdint>
#include <vector>

#include "solver/intra/layout.h"

namespace strata::solver {

struct CrossMeshPiece {
  std::int64_t src_rank = 0, dst_rank = 0;  // mesh-local ranks (row-major) in each mesh
  Shape box;                                // extent of the piece per dim
  Shape global_offset;                      // where the piece starts in the global tensor
  Shape src_offset, dst_offset;             // where it starts in the src / dst local shard
  std::int64_t elements() const;
};

// The pieces, ordered by destination rank, then by source block. Among the S source devices
// holding the same block, destination rank r's piece of block b comes from holder (r + b) mod S.
// Every element of every destination shard is covered exactly once. Throws
// std::invalid_argument when a layout is partial (reduce before sending) or does not fit the
// shape (check_layout).
std::vector<CrossMeshPiece> plan_cross_mesh(const Shape& global, const Layout& src,
                                            MeshShape src_mesh, const Layout& dst,
                                            MeshShape dst_mesh);

// Where a transfer lands so that one copy crosses when the destination replicates the tensor
// (DESIGN.md section 6): `dst` with every mesh axis of size > 1 it leaves unused added to a
// tensor dim (the first, in dim order, that can take it: an unsplit dim, or for axis 1 a dim
// split on axis 0 only, giving S01; the extent must divide), so the pieces carry 1/n of the
// replicated data and the destination all-gathers it (plan_resharding(landing, dst)). `dst`
// unchanged when no axis can be added. Throws as check_layout; a partial dst is an error.
Layout landing_layout(const Shape& global, const Layout& dst, MeshShape dst_mesh);

}  // namespace strata::solver
