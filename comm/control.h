// Control-plane messages over world (DESIGN.md section 6): the status word and plan bytes of the
// plan broadcast, the reported loss and gradient norm, per-rank byte counters for the summary.
// They carry no training data and are deliberately not counted by the byte counters, which
// account for the plan's traffic only. Collective over `world`: every rank calls them alike.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace strata::comm {

// Root's status to every rank (0 ok, anything else: stop with that exit code).
int broadcast_status(MPI_Comm world, int status, int root = 0);
// Root's bytes (length first) to every rank; others' `bytes` are replaced.
void broadcast_bytes(MPI_Comm world, std::vector<std::uint8_t>& bytes, int root = 0);
double sum_over_world(MPI_Comm world, double value);
double max_over_world(MPI_Comm world, double value);
// Root receives every rank's `values` (all ranks pass the same length), rank-major; others get
// an empty vector.
std::vector<double> gather_to_root(MPI_Comm world, const std::vector<double>& values, int root = 0);

}  // namespace strata::comm
