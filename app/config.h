// Run configuration: the YAML of DESIGN.md section 7 as one validated struct (STYLE.md 33).
// Every field has a default and a unit. Precedence: file < STRATA_* environment (none yet) <
// --set. Unknown keys, wrong types and out-of-range values are errors naming file, line and key;
// load_config reports every problem at once. docs/config.md lists every key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "solver/ir/optimizer.h"

namespace strata::app {

struct StageSpec {               // plan.stages entry (plan.method: manual)
  std::int64_t layer_begin = 0;  // [begin, end) over the model's layers
  std::int64_t layer_end = 0;
  std::int64_t submesh_hosts = 1;  // submesh: [hosts, devices]
  std::int64_t submesh_devices = 1;
  std::int64_t mesh0 = 1;  // logical_mesh: [d0, d1]
  std::int64_t mesh1 = 1;
  bool recompute = false;
};

struct RunConfig {
  std::string source;  // the config file's path (for messages); "" when built in code

  // model
  std::string model_path;  // model.path: model file (required)
  // data
  std::string data_path;  // data.path: training dataset (required for train)
  std::string val_path;   // data.val_path: validation dataset ("" = none)
  // cluster
  std::string cluster_preset = "local-cpu";   // cluster.preset: file under configs/clusters/
  std::int64_t cluster_hosts = 0;             // cluster.hosts: 0 = from preset / world size
  std::int64_t cluster_devices_per_host = 0;  // cluster.devices_per_host: 0 = from preset
  std::string backend = "auto";               // cluster.backend: auto | host | cuda
  // train
  std::int64_t steps = 100;           // train.steps: optimizer steps
  std::int64_t global_batch = 8;      // train.global_batch: sequences per step
  std::int64_t micro_batches = 0;     // train.micro_batches: 0 = auto (planner searches)
  std::string dtype = "f32";          // train.dtype: f64 | f32 | bf16 | f16
  std::string master_dtype = "auto";  // train.master_dtype: auto | f32 | f64 (optimizer's copy)
  std::uint64_t seed = 0;             // train.seed: data order (shuffle) seed
  bool shuffle = true;                // train.shuffle
  solver::OptimizerSpec optimizer;    // train.optimizer.* and train.clip_grad_norm
  std::int64_t eval_every = 0;        // train.eval_every: steps between validations; 0 = off
  std::int64_t log_every = 1;         // train.log_every: steps between progress lines
  // plan
  std::string plan_method = "auto";                    // plan.method
  std::int64_t plan_dp = 1, plan_tp = 1, plan_pp = 1;  // plan.dp/tp/pp (megatron)
  std::vector<StageSpec> plan_stages;                  // plan.stages (manual)
  std::string plan_schedule = "1f1b";                  // plan.schedule: 1f1b | gpipe
  std::string plan_recompute = "auto";                 // plan.recompute: auto | always | never
  std::string plan_solver = "auto";                    // plan.solver: auto | lp_solve | cbc
  double plan_ilp_time_limit_s = 60.0;                 // plan.ilp_time_limit_s
  // checkpoint (written by the checkpoint issue; accepted and validated now)
  std::string checkpoint_dir;  // checkpoint.dir: "" = no checkpoints
  std::int64_t checkpoint_every_steps = 0;
  std::int64_t checkpoint_keep = 2;
  std::string checkpoint_resume = "auto";  // auto | never | a path
  // output
  std::string output_dir = "out";        // output.dir
  std::string metrics_path;              // output.metrics: "" = <output.dir>/metrics.jsonl
  bool save_model = true;                // output.save_model: write <dir>/model_final.h5
  std::int64_t dump_gradients_step = 0;  // output.dump_gradients_step: write
                                         // <dir>/gradients_step<N>.h5 for step N; 0 = off

  std::string resolved_metrics_path() const;
};

// Parses `path` and applies `sets` ("a.b.c=value", value parsed as YAML) in order. Relative paths
// resolve against the config file's directory. Throws InputError listing every problem, one line
// each: "<file>:<line>: <key>: <problem>" (or "--set <key>: <problem>" for overrides).
RunConfig load_config(const std::string& path, const std::vector<std::string>& sets);

// Same from YAML text (for tests and fuzzing); `source` names it in messages and relative paths
// resolve against `base_dir`.
// base_dir "" keeps the file's relative paths as written. Relative --set paths and the default
// output.dir ("out") resolve against the working directory (docs/config.md, "Paths").
RunConfig parse_config(const std::string& yaml_text, const std::string& source,
                       const std::string& base_dir, const std::vector<std::string>& sets);

// The resolved config as YAML (rank 0 prints it at startup; it is stored with checkpoints).
// Every key, in the file's nesting; parse_config of the result gives the same settings.
std::string config_to_yaml(const RunConfig& config);

// What `train` needs beyond a valid config (data.path; data.val_path when train.eval_every > 0),
// as problem lines "<source>: <key>: <problem>"; empty when satisfied. `plan` needs neither.
std::vector<std::string> check_train_requirements(const RunConfig& config);

// Whether two configs hold the same settings: every field except `source` (for round trips).
bool same_settings(const RunConfig& a, const RunConfig& b);

}  // namespace strata::app
