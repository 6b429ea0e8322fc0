// The Plan: the planner's answer as plain data (DESIGN.md section 7), its JSON (the contract users
// and the runtime rely on) and the wire framing of the plan broadcast (STYLE.md 22, 32). Rank 0
// encodes; every rank unframes and decodes, which validates everything, so a decoded Plan is
// always consistent. Decoding reads untrusted bytes (it is fuzzed): any input either decodes or
// throws one std::invalid_argument line. Deterministic (STYLE.md 31). Pure C++ (nlohmann-json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "solver/cost/cluster_spec.h"
#include "solver/inter/stage_dp.h"
#include "solver/intra/layout.h"

namespace strata::solver {

inline constexpr const char* kPlanFormat = "strata-plan";  // JSON "format"
inline constexpr std::int64_t kPlanVersion = 1;            // JSON "version"
// Wire framing: "STRP" + u32 frame version + u64 JSON length (both little-endian) + JSON bytes.
inline constexpr char kPlanFrameMagic[4] = {'S', 'T', 'R', 'P'};
inline constexpr std::uint32_t kPlanFrameVersion = 1;
inline constexpr std::size_t kPlanFrameHeaderBytes = 16;

// The methods of plan.method (DESIGN.md section 7, run config), in documentation order.
const std::vector<std::string>& plan_methods();

// One operator of a stage and the strategy the intra-op pass chose for it.
// JSON: {"op": "h.0.attn.qkv", "strategy": "S0 x R -> S0,S1",
//        "input_layouts": ["S0,R", "R,S1"], "output_layouts": ["S0,S1"]}   (layouts optional)
struct PlanOp {
  std::string op;                      // op name in the training graph (non-empty)
  std::string strategy;                // strategy name (intra/strategy.h; non-empty)
  std::vector<Layout> input_layouts;   // layout notation of layout.h; empty = not recorded
  std::vector<Layout> output_layouts;  // (omitted from the JSON when empty)
};

// What the planner predicts for one stage. Times in seconds per device, memory in bytes per
// device. forward_s / backward_s / transfer_s split time_per_microbatch_s for the simulator;
// both forward_s and backward_s 0 means "not recorded" (simulation_input then assumes 1 : 2).
struct StagePrediction {
  double time_per_microbatch_s = 0;    // forward + backward (+ recompute) + send, per micro-batch
  double forward_s = 0;                // forward of one micro-batch
  double backward_s = 0;               // backward (+ recomputed forward) of one micro-batch
  double transfer_s = 0;               // sending its boundary tensors to the next stage
  double tail_s = 0;                   // once per iteration: gradient sync + optimizer
  double memory_bytes_per_device = 0;  // static + in-flight micro-batches x activation
  double static_memory_bytes = 0;      // parameters, gradients, optimizer state (as sharded)
  double activation_memory_bytes = 0;  // kept per in-flight micro-batch
};

// One pipeline stage: layers [layer_begin, layer_end) on `devices` of host group `group`.
// JSON: {"layers": [b, e], "devices": [...], "group": g, "submesh": [hosts, devices],
//        "logical_mesh": [d0, d1], "recompute": bool, "summary": "dp2 x tp4", "ops": [...],
//        "predicted": {...}}
struct PlanStage {
  std::int64_t layer_begin = 0, layer_end = 0;
  std::vector<std::int64_t> devices;  // world ranks, row-major in logical_mesh: logical device
                                      // (c0, c1) is devices[c0 * d1 + c1]
  std::int64_t group = 0;             // index into cluster.groups
  SubmeshShape submesh;               // hosts x devices per host it occupies
  LogicalMesh logical_mesh;           // d0 x d1 == submesh.size()
  bool recompute = false;             // forward recomputed during backward
  std::string summary;                // human summary of the strategies ("dp2 x tp4"); may be ""
  std::vector<PlanOp> ops;            // every op of the stage with its strategy; may be empty
                                      // (the planner: see planner.h for how names are mapped)
  StagePrediction predicted;
};

// Bytes moved per training step, per collective kind (names as cost_model.h's collective_name).
// Convention: per device, per iteration (optimizer step), summed over stages: each stage
// contributes what one of its devices moves (B of DESIGN.md section 4 for its collectives: each
// member's buffer, over every micro-batch and the per-iteration tail), and p2p the bytes its
// devices send to other stages (every cross-mesh piece, stage_program.h), averaged over them.
// The planner fills it from the runtime's own stage programs (program_bytes_per_step), which the
// runtime's call-site counters must equal.
struct BytesPerStep {
  double all_reduce = 0, all_gather = 0, reduce_scatter = 0, all_to_all = 0, p2p = 0;
};

struct PlanPrediction {
  double iteration_s = 0;                       // one optimizer step
  double tflops_per_device = 0;                 // model TFLOP/s per device at iteration_s
  std::vector<double> memory_bytes_per_device;  // per stage (same order as stages)
  BytesPerStep bytes_per_step;
};

struct SearchStats {
  double wall_s = 0;             // whole search, seconds
  std::int64_t ilps_solved = 0;  // intra-op ILPs actually solved (after caching)
  // Seconds per search phase, in the order the phases ran; names unique and non-empty.
  std::vector<std::pair<std::string, double>> phases_s;
};

// The plan. JSON top-level keys, in this order: format, version, method, model_hash,
// config_hash, cluster, global_batch, micro_batches, schedule, stages, predicted, search.
struct Plan {
  std::string method = "auto";     // one of plan_methods()
  std::string model_hash;          // hash of the model graph (runtime check); may be ""
  std::string config_hash;         // hash of the resolved run config (STYLE.md 22); may be ""
  ClusterSpec cluster;             // the resolved cluster the plan was made for
  std::int64_t global_batch = 1;   // sequences per optimizer step
  std::int64_t micro_batches = 1;  // divides global_batch
  std::string schedule = "1f1b";   // "1f1b" or "gpipe"
  std::vector<PlanStage> stages;   // pipeline order; layers contiguous from 0
  PlanPrediction predicted;
  SearchStats search;

