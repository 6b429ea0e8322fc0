// Argument checks shared by the backends (kernels/host, kernels/cuda): each failure throws
// std::invalid_argument("<Backend>::<method>: <message>") naming the call and the sizes, so both
// backends reject bad arguments with the same words. Nothing here allocates except the message
// of a failing check. Header-only, no Kokkos or CUDA.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>

namespace strata::kernels {

struct ArgChecks {
  const char* backend;  // "HostBackend", "CudaBackend"

  template <class... Parts>
  [[noreturn]] void fail(const char* method, const Parts&... parts) const {
    std::ostringstream os;
    os << backend << "::" << method << ": ";
    (os << ... << parts);
    throw std::invalid_argument(os.str());
  }

  template <class... Parts>
  void require(bool ok, const char* method, const Parts&... parts) const {
    if (!ok) fail(method, parts...);
  }

  // Every size argument must be >= 0; names lists them, e.g. "rows, cols".
  void require_sizes(const char* method, const char* names,
                     std::initializer_list<std::int64_t> sizes) const {
    bool ok = true;
    for (std::int64_t s : sizes) ok = ok && s >= 0;
    if (ok) return;
    std::ostringstream os;
    const char* sep = "";
    for (std::int64_t s : sizes) {
      os << sep << s;
      sep = ", ";
    }
    fail(method, "sizes must be >= 0: (", names, ") = (", os.str(), ")");
  }

  // A buffer may be null only when it holds no elements.
  void require_ptr(const void* ptr, std::int64_t elements, const char* method,
                   const char* what) const {
    if (ptr == nullptr && elements > 0)
      fail(method, what, " is null but holds ", elements, " elements");
  }
};

}  // namespace strata::kernels
