// Resharding plans (DESIGN.md section 4): THE one function that turns a tensor's layout into
// another as an ordered list of steps, each one collective (or one local operation) on one mesh
// axis. The planner prices the list; the executor runs it literally and counts the same bytes at
// the call site. Plans depend only on (shape, dtype, layouts, mesh shape), never on link speeds,
// so every rank and the planner derive the same list. Pure C++, deterministic.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "solver/cost/cost_model.h"
#include "solver/intra/layout.h"

namespace strata::solver {

// One step. "Block j of n along dim d" is [j*s, (j+1)*s) with s = local extent / n; c is the
// member's coordinate on the step's axis (c0 for axis 0, c1 for axis 1).
enum class ReshardOp : std::uint8_t {
  kAllReduce,      // partial -> not partial over `axis`: sum over the axis group, in place.
                   //   B = the local buffer (bytes before = bytes after)
  kReduceScatter,  // partial -> split `dim` on `axis`: member c receives the sum of block c of n
                   //   of every member's buffer along `dim`. B = the local buffer before
  kAllGather,      // split `dim` on `axis` -> not split: member c's buffer becomes block c of the
                   //   result along `dim`. B = the local buffer after (the gathered tensor)
  kAllToAll,       // split `dim` on `axis` -> split `dim_to` on `axis`: member c cuts its buffer
                   //   into n blocks along `dim_to` and sends block j to member j; the block
                   //   received from member j becomes block j along `dim`.
                   //   B = n x the local buffer (the sum of the members' buffers)
  kSlice,          // not split -> split `dim` on `axis`: keep block c of n along `dim`. Local,
                   //   free (B = 0), valid on a partial buffer too (slicing is linear)
  kPartialize,     // not partial -> partial over `axis`: the member with c == 0 keeps its buffer,
                   //   the others set theirs to zero. Local, free (B = 0). Consumers never ask
                   //   for a partial input; this exists so every pair of layouts has a plan
};
// "all_reduce", "reduce_scatter", "all_gather", "all_to_all", "slice", "partialize".
const char* reshard_op_name(ReshardOp op);
bool is_communication(ReshardOp op);  // the first four
// The cost model's kind of a communication step; throws std::invalid_argument for a local one.
Collective collective_of(ReshardOp op);

struct ReshardStep {
  ReshardOp op = ReshardOp::kAllReduce;
  int axis = 0;                 // mesh axis; a communication step is collective over the
                                // communicator of this axis (d0 or d1 members)
  std::int64_t group_size = 1;  // n: the size of `axis`
  int dim = -1;     // reduce-scatter: dim scattered; all-gather: dim gathered; slice: dim sliced;
                    // all-to-all: dim that stops being split; -1 for all-reduce and partialize
  int dim_to = -1;  // all-to-all: dim that becomes split on `axis`; -1 otherwise
  Layout before, after;             // the tensor's layout before and after this step (normalized)
  Shape local_before, local_after;  // per-device shard shapes before and after
  std::int64_t bytes = 0;           // B of DESIGN.md section 4 (see ReshardOp); 0 for local steps
};

struct ReshardPlan {
  Shape global;
  DType dtype = DType::kF32;
  MeshShape mesh;
  Layout from, to;                   // as given
  std::vector<ReshardStep> steps;    // in execution order; empty when nothing moves
  std::int64_t total_bytes() const;  // sum of B over steps
};

// THE resharding function. Acts only on axes of size > 1: `from` and `to` are first
// normalized() (a size-1 axis splits nothing; a partial sum over one device is complete), so the
// first step's `before` is normalized(from) and the last step's `after` is normalized(to).
// Identical (or equivalent) layouts give an empty plan.
//
// The moves (one per step): all-reduce, reduce-scatter, all-gather, all-to-all, slice and
// partialize, each on one axis, under the representation rule that a dim split on both axes is
// axis-0-major: an axis may only be added to a dim as its new minor-most axis (R -> S0 or S1,
// S0 -> S01) and only the minor-most axis may leave a dim (S01 -> S0, S0 or S1 -> R). So S01 is
// gathered axis 1 first, then axis 0, and sliced axis 0 first, then axis 1; S1 -> S01 is no
// local slice (device (c0, c1) needs chunk c0*d1 + c1, not a piece of its chunk c1).
// The moves and their order minimise the bytes each device sends,
//   wire = sum over steps of: all-reduce 2(n-1)/n B, reduce-scatter and all-gather (n-1)/n B,
//          all-to-all (n-1)/n^2 B,
// found exactly by a shortest-path search over the (few dozen) layouts of the tensor. Since a
// step's B scales with the local buffer, the optimum follows these rules (the tests check each):
//   1. shrink first: free slices on axes the source leaves unused come before any collective
//      (R,R|P0 -> R,S1 slices axis 1 first, so the all-reduce moves 1/d1 of the tensor);
//   2. reductions next, while the other axis is still split: partial -> split is one
//      reduce-scatter (half an all-reduce's traffic, and it shrinks the buffer); partial ->
//      replicated is one all-reduce, except partial over both axes, which becomes the
//      hierarchical all-reduce (reduce-scatter axis 0, all-reduce axis 1, all-gather axis 0);
//   3. a split that moves to another dim on the same axis is an all-to-all ((n-1)/n of the local
//      buffer, vs (n-1) buffers for all-gather + slice); all-to-alls also detour around the
//      axis-0-major rule (S01,R -> S1,R: all-to-all, all-gather, all-to-all; 13312 bytes
//      per device for [8,1024] f32 on 2x4 against 28672 for gather, gather, slice);
//   4. gathers last, minor axis first (they grow the buffer).
// Ties (equal wire bytes) go to fewer steps, then to the earlier move in the order
// all-reduce < reduce-scatter < all-to-all < all-gather < slice < partialize, axis 0 before 1
// (all-gather: axis 1 before 0), lower dims first.
// Throws std::invalid_argument when a layout is invalid, its rank differs from `global`'s, or a
// dim does not divide by its axes (check_layout names which of `from` / `to` and which dim).
// Thread-safe. The moves are memoised on (mesh, layouts, which dims divide by d0, d1 and
// d0 * d1), all the search depends on: a hit (~1 us) returns what the search (~50 us) would.
ReshardPlan plan_resharding(const Shape& global, DType dtype, const Layout& from, const Layout& to,
                            MeshShape mesh);

// Bytes one device sends over the plan (the objective above): the beta term's bytes.
double wire_bytes_per_device(const ReshardPlan& plan);

// Sum over communication steps of collective_time_s(kind, B, n, links.axis[step.axis]).
double resharding_time_s(const ReshardPlan& plan, const MeshAxisLinks& links);

// B summed per collective kind (communication steps only; kinds absent from the plan are absent
// from the map). The runtime's byte counters must report the same numbers.
std::map<Collective, double> bytes_by_kind(const ReshardPlan& plan);

}  // namespace strata::solver
