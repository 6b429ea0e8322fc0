// Stage programs (DESIGN.md section 6): what every pipeline stage of a Plan runs, read off the
// real training graph: its ops in three buckets, each op's input and output layouts (from the
// plan's strategies), the tensors that cross between stages and in which layouts. The runtime
// executes exactly this, and the planner can price it, so the two cannot disagree.
// Pure C++, deterministic.
//
// Buckets (mirroring the intra-op pass's accounting, intra_pass.cc (b)-(d)):
//   forward    forward ops of the stage, once per micro-batch (twice with recomputation);
//   backward   backward ops, once per micro-batch, except those reading an accumulated gradient;
//   iteration  once per iteration, after the last micro-batch: the adds that sum accumulated
//              gradients (GPT's tied wte) and the optimizer ops (sums of squares, clipping,
//              updates). Accumulated tensors (ir/autodiff.h gradient_accumulated) are summed
//              locally over the micro-batches in the layout they are produced in, so their
//              collectives run once per iteration.
// Transfers: a tensor made in one stage and read in another crosses once per (tensor, reading
// stage, layout the reader needs), leaving its producer complete (a partial layout is reduced
// first: the "exit" reduction, once per tensor), and arriving in the reader's layout directly
// (tensors from other stages are free to the reader's ILP). A parameter read by a stage other
// than its owner (GPT's wte in the head stage) crosses from its storage layout once per iteration,
// before the first forward. Dataset inputs (tokens, targets) never cross: each stage loads them.
// Where the destination replicates a tensor along a mesh axis, one copy crosses (split along
// that axis: the landing layout) and the destination all-gathers it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "solver/intra/layout.h"
#include "solver/intra/strategy.h"
#include "solver/ir/autodiff.h"
#include "solver/plan/plan.h"

namespace strata::solver {

enum class OpBucket : std::uint8_t { kForward, kBackward, kIteration };
const char* op_bucket_name(OpBucket bucket);  // "forward", "backward", "iteration"

// When a transfer's message is sent: after the source's forward or backward of a micro-batch
// (once per micro-batch), in its iteration bucket, or (a parameter) at the start of the step.
enum class TransferTime : std::uint8_t { kForward, kBackward, kIteration, kStepStart };

struct Transfer {
  TensorId tensor = kNoTensor;
  std::int64_t src_stage = 0, dst_stage = 0;
  Layout src_layout;  // normalized on the source mesh, never partial
  Layout dst_layout;  // normalized on the destination mesh, never partial
  // What crosses: landing_layout(dst_layout) (cross_mesh.h): one copy of what the destination
  // replicates, which the destination then all-gathers into dst_layout.
  Layout land_layout;
  TransferTime time = TransferTime::kForward;
  int tag = 0;  // unique per transfer, 0 <= tag <= 32767 (MPI's portable tag range)
  bool per_microbatch() const {
    return time == TransferTime::kForward || time == TransferTime::kBackward;
  }
};

struct StageProgram {
  std::int64_t stage = 0;
  MeshShape mesh;
  std::vector<std::int64_t> devices;  // world ranks, row-major in mesh
  bool recompute = false;
  std::vector<OpId> forward_ops, backward_ops, iteration_ops;  // graph order each
  std::vector<int> sends, recvs;  // indices into ProgramSet::transfers, in transfer order
};

struct OpLayouts {
  std::vector<Layout> inputs, outputs;  // normalized on the op's stage mesh
};

struct ProgramSet {
  std::vector<StageProgram> stages;
  std::vector<Transfer> transfers;
  std::vector<std::int64_t> stage_of_op;  // per graph op
  std::vector<OpBucket> bucket_of_op;     // per graph op
  std::vector<OpLayouts> layouts;         // per graph op
  // Per graph op: the collectives its strategy runs between its local kernels (strategy.h; the
  // vocab-parallel cross-entropy's row statistics), in order. Empty for most ops.
  std::vector<std::vector<InternalComm>> internal_comm;
  // plan.method zero2: a parameter gathered from its storage layout is kept for the iteration
  // (gathered once per step); otherwise every bucket execution gathers it again (ZeRO-3 style).
  bool keep_gathered_parameters = false;
  std::vector<char> accumulated;  // per tensor (gradient_accumulated)
  // Per tensor: the stage whose op produces it (-1: none, e.g. parameters and dataset inputs).
  std::vector<std::int64_t> producer_stage;
  // Per parameter tensor: the stage holding its master copy (its update op's stage), else -1.
  std::vector<std::int64_t> owner_stage;
  // Per parameter tensor: its storage layout (update op's input-0 layout), on the owner's mesh.
  std::map<TensorId, Layout> storage_layout;

  const StageProgram& stage(std::int64_t s) const { return stages.at(static_cast<std::size_t>(s)); }
};

// Reads `plan` over `training` (built for the plan's micro-batch size). Throws
// std::invalid_argument with one line when the plan does not fit the graph: an op of the graph
// without a strategy in the stage that holds its layer (or layouts missing), layouts whose rank
// does not match the op's tensors or do not divide, a layer outside every stage, or more
// transfers than MPI tags.
ProgramSet build_stage_programs(const TrainingGraph& training, const Plan& plan);

// The layout with its partial axes dropped (what leaves a stage after the exit reduction).
Layout without_partial(const Layout& layout);

// The bytes one step moves, by the convention of plan.h's BytesPerStep: per stage, what one of
// its devices moves (collectives: every member moves the same B; p2p: the bytes the stage's
// devices send, averaged over them), summed over stages, for every micro-batch and the iteration.
// Counts exactly what the runtime runs: per edge the resharding of THE resharding function, the
// exit reductions, the strategies' internal collectives, the transfers' pieces (cross_mesh.h)
// and the destination's all-gathers from each transfer's landing layout.
BytesPerStep program_bytes_per_step(const TrainingGraph& training, const ProgramSet& programs,
                                    std::int64_t micro_batches);

}  // namespace strata::solver
