// Collectives over one mesh axis with MPI (host buffers). Each call validates its arguments the
// same way on every rank, counts its bytes (byte_counters.h convention), then communicates.
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>

#include "comm/collectives.h"
#include "comm/mpi_session.h"

namespace strata::comm {

std::size_t elem_size_bytes(ElemType type) {
  switch (type) {
    case ElemType::kF64:
      return 8;
    case ElemType::kF32:
    case ElemType::kI32:
      return 4;
    case ElemType::kBF16:
    case ElemType::kF16:
      return 2;
  }
  throw std::invalid_argument("elem type " + std::to_string(static_cast<int>(type)) +
                              " is not an ElemType");
}

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
  explicit MpiCollectives(const Mesh& mesh) : mesh_(mesh) {}

  void all_reduce(void* buf, std::int64_t count, ElemType type, ReduceOp op, int axis) override {
    const Call c = begin("all_reduce", count, type, axis);
    const MPI_Op mop = mpi_op(op);
    if (!c.active) return;
    counters_.add(CommKind::kAllReduce, axis, c.block_bytes);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, c.count, c.type, mop, c.comm));
  }

  void all_gather(const void* send, void* recv, std::int64_t count, ElemType type,
                  int axis) override {
    const Call c = begin("all_gather", count, type, axis);
    if (!c.active) {
      copy_local(c, send, recv);
      return;
    }
    counters_.add(CommKind::kAllGather, axis, c.n * c.block_bytes);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Allgather(send, c.count, c.type, recv, c.count, c.type, c.comm));
  }

  void reduce_scatter(const void* send, void* recv, std::int64_t count, ElemType type,
                      int axis) override {
    const Call c = begin("reduce_scatter", count, type, axis);
    if (!c.active) {
      copy_local(c, send, recv);
      return;
    }
    counters_.add(CommKind::kReduceScatter, axis, c.n * c.block_bytes);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Reduce_scatter_block(send, recv, c.count, c.type, MPI_SUM, c.comm));
  }

  void all_to_all(const void* send, void* recv, std::int64_t count, ElemType type,
                  int axis) override {
    const Call c = begin("all_to_all", count, type, axis);
    if (!c.active) {
      copy_local(c, send, recv);
      return;
    }
    counters_.add(CommKind::kAllToAll, axis, c.n * c.n * c.block_bytes);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Alltoall(send, c.count, c.type, recv, c.count, c.type, c.comm));
  }

  void broadcast(void* buf, std::int64_t count, ElemType type, int root, int axis) override {
    const Call c = begin("broadcast", count, type, axis);
    if (root < 0 || root >= c.n)
      throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                  " is not a member of mesh axis " + std::to_string(axis) +
                                  " of size " + std::to_string(c.n));
    if (!c.active) return;
    counters_.add(CommKind::kBroadcast, axis, c.block_bytes);
    // collective over mesh.axis[axis]
    STRATA_MPI_CHECK(MPI_Bcast(buf, c.count, c.type, root, c.comm));
  }

  std::int64_t axis_size(int axis) const override {
    check_axis("axis_size", axis);
    return mesh_.axis_size(axis);
  }
  std::int64_t axis_rank(int axis) const override {
    check_axis("axis_rank", axis);
    return mesh_.axis_coord(axis);
  }

 private:
  // One call's validated arguments. active is false when there is nothing to communicate.
  struct Call {
    int count = 0;
    MPI_Datatype type = MPI_DATATYPE_NULL;
    MPI_Comm comm = MPI_COMM_NULL;
    int n = 1;  // members on the axis
    std::size_t elem_bytes = 0;
    double block_bytes = 0.0;  // count x elem_bytes: B of all_reduce and broadcast
    bool active = false;
  };

  static void check_axis(const char* what, int axis) {
    if (axis != 0 && axis != 1)
      throw std::invalid_argument(std::string(what) + ": mesh axis " + std::to_string(axis) +
                                  " is not 0 or 1");
  }

  // With one member, recv is send itself (all_gather, reduce_scatter and all_to_all alike): a
  // local copy, neither communicated nor counted, so callers need no special case for n == 1.
  static void copy_local(const Call& c, const void* send, void* recv) {
    if (c.count > 0 && send != recv)
      std::memcpy(recv, send, static_cast<std::size_t>(c.count) * c.elem_bytes);
  }

  // Arguments are checked before the size-1 / count-0 shortcut, so bad input fails the same way
  // whatever the mesh shape.
  Call begin(const char* what, std::int64_t count, ElemType type, int axis) const {
    check_axis(what, axis);
    if (count < 0 || count > INT_MAX)
      throw std::invalid_argument(std::string(what) + ": count " + std::to_string(count) +
                                  " is outside [0, INT_MAX]");
    Call c;
    c.type = mpi_type(type);
    c.count = static_cast<int>(count);
    c.n = static_cast<int>(mesh_.axis_size(axis));
    c.elem_bytes = elem_size_bytes(type);
    c.block_bytes = static_cast<double>(count) * static_cast<double>(c.elem_bytes);
    c.comm = mesh_.axis[axis].get();
    c.active = count > 0 && c.n > 1;
    return c;
  }

  const Mesh& mesh_;
};

}  // namespace

std::unique_ptr<Collectives> make_mpi_collectives(const Mesh& mesh) {
  return std::make_unique<MpiCollectives>(mesh);
}

}  // namespace strata::comm
