// The node-local rank: one shared-memory split of world, ordered by world rank.
#include "comm/node_rank.h"

#include "comm/mesh.h"
#include "comm/mpi_session.h"

namespace strata::comm {

NodeRank node_rank(MPI_Comm world) {
  int world_rank = 0;
  STRATA_MPI_CHECK(MPI_Comm_rank(world, &world_rank));
  MPI_Comm raw = MPI_COMM_NULL;
  // collective over world
  STRATA_MPI_CHECK(
      MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &raw));
  const Communicator node(raw);  // freed on return
  return NodeRank{node.rank(), node.size()};
}

}  // namespace strata::comm
