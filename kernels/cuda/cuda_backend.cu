// CudaBackend: construction, the check and launch helpers, memory (stream-ordered pool
// allocations), copies, dtype conversion, synchronisation and the device status word. The
// operator kernels live beside this file, one file per family as in kernels/host/.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace strata::kernels {
namespace cuda_detail {
namespace {

// The launcher's rank, for messages only (kernels/ has no MPI): Open MPI, then Slurm, then PMI.
std::string rank_from_env() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "PMI_RANK"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  }
  return "0";
}

std::string where(const char* expr, const std::string& why, const char* file, int line) {
  int device = -1;
  cudaGetDevice(&device);
  return std::string(expr) + ": " + why + " (device " + std::to_string(device) + ", rank " +
         rank_from_env() + ", " + file + ":" + std::to_string(line) + ")";
}

// Errors after which the CUDA context is unusable (STYLE.md 16): abort rather than unwind.
bool is_sticky(cudaError_t rc) {
  switch (rc) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

}  // namespace

void cuda_failed(cudaError_t rc, const char* expr, const char* file, int line) {
  const std::string msg =
      "CUDA call failed: " +
      where(expr, std::string(cudaGetErrorName(rc)) + " (" + cudaGetErrorString(rc) + ")", file,
            line);
  if (is_sticky(rc)) {
    std::fprintf(stderr, "%s\nsticky CUDA error: the context is unusable, aborting\n", msg.c_str());
    std::fflush(stderr);
    std::abort();
  }
  throw CudaError(msg);
}

void cublas_failed(cublasStatus_t rc, const char* expr, const char* file, int line) {
  throw CudaError(
      "cuBLAS call failed: " +
      where(expr, std::string(cublasGetStatusName(rc)) + " (" + cublasGetStatusString(rc) + ")",
            file, line));
}

void check_launch(const LaunchCtx& ctx, const char* kernel, const char* file, int line) {
  const cudaError_t rc = cudaGetLastError();
  if (rc != cudaSuccess) cuda_failed(rc, kernel, file, line);
  if (ctx.sync_check) {
    const cudaError_t sync_rc = cudaStreamSynchronize(ctx.stream);
    if (sync_rc != cudaSuccess) cuda_failed(sync_rc, kernel, file, line);
  }
}

void throw_bad_dtype(const char* method, DType dtype) {
  checks.fail(method, "dtype ", dtype_name(dtype),
              " is not supported (cuda supports f32, bf16 and f64)");
}

void CudaStreamDeleter::operator()(CUstream_st* stream) const noexcept {
  if (stream != nullptr) cudaStreamDestroy(stream);  // destructors ignore errors (STYLE.md 18)
}

void CublasDeleter::operator()(cublasContext* handle) const noexcept {
  if (handle != nullptr) cublasDestroy(handle);
}

}  // namespace cuda_detail

namespace {

constexpr std::size_t kAlignBytes = 256;

const char* status_method_name(int method) {
  switch (method) {
    case cuda_detail::kStatusEmbeddingForward:
      return "embedding_forward";
    case cuda_detail::kStatusEmbeddingBackward:
      return "embedding_backward";
    case cuda_detail::kStatusCrossEntropyForward:
      return "cross_entropy_forward";
    case cuda_detail::kStatusCrossEntropyBackward:
      return "cross_entropy_backward";
    default:
      return "unknown call";
  }
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] == '1';
}

}  // namespace

CudaBackend::CudaBackend(int device) : Backend("CudaBackend"), device_(device) {
  const int count = visible_cuda_devices();
  if (device < 0 || device >= count) {
    throw std::invalid_argument("CudaBackend: device " + std::to_string(device) +
                                " is not in [0, " + std::to_string(count) + ") visible devices");
  }
  STRATA_CUDA_CHECK(cudaSetDevice(device_));
  STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_));
  sync_check_ = env_flag("STRATA_SYNC_CHECK");

  // Freed blocks stay in the pool instead of going back to the driver at every synchronisation:
  // buffers are released after their last use inside the step loop (DESIGN.md section 6).
  cudaMemPool_t pool = nullptr;
  STRATA_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
  std::uint64_t threshold = std::numeric_limits<std::uint64_t>::max();
  STRATA_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));

  cudaStream_t stream = nullptr;
  STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_.reset(stream);
  cublasHandle_t handle = nullptr;
  STRATA_CUBLAS_CHECK(cublasCreate(&handle));
  cublas_.reset(handle);
  STRATA_CUBLAS_CHECK(cublasSetStream(handle, stream));
  // Plain f32 arithmetic for f32 GEMMs (no TF32), so f32 results match the host within 1e-5.
  STRATA_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));

  try {
    void* partials = nullptr;
    STRATA_CUDA_CHECK(cudaMalloc(&partials, kMaxPartials * sizeof(double)));
    partials_ = static_cast<double*>(partials);
    void* status = nullptr;
    STRATA_CUDA_CHECK(cudaMalloc(&status, sizeof(cuda_detail::DeviceStatus)));
    status_ = static_cast<cuda_detail::DeviceStatus*>(status);
    void* status_host = nullptr;
    STRATA_CUDA_CHECK(cudaMallocHost(&status_host, sizeof(cuda_detail::DeviceStatus)));
    status_host_ = static_cast<cuda_detail::DeviceStatus*>(status_host);
    std::memset(status_host_, 0, sizeof(cuda_detail::DeviceStatus));
    // On our stream (a plain cudaMemset runs on the legacy stream, which a non-blocking stream
    // does not wait for), then wait once so the backend starts from a settled state.
    STRATA_CUDA_CHECK(
        cudaMemsetAsync(status_, 0, sizeof(cuda_detail::DeviceStatus), stream_.get()));
    STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
  } catch (...) {
    free_buffers();
    throw;
  }
}

