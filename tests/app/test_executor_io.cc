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

TEST_CASE("the executor's memory breakdown adds up to what it allocated", "[executor]") {
  solver::Graph g;
  const auto add = [&](const char* name, std::int64_t n) {
    return g.add_tensor({name, {n}, solver::DType::kF32, solver::TensorRole::kActivation, 0});
  };
  const auto a = add("a", 100), b = add("b", 200), c = add("c", 300);
  kernels::HostBackend backend;
  CHECK(app::Executor(g, backend).allocated().tensors == (100 + 200 + 300) * 4);
  app::Executor exec(g, backend, {{c}, {0}, 2048});  // c in an arena of 2048 bytes
  CHECK(exec.allocated().tensors == (100 + 200) * 4);
  CHECK_THROWS_AS(exec.add_slots({c}, 2), std::logic_error);  // arena tensors have no slots
  exec.add_slots({a}, 3);                                     // two more copies of a
  exec.stash(b, true);                                        // an f32 accumulator for b
  exec.write(a, std::vector<double>(100, 1.5));               // f64 staging of 100 elements
  const app::MemoryBreakdown& m = exec.allocated();
  CHECK(m.tensors == (100 + 200) * 4);
  CHECK(m.micro_batch_copies == 2 * 100 * 4);
  CHECK(m.accumulators == 200 * 4);
  CHECK(m.masters == 0);
  CHECK(m.arena == 2048);
  CHECK(m.scratch == 100 * 8);
  CHECK(exec.allocated_bytes() == m.total());
  // A layout that does not fit its arena is refused.
  CHECK_THROWS_AS(app::Executor(g, backend, {{c}, {1000}, 2048}), std::invalid_argument);
  // The shared tensor lives in the arena and holds what is written to it.
  exec.write(c, std::vector<double>(300, -2.0));
  CHECK(exec.read(c) == std::vector<double>(300, -2.0));
}

}  // namespace
}  // namespace strata
