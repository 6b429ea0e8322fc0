// `strata plan CONFIG [--set k=v ...] [--out DIR]`: plans without MPI and shows the plan: a text
// table on stdout, DIR/plan.json (DESIGN.md section 7) and DIR/plan.svg (devices coloured by
// stage, the pipeline timeline of one iteration). Needs model.path (weights are not read, so
// --no-weights files plan too); data.path is not needed.
#pragma once

#include <string>
#include <vector>

namespace strata::app {

// Returns the exit code (0; InputError / std::invalid_argument propagate for the CLI's policy).
int run_plan(const std::string& config_path, const std::vector<std::string>& sets,
             const std::string& out_dir);

}  // namespace strata::app
