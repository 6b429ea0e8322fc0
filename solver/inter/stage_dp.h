// Inter-operator pass: slicing a model's layers into pipeline stages on sub-meshes
// (DESIGN.md section 5, Alpa's recurrence plus Strata's additions). The stage cost function is a
// parameter (STYLE.md 29), so the DP is tested with fake cost tables and never touches an ILP.
// Pure C++.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace strata::solver {

// A group of identical hosts (a heterogeneous cluster has several). Stages live in one group.
struct DeviceGroup {
  std::int64_t hosts = 1;
  std::int64_t devices_per_host = 1;
  double memory_bytes_per_device = 0;  // capacity used by the memory check
};

struct SubmeshShape {
  std::int64_t hosts = 1;    // 1 for a sub-host mesh (1, m); n for a multi-host mesh (n, M)
  std::int64_t devices = 1;  // devices per host used
  std::int64_t size() const { return hosts * devices; }
};

struct LogicalMesh {
  std::int64_t d0 = 1, d1 = 1;  // d0 * d1 = sub-mesh size; devices row-major
};

// One candidate stage: layers [layer_begin, layer_end) of group `group` on `submesh` viewed as
// `mesh`, recomputing its forward in the backward pass or not, for micro-batches of
// `micro_batch_size` sequences.
struct StageCandidate {
  std::int64_t layer_begin = 0, layer_end = 0;
  std::int64_t group = 0;
  SubmeshShape submesh;
  LogicalMesh mesh;
  bool recompute = false;
  std::int64_t micro_batch_size = 1;
  // A memory/time trade-off offered by the cost function: 0 its fastest plan, 1, 2, ... leaner
  // and slower ones (StageDpOptions::max_variants; stage_cost.h for the intra-op cost model).
  std::int32_t variant = 0;
};

// What a stage costs, from the intra-op pass (or a fake table in tests). Times are per device.
struct StageEstimate {
  double time_per_microbatch_s = 0;    // forward + backward (+ recomputed forward) + sending the
                                       // boundary tensors to the next stage, per micro-batch
  double tail_s = 0;                   // once per iteration: gradient sync + optimizer
  double static_memory_bytes = 0;      // parameters, gradients, optimizer state (as sharded)
  double activation_memory_bytes = 0;  // kept per in-flight micro-batch
};

// nullopt: the candidate is invalid (shapes do not divide, no strategy, ...).
using StageCostFn = std::function<std::optional<StageEstimate>(const StageCandidate&)>;

struct StageDpOptions {
  std::int64_t num_layers = 1;      // L: layers 0..L-1 (embedding, blocks, head for GPT)
  std::vector<DeviceGroup> groups;  // the cluster; every device must be used
  std::int64_t global_batch = 1;
  std::int64_t micro_batches = 0;  // 0: searched over divisors of global_batch
  std::string schedule = "1f1b";   // "1f1b" or "gpipe": in-flight activations per stage
  bool allow_recompute = true;     // search recompute per stage
  std::int64_t max_stages = 0;     // 0: no limit besides layers and devices
  // Variants asked per (layers, sub-mesh, logical mesh, recompute): 0 .. max_variants - 1, until
  // the cost function returns nullopt for one (variant 0's nullopt: the candidate is invalid).
  std::int32_t max_variants = 1;
  // Called after each micro-batch count is searched (long searches report progress): the count,
  // its place among the counts searched (1-based) and how many there are, and the best
  // iteration time so far (infinite while nothing fits).
  std::function<void(std::int64_t micro_batches, std::size_t done, std::size_t total,
                     double best_iteration_s)>
      progress;
  // Sub-mesh shapes per group: (1, 1), (1, 2), (1, 4), ... (1, M) and (n, M) for n = 2..hosts,
  // plus (1, M) when M is not a power of two. Logical meshes: every factorisation d0 x d1.
  // Sub-host sizes (1, m) are the powers of two that divide M (then M itself): a divisibility
  // chain, so any mix that fills the hosts packs into them and every DP plan can be placed
  // (e.g. 6-device hosts offer (1,1), (1,2), (1,6); 3-device hosts (1,1), (1,3)).
};

