// Collectives over one mesh axis with MPI (host buffers): the data movement behind
// comm::Collectives, which has already checked the arguments and counted the bytes.
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>

#include "comm/collectives.h"
#include "comm/mpi_session.h"

namespace strata::comm {
namespace {

MPI_Datatype mpi_type(ElemType type) {
  switch (type) {
    case ElemType::kF64:
      return MPI_DOUBLE;
    case ElemType::kF32:
      return MPI_FLOAT;
    case ElemType::kI32:
      return MPI_INT;
    case ElemType::kBF16:
    case ElemType::kF16:
      break;
  }
  throw std::invalid_argument("MPI collectives support f64, f32 and i32, not elem type " +
                              std::to_string(static_cast<int>(type)) + " (bf16 / f16)");
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
  }
  throw std::invalid_argument("reduce op " + std::to_string(static_cast<int>(op)) +
                              " is not a ReduceOp");
}

class MpiCollectives final : public Collectives {
 public:
  explicit MpiCollectives(const Mesh& mesh) : Collectives(mesh, INT_MAX) {}

 private:
  MPI_Comm comm(const Call& c) const { return mesh_.axis[c.axis].get(); }

  void run_all_reduce(void* buf, const Call& c, ReduceOp op) override {
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(c.count), mpi_type(c.type),
                                   mpi_op(op), comm(c)));
  }
  void run_all_gather(const void* send, void* recv, const Call& c) override {
    const int count = static_cast<int>(c.count);
    const MPI_Datatype t = mpi_type(c.type);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Allgather(send, count, t, recv, count, t, comm(c)));
  }
  void run_reduce_scatter(const void* send, void* recv, const Call& c) override {
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Reduce_scatter_block(send, recv, static_cast<int>(c.count),
                                              mpi_type(c.type), MPI_SUM, comm(c)));
  }
  void run_all_to_all(const void* send, void* recv, const Call& c) override {
    const int count = static_cast<int>(c.count);
    const MPI_Datatype t = mpi_type(c.type);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Alltoall(send, count, t, recv, count, t, comm(c)));
  }
  void run_broadcast(void* buf, const Call& c, int root) override {
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Bcast(buf, static_cast<int>(c.count), mpi_type(c.type), root, comm(c)));
  }
  void copy_local(const void* send, void* recv, std::size_t bytes) override {
    std::memcpy(recv, send, bytes);
  }
  void check_type(ElemType type) const override { (void)mpi_type(type); }
};

}  // namespace

std::unique_ptr<Collectives> make_mpi_collectives(const Mesh& mesh) {
  return std::make_unique<MpiCollectives>(mesh);
}

}  // namespace strata::comm
