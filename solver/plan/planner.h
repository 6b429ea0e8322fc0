// The planner: plan.method -> a Plan (DESIGN.md sections 5 and 7). Every method is the stage DP
// (solver/inter/stage_dp.h) over the intra-op cost model (solver/inter/stage_cost.h), with the
// candidates a method allows filtered in the cost function, so baselines and the auto search are
// priced by the same model and differ only in their search space:
//   auto           every stage slicing, sub-mesh, logical mesh, recomputation, micro-batch count
//   intra-only     one stage over the whole cluster, any logical mesh and strategies
//   inter-only     stages on single devices, no sharding
//   data-parallel  one stage, logical mesh (N, 1), data-parallel strategies (zero2, zero3 alike
//                  with optimizer state / parameters sharded)
//   megatron       plan.pp stages of even block counts (embedding with the first, head with the
//                  last), each on dp x tp devices as logical mesh (dp, tp), Megatron strategies
//   megatron-best  megatron over every dp x tp x pp = devices (tp within a host)
//   manual         exactly plan.stages
// Pure C++.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "solver/cost/cluster_spec.h"
#include "solver/intra/ilp.h"
#include "solver/ir/gpt.h"
#include "solver/ir/optimizer.h"
#include "solver/plan/plan.h"

namespace strata::solver {

struct ManualStage {
  std::int64_t layer_begin = 0, layer_end = 0;  // [begin, end) over the model's layers
  std::int64_t hosts = 1, devices = 1;          // sub-mesh
  std::int64_t d0 = 1, d1 = 1;                  // logical mesh
  bool recompute = false;
};

struct PlannerOptions {
  std::string method = "auto";
  std::int64_t dp = 1, tp = 1, pp = 1;  // megatron
  std::vector<ManualStage> stages;      // manual
  std::string schedule = "1f1b";
  // Recomputation of searched stages: "auto" (the search chooses per stage), "always" (every
  // stage recomputes its forward, as Megatron-LM's --checkpoint-activations and Alpa's remat
  // benchmarks run), "never". A manual plan says it per stage and takes "auto" only.
  std::string recompute = "auto";
  std::int64_t global_batch = 8;
  std::int64_t micro_batches = 0;  // 0: searched
  std::string dtype = "f32";
  std::string master_dtype;  // "" = the default (IntraOptions::master_dtype)
  OptimizerSpec optimizer;
  IlpOptions ilp;
  // Threads for the plan search: micro-batch counts are searched in parallel, each thread with
  // its own stage cost model (stage_dp.h; the plan is the one-thread plan). 0: the machine's
  // hardware threads. megatron-best searches its grid on one thread (one shared cost model).
  std::int32_t threads = 0;
  // Progress lines for long searches ("megatron-best: dp2 x tp4 x pp1 ..."); may be empty.
  std::function<void(const std::string&)> progress;
};

// Plans `model` on `cluster`. Throws std::invalid_argument with one line when the request is
// infeasible (nothing fits in memory: the DP's message naming the stage and GiB; shapes that do
// not divide; a dtype the devices lack; a manual plan that does not cover the layers or the
// devices).
// The plan's stages[].ops come from the intra-op solve that priced each stage (stage_cost.h
// Piece), solved on a template GPT: template block j is renamed to the stage's block (h.<i>,
// GPT-wide); when the stage's range was extrapolated (more than max_whole_blocks + 1 blocks),
// the marginal (last) template block's ops and strategies are repeated for each remaining block,
// as the cost model assumes. predicted.bytes_per_step follows plan.h's convention.
Plan plan_training(const GptConfig& model, const ClusterSpec& cluster,
                   const PlannerOptions& options);

}  // namespace strata::solver
