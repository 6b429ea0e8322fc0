// Training on one device: initial loss near ln(vocab), memorising a short repeating text,
// bit-identical reruns, and micro-batch accumulation equal to one big batch.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "app/local_trainer.h"
#include "kernels/host/host_backend.h"
#include "solver/ir/gpt.h"
#include "test_support.h"

namespace strata {
namespace {

using solver::DType;

solver::GptConfig small_gpt(DType dtype) {
  solver::GptConfig c;
  c.layers = 2;
  c.hidden = 32;
  c.heads = 4;
  c.seq_len = 16;
  c.vocab = 64;
  c.dtype = dtype;
  return c;
}

std::map<std::string, std::vector<double>> init_params(const solver::GptConfig& c,
                                                       const solver::Graph& g, std::uint64_t seed) {
  std::map<std::string, std::vector<double>> out;
  for (auto id : g.tensors_with_role(solver::TensorRole::kParameter)) {
    const auto& t = g.tensor(id);
    out[t.name] = solver::gpt_init_values(c, t.name, solver::num_elements(t.shape), seed);
  }
  return out;
}

struct Run {
  std::vector<double> losses;
  std::map<std::string, std::vector<double>> params;
};

// Trains `steps` AdamW steps on rows cut from `text` (each row the next window of seq+1 bytes).
Run train_on_text(const solver::GptConfig& c, const std::string& text, std::int64_t batch,
                  std::int64_t micro_batches, int steps, double lr) {
  kernels::HostBackend backend;
  const solver::Graph forward = solver::build_gpt(c, batch / micro_batches);
  solver::OptimizerSpec opt;
  opt.lr = lr;
  opt.clip_grad_norm = 1.0;
  app::LocalTrainer trainer(solver::build_training_graph(forward, forward.at("loss"), opt), backend,
                            micro_batches);
  trainer.set_parameters(init_params(c, trainer.graph(), 5));
  Run run;
  for (int step = 1; step <= steps; ++step) {
    std::vector<std::int32_t> rows;
    for (std::int64_t r = 0; r < batch; ++r) {
      const std::size_t start =
          static_cast<std::size_t>((step * batch + r) * 3) % (text.size() - c.seq_len - 1);
      for (std::int64_t i = 0; i <= c.seq_len; ++i)
        rows.push_back(
            static_cast<std::int32_t>(static_cast<unsigned char>(text[start + i]) % c.vocab));
    }
    app::StepContext ctx;
    ctx.lr = lr;
    ctx.step = step;
    run.losses.push_back(trainer.step(rows, ctx).loss);
  }
  run.params = trainer.parameters();
  return run;
}

// A short text repeated; every character occurs once per period, so the next byte is determined
// by the current one and a memorising model can drive the loss to zero from any window start.
std::string repeating_text() {
  std::string text;
  while (text.size() < 2000) text += "THEQUICK-BROWN,FX:0123456789;JMPS/VLAZY.DG ";
  return text;
}

TEST_CASE("a fresh GPT's loss is within 0.1 of ln(vocab)", "[training]") {
  const auto c = small_gpt(DType::kF32);
  std::string random_text;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 4000; ++i) random_text += static_cast<char>(rng() % 64);
  const Run run = train_on_text(c, random_text, 8, 1, 1, 1e-3);
  CHECK(std::abs(run.losses[0] - std::log(64.0)) < 0.1);
}

TEST_CASE("300 AdamW steps memorise a short repeating text", "[training]") {
  const Run run = train_on_text(small_gpt(DType::kF32), repeating_text(), 8, 1, 300, 3e-3);
  INFO("first loss " << run.losses.front() << ", last loss " << run.losses.back());
  CHECK(run.losses.back() < 0.05);
}

TEST_CASE("two runs with one seed are bit-identical", "[training]") {
  const auto c = small_gpt(DType::kF32);
  const Run a = train_on_text(c, repeating_text(), 4, 1, 5, 1e-3);
  const Run b = train_on_text(c, repeating_text(), 4, 1, 5, 1e-3);
  CHECK(a.losses == b.losses);
  CHECK(a.params == b.params);
}

TEST_CASE("micro-batch accumulation equals one big batch (f64)", "[training]") {
  const auto c = small_gpt(DType::kF64);
  const Run one = train_on_text(c, repeating_text(), 4, 1, 3, 1e-3);
  const Run four = train_on_text(c, repeating_text(), 4, 4, 3, 1e-3);
  REQUIRE(one.losses.size() == four.losses.size());
  for (std::size_t i = 0; i < one.losses.size(); ++i)
    CHECK(std::abs(one.losses[i] - four.losses[i]) < 1e-12);
  for (const auto& [name, values] : one.params)
    CHECK(test::close_normwise(four.params.at(name), values, 1e-10, 0, name));
}

TEST_CASE("fused attention trains as the unfused reference (f64 and f32)", "[training]") {
  // Same weights, same rows: the fused `attention` op against scores matmul + causal softmax +
  // matmul. They differ only in GEMM summation order, so 3 AdamW steps agree to rounding.
  for (DType dtype : {DType::kF64, DType::kF32}) {
    INFO("dtype " << solver::dtype_name(dtype));
    auto fused = small_gpt(dtype);
    auto unfused = fused;
    unfused.fused_attention = false;
    const Run a = train_on_text(fused, repeating_text(), 4, 2, 3, 1e-3);
    const Run b = train_on_text(unfused, repeating_text(), 4, 2, 3, 1e-3);
    const double rtol = dtype == DType::kF64 ? 1e-11 : 2e-5;
    REQUIRE(a.losses.size() == b.losses.size());
    for (std::size_t i = 0; i < a.losses.size(); ++i)
      CHECK(std::abs(a.losses[i] - b.losses[i]) <= rtol * std::abs(b.losses[i]));
    for (const auto& [name, values] : b.params)
      CHECK(test::close_normwise(a.params.at(name), values, rtol, 0, name));
  }
}

}  // namespace
}  // namespace strata
