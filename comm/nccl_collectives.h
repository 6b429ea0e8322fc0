// NCCL implementation of comm::Collectives (DESIGN.md section 6; STYLE.md 19-20, 25): one NCCL
// communicator per mesh axis of size > 1, working on the CUDA stream the cuda backend computes
// on, so a collective is ordered with the kernels before and after it without any
// synchronisation. Rules: this header includes no CUDA or NCCL header, so plain .cc files may
// include it; the factory is defined only in builds with STRATA_WITH_CUDA
// (comm/nccl/nccl_collectives.cc), and callers guard their calls with #if STRATA_WITH_CUDA.
#pragma once

#include <memory>

#include "comm/collectives.h"
#include "comm/mesh.h"

struct CUstream_st;  // the type cudaStream_t points to

namespace strata::comm {

// Collective over every rank of `mesh`: for each axis of size > 1 (axis 0, then axis 1), the
// axis's rank 0 makes an NCCL unique id, MPI_Bcast over mesh.axis[a] carries it (with the root's
// result, so a failure there fails every member alike), and every member calls
// ncclCommInitRank with its axis coordinate as NCCL rank. `device` is the CUDA device this rank
// computes on and `stream` a stream on it (kernels::CudaBackend::stream()); the mesh and the
// stream must outlive the object.
// Calls only enqueue work on `stream` and return. Buffers are device memory; results are there
// for later work on the stream and, after a stream synchronisation, for the host. Element types
// f64, f32, bf16, f16 and i32 (ncclFloat64, ncclFloat32, ncclBfloat16, ncclFloat16, ncclInt32).
// Bytes are counted exactly as make_mpi_collectives counts them (collectives.h,
// byte_counters.h); count 0 or an axis of size 1 communicates and counts nothing (the local
// copy of a one-member all_gather / reduce_scatter / all_to_all is a device copy on `stream`).
// NCCL refuses two members of one communicator on the same GPU (comm::Error from
// ncclCommInitRank). NCCL and CUDA failures throw comm::Error naming the call; bad arguments
// throw std::invalid_argument. Destroyed during stack unwinding, it aborts its communicators
// (ncclCommAbort) instead of finalising them, so a failing rank never waits for its peers.
std::unique_ptr<Collectives> make_nccl_collectives(const Mesh& mesh, int device,
                                                   CUstream_st* stream);

}  // namespace strata::comm