struct StagePlan {
  std::vector<StageCandidate> stages;      // in pipeline order, covering layers 0..L-1
  std::vector<StageEstimate> estimates;    // per stage
  std::vector<std::int64_t> first_device;  // world-rank of each stage's first device (placement)
  std::int64_t micro_batches = 1;
  double iteration_s = 0;        // sum_i t_i + (B - 1) * max_i t_i + max_i tail_i
  double peak_memory_bytes = 0;  // max over stages, per device
};

// Why nothing was found: the best candidate's worst stage and by how much it misses memory.
struct StageDpFailure {
  std::string
      message;  // e.g. "stage 3 (layers 20-27) needs 21.4 GiB per device; 16.0 GiB available"
};

struct StageDpResult {
  std::optional<StagePlan> plan;
  StageDpFailure failure;             // set when !plan
  std::int64_t cost_evaluations = 0;  // calls of the cost function (after caching)
  std::int32_t worker = 0;            // which cost function priced the plan (parallel search)
  double wall_s = 0;
};

// The memory a stage needs per device with `in_flight` micro-batches of activations.
double stage_memory_bytes(const StageEstimate& estimate, std::int64_t in_flight);
// In-flight micro-batches of stage `index` of `num_stages` with B micro-batches:
// 1F1B min(B, num_stages - index); GPipe B.
std::int64_t in_flight_microbatches(const std::string& schedule, std::int64_t index,
                                    std::int64_t num_stages, std::int64_t micro_batches);

// Sub-mesh shapes and logical meshes searched for a group (see StageDpOptions).
std::vector<SubmeshShape> submesh_shapes(const DeviceGroup& group);
std::vector<LogicalMesh> logical_meshes(const SubmeshShape& submesh);

// The DP of DESIGN.md section 5 with the t_max loop and early stop, searched over micro-batch
// counts (unless fixed), recomputation and heterogeneous groups. Deterministic.
// Exact for iteration_s (the recurrence and the proof are in stage_dp.cc). Ties (iteration
// times within a relative 1e-12): fewer micro-batches, then fewer stages, then the DP's loop
// order (shorter first stage, then groups and sub-meshes in submesh_shapes order); within a
// (layers, sub-mesh), the option with less time, then tail, then memory, then the first in
// logical_meshes order with recompute off before on. Placement: per group, whole-host
// sub-meshes take hosts from the first in pipeline order, then sub-host ones by decreasing size
// (ties in pipeline order) fill the remaining hosts first-fit; ranks as in ClusterSpec.
// Failure message: 0-based stage index and inclusive layer range of the least over-memory plan
// ("stage 2 (layers 10-19) needs 21.4 GiB per device; 16.0 GiB available"), or "no slicing of
// ..." when no slicing uses every device at all. Throws std::invalid_argument on bad options,
// std::runtime_error when the cost function returns a negative or non-finite number.
StageDpResult plan_stages(const StageDpOptions& options, const StageCostFn& cost);
// The same search on costs.size() threads: worker w searches the micro-batch counts w, w + W,
// ... (in the order above) with costs[w] and its own incumbent, and the workers' bests are
// merged by the tie rules above, so the plan is the one-thread plan (the early stop only prunes
// what cannot beat an incumbent). Each cost function is called from its worker's thread only;
// result.worker says whose priced the plan. Progress is reported under a lock, in completion
// order. A worker's exception is rethrown here.
StageDpResult plan_stages(const StageDpOptions& options, const std::vector<StageCostFn>& costs);

// Enumerates every valid slicing (tests only; small L and device counts).
StageDpResult plan_stages_brute_force(const StageDpOptions& options, const StageCostFn& cost);

}  // namespace strata::solver
