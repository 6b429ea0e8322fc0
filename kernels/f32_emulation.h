// F32Emulation: runs one call of a dtype a backend has no kernels for (bf16 on the host backend)
// through its f32 kernels: each input is converted to an f32 copy, each output gets an f32 copy
// of its current values (so in-place updates and beta-accumulating GEMMs read what they should,
// and elements a kernel leaves alone come back unchanged), and finish() rounds the outputs back
// to the storage dtype. The numerics are those of a bf16 GPU kernel: f32 arithmetic, rounding
// once on store. Used by Backend's public calls (kernels/backend_checks.cc) when
// Backend::emulated(dtype); copies live in backend memory and are released on destruction.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"

namespace strata::kernels {

class F32Emulation {
 public:
  F32Emulation(Backend& backend, DType storage) : be_(backend), storage_(storage) {}
  ~F32Emulation();
  F32Emulation(const F32Emulation&) = delete;
  F32Emulation& operator=(const F32Emulation&) = delete;

  // An f32 copy of n storage elements at p (null when p is null).
  const void* in(const void* p, std::int64_t n);
  // An f32 copy of n storage elements at p that finish() rounds back into p.
  void* out(void* p, std::int64_t n);
  // Rounds every out() copy back into its storage, in the order they were made.
  void finish();

 private:
  struct Copy {
    void* f32 = nullptr;
    void* storage = nullptr;  // null for inputs
    std::int64_t n = 0;
  };
  void* copy_of(const void* p, std::int64_t n);

  Backend& be_;
  DType storage_;
  std::vector<Copy> copies_;
};

// The buffers of a call the backend computes itself: every pointer as it is.
struct NativeBuffers {
  const void* in(const void* p, std::int64_t) const { return p; }
  void* out(void* p, std::int64_t) const { return p; }
};

// Runs call(dtype, io) with io = NativeBuffers, or, when `emulate`, call(kF32, io) with io an
// F32Emulation whose outputs are rounded back afterwards. `call` names each buffer once, as
// io.in(p, n) or io.out(p, n), so a backend call is written once for both ways.
template <class Call>
void run_maybe_emulated(Backend& backend, bool emulate, DType dtype, Call&& call) {
  if (!emulate) {
    NativeBuffers io;
    call(dtype, io);
    return;
  }
  F32Emulation io(backend, dtype);
  call(DType::kF32, io);
  io.finish();
}

}  // namespace strata::kernels
