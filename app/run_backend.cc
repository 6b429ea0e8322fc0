// Backend and collectives of a run: the GPU choice, then CudaBackend and NCCL on its stream.
#include "app/run_backend.h"

#include <stdexcept>

#include "app/log.h"
#if STRATA_WITH_CUDA
#include "comm/nccl_collectives.h"
#include "comm/node_rank.h"
#include "kernels/cuda/cuda_backend.h"
#endif

namespace strata::app {
namespace {

#if STRATA_WITH_CUDA
RunBackend make_cuda(const comm::Mesh& mesh, MPI_Comm world) {
  const comm::NodeRank node = comm::node_rank(world);  // collective over world
  const int visible = kernels::visible_cuda_devices();
  if (visible == 0)
    throw std::invalid_argument("backend 'cuda': no CUDA device is visible on this machine");
  const int device = node.rank % visible;
  STRATA_LOG(kInfo, "cuda device {} of {} visible (rank {} of {} on this node)", device, visible,
             node.rank, node.size);
  if (node.size > visible) {
    STRATA_LOG0(kWarn,
                "{} ranks share {} GPU(s) on this node: a stage mesh with two ranks on one GPU "
                "fails (NCCL refuses them); stages of one device each can share a GPU",
                node.size, visible);
  }
  auto cuda = std::make_unique<kernels::CudaBackend>(device);
  RunBackend out;
  out.collectives = comm::make_nccl_collectives(mesh, device, cuda->stream());
  out.backend = std::move(cuda);
  return out;
}
#endif

}  // namespace

RunBackend make_run_backend(const std::string& backend, const comm::Mesh& mesh, MPI_Comm world) {
  if (backend == "cuda") {
#if STRATA_WITH_CUDA
    return make_cuda(mesh, world);
#else
    (void)world;
    throw std::invalid_argument("backend 'cuda': this binary was built without STRATA_WITH_CUDA");
#endif
  }
  RunBackend out;
  out.backend = kernels::make_backend(backend);
  out.collectives = comm::make_mpi_collectives(mesh);
  return out;
}

}  // namespace strata::app
