// Executor: runs the ops of an IR graph on one kernels::Backend (one device, unsharded tensors).
// It owns one backend buffer per tensor, lowers each op to backend calls (matmuls through
// matmul_lowering.h) and converts host values in and out. Distributed execution (sharded layouts,
// collectives, stages) builds on this per-op lowering. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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

// What an executor holds, by purpose (bytes of backend memory).
struct MemoryBreakdown {
  std::int64_t tensors = 0;             // one buffer per tensor (slot 0), not in the arena
  std::int64_t micro_batch_copies = 0;  // add_slots: the further slots' buffers
  std::int64_t accumulators = 0;        // stash: gradient accumulators
  std::int64_t masters = 0;             // set_master_dtype: master weights
  std::int64_t arena = 0;               // ArenaLayout: the transient tensors' arena
  std::int64_t scratch = 0;             // staging, permute copies, attention workspace
  std::int64_t total() const {
    return tensors + micro_batch_copies + accumulators + masters + arena + scratch;
  }
};

// Transient tensors that share one arena (buffer_packing.h): ids[i] lives at offsets[i]. The
// caller guarantees that tensors whose bytes overlap are never live at once (DistTrainer's
// lifetime analysis, dist_trainer_buffers.cc).
struct ArenaLayout {
  std::vector<solver::TensorId> ids;
  std::vector<std::int64_t> offsets;
  std::int64_t arena_bytes = 0;
};

