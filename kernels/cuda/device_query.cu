// GPU discovery for backend selection. Compiled only with STRATA_WITH_CUDA.
#include <cuda_runtime.h>

#include "kernels/backend.h"

namespace strata::kernels {

int visible_cuda_devices() {
  int count = 0;
  // No driver or no GPU (every build machine): the runtime reports an error; that means zero.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the non-sticky error
    return 0;
  }
  return count;
}

}  // namespace strata::kernels
