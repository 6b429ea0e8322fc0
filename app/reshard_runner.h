// Runs THE resharding plans (solver/intra/resharding.h) and cross-mesh pieces
// (solver/intra/cross_mesh.h) on backend buffers: each step is one collective over one mesh axis
// (comm/collectives.h) or a local slice / zeroing, with blocks packed and unpacked by the
// backend's copy_box. The bytes the collectives count are the plan's B by construction of the
// calls, and tests hold the counters against the planner's prediction.
#pragma once

#include <cstdint>
#include <vector>

#include "app/message_staging.h"
#include "comm/collectives.h"
#include "comm/point_to_point.h"
#include "kernels/backend.h"
#include "solver/intra/cross_mesh.h"
#include "solver/intra/resharding.h"

namespace strata::app {

// The collectives' element type of a backend element type.
comm::ElemType to_elem_type(kernels::DType dtype);

class ReshardRunner {
 public:
  // coords: this device's (c0, c1) in the stage mesh the plans are made for.
  ReshardRunner(kernels::Backend& backend, comm::Collectives& collectives, std::int64_t c0,
                std::int64_t c1);
  ~ReshardRunner();
  ReshardRunner(const ReshardRunner&) = delete;
  ReshardRunner& operator=(const ReshardRunner&) = delete;

  // src holds the local shard of plan.from, dst receives the local shard of plan.to (distinct
  // buffers of the plan's local sizes). An empty plan copies.
  void run(const solver::ReshardPlan& plan, const void* src, void* dst);

  // Cross-mesh: sends the pieces this device (src mesh rank `me`) holds to their destinations
  // (world ranks by destination mesh rank in dst_devices) with `tag`, packing each piece into a
  // buffer kept until finish_sends() (through pinned host memory when the backend's memory is
  // device memory: message_staging.h). `local` is this device's shard of the source layout.
  void send_pieces(const std::vector<solver::CrossMeshPiece>& pieces, std::int64_t me,
                   const solver::Shape& src_local_shape, const void* local,
                   const std::vector<std::int64_t>& dst_devices, std::size_t elem_bytes, int tag,
                   comm::PointToPoint& p2p);
  // Receives the pieces for destination mesh rank `me` into `local` (its shard of the
  // destination layout) from the world ranks src_devices[piece.src_rank].
  void recv_pieces(const std::vector<solver::CrossMeshPiece>& pieces, std::int64_t me,
                   const solver::Shape& dst_local_shape, void* local,
                   const std::vector<std::int64_t>& src_devices, std::size_t elem_bytes, int tag,
                   comm::PointToPoint& p2p);
  // Waits for every send and returns their buffers to the pool.
  void finish_sends(comm::PointToPoint& p2p);

 private:
  void* scratch(std::size_t slot, std::int64_t bytes);
  void step(const solver::ReshardStep& s, solver::DType dtype, const void* in, void* out);

  kernels::Backend& backend_;
  comm::Collectives& coll_;
  std::int64_t c0_ = 0, c1_ = 0;
  std::vector<std::pair<void*, std::int64_t>> scratch_;
  MessageStaging messages_;  // cross-mesh pieces in flight and their buffers
};

}  // namespace strata::app
