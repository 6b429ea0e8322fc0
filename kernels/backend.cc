// Backend selection and dtype sizes shared by every backend.
#include "kernels/backend.h"

#include <cstdlib>
#include <stdexcept>

#include "kernels/host/host_backend.h"
#if STRATA_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

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

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return "f64";
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
    case DType::kI32:
      return "i32";
  }
  return "unknown";
}

#if !STRATA_WITH_CUDA
int visible_cuda_devices() { return 0; }  // the CUDA build defines it in kernels/cuda/
#else
namespace {

// A non-negative integer from the environment, or -1 when the variable is unset or empty.
// Throws std::invalid_argument naming the variable when it is set to anything else.
int env_index(const char* var) {
  const char* v = std::getenv(var);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long value = std::strtol(v, &end, 10);
  if (*end != '\0' || value < 0 || value > (1 << 20)) {
    throw std::invalid_argument(std::string("backend 'cuda': ") + var + "='" + v +
                                "' is not a non-negative integer");
  }
  return static_cast<int>(value);
}

// The GPU of this process: STRATA_CUDA_DEVICE when set (must name a visible device); else the
// launcher's local rank (Open MPI, then Slurm) modulo the visible devices, so the ranks of one
// host spread over its GPUs; else device 0.
int select_cuda_device(int count) {
  const int forced = env_index("STRATA_CUDA_DEVICE");
  if (forced >= 0) {
    if (forced >= count) {
      throw std::invalid_argument("backend 'cuda': STRATA_CUDA_DEVICE=" + std::to_string(forced) +
                                  " but only " + std::to_string(count) + " device(s) are visible");
    }
    return forced;
  }
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) {
    const int local = env_index(var);
    if (local >= 0) return local % count;
  }
  return 0;
}

}  // namespace
#endif

bool backend_available(const std::string& name) {
  if (name == "host") return true;
  return name == "cuda" && STRATA_WITH_CUDA && visible_cuda_devices() > 0;
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "host") return std::make_unique<HostBackend>();
  if (name == "cuda") {
#if STRATA_WITH_CUDA
    const int count = visible_cuda_devices();
    if (count == 0) {
      throw std::invalid_argument("backend 'cuda': no CUDA device is visible on this machine");
    }
    return std::make_unique<CudaBackend>(select_cuda_device(count));
#else
    throw std::invalid_argument("backend 'cuda': this binary was built without STRATA_WITH_CUDA");
#endif
  }
  throw std::invalid_argument("backend '" + name + "': unknown (expected host or cuda)");
}

}  // namespace strata::kernels
