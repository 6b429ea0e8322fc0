// Collectives over one mesh axis with NCCL (device buffers, the backend's stream): the data
// movement behind comm::Collectives, which has already checked the arguments and counted the
// bytes exactly as for MPI. Compiled only with
// STRATA_WITH_CUDA (cmake/StrataCuda.cmake adds comm/nccl/ to strata_comm).
#include "comm/nccl_collectives.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <array>
#include <exception>
#include <limits>
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
      : Collectives(mesh, std::numeric_limits<std::int64_t>::max()), stream_(stream) {
    if (stream == nullptr)
      throw std::invalid_argument("make_nccl_collectives: a stream of the backend is required");
    STRATA_COMM_CUDA_CHECK(cudaSetDevice(device));
    for (int a = 0; a < 2; ++a)  // the same order on every rank of the stage
      if (mesh_.axis_size(a) > 1)
        comms_[static_cast<std::size_t>(a)] = init_axis_comm(mesh, a, device);
  }

 private:
  ncclComm_t comm(const Call& c) const { return comms_[static_cast<std::size_t>(c.axis)].get(); }
  static std::size_t count(const Call& c) { return static_cast<std::size_t>(c.count); }

  void run_all_reduce(void* buf, const Call& c, ReduceOp op) override {
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(
        ncclAllReduce(buf, buf, count(c), nccl_type(c.type), nccl_op(op), comm(c), stream_));
    check_async(c);
  }
  void run_all_gather(const void* send, void* recv, const Call& c) override {
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclAllGather(send, recv, count(c), nccl_type(c.type), comm(c), stream_));
    check_async(c);
  }
  void run_reduce_scatter(const void* send, void* recv, const Call& c) override {
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(
        ncclReduceScatter(send, recv, count(c), nccl_type(c.type), ncclSum, comm(c), stream_));
    check_async(c);
  }
  // NCCL has no all-to-all: one send and one receive per member, fused by the group.
  void run_all_to_all(const void* send, void* recv, const Call& c) override {
    const auto* s = static_cast<const char*>(send);
    auto* r = static_cast<char*>(recv);
    const ncclDataType_t t = nccl_type(c.type);
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclGroupStart());
    for (int j = 0; j < c.n; ++j) {
      const std::size_t at = static_cast<std::size_t>(j) * c.block_bytes;
      STRATA_NCCL_CHECK(ncclSend(s + at, count(c), t, j, comm(c), stream_));
      STRATA_NCCL_CHECK(ncclRecv(r + at, count(c), t, j, comm(c), stream_));
    }
    STRATA_NCCL_CHECK(ncclGroupEnd());
    check_async(c);
  }
  void run_broadcast(void* buf, const Call& c, int root) override {
    // collective over mesh.axis[axis] (its NCCL communicator)
    STRATA_NCCL_CHECK(ncclBroadcast(buf, buf, count(c), nccl_type(c.type), root, comm(c), stream_));
    check_async(c);
  }
  // As in the MPI implementation, but a device copy ordered on the stream like every other call.
  void copy_local(const void* send, void* recv, std::size_t bytes) override {
    STRATA_COMM_CUDA_CHECK(cudaMemcpyAsync(recv, send, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  void check_type(ElemType type) const override { (void)nccl_type(type); }

  // Errors of earlier operations (a peer gone, a network failure) that NCCL found in the
  // background: reported at the next call rather than as a hang at the next synchronisation.
  void check_async(const Call& c) const {
    ncclResult_t async = ncclSuccess;
    STRATA_NCCL_CHECK(ncclCommGetAsyncError(comm(c), &async));
    if (async != ncclSuccess) {
      detail::throw_check_failure("NCCL", "an earlier operation (ncclCommGetAsyncError)",
                                  nccl_why(async), __FILE__, __LINE__);
    }
  }

  cudaStream_t stream_;
  std::array<NcclComm, 2> comms_;  // per mesh axis; null for an axis of size 1
};

}  // namespace

std::unique_ptr<Collectives> make_nccl_collectives(const Mesh& mesh, int device,
                                                   CUstream_st* stream) {
  return std::make_unique<NcclCollectives>(mesh, device, stream);
}

}  // namespace strata::comm
