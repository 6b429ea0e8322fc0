// Control-plane collectives: plain MPI over world, checked, never counted.
#include "comm/control.h"

#include <climits>
#include <stdexcept>

#include "comm/mpi_session.h"

namespace strata::comm {

int broadcast_status(MPI_Comm world, int status, int root) {
  STRATA_MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, root, world));
  return status;
}

void broadcast_bytes(MPI_Comm world, std::vector<std::uint8_t>& bytes, int root) {
  std::uint64_t size = bytes.size();
  STRATA_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, root, world));
  if (size > static_cast<std::uint64_t>(INT_MAX)) {
    throw std::invalid_argument("broadcast_bytes: more than INT_MAX bytes");
  }
  bytes.resize(static_cast<std::size_t>(size));
  STRATA_MPI_CHECK(MPI_Bcast(bytes.data(), static_cast<int>(size), MPI_BYTE, root, world));
}

double sum_over_world(MPI_Comm world, double value) {
  double out = 0;
  STRATA_MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_SUM, world));
  return out;
}

double max_over_world(MPI_Comm world, double value) {
  double out = 0;
  STRATA_MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, world));
  return out;
}

std::vector<double> gather_to_root(MPI_Comm world, const std::vector<double>& values, int root) {
  int rank = 0, size = 1;
  STRATA_MPI_CHECK(MPI_Comm_rank(world, &rank));
  STRATA_MPI_CHECK(MPI_Comm_size(world, &size));
  std::vector<double> out(rank == root ? values.size() * static_cast<std::size_t>(size) : 0);
  STRATA_MPI_CHECK(MPI_Gather(values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                              out.data(), static_cast<int>(values.size()), MPI_DOUBLE, root,
                              world));
  return out;
}

}  // namespace strata::comm
