// bf16 <-> f32 as GPUs convert: f32 to the nearest bf16 with ties to even (NaN stays a quiet NaN);
// bf16 to f32 exactly. Header-only pure C++ (no Kokkos, no CUDA), so the host's bf16 emulation
// (kernels/host) and the MPI collectives' bf16 reductions (comm/mpi_collectives.cc) round alike.
#pragma once

#include <cstdint>
#include <cstring>

namespace strata::kernels {

inline std::uint16_t bf16_from_f32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

inline float f32_from_bf16(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace strata::kernels
