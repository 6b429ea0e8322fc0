// Intra-operator pass (DESIGN.md section 4): shards every op of one pipeline stage over a
// logical mesh by solving the ILP of ilp.h, and prices the stage for the stage DP (stage_dp.h).
// Nodes are the stage's ops (followers merged first), strategies come from strategy.h, node
// costs are the local compute time plus internal collectives, edge costs the resharding time of
// plan_resharding between a producer's output layout and a consumer's required input layout.
// Gradient collectives deferred to the last micro-batch weigh 1/B. Pure C++.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "solver/cost/cluster_spec.h"
#include "solver/cost/cost_model.h"
#include "solver/intra/ilp.h"
#include "solver/intra/intra_cache.h"
#include "solver/intra/layout.h"
#include "solver/intra/strategy.h"
#include "solver/ir/autodiff.h"

namespace strata::solver {

// Where and how a stage runs.
struct StagePlacement {
  std::int64_t group = 0;  // host group of the cluster
  std::int64_t hosts = 1;  // sub-mesh: hosts x devices of that group
  std::int64_t devices = 1;
  MeshShape mesh;  // logical mesh d0 x d1 = hosts * devices
};

struct IntraOptions {
  IlpOptions ilp;
  std::int64_t micro_batches = 1;  // B: gradient collectives weigh 1/B per micro-batch
  std::string dtype = "f32";       // compute dtype (peak FLOP/s and bytes per element)
  // Master weights' and optimizer state's dtype (train.master_dtype): "" = f32 under 16-bit
  // compute, else the compute dtype; wider than the compute dtype means mixed precision.
  std::string master_dtype;
  bool recompute = false;          // forward recomputed in backward: one more forward per
                                   // micro-batch, only boundary activations stored
  double memory_budget_bytes = 0;  // per device; 0: the device's capacity
  // Restrict strategies (plan methods): "" = all; "data-parallel": batch letter on every axis
  // of size > 1 (S01 when both), parameters replicated; "zero2"/"zero3": data parallel with
  // optimizer state (and for zero3 parameters) split; "megatron": batch on axis 0, heads /
  // hidden columns / rows on axis 1.
  std::string restrict_to;
  // Alpa's force_batch_dim_to_mesh_dim = 0 (ALPA_FACTS 1.5, 1.8): on a 2-D mesh (both axes > 1)
  // forward and backward ops split the batch letter on axis 0. It keeps Alpa's search space and
  // shrinks the ILP ~50x (an op's strategies go from ~(letters+1)^2 to ~letters+1); the 1-D
  // meshes (N, 1) and (1, N) stay unrestricted. Ignored when restrict_to is set.
  bool force_batch_axis0 = false;
  // ---- additions (intra-op pass engineer)
  bool merge_followers = true;  // merge light ops into the op they follow (Alpa 1.6); false
                                // solves one node per op (tests: same optimum)
  std::int64_t in_flight_microbatches = 1;  // copies of the stored activations counted in the
                                            // ILP's memory row (the DP's 1F1B in-flight count)
};

// The solved stage.
struct IntraResult {
  SolveStatus status = SolveStatus::kError;
  std::map<OpId, std::int32_t> strategy;      // chosen strategy index per op
  std::map<OpId, std::string> strategy_name;  // its name (plan JSON)
  double time_per_microbatch_s = 0;    // forward + backward compute + comm of one micro-batch
  double tail_s = 0;                   // gradient sync + optimizer, once per iteration
  double static_memory_bytes = 0;      // parameters + gradients + optimizer state per device
  double activation_memory_bytes = 0;  // stored activations of one micro-batch per device
  std::map<std::string, double> bytes_per_iteration;  // by collective name, per device group
  IlpSolution ilp;
  std::string summary;  // e.g. "dp2 x tp4" (the dominant strategy pattern)
  // ---- additions (intra-op pass engineer)
  std::map<OpId, Strategy> chosen;      // the chosen strategy of every stage op (its layouts)
  std::int64_t num_ops = 0;             // ops of the stage
  std::int64_t num_nodes = 0;           // ILP nodes after follower merging
  std::int64_t num_edges = 0;           // ILP edges (after folding edges to 1-strategy nodes)
  std::string message;                  // why, when status is not optimal / feasible
  double borrowed_parameter_bytes = 0;  // part of static_memory_bytes: copies (and gradients) of
                                        // parameters updated by another stage (GPT's tied wte
                                        // in the head stage)
  double memory_weight_s_per_byte = 0;  // lambda of IntraStage::solve_weighted / frontier (0:
                                        // least time, or solve() under the budget)
};

// Solves the stage made of the ops of `training` whose layer is in [layer_begin, layer_end)
// (forward, backward and optimizer phases) on `placement`. The ILP, its cost terms (per
// micro-batch vs per iteration, parameters loop-carried from their optimizer op's input layout,
// tensors from other stages free, partial tensors leaving the stage reduced) and the memory row
// are written out in intra_pass.cc; follower merging in intra_merge.cc; memory terms in
// intra_memory.cc. Before solving, dominated strategies are dropped and (without a memory row)
// nodes with <= 2 neighbours are eliminated exactly; the chosen strategies are then re-evaluated
// op by op and must reproduce the ILP objective: ilp.objective_s == time_per_microbatch_s +
// tail_s / micro_batches (else std::logic_error).
// strategy[op] indexes enumerate_strategies(graph, op, mesh); a gradient-accumulation add may
// also take a partial-sum strategy (both inputs and the output partial over unused axes), whose
// index is >= that list's size and whose layouts are in chosen[op].
// Returns status kInfeasible (with message) when restrict_to leaves an op no strategy or no plan
// fits the memory budget; throws std::invalid_argument on a bad placement, restrict_to or
// micro_batches, or a compute dtype the device lacks.
IntraResult solve_intra_op(const TrainingGraph& training, std::int64_t layer_begin,
                           std::int64_t layer_end, const ClusterSpec& cluster,
                           const StagePlacement& placement, const IntraOptions& options);

// The same stage's ILP built once and solved under several memory treatments (the stage cost
// model of solver/inter asks for a stage's memory/time trade-off). solve_intra_op(...) ==
// IntraStage(...).solve(). The graph must outlive it. `cache` (may be null: a private one)
// shares strategy lists and resharding times with other stages (intra_cache.h); it must
// outlive the IntraStage.
class IntraStage {
 public:
  IntraStage(const TrainingGraph& training, std::int64_t layer_begin, std::int64_t layer_end,
             const ClusterSpec& cluster, const StagePlacement& placement,
             const IntraOptions& options, IntraCache* cache = nullptr);
  ~IntraStage();
  IntraStage(IntraStage&&) noexcept;
  IntraStage& operator=(IntraStage&&) noexcept;

