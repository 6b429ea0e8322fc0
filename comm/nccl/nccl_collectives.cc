// Collectives over one mesh axis with NCCL (device buffers, the backend's stream). Each call
// validates its arguments the same way on every rank, counts its bytes (byte_counters.h, as
// comm/mpi_collectives.cc does), then enqueues the operation. Compiled only with
// STRATA_WITH_CUDA (cmake/StrataCuda.cmake adds comm/nccl/ to strata_comm).
#include "comm/nccl_collectives.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <array>
#include <exception>
#include <stdexcept>
#include <string>

#include "comm/mpi_session.h"

namespace strata::comm {
namespace {

std::string nccl_why(ncclResult_t rc) {
  std::string why = ncclGetErrorString(rc);
  const char* last = ncclGetLastError(nullptr);  // NCCL's own account, e.g. "Duplicate GPU"
  if (last != nullptr && *last != '\0') why += std::string(": ") + last;
  return why;
}

std::string cuda_why(cudaError_t rc) {
  return std::string(cudaGetErrorName(rc)) + " (" + cudaGetErrorString(rc) + ")";
}

#define STRATA_NCCL_CHECK(expr) STRATA_CHECK_GEN(expr, ncclSuccess, "NCCL", nccl_why)
#define STRATA_COMM_CUDA_CHECK(expr) STRATA_CHECK_GEN(expr, cudaSuccess, "CUDA", cuda_why)

// ncclComm_t owner (STYLE.md 19). ncclCommDestroy finalises the communicator, which waits for
// the operations this rank enqueued; during stack unwinding (an exception on this rank, with
// MPI_Abort to follow) the peers may never join those operations, so ncclCommAbort stops them
// instead. Errors are ignored: destructors never throw (STYLE.md 18).
struct NcclCommDeleter {
  void operator()(ncclComm* comm) const noexcept {
    if (comm == nullptr) return;
    if (std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm);
    } else {
      ncclCommDestroy(comm);
    }
  }
};
using NcclComm = std::unique_ptr<ncclComm, NcclCommDeleter>;

ncclDataType_t nccl_type(ElemType type) {
  switch (type) {
    case ElemType::kF64:
      return ncclFloat64;
    case ElemType::kF32:
      return ncclFloat32;
    case ElemType::kBF16:
      return ncclBfloat16;
    case ElemType::kF16:
      return ncclFloat16;
    case ElemType::kI32:
      return ncclInt32;
  }
  throw std::invalid_argument("elem type " + std::to_string(static_cast<int>(type)) +
                              " is not an ElemType");
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kMax:
      return ncclMax;
  }
  throw std::invalid_argument("reduce op " + std::to_string(static_cast<int>(op)) +
                              " is not a ReduceOp");
}

