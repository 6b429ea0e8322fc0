// Collectives over one mesh axis with MPI (host buffers): the data movement behind
// comm::Collectives, which has already checked the arguments and counted the bytes.
#include <climits>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "comm/collectives.h"
#include "comm/mpi_session.h"
#include "kernels/bf16_bits.h"

namespace strata::comm {
namespace {

// MPI has no bf16: bf16 travels as 16-bit words, and its reductions are user ops that add (or
// compare) in f32 and round each partial result to bf16 (kernels/bf16_bits.h), as NCCL's bf16
// reductions do. Created on first use, after MPI_Init; MPI_Finalize frees them.
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const std::uint16_t*>(in);
  auto* b = static_cast<std::uint16_t*>(inout);
  for (int i = 0; i < *len; ++i)
    b[i] = kernels::bf16_from_f32(kernels::f32_from_bf16(a[i]) + kernels::f32_from_bf16(b[i]));
}
void bf16_max(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const std::uint16_t*>(in);
  auto* b = static_cast<std::uint16_t*>(inout);
  for (int i = 0; i < *len; ++i)
    if (kernels::f32_from_bf16(a[i]) > kernels::f32_from_bf16(b[i])) b[i] = a[i];
}

MPI_Datatype mpi_type(ElemType type) {
  switch (type) {
    case ElemType::kF64:
      return MPI_DOUBLE;
    case ElemType::kF32:
      return MPI_FLOAT;
    case ElemType::kI32:
      return MPI_INT;
    case ElemType::kBF16:
      return MPI_UINT16_T;
    case ElemType::kF16:
      break;
  }
  throw std::invalid_argument("MPI collectives support f64, f32, bf16 and i32, not elem type " +
                              std::to_string(static_cast<int>(type)) + " (f16)");
}

MPI_Op mpi_op(ReduceOp op, ElemType type) {
  if (type == ElemType::kBF16) {
    static const MPI_Op sum = [] {
      MPI_Op o;
      STRATA_MPI_CHECK(MPI_Op_create(&bf16_sum, 1, &o));
      return o;
    }();
    static const MPI_Op max = [] {
      MPI_Op o;
      STRATA_MPI_CHECK(MPI_Op_create(&bf16_max, 1, &o));
      return o;
    }();
    if (op == ReduceOp::kSum) return sum;
    if (op == ReduceOp::kMax) return max;
  }
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
                                   mpi_op(op, c.type), comm(c)));
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
                                              mpi_type(c.type), mpi_op(ReduceOp::kSum, c.type),
                                              comm(c)));
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
