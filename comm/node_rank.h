// This rank's place among the ranks of its node, for choosing its GPU (STYLE.md 21): the ranks
// that share memory with it, as MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) groups them. Unlike a
// launcher's environment (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID) it means the same under
// mpirun, srun and any other launcher.
#pragma once

#include <mpi.h>

namespace strata::comm {

struct NodeRank {
  int rank = 0;  // among the ranks of this node, ordered by world rank
  int size = 1;  // ranks on this node
};

// Collective over `world` (a split; the temporary communicator is freed before it returns).
NodeRank node_rank(MPI_Comm world);

}  // namespace strata::comm
