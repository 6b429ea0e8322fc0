// Executor: runs the ops of an IR graph on one kernels::Backend (one device, unsharded tensors).
// It owns one backend buffer per tensor, lowers each op to backend calls (matmuls through
// matmul_lowering.h) and converts host values in and out. Distributed execution (sharded layouts,
// collectives, stages) builds on this per-op lowering. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "app/matmul_lowering.h"
#include "kernels/backend.h"
#include "solver/ir/graph.h"

namespace strata::app {

// Values an op needs at run time that are not tensors (the schedule changes them every step).
struct StepContext {
  double lr = 0.0;
  std::int64_t step = 1;  // 1-based optimizer step
};

class Executor {
 public:
  // Allocates a zero-filled buffer for every tensor of `graph` (which must outlive this object).
  Executor(const solver::Graph& graph, kernels::Backend& backend);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Host <-> backend copies with conversion from / to double. Sizes must match the tensor.
  void write(solver::TensorId id, const std::vector<double>& values);
  std::vector<double> read(solver::TensorId id) const;
  void write_tokens(solver::TensorId id, const std::int32_t* tokens, std::int64_t count);
  void fill(solver::TensorId id, double value);
  // Gradient accumulation in backend memory: a shadow buffer per tensor that `stash` sets to the
  // tensor's value (first) or adds it into (later), and `unstash` copies back into the tensor.
  void stash(solver::TensorId id, bool first);
  void unstash(solver::TensorId id);

  // Runs ops [first, last) of the graph in order.
  void run(solver::OpId first, solver::OpId last, const StepContext& ctx);
  // Runs every op of `phase` (ops of a phase are contiguous in a training graph).
  void run_phase(solver::OpPhase phase, const StepContext& ctx);

  // Per-op-kind wall time (backend synchronised after each op), for "where the time goes".
  void set_profiling(bool on) { profiling_ = on; }
  const std::map<std::string, double>& profile_s() const { return profile_s_; }

  void* buffer(solver::TensorId id) const { return buffers_.at(static_cast<std::size_t>(id)); }
  std::int64_t allocated_bytes() const { return allocated_bytes_; }
  const solver::Graph& graph() const { return graph_; }

 private:
  void run_op(const solver::Op& op, const StepContext& ctx);
  void run_matmul(const solver::Op& op);
  void* scratch(std::size_t slot, std::int64_t bytes);

  const solver::Graph& graph_;
  kernels::Backend& backend_;
  std::vector<void*> buffers_;                           // by TensorId
  std::map<solver::OpId, MatMulPlan> matmul_plans_;      // planned once per op
  std::vector<std::pair<void*, std::int64_t>> scratch_;  // permute buffers, reused
  std::map<solver::TensorId, void*> stashed_;            // gradient accumulators
  std::int64_t allocated_bytes_ = 0;
  bool profiling_ = false;
  std::map<std::string, double> profile_s_;  // op kind (+ phase) -> seconds
};

// The backend's element type for an IR dtype.
kernels::DType to_kernel_dtype(solver::DType dtype);

}  // namespace strata::app