void CudaBackend::free_buffers() noexcept {
  if (partials_ != nullptr) cudaFree(partials_);
  if (status_ != nullptr) cudaFree(status_);
  if (status_host_ != nullptr) cudaFreeHost(status_host_);
  partials_ = nullptr;
  status_ = nullptr;
  status_host_ = nullptr;
}

CudaBackend::~CudaBackend() {
  // Destructors never throw (STYLE.md 18): finish the stream, then free, ignoring errors.
  if (stream_) cudaStreamSynchronize(stream_.get());
  free_buffers();
  cublas_.reset();
  stream_.reset();
}

cuda_detail::LaunchCtx CudaBackend::ctx() const {
  return cuda_detail::LaunchCtx{stream_.get(), sync_check_, sm_count_, status_};
}

void* CudaBackend::allocate(std::size_t bytes) {
  const std::size_t rounded = (bytes + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
  if (rounded < bytes) throw std::bad_alloc();  // overflow
  const std::size_t size = rounded == 0 ? kAlignBytes : rounded;
  void* ptr = nullptr;
  const cudaError_t rc = cudaMallocAsync(&ptr, size, stream_.get());
  if (rc == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it, so the next launch check does not report it
    throw std::bad_alloc();
  }
  STRATA_CUDA_CHECK(rc);
  STRATA_CUDA_CHECK(cudaMemsetAsync(ptr, 0, size, stream_.get()));
  return ptr;
}

void CudaBackend::release(void* ptr) noexcept {
  if (ptr == nullptr) return;
  const cudaError_t rc = cudaFreeAsync(ptr, stream_.get());
  if (rc != cudaSuccess) {
    std::fprintf(stderr, "CudaBackend::release: cudaFreeAsync failed: %s (ignored)\n",
                 cudaGetErrorString(rc));
  }
}

void* CudaBackend::allocate_host(std::size_t bytes) {
  // Page-locked, so copies to and from it are DMA transfers on stream_ (pageable memory would be
  // staged by the driver through its own pinned buffer, a second copy).
  void* ptr = nullptr;
  const cudaError_t rc = cudaMallocHost(&ptr, std::max<std::size_t>(bytes, 1));
  if (rc == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw std::bad_alloc();
  }
  STRATA_CUDA_CHECK(rc);
  return ptr;
}

void CudaBackend::release_host(void* ptr) noexcept {
  if (ptr == nullptr) return;
  const cudaError_t rc = cudaFreeHost(ptr);
  if (rc != cudaSuccess) {
    std::fprintf(stderr, "CudaBackend::release_host: cudaFreeHost failed: %s (ignored)\n",
                 cudaGetErrorString(rc));
  }
}

void* CudaBackend::allocate_temp(std::size_t bytes) {
  // Like allocate() without the zero fill: every user writes the block before reading it.
  void* ptr = nullptr;
  const cudaError_t rc = cudaMallocAsync(&ptr, std::max<std::size_t>(bytes, 1), stream_.get());
  if (rc == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw std::bad_alloc();
  }
  STRATA_CUDA_CHECK(rc);
  return ptr;
}

void CudaBackend::do_copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
  if (bytes == 0) return;
  STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_.get()));
}

void CudaBackend::do_copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
  if (bytes > 0) {
    STRATA_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_.get()));
  }
  sync_stream();  // the caller reads host_dst next
}

void CudaBackend::do_copy(void* dst, const void* src, std::size_t bytes) {
  const auto d = reinterpret_cast<std::uintptr_t>(dst);
  const auto s = reinterpret_cast<std::uintptr_t>(src);
  const bool overlap = d < s + bytes && s < d + bytes;
  if (!overlap) {
    STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
    return;
  }
  // memmove semantics (as the host): cudaMemcpy leaves overlapping copies undefined.
  void* tmp = allocate_temp(bytes);
  STRATA_CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
  STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
  release(tmp);
}

