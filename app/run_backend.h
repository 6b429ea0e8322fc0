// The compute side of a training run (DESIGN.md section 6; STYLE.md 21, 25): the kernels backend
// this rank computes on and the collectives over its stage mesh that go with it.
//   host: HostBackend and MPI collectives.
//   cuda: the GPU is this rank's rank among the ranks of its node modulo the node's visible GPUs
//         (logged on every rank), chosen before anything touches a GPU; CudaBackend on it and
//         NCCL collectives on the backend's stream.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "comm/collectives.h"
#include "comm/mesh.h"
#include "kernels/backend.h"

namespace strata::app {

struct RunBackend {
  std::unique_ptr<kernels::Backend> backend;
  // Declared after the backend so it is destroyed first: NCCL's work runs on the backend's stream.
  std::unique_ptr<comm::Collectives> collectives;
};

// `backend` is a resolved name ("host" or "cuda"; every rank passes the same). For cuda it is
// collective over `world` (the node split) and over every mesh axis of size > 1 (NCCL
// communicators). The mesh must outlive the result. Throws std::invalid_argument for cuda in a
// build without CUDA or with no visible GPU, comm::Error / kernels::CudaError on failures.
RunBackend make_run_backend(const std::string& backend, const comm::Mesh& mesh, MPI_Comm world);

}  // namespace strata::app
