// Mesh construction (DESIGN.md section 6): the world split by pipeline stage, then one
// communicator per axis of the stage's 2-D logical mesh. Every communicator is an RAII owner
// (STYLE.md 19) with MPI_ERRORS_RETURN, so failures surface as comm::Error.
#pragma once

#include <mpi.h>

#include <array>
#include <cstdint>
#include <vector>

namespace strata::comm {

// Owns one MPI communicator (MPI_Comm_free on destruction; MPI_COMM_NULL owns nothing).
class Communicator {
 public:
  Communicator() = default;
  explicit Communicator(MPI_Comm comm);  // takes ownership; sets MPI_ERRORS_RETURN
  ~Communicator();
  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  MPI_Comm get() const { return comm_; }
  int rank() const;  // -1 for MPI_COMM_NULL
  int size() const;  // 0 for MPI_COMM_NULL

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Which world ranks form each stage and the stage's logical mesh (from the plan).
struct StageLayout {
  std::vector<std::int64_t> devices;  // world ranks, row-major in the logical mesh:
                                      // logical device (c0, c1) is devices[c0 * d1 + c1]
  std::int64_t d0 = 1, d1 = 1;        // d0 * d1 == devices.size()
};

// This rank's place in the plan and its communicators.
struct Mesh {
  int world_rank = 0;
  int stage = -1;  // my stage; -1 when this rank is in no stage
  std::int64_t d0 = 1, d1 = 1;
  std::int64_t c0 = 0, c1 = 0;  // my coordinates in my stage's logical mesh
  Communicator stage_comm;      // the ranks of my stage; rank in it = c0 * d1 + c1
  // axis[0]: the d0 ranks sharing my c1 (rank in it = c0); axis[1]: the d1 ranks sharing my c0
  // (rank in it = c1). Collectives "on mesh axis m" run on axis[m].
  std::array<Communicator, 2> axis;

  std::int64_t axis_size(int a) const { return a == 0 ? d0 : d1; }
  std::int64_t axis_coord(int a) const { return a == 0 ? c0 : c1; }
};

// Collective over `world`. Every rank passes the same `stages`; their devices must be distinct
// world ranks in [0, world size) (std::invalid_argument otherwise, thrown on every rank before
// any communicator is created). A rank listed in no stage gets stage -1 and null communicators.
Mesh build_mesh(MPI_Comm world, const std::vector<StageLayout>& stages);

}  // namespace strata::comm