  std::int64_t num_layers() const { return stages.empty() ? 0 : stages.back().layer_end; }
  std::int64_t micro_batch_size() const { return global_batch / micro_batches; }
};

// Checks every invariant of a Plan; throws std::invalid_argument with one line naming the field
// ("stages[1].devices: device 9 is also in stage 0"). Invariants:
//  - method in plan_methods(); schedule "1f1b" | "gpipe"; cluster passes validate(ClusterSpec)
//    (and at most 2^30 devices); 1 <= micro_batches <= global_batch, micro_batches divides it;
//  - stages non-empty; layers contiguous: stage 0 begins at 0, each begins where the previous
//    ended, begin < end;
//  - per stage: group in range; submesh inside the group's host shape; logical_mesh d0 x d1 ==
//    submesh size == number of devices; the devices lie in the group and span exactly
//    submesh.hosts hosts with submesh.devices devices each; every device of the cluster belongs
//    to exactly one stage; op and strategy names non-empty; layouts valid;
//  - every number finite and >= 0; predicted.memory_bytes_per_device has one entry per stage;
//    phase names non-empty and unique; strings at most 1024 bytes (summary, names, hashes).
void validate(const Plan& plan);

// Pretty JSON (2-space indent, arrays of scalars on one line, keys in the fixed order documented
// above, doubles printed so that they read back bit-identical, a final newline). validate()s
// first; throws std::invalid_argument if invalid (or a string is not UTF-8).
// Deterministic: equal plans give identical bytes.
std::string encode_plan_json(const Plan& plan);
// Parses and validates. Unknown keys, duplicate keys, wrong types, out-of-range values, a bad
// format name, another version, more than 256 keys in an object or nesting deeper than 16 are
// errors: one std::invalid_argument line starting "plan JSON: " and naming the field
// ("plan JSON: stages[1].layers: begins at 4, expected 3"). Never crashes, whatever the bytes.
// Keys that may be absent (and then take the struct's default): model_hash, config_hash, a
// stage's summary, an op's input_layouts / output_layouts, a stage prediction's forward_s,
// backward_s, transfer_s, tail_s, static_memory_bytes, activation_memory_bytes, and a device's
// default_efficiency / efficiency. encode always writes all of them (layouts only when non-empty).
Plan decode_plan_json(const std::string& text);

// ClusterSpec <-> JSON, the same shape as a multi-group cluster preset (docs/clusters.md), so
// the "cluster" of a plan pastes into configs/clusters/ as is:
//   {"name": ..., "groups": [{"name", "hosts", "devices_per_host",
//     "device": {"kind", "peak_flops": {dtype: FLOP/s}, "memory_bandwidth_bytes_per_s",
//                "memory_bytes", "default_efficiency", "efficiency": {op kind: fraction}},
//     "intra_host": {"alpha_s", "beta_s_per_byte"}}], "links": {"inter_host": {...}}}
// decode validates (validate(ClusterSpec)); errors start "cluster JSON: ".
std::string encode_cluster_json(const ClusterSpec& cluster);
ClusterSpec decode_cluster_json(const std::string& text);

// The broadcast bytes: header (kPlanFrameHeaderBytes) + encode_plan_json(plan).
std::vector<std::uint8_t> frame_plan(const Plan& plan);
// Checks the magic, the frame version and that the length equals size - 16 exactly, then
// decodes. std::invalid_argument ("plan frame: ...") on any mismatch; data may be null iff
// size == 0.
Plan unframe_plan(const std::uint8_t* data, std::size_t size);

// World ranks of a sub-mesh placed at `first_device` (the stage DP's placement: a sub-mesh takes
// whole consecutive hosts, or consecutive devices inside one host, so its ranks are the range
// [first_device, first_device + size)), row-major in the logical mesh.
std::vector<std::int64_t> stage_devices(std::int64_t first_device, const SubmeshShape& submesh);

// A Plan from the stage DP's answer: stages (layers, group, sub-mesh, logical mesh, recompute,
// devices from first_device, predicted time / tail / memory with the schedule's in-flight count)
// and predicted iteration time and memory. ops, summary, the forward/backward split, bytes,
// TFLOP/s and search statistics are left for the caller (the intra-op pass knows them).
Plan plan_from_stage_plan(const StagePlan& stage_plan, const ClusterSpec& cluster,
                          std::int64_t global_batch, const std::string& schedule,
                          const std::string& method);

}  // namespace strata::solver
