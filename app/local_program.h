// The local graph of one device (DESIGN.md section 6: "local shapes follow from layouts"): the
// ops of its stage over local tensors, one local tensor per (global tensor, layout) the stage
// uses, shaped as this device's shard. The plain Executor runs it unchanged; ops whose kernels
// need to know where their shard sits (sharded cross-entropy, vocabulary-slice embedding, causal
// mask of a row / column block, head counts of split heads) carry it in attributes
// (executor.h). Pure: no communication.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "solver/ir/autodiff.h"
#include "solver/plan/stage_program.h"

namespace strata::app {

struct LocalProgram {
  std::int64_t stage = 0;
  solver::MeshShape mesh;
  std::int64_t c0 = 0, c1 = 0;  // this device's coordinates
  solver::Graph graph;          // local tensors and ops (the stage's ops in graph order)
  std::map<std::pair<solver::TensorId, solver::Layout>, solver::TensorId> variants;
  std::map<solver::OpId, solver::OpId> local_op;  // global op -> local op
  std::vector<solver::OpId> global_op;            // local op -> global op

  // The local tensor of (global tensor, normalized layout); throws std::out_of_range.
  solver::TensorId local(solver::TensorId global, const solver::Layout& layout) const;
};

// Every variant the stage needs: its ops' inputs and outputs, parameter storage, the exit
// layouts of the tensors it sends.
LocalProgram build_local_program(const solver::TrainingGraph& training,
                                 const solver::ProgramSet& programs, std::int64_t stage,
                                 std::int64_t c0, std::int64_t c1);

}  // namespace strata::app
