// `strata train CONFIG [--set k=v ...]`: loads config, model and data, checks everything before
// writing anything, trains, and writes metrics (JSON lines), the final model and optional
// gradient dumps under output.dir. Runs as one rank (alone or under mpirun -np 1); a launch with
// more ranks ends every rank with exit 2 until the distributed runtime lands.
#pragma once

#include <string>
#include <vector>

namespace strata::app {

// Collective over MPI_COMM_WORLD (MPI must be initialised). Returns the exit code.
int run_train(const std::string& config_path, const std::vector<std::string>& sets);

}  // namespace strata::app