class Executor {
 public:
  // Allocates a zero-filled buffer for every tensor of `graph` (which must outlive this object),
  // except those `arena` places in its one arena: they get no buffer of their own, so the peak
  // allocation is never the unshared total. On a host backend the arena starts as all-ones bytes
  // (NaN), so an op that relies on a zero-filled output fails in the host tests.
  Executor(const solver::Graph& graph, kernels::Backend& backend, const ArenaLayout& arena = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Mixed precision (DESIGN.md section 3): the graph computes in its dtype C; the optimizer keeps
  // master weights and its state in `master`, wider than C (f32 masters for bf16 compute; f64
  // for f32 compute in the host tests). Every optimizer op's parameter (input 0) gets a master
  // buffer and its state inputs (m, v / the momentum buffer) are held in `master`. An update is
  //   g_M = convert(g_C);  update(master, g_M, state);  param_C = convert(master),
  // so updates smaller than C's rounding step accumulate in the master instead of vanishing.
  // write() of such a parameter sets the master (and the C copy from it); read() returns the
  // master. Call before the first write; a no-op when `master` is the graph's dtype.
  void set_master_dtype(solver::DType master);

  // Host <-> backend copies with conversion from / to double. Sizes must match the tensor.
  void write(solver::TensorId id, const std::vector<double>& values);
  std::vector<double> read(solver::TensorId id) const;
  void write_tokens(solver::TensorId id, const std::int32_t* tokens, std::int64_t count);
  void fill(solver::TensorId id, double value);
  // Gradient accumulation in backend memory: a shadow buffer per tensor that `stash` sets to the
  // tensor's value (first) or adds it into (later), and `unstash` copies back into the tensor.
  // With a wider master dtype (set_master_dtype) the shadow is in that dtype: micro-batch
  // gradients are summed in f32 for bf16 compute and rounded once, by unstash.
  void stash(solver::TensorId id, bool first);
  void unstash(solver::TensorId id);
  // Instead of unstash, when the shadow has the tensor's dtype: the tensor's buffer becomes its
  // shadow, with no copy, until restore_buffers (its own buffer may be in the arena, reused
  // meanwhile).
  void read_from_stash(solver::TensorId id);
  void restore_buffers();

  // Per-micro-batch buffers (pipelines keep several micro-batches' activations): `ids` get
  // `slots` buffers each; select_slot(s) makes slot s the one every op and copy uses. Tensors
  // in the arena cannot have slots.
  void add_slots(const std::vector<solver::TensorId>& ids, int slots);
  void select_slot(int slot);

  // Sharded ops (the distributed runtime's local graphs) mark themselves with attributes:
  //   cross_entropy(_grad): "shard_scale" (1 / global rows) and "vocab_offset" -> the
  //     row-statistics form; the hook all-reduces "row_max" (max) and "row_sum" (sum) across
  //     the devices sharing the vocabulary, as the op's strategy lists (strategy.h);
  //   embedding(_grad): "vocab_offset" -> the vocabulary-slice kernels;
  //   causal_mask(_grad): "row_offset", "col_offset" -> where the shard sits in the matrix;
  //   merge_heads: "parts" (local) and "part_offset" -> the inputs its output block holds.
  using StatsHook = std::function<void(const solver::Op& op, const std::string& what, void* buf,
                                       std::int64_t count, kernels::DType dtype)>;
  void set_stats_hook(StatsHook hook) { stats_hook_ = std::move(hook); }

  // Runs ops [first, last) of the graph in order.
  void run(solver::OpId first, solver::OpId last, const StepContext& ctx);
  // Runs every op of `phase` (ops of a phase are contiguous in a training graph).
  void run_phase(solver::OpPhase phase, const StepContext& ctx);

  // Per-op-kind wall time (backend synchronised after each op), for "where the time goes".
  void set_profiling(bool on) { profiling_ = on; }
  const std::map<std::string, double>& profile_s() const { return profile_s_; }

  void* buffer(solver::TensorId id) const { return buffers_.at(static_cast<std::size_t>(id)); }
  std::int64_t allocated_bytes() const { return allocated_.total(); }
  const MemoryBreakdown& allocated() const { return allocated_; }
  const solver::Graph& graph() const { return graph_; }

 private:
  void run_op(const solver::Op& op, const StepContext& ctx);
  void run_matmul(const solver::Op& op);
  void run_sharded_cross_entropy(const solver::Op& op, kernels::DType dt);
  void run_attention(const solver::Op& op, kernels::DType dt);
  void run_update(const solver::Op& op, const StepContext& ctx, kernels::DType dt);
  // The dtype write() and read() convert a tensor from / to: the master dtype for parameters with
  // masters and for optimizer state, else the tensor's.
  kernels::DType kernel_dtype(solver::TensorId id) const;
  kernels::DType accumulation_dtype(solver::TensorId id) const;
  void* scratch(std::size_t slot, std::int64_t bytes) const;  // reused per slot; grows
  void place_in_arena(const ArenaLayout& arena);

  const solver::Graph& graph_;
  kernels::Backend& backend_;
  std::vector<void*> buffers_;                                   // by TensorId
  std::map<solver::OpId, MatMulPlan> matmul_plans_;              // planned once per op
  mutable std::vector<std::pair<void*, std::int64_t>> scratch_;  // permute / staging buffers
  std::map<solver::TensorId, void*> stashed_;                    // gradient accumulators
  std::map<solver::TensorId, void*> own_buffer_;  // read_from_stash: the tensor's own buffer
  std::map<solver::TensorId, void*> masters_;     // parameter -> master weights
  std::vector<bool> in_master_;  // by TensorId: held in master_dtype_ (optimizer state)
  solver::DType master_dtype_ = solver::DType::kF32;
  std::vector<std::vector<void*>> slot_buffers_;  // [slot][i] for slot_ids_[i]
  std::vector<solver::TensorId> slot_ids_;
  void* arena_ = nullptr;     // ArenaLayout
  std::vector<bool> shared_;  // by TensorId: lives in arena_
  StatsHook stats_hook_;
  mutable MemoryBreakdown allocated_;
  bool profiling_ = false;
  std::map<std::string, double> profile_s_;  // op kind (+ phase) -> seconds
};

// The backend's element type for an IR dtype.
kernels::DType to_kernel_dtype(solver::DType dtype);
// The dtype a gradient of dtype `tensor` accumulates in over micro-batches: the master dtype
// when it is wider (mixed precision sums 16-bit gradients in f32), else the tensor's own.
solver::DType accumulation_dtype(solver::DType tensor, std::optional<solver::DType> master);

}  // namespace strata::app