  // What a result carries: everything in IntraResult (kFull), or for pricing many candidates
  // only status, times, memory, ilp and memory_weight_s_per_byte (kCosts; complete() adds the
  // rest).
  enum class Detail : std::uint8_t { kCosts, kFull };

  // Least time under the memory budget (options.memory_budget_bytes, else the device's), exact
  // (ilp_reduce.h solve_exact: the unconstrained optimum when it fits, else the budgeted ILP).
  IntraResult solve() const;
  // Least time + lambda x bytes of the memory row (g), no budget: a Lagrangian relaxation whose
  // optimum is also the least-time plan under a budget equal to its own memory.
  IntraResult solve_weighted(double lambda_s_per_byte, Detail detail = Detail::kFull) const;
  // The vertices of the stage's memory/time frontier (ilp_reduce.h memory_frontier), by
  // decreasing memory and increasing time, at most max_points; each result carries its weight.
  // least_time: this stage's solve_weighted(0) when the caller has it (saves a solve).
  std::vector<IntraResult> frontier(int max_points, Detail detail = Detail::kFull,
                                    const IntraResult* least_time = nullptr) const;
  // A kCosts result of this stage completed to kFull (its solution re-evaluated op by op).
  IntraResult complete(const IntraResult& costs) const;
  // The same stage with recomputation set as given: equal to building it anew with
  // options.recompute = recompute, without enumerating strategies or pricing reshardings again
  // (only the weights of forward ops and the memory terms differ).
  IntraStage with_recompute(bool recompute) const;

  // The least the memory row (g) can hold: every node at its leanest strategy (0 when empty).
  // No plan of the stage needs less; no solve.
  double least_memory_bytes() const;

 private:
  struct Impl;
  IntraStage() = default;
  static void lower(Impl& s);
  IntraResult finish(IlpSolution solution, double lambda_s_per_byte, Detail detail) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::solver
