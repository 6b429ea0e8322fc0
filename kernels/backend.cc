// Backend selection and dtype sizes shared by every backend.
#include "kernels/backend.h"

#include <stdexcept>

#include "kernels/host/host_backend.h"

namespace strata::kernels {

std::size_t dtype_size_bytes(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return 8;
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kF16:
      return 2;
    case DType::kI32:
      return 4;
  }
  throw std::invalid_argument("unknown kernels::DType");
}

#if !STRATA_WITH_CUDA
int visible_cuda_devices() { return 0; }  // the CUDA build defines it in kernels/cuda/
#endif

bool backend_available(const std::string& name) {
  // The CUDA kernels come with the GPU issue; until then no build offers the cuda backend.
  return name == "host";
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "host") return std::make_unique<HostBackend>();
  if (name == "cuda") {
    throw std::invalid_argument(
        STRATA_WITH_CUDA ? "backend 'cuda': this version of Strata has no CUDA kernels yet"
                         : "backend 'cuda': this binary was built without STRATA_WITH_CUDA");
  }
  throw std::invalid_argument("backend '" + name + "': unknown (expected host or cuda)");
}

}  // namespace strata::kernels
