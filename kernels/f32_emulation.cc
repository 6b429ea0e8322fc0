// F32Emulation (f32_emulation.h): conversion copies around one emulated call.
#include "kernels/f32_emulation.h"

namespace strata::kernels {

F32Emulation::~F32Emulation() {
  for (const Copy& c : copies_) be_.release(c.f32);
}

void* F32Emulation::copy_of(const void* p, std::int64_t n) {
  void* f32 = be_.allocate(static_cast<std::size_t>(n > 0 ? n : 0) * 4);
  copies_.push_back({f32, nullptr, n});
  if (n > 0) be_.convert(storage_, p, DType::kF32, f32, n);
  return f32;
}

const void* F32Emulation::in(const void* p, std::int64_t n) {
  return p == nullptr ? nullptr : copy_of(p, n);
}

void* F32Emulation::out(void* p, std::int64_t n) {
  if (p == nullptr) return nullptr;
  void* f32 = copy_of(p, n);
  copies_.back().storage = p;
  return f32;
}

void F32Emulation::finish() {
  for (const Copy& c : copies_) {
    if (c.storage != nullptr && c.n > 0) be_.convert(DType::kF32, c.f32, storage_, c.storage, c.n);
  }
}

}  // namespace strata::kernels
