// Executor::write / read move host values through a bounded f64 staging buffer, chunk by chunk:
// tensors larger than one chunk (2^20 elements) round-trip exactly as the dtype rounds, and the
// staging stays one chunk however large the tensor.
#include <catch2/catch.hpp>

#include "app/executor.h"
#include "kernels/bf16_bits.h"
#include "kernels/host/host_backend.h"
#include "test_support.h"

namespace strata {
namespace {

TEST_CASE("write and read round-trip tensors larger than the staging chunk", "[executor]") {
  const std::int64_t n = (std::int64_t{1} << 21) + 3;  // two chunks and a remainder
  solver::Graph g;
  const auto f64 =
      g.add_tensor({"f64", {n}, solver::DType::kF64, solver::TensorRole::kParameter, 0});
  const auto f32 =
      g.add_tensor({"f32", {n}, solver::DType::kF32, solver::TensorRole::kParameter, 0});
  const auto bf16 =
      g.add_tensor({"bf16", {n}, solver::DType::kBF16, solver::TensorRole::kParameter, 0});
  kernels::HostBackend backend;
  app::Executor exec(g, backend);
  const auto values = test::random_values(static_cast<std::size_t>(n), 3);
  exec.write(f64, values);
  exec.write(f32, values);
  exec.write(bf16, values);
  const auto back64 = exec.read(f64), back32 = exec.read(f32), back16 = exec.read(bf16);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    wrong += back64[i] != values[i];
    wrong += back32[i] != static_cast<double>(f);
    wrong += back16[i] != static_cast<double>(kernels::f32_from_bf16(kernels::bf16_from_f32(f)));
  }
  CHECK(wrong == 0);
  // Three tensors, the staging of one chunk of f64, nothing else.
  CHECK(exec.allocated_bytes() == n * (8 + 4 + 2) + (std::int64_t{1} << 20) * 8);
}

}  // namespace
}  // namespace strata