// The NCCL communicator of mesh axis `axis` (size > 1). Collective over mesh.axis[axis].
NcclComm init_axis_comm(const Mesh& mesh, int axis, int device) {
  const Communicator& group = mesh.axis[static_cast<std::size_t>(axis)];
  const int n = group.size();
  const int rank = group.rank();  // = the axis coordinate (build_mesh's split key)
  struct IdMessage {
    ncclResult_t rc;
    ncclUniqueId id;
  } msg{};
  if (rank == 0) msg.rc = ncclGetUniqueId(&msg.id);
  // collective over mesh.axis[axis]
  STRATA_MPI_CHECK(MPI_Bcast(&msg, sizeof(msg), MPI_BYTE, 0, group.get()));
  if (msg.rc != ncclSuccess) {
    detail::throw_check_failure("NCCL", "ncclGetUniqueId (on the axis's rank 0)",
                                ncclGetErrorString(msg.rc), __FILE__, __LINE__);
  }
  ncclComm_t raw = nullptr;
  // collective over the axis's members (NCCL's own bootstrap)
  const ncclResult_t rc = ncclCommInitRank(&raw, n, msg.id, rank);
  if (rc != ncclSuccess) {
    detail::throw_check_failure("NCCL", "ncclCommInitRank",
                                nccl_why(rc) + " (mesh axis " + std::to_string(axis) + " of " +
                                    std::to_string(n) + " members, CUDA device " +
                                    std::to_string(device) +
                                    "; another member on the same GPU? NCCL refuses that)",
                                __FILE__, __LINE__);
  }
  return NcclComm(raw);
}

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(const Mesh& mesh, int device, cudaStream_t stream)
      : mesh_(mesh), stream_(stream) {
    if (stream == nullptr)
      throw std::invalid_argument("make_nccl_collectives: a stream of the backend is required");
    STRATA_COMM_CUDA_CHECK(cudaSetDevice(device));
    for (int a = 0; a < 2; ++a)  // the same order on every rank of the stage
      if (mesh_.axis_size(a) > 1)
        comms_[static_cast<std::size_t>(a)] = init_axis_comm(mesh, a, device);
  }

  void all_reduce(void* buf, std::int64_t count, ElemType type, ReduceOp op, int axis) override {
    const Call c = begin("all_reduce", count, type, axis);
    const ncclRedOp_t rop = nccl_op(op);
    if (!c.active) return;
    counters_.add(CommKind::kAllReduce, axis, c.block_bytes);
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclAllReduce(buf, buf, c.count, c.type, rop, c.comm, stream_));
    check_async(c);
  }

  void all_gather(const void* send, void* recv, std::int64_t count, ElemType type,
                  int axis) override {
    const Call c = begin("all_gather", count, type, axis);
    if (!c.active) {
      copy_local(c, send, recv);
      return;
    }
    counters_.add(CommKind::kAllGather, axis, c.n * c.block_bytes);
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclAllGather(send, recv, c.count, c.type, c.comm, stream_));
    check_async(c);
  }

  void reduce_scatter(const void* send, void* recv, std::int64_t count, ElemType type,
                      int axis) override {
    const Call c = begin("reduce_scatter", count, type, axis);
    if (!c.active) {
      copy_local(c, send, recv);
      return;
    }
    counters_.add(CommKind::kReduceScatter, axis, c.n * c.block_bytes);
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclReduceScatter(send, recv, c.count, c.type, ncclSum, c.comm, stream_));
    check_async(c);
  }

  // NCCL has no all-to-all: one send and one receive per member, fused by the group.
  void all_to_all(const void* send, void* recv, std::int64_t count, ElemType type,
                  int axis) override {
    const Call c = begin("all_to_all", count, type, axis);
    if (!c.active) {
      copy_local(c, send, recv);
      return;
    }
    counters_.add(CommKind::kAllToAll, axis, c.n * c.n * c.block_bytes);
    const auto* s = static_cast<const char*>(send);
    auto* r = static_cast<char*>(recv);
    const std::size_t block_bytes = c.count * c.elem_bytes;
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclGroupStart());
    for (int j = 0; j < c.n; ++j) {
      STRATA_NCCL_CHECK(ncclSend(s + j * block_bytes, c.count, c.type, j, c.comm, stream_));
      STRATA_NCCL_CHECK(ncclRecv(r + j * block_bytes, c.count, c.type, j, c.comm, stream_));
    }
    STRATA_NCCL_CHECK(ncclGroupEnd());
    check_async(c);
  }

  void broadcast(void* buf, std::int64_t count, ElemType type, int root, int axis) override {
    const Call c = begin("broadcast", count, type, axis);
    if (root < 0 || root >= c.n)
      throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                  " is not a member of mesh axis " + std::to_string(axis) +
                                  " of size " + std::to_string(c.n));
    if (!c.active) return;
    counters_.add(CommKind::kBroadcast, axis, c.block_bytes);
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclBroadcast(buf, buf, c.count, c.type, root, c.comm, stream_));
    check_async(c);
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
    std::size_t count = 0;
    ncclDataType_t type = ncclFloat32;
    ncclComm_t comm = nullptr;
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

  // With one member recv is send itself, as in the MPI implementation: a device copy, ordered
  // on the stream like every other call, neither communicated nor counted.
  void copy_local(const Call& c, const void* send, void* recv) const {
    if (c.count > 0 && send != recv) {
      STRATA_COMM_CUDA_CHECK(
          cudaMemcpyAsync(recv, send, c.count * c.elem_bytes, cudaMemcpyDeviceToDevice, stream_));
    }
  }

  // Errors of earlier operations (a peer gone, a network failure) that NCCL found in the
  // background: reported at the next call rather than as a hang at the next synchronisation.
  static void check_async(const Call& c) {
    ncclResult_t async = ncclSuccess;
    STRATA_NCCL_CHECK(ncclCommGetAsyncError(c.comm, &async));
    if (async != ncclSuccess) {
      detail::throw_check_failure("NCCL", "an earlier operation (ncclCommGetAsyncError)",
                                  nccl_why(async), __FILE__, __LINE__);
    }
  }

  // Arguments are checked before the size-1 / count-0 shortcut, so bad input fails the same way
  // whatever the mesh shape.
  Call begin(const char* what, std::int64_t count, ElemType type, int axis) const {
    check_axis(what, axis);
    if (count < 0)
      throw std::invalid_argument(std::string(what) + ": count " + std::to_string(count) +
                                  " is negative");
    Call c;
    c.type = nccl_type(type);
    c.count = static_cast<std::size_t>(count);
    c.n = static_cast<int>(mesh_.axis_size(axis));
    c.elem_bytes = elem_size_bytes(type);
    c.block_bytes = static_cast<double>(count) * static_cast<double>(c.elem_bytes);
    c.comm = comms_[static_cast<std::size_t>(axis)].get();
    c.active = count > 0 && c.n > 1;
    return c;
  }

  const Mesh& mesh_;
  cudaStream_t stream_;
  std::array<NcclComm, 2> comms_;  // per mesh axis; null for an axis of size 1
};

}  // namespace

std::unique_ptr<Collectives> make_nccl_collectives(const Mesh& mesh, int device,
                                                   CUstream_st* stream) {
  return std::make_unique<NcclCollectives>(mesh, device, stream);
}

}  // namespace strata::comm
