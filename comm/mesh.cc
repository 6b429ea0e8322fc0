// Communicator ownership and mesh construction: the world split by stage, then each stage split
// per mesh axis. Every split is collective over its parent, so every rank of the parent calls it,
// including ranks that end up in no group (they pass MPI_UNDEFINED and get MPI_COMM_NULL).
#include "comm/mesh.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "comm/mpi_session.h"

namespace strata::comm {
namespace {

// Destructor path: never throws, and after MPI_Finalize there is nothing left to free.
void free_ignoring_errors(MPI_Comm* comm) {
  if (*comm == MPI_COMM_NULL) return;
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Comm_free(comm);
  *comm = MPI_COMM_NULL;
}

// The same checks on every rank from the same input, so every rank throws the same message and
// none is left waiting in a split.
void validate_stages(const std::vector<StageLayout>& stages, int world_size) {
  std::vector<std::int64_t> owner(static_cast<std::size_t>(world_size), -1);  // stage per rank
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const StageLayout& stage = stages[s];
    const std::string name = "stages[" + std::to_string(s) + "]";
    const auto n = static_cast<std::int64_t>(stage.devices.size());
    if (stage.d0 < 1 || stage.d1 < 1)
      throw std::invalid_argument(name + ": mesh shape " + std::to_string(stage.d0) + " x " +
                                  std::to_string(stage.d1) + " must have both sides >= 1");
    // d0, d1 <= n keeps the product from overflowing.
    if (stage.d0 > n || stage.d1 > n || stage.d0 * stage.d1 != n)
      throw std::invalid_argument(name + ": mesh shape " + std::to_string(stage.d0) + " x " +
                                  std::to_string(stage.d1) + " does not match its " +
                                  std::to_string(n) + " devices");
    for (std::size_t i = 0; i < stage.devices.size(); ++i) {
      const std::int64_t dev = stage.devices[i];
      const std::string field = name + ".devices[" + std::to_string(i) + "]";
      if (dev < 0 || dev >= world_size)
        throw std::invalid_argument(field + " = " + std::to_string(dev) +
                                    " is not a world rank in [0, " + std::to_string(world_size) +
                                    ")");
      std::int64_t& o = owner[static_cast<std::size_t>(dev)];
      if (o >= 0)
        throw std::invalid_argument(field + " = " + std::to_string(dev) +
                                    " is already listed in stages[" + std::to_string(o) + "]");
      o = static_cast<std::int64_t>(s);
    }
  }
}

}  // namespace

Communicator::Communicator(MPI_Comm comm) : comm_(comm) {
  if (comm_ == MPI_COMM_NULL) return;
  // Predefined communicators cannot be freed; owning one would make the destructor erroneous.
  if (comm_ == MPI_COMM_WORLD || comm_ == MPI_COMM_SELF) {
    comm_ = MPI_COMM_NULL;
    throw std::invalid_argument("Communicator cannot own MPI_COMM_WORLD or MPI_COMM_SELF");
  }
  try {
    STRATA_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  } catch (...) {
    free_ignoring_errors(&comm_);  // no destructor runs for a throwing constructor
    throw;
  }
}

Communicator::~Communicator() { free_ignoring_errors(&comm_); }

Communicator::Communicator(Communicator&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)) {}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    free_ignoring_errors(&comm_);
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
  }
  return *this;
}

int Communicator::rank() const {
  if (comm_ == MPI_COMM_NULL) return -1;
  int rank = -1;
  STRATA_MPI_CHECK(MPI_Comm_rank(comm_, &rank));
  return rank;
}

int Communicator::size() const {
  if (comm_ == MPI_COMM_NULL) return 0;
  int size = 0;
  STRATA_MPI_CHECK(MPI_Comm_size(comm_, &size));
  return size;
}

Mesh build_mesh(MPI_Comm world, const std::vector<StageLayout>& stages) {
  int world_size = 0;
  Mesh mesh;
  STRATA_MPI_CHECK(MPI_Comm_size(world, &world_size));
  STRATA_MPI_CHECK(MPI_Comm_rank(world, &mesh.world_rank));
  validate_stages(stages, world_size);

  // Find my stage and my row-major position (c0, c1) in its logical mesh.
  int mesh_rank = 0;  // c0 * d1 + c1; the key that orders stage_comm
  for (std::size_t s = 0; s < stages.size() && mesh.stage < 0; ++s) {
    const StageLayout& stage = stages[s];
    for (std::size_t i = 0; i < stage.devices.size(); ++i) {
      if (stage.devices[i] != mesh.world_rank) continue;
      mesh.stage = static_cast<int>(s);
      mesh.d0 = stage.d0;
      mesh.d1 = stage.d1;
      mesh_rank = static_cast<int>(i);
      mesh.c0 = static_cast<std::int64_t>(i) / stage.d1;
      mesh.c1 = static_cast<std::int64_t>(i) % stage.d1;
      break;
    }
  }

  MPI_Comm raw = MPI_COMM_NULL;
  const int color = mesh.stage >= 0 ? mesh.stage : MPI_UNDEFINED;
  // collective over world: ranks in no stage take part with MPI_UNDEFINED
  STRATA_MPI_CHECK(MPI_Comm_split(world, color, mesh_rank, &raw));
  mesh.stage_comm = Communicator(raw);
  if (mesh.stage < 0) return mesh;

  // axis[1] holds the ranks of my mesh row (same c0), ordered by c1; axis[0] those of my column
  // (same c1), ordered by c0.
  const int c0 = static_cast<int>(mesh.c0), c1 = static_cast<int>(mesh.c1);
  raw = MPI_COMM_NULL;
  // collective over stage_comm
  STRATA_MPI_CHECK(MPI_Comm_split(mesh.stage_comm.get(), c0, c1, &raw));
  mesh.axis[1] = Communicator(raw);
  raw = MPI_COMM_NULL;
  // collective over stage_comm
  STRATA_MPI_CHECK(MPI_Comm_split(mesh.stage_comm.get(), c1, c0, &raw));
  mesh.axis[0] = Communicator(raw);
  return mesh;
}

}  // namespace strata::comm