void CudaBackend::do_fill_zero(void* dst, std::size_t bytes) {
  STRATA_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_.get()));
}

namespace {

// Element conversions, each rounding once to nearest even (as the host's C++ casts do).
template <class To>
struct Convert;
template <>
struct Convert<float> {
  __device__ static float from(float x) { return x; }
  __device__ static float from(double x) { return static_cast<float>(x); }
  __device__ static float from(__nv_bfloat16 x) { return __bfloat162float(x); }
  __device__ static float from(__half x) { return __half2float(x); }
};
template <>
struct Convert<double> {
  __device__ static double from(float x) { return x; }
  __device__ static double from(double x) { return x; }
  __device__ static double from(__nv_bfloat16 x) { return __bfloat162float(x); }
  __device__ static double from(__half x) { return __half2float(x); }
};
template <>
struct Convert<__nv_bfloat16> {
  __device__ static __nv_bfloat16 from(float x) { return __float2bfloat16(x); }
  __device__ static __nv_bfloat16 from(double x) { return __double2bfloat16(x); }
  __device__ static __nv_bfloat16 from(__nv_bfloat16 x) { return x; }
  __device__ static __nv_bfloat16 from(__half x) { return __float2bfloat16(__half2float(x)); }
};
template <>
struct Convert<__half> {
  __device__ static __half from(float x) { return __float2half(x); }
  __device__ static __half from(double x) { return __double2half(x); }
  __device__ static __half from(__nv_bfloat16 x) { return __float2half(__bfloat162float(x)); }
  __device__ static __half from(__half x) { return x; }
};

template <class From, class To>
__global__ void convert_kernel(const From* src, To* dst, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = Convert<To>::from(src[i]);
  }
}

// Calls fn(T{}) for the four floating storage types convert() knows.
template <class Fn>
void dispatch_convert(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kF64:
      fn(double{});
      return;
    case DType::kBF16:
      fn(__nv_bfloat16{});
      return;
    case DType::kF16:
      fn(__half{});
      return;
    default:
      cuda_detail::checks.fail("convert", "dtype ", dtype_name(dtype),
                               " is not supported (convert handles f64, f32, bf16 and f16)");
  }
}

}  // namespace

void CudaBackend::do_convert(DType from, const void* src, DType to, void* dst, std::int64_t n) {
  const auto floating = [](DType t) { return t != DType::kI32; };
  if (!floating(from)) dispatch_convert(from, [](auto) {});  // throws naming the dtype
  if (!floating(to)) dispatch_convert(to, [](auto) {});
  if (n == 0) return;
  if (from == to) {
    copy(dst, src, static_cast<std::size_t>(n) * dtype_size_bytes(from));
    return;
  }
  const cuda_detail::LaunchCtx c = ctx();
  dispatch_convert(from, [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch_convert(to, [&](auto to_tag) {
      using To = decltype(to_tag);
      STRATA_LAUNCH(c, (convert_kernel<From, To>), cuda_detail::grid_for(c, n),
                    cuda_detail::kThreads, static_cast<const From*>(src), static_cast<To*>(dst), n);
    });
  });
}

void CudaBackend::sync_stream() {
  // The status word travels with the stream's work: copied into pinned memory before the sync.
  STRATA_CUDA_CHECK(cudaMemcpyAsync(status_host_, status_, sizeof(cuda_detail::DeviceStatus),
                                    cudaMemcpyDeviceToHost, stream_.get()));
  STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
  check_device_status();
}

void CudaBackend::check_device_status() {
  if (status_host_->flag == 0) return;
  const cuda_detail::DeviceStatus st = *status_host_;
  std::memset(status_host_, 0, sizeof(cuda_detail::DeviceStatus));
  STRATA_CUDA_CHECK(cudaMemsetAsync(status_, 0, sizeof(cuda_detail::DeviceStatus), stream_.get()));
  const bool is_ce = st.method == cuda_detail::kStatusCrossEntropyForward ||
                     st.method == cuda_detail::kStatusCrossEntropyBackward;
  throw std::out_of_range(std::string("CudaBackend::") + status_method_name(st.method) + ": " +
                          (is_ce ? "target " : "token ") + std::to_string(st.value) + " at " +
                          (is_ce ? "row " : "index ") + std::to_string(st.index) +
                          " is outside [0, vocab = " + std::to_string(st.bound) +
                          ") (found on the device; reported at the next synchronisation)");
}

void CudaBackend::synchronize() { sync_stream(); }

}  // namespace strata::kernels
