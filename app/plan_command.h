// `strata plan CONFIG [--set k=v ...] [--out DIR]`: plans without MPI and shows the plan: a text
// table on stdout, DIR/plan.json (DESIGN.md section 7) and DIR/plan.svg (devices coloured by
// stage, the pipeline timeline of one iteration). Needs model.path (weights are not read, so
// --no-weights files plan too); data.path is not needed.
#pragma once

#include <string>
#include <vector>

#include "app/config.h"
#include "solver/ir/gpt.h"
#include "solver/plan/plan.h"

namespace strata::app {

// The GPT hyper-parameters of a model graph's meta (InputError when one is missing).
solver::GptConfig gpt_config_of(const solver::Graph& graph);

// plan_training for a run config (plan.*, train.* keys); an infeasible request becomes an
// InputError "<config>: <why>".
solver::Plan plan_for_config(const RunConfig& config, const solver::GptConfig& gpt,
                             const solver::ClusterSpec& cluster);

// Returns the exit code (0; InputError / std::invalid_argument propagate for the CLI's policy).
int run_plan(const std::string& config_path, const std::vector<std::string>& sets,
             const std::string& out_dir);

}  // namespace strata::app
