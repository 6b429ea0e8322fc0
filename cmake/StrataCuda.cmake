# CUDA parts (STRATA_WITH_CUDA=ON): nvcc for kernels/cuda/*.cu, cuBLAS, NCCL from /usr/local/cuda.
# Must configure, compile and link on GPU-less build machines. CUDA 13 supports sm_75 and newer.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)   # A100, H100/H200
endif()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
find_package(NCCL REQUIRED)             # cmake/FindNCCL.cmake

file(GLOB STRATA_CUDA_SOURCES CONFIGURE_DEPENDS kernels/cuda/*.cu kernels/cuda/*.cc)
target_sources(strata_kernels PRIVATE ${STRATA_CUDA_SOURCES})
target_link_libraries(strata_kernels PUBLIC CUDA::cudart CUDA::cublas CUDA::cublasLt)
target_link_libraries(strata_comm PUBLIC CUDA::cudart NCCL::NCCL)
# comm/nccl/ holds the NCCL collectives: in strata_comm only here, so the CPU build never sees
# nccl.h (comm/nccl_collectives.h, the factory's declaration, includes no CUDA header).
file(GLOB STRATA_NCCL_SOURCES CONFIGURE_DEPENDS comm/nccl/*.cc)
target_sources(strata_comm PRIVATE ${STRATA_NCCL_SOURCES})
